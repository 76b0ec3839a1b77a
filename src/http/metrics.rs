//! The metrics listener (`GET /metrics` on `BFF_METRICS_LISTEN`, never the public port) and the
//! middleware that counts every HTTP request by its route template.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::db::pool::DbPool;

/// Serves `/metrics` on `listener` (installing the recorder first).
pub async fn serve(listener: tokio::net::TcpListener, pool: DbPool) {
    crate::metrics::install();
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(pool);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the metrics listener stopped");
    }
}

async fn scrape(State(pool): State<DbPool>) -> Response {
    let handle = crate::metrics::install();
    let status = pool.status();
    crate::metrics::pool(
        status.available,
        status.size.saturating_sub(status.available),
        status.max_size,
        status.waiting,
    );
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Middleware: counts every request and times it, by route template (never the raw path,
/// whose values are unbounded).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    tracing::Span::current().record("http.status_code", response.status().as_u16());
    crate::metrics::http_request(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
