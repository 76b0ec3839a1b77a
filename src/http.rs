//! The HTTP surface: the router, its layers, and graceful shutdown. Every GraphQL operation,
//! over HTTP or WebSocket, goes through [`crate::pipeline`]; the handlers here only translate.
//!
//! | path | what |
//! | --- | --- |
//! | `POST /graphql` | GraphQL over HTTP, JSON bodies only (415 otherwise) |
//! | `GET /graphql` | queries only (mutations get 405 with `Allow: POST`); with an upgrade, WebSocket subscriptions |
//! | `GET /graphiql` | GraphiQL with its assets served by bff, development only |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness checks the database |
//! | `POST /webhooks/stripe` | Stripe events, signature-verified and applied exactly once |

pub mod client;
pub mod export;
pub mod export_limits;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod metrics;
pub mod request_id;
pub mod server;
pub mod state;
pub mod webhooks;
pub mod ws;

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

use crate::config::Config;
use crate::db::pool::DbPool;
use crate::error::{StartupError, StartupResult};
use crate::pipeline::Pipeline;
pub use request_id::REQUEST_ID;
use request_id::RequestIds;
pub use state::AppState;

/// Largest request body accepted on `/graphql`, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Builds the application: routes, CORS, request ids, tracing, timeouts; starts the lease
/// sweeper. Fails when the trusted documents manifest cannot be read.
pub fn router(config: &Config, pool: DbPool) -> StartupResult<Router> {
    let pipeline = Pipeline::new(config, pool.clone()).map_err(StartupError)?;
    let hub = crate::live::start(crate::db::pool::options(&config.database)?);
    tokio::spawn(crate::sweeper::sweep_leases(pool.clone(), config.jobs));
    if config.stripe.secret_key.is_some() {
        tokio::spawn(crate::sweeper::sweep_account_cleanups(
            pool.clone(),
            crate::stripe::StripeClient::new(&config.stripe),
        ));
    }
    match (&config.stripe.secret_key, config.stripe.sync_interval) {
        (Some(_), Some(interval)) => {
            tokio::spawn(crate::stripe::sync::periodic(
                crate::db::pool::options(&config.database)?,
                crate::stripe::StripeClient::new(&config.stripe),
                interval,
            ));
        }
        (None, Some(_)) => {
            tracing::info!("the Stripe sync is off: STRIPE_SECRET_KEY is not set");
        }
        _ => {}
    }
    match pipeline.photos().store() {
        Some(store) => {
            tracing::info!(store = %store.describe(), "photo uploads are on");
            tokio::spawn(crate::sweeper::sweep_storage(
                pool.clone(),
                store.clone(),
                config.storage.unattached_lifetime,
            ));
        }
        None => tracing::warn!(
            "photo uploads are off (BFF_STORAGE_URL is unset): jobs take a bare photoCount"
        ),
    }
    let connections = ws::registry::Registry::new(config.live, pool.clone());
    tokio::spawn(connections.clone().close_deleted(hub.clone()));
    let exports = Arc::new(export_limits::Exports::new(
        pipeline.redis().cloned(),
        config.database.pool_size,
        config.export,
    ));
    let state = AppState {
        pipeline: Arc::new(pipeline),
        connections,
        pool,
        stripe_webhook_secret: config.stripe.webhook_secret.clone(),
        trusted_proxies: config.server.trusted_proxies.clone().into(),
        hub,
        cors_allowed_origins: config.server.cors_allowed_origins.clone().into(),
        exports,
    };

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
            "/webhooks/stripe",
            post(webhooks::stripe).layer(RequestBodyLimitLayer::new(webhooks::MAX_WEBHOOK_BYTES)),
        )
        .route("/account/export", get(export::export))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if config.is_development() {
        app = app.merge(graphiql::routes());
    }
    let app = app
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state);

    let app = match cors(&config.server.cors_allowed_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    Ok(app.layer(
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
    ))
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

/// Binds `BFF_LISTEN` and, when `BFF_METRICS_LISTEN` is set, starts the metrics listener
/// beside it; errors name the variable.
pub async fn bind(config: &Config, pool: &DbPool) -> StartupResult<tokio::net::TcpListener> {
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| StartupError(format!("cannot listen on {listen} (BFF_LISTEN): {e}")))?;
    if let Some(addr) = config.server.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            StartupError(format!("cannot listen on {addr} (BFF_METRICS_LISTEN): {e}"))
        })?;
        tracing::info!(%addr, "serving /metrics");
        tokio::spawn(metrics::serve(listener, pool.clone()));
    }
    Ok(listener)
}

/// Serves until SIGINT or SIGTERM, then gives requests in flight `BFF_SHUTDOWN_TIMEOUT_MS`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &Config,
) -> std::io::Result<()> {
    server::serve_until(listener, app, config.server.timeouts, shutdown_signal()).await
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
