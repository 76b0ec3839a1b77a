//! The HTTP surface: the router, its layers, and graceful shutdown. Every GraphQL operation,
//! over HTTP or WebSocket, goes through [`crate::pipeline`]; the handlers here only translate.
//!
//! | path | what |
//! | --- | --- |
//! | `POST /graphql` | GraphQL over HTTP, JSON bodies only (415 otherwise) |
//! | `GET /graphql` | queries only (mutations get 405 with `Allow: POST`); with an upgrade, WebSocket subscriptions |
//! | `POST /admin/graphql`, `GET /admin/graphql` | the administration's schema, for staff only ([`crate::admin`]) |
//! | `GET /graphiql` | GraphiQL with its assets served by bff, development only |
//! | `GET /dev/mail` | the emails caught in `BFF_SMTP_URL=file://…`, development only |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness checks the database |
//! | `POST /webhooks/stripe` | Stripe events, signature-verified and applied exactly once |
//! | `POST /notifications/unsubscribe` | one-click unsubscribe from a signed email link (`GET` shows the button) |

pub(crate) mod client;
mod dev_mail;
pub mod export;
pub(crate) mod export_limits;
pub(crate) mod graphiql;
pub(crate) mod graphql;
pub(crate) mod health;
pub mod metrics;
pub(crate) mod request_id;
pub mod server;
pub(crate) mod state;
pub(crate) mod unsubscribe;
pub(crate) mod webhooks;
pub(crate) mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use tokio::net::TcpListener;

use crate::app::App;
use crate::config::Config;
use crate::error::{StartupError, StartupResult};
pub use request_id::REQUEST_ID;
use request_id::RequestIds;
pub use state::AppState;

/// Largest request body accepted on `/graphql`, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The routes of `app` with their layers: CORS, request ids, tracing, timeouts. The
/// application is built, and its background work started, by [`crate::app`].
pub fn router(state: &Arc<App>) -> Router {
    let config = &state.config;
    let mut app = Router::new()
        .route(
            "/graphql",
            get(graphql::get.layer(axum::middleware::map_response(
                graphql::private_to_the_caller,
            )))
            .post(graphql::post)
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
        .route(
            "/admin/graphql",
            get(graphql::admin_get.layer(axum::middleware::map_response(
                graphql::private_to_the_caller,
            )))
            .post(graphql::admin_post)
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
        .route(
            "/webhooks/stripe",
            post(webhooks::stripe).layer(RequestBodyLimitLayer::new(webhooks::MAX_WEBHOOK_BYTES)),
        )
        .route("/account/export", get(export::export))
        .route(
            "/notifications/unsubscribe",
            get(unsubscribe::confirm)
                .post(unsubscribe::unsubscribe)
                .layer(RequestBodyLimitLayer::new(1024)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if config.is_development() {
        app = app.merge(graphiql::routes());
        if state.notifier.mail_dir().is_some() {
            app = app.merge(dev_mail::routes());
        }
    }
    let app = app
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state.clone());

    let app = match cors(&config.server.cors_allowed_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::new()))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                    let id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        otel.kind = "server",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                        http.status_code = tracing::field::Empty,
                        graphql.operation = tracing::field::Empty,
                        graphql.outcome = tracing::field::Empty,
                        db.statements = tracing::field::Empty,
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(|_| {
                graphql::internal_error_response(None)
            }))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                config.server.timeouts.request,
            )),
    )
}

/// Credentialed CORS for the configured origins only; `None` when there are none, so no
/// response ever carries `Access-Control-Allow-Origin`.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::ACCEPT,
                REQUEST_ID,
            ])
            .expose_headers([REQUEST_ID])
            .max_age(Duration::from_secs(600)),
    )
}

/// Binds `addr`; an error names the variable that set it.
pub async fn bind(addr: std::net::SocketAddr, variable: &str) -> StartupResult<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartupError(format!("cannot listen on {addr} ({variable}): {e}")))
}

/// Serves `config` until SIGINT or SIGTERM: opens the application ([`App::open`]), binds
/// `BFF_LISTEN` (and `BFF_METRICS_LISTEN`), starts the background tasks, serves, then gives
/// requests in flight `BFF_SHUTDOWN_TIMEOUT_MS` and the background tasks
/// [`crate::app::TASKS_GRACE`] to finish.
pub async fn run(config: &Config) -> StartupResult<()> {
    let app = App::open(config).await?;
    let listener = listen(&app).await?;
    app.start();
    tracing::info!(
        addr = %config.server.listen,
        environment = ?config.server.environment,
        pool_size = config.database.pool_size,
        "bff is serving /graphql"
    );
    let served = server::serve_until(
        listener,
        router(&app),
        config.server.timeouts,
        shutdown_signal(),
    )
    .await;
    app.stop().await;
    served.map_err(|e| StartupError(format!("server error: {e}")))
}

/// Binds `BFF_LISTEN`, and `BFF_METRICS_LISTEN` when set (served by `app` from then on).
pub async fn listen(app: &App) -> StartupResult<TcpListener> {
    let config = &app.config;
    let listener = bind(config.server.listen, "BFF_LISTEN").await?;
    if let Some(addr) = config.server.metrics_listen {
        app.serve_metrics(bind(addr, "BFF_METRICS_LISTEN").await?);
        tracing::info!(%addr, "serving /metrics");
    }
    Ok(listener)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
