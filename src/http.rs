//! The HTTP surface: the router, its layers, and graceful shutdown.
//!
//! | path | what |
//! | --- | --- |
//! | `POST /graphql` | GraphQL over HTTP, JSON bodies only (415 otherwise) |
//! | `GET /graphql` | queries only (mutations get 405 with `Allow: POST`) |
//! | `GET /graphiql` | GraphiQL with its assets served by bff, development only |
//! | `GET /healthz`, `GET /readyz` | liveness; readiness checks the database |
//! | `POST /webhooks/stripe` | Stripe events, signature-verified and applied exactly once |

pub mod client;
pub mod documents;
pub mod graphiql;
pub mod graphql;
pub mod guard;
pub mod prepared;
pub mod rate_limit;
pub mod server;
pub mod webhooks;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::AuthSettings;
use crate::config::Config;
use crate::db::DbPool;
use crate::graphql::{AppSchema, Settings};
use async_graphql::ValidationMode;
use secrecy::ExposeSecret;

/// Largest request body accepted on `/graphql`, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long `/readyz` waits for a pooled connection before answering "busy".
pub const READY_WAIT: Duration = Duration::from_millis(500);
/// The request id header, set on every request and response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The executable schema, with the pool and settings attached.
    pub schema: AppSchema,
    /// The same schema, validating only what execution needs (`ValidationMode::Fast`): for a
    /// request whose text, operation and variables already passed full validation
    /// ([`prepared::Prepared::is_validated`]).
    pub revalidated_schema: AppSchema,
    /// The database pool.
    pub pool: DbPool,
    /// How credentials are read.
    pub auth: Arc<AuthSettings>,
    /// Stripe's webhook signing secret.
    pub stripe_webhook_secret: Option<secrecy::SecretString>,
    /// What one operation may cost.
    pub limits: crate::graphql::admission::Limits,
    /// Cost-based rate limiting; `None` when off.
    pub rate_limiter: Option<Arc<rate_limit::RateLimiter>>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[client::IpNet]>,
    /// Trusted documents, or the automatic persisted query cache.
    pub documents: Arc<documents::Documents>,
    /// Parsed and validated documents, by their text.
    pub prepared: Arc<prepared::Prepared>,
    /// Live updates: this process's subscribers and listening connection.
    pub hub: Arc<crate::live::Hub>,
    /// Origins whose cookies count (`CORS_ALLOWED_ORIGINS`), for WebSocket upgrades.
    pub cors_allowed_origins: Arc<[String]>,
}

/// Builds the application: routes, CORS, request ids, tracing, timeouts.
pub fn router(config: &Config, pool: DbPool) -> Router {
    let stripe = crate::stripe::StripeClient::new(&config.stripe);
    let schema = |mode| {
        let builder = crate::graphql::schema()
            .data(pool.clone())
            .data(Settings {
                free_photo_allowance: config.free_photo_allowance,
                worker_lease: config.worker_lease,
                worker_max_attempts: config.worker_max_attempts,
            })
            .data(stripe.clone())
            .data(config.stripe.clone())
            .validation_mode(mode);
        if config.is_development() {
            builder.finish()
        } else {
            // Suggestions ("Did you mean …") would describe the schema introspection hides.
            builder
                .disable_introspection()
                .disable_suggestions()
                .finish()
        }
    };
    tokio::spawn(sweep_leases(
        pool.clone(),
        config.worker_lease,
        config.worker_max_attempts,
    ));
    let state = AppState {
        schema: schema(ValidationMode::Strict),
        // No extensions on either: with one, async-graphql sends every field through it.
        revalidated_schema: schema(ValidationMode::Fast),
        pool,
        auth: Arc::new(AuthSettings {
            secret: config.better_auth_secret.clone(),
            cookie_name: config.session_cookie_name.clone(),
            service_secret: config.service_jwt_secret.clone(),
            jwt_issuer: crate::auth::jwt::origin(&config.better_auth_url),
        }),
        stripe_webhook_secret: config.stripe.webhook_secret.clone(),
        limits: config.limits,
        rate_limiter: rate_limit::RateLimiter::new(&config.rate_limit).map(Arc::new),
        trusted_proxies: config.rate_limit.trusted_proxies.clone().into(),
        documents: config
            .trusted_documents
            .clone()
            .unwrap_or_else(|| Arc::new(documents::Documents::open())),
        prepared: Arc::new(prepared::Prepared::default()),
        hub: crate::live::Hub::new(
            crate::db::options(
                config.database_url.expose_secret(),
                config.database_ca_cert.as_deref(),
            )
            .expect("DATABASE_URL was checked when the pool was made"),
            config.live,
        ),
        cors_allowed_origins: config.cors_allowed_origins.clone().into(),
    };

    let mut app = Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
        .route(
            "/webhooks/stripe",
            post(webhooks::stripe).layer(RequestBodyLimitLayer::new(webhooks::MAX_WEBHOOK_BYTES)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if config.is_development() {
        app = app.merge(graphiql::routes());
    }
    let app = app
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state);

    let app = match cors(&config.cors_allowed_origins) {
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
                config.timeouts.request,
            )),
    )
}

/// Every quarter lease (at least every 100 ms, at most every 30 s): jobs whose worker vanished
/// go back to PENDING, or fail with a refund on their last attempt (see
/// [`crate::db::photo_jobs::money::sweep_expired_leases`]). Every process sweeps; they do not
/// collide. `claimPhotoJobs` sweeps too, before it claims.
async fn sweep_leases(pool: DbPool, lease: Duration, max_attempts: i32) {
    let period = (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        match crate::db::photo_jobs::money::sweep_expired_leases(&mut conn, max_attempts).await {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                tracing::info!(requeued, failed, "jobs whose worker's lease expired");
            }
            Err(error) => tracing::warn!(%error, "sweeping expired leases failed"),
        }
    }
}

/// Request ids in UUID form without a system call each (a `getrandom` per request showed in
/// the benchmark's syscall count): a random 64-bit prefix per process, then a counter.
#[derive(Clone)]
struct RequestIds {
    prefix: u64,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            next: Arc::default(),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // RFC 9562's variant bits (10) over the counter's top two, which 2^62 requests never reach.
        let id = uuid::Uuid::from_u64_pair(self.prefix, (n & (u64::MAX >> 2)) | (1 << 63));
        HeaderValue::from_str(&id.hyphenated().to_string())
            .ok()
            .map(RequestId::new)
    }
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

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    // An exhausted pool is an answer too ("busy"), not a reason to wait the pool timeout.
    let ping = tokio::time::timeout(READY_WAIT, crate::db::ping(&state.pool)).await;
    let Ok(ping) = ping else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": "busy" })),
        )
            .into_response();
    };
    match ping {
        Ok(()) => Json(json!({ "status": "ok", "database": "ok" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// Binds `BFF_LISTEN` and, when `BFF_METRICS_LISTEN` is set, starts the metrics listener
/// beside it; errors name the variable.
pub async fn bind(config: &Config, pool: &DbPool) -> crate::StartupResult<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            crate::StartupError(format!(
                "cannot listen on {} (BFF_LISTEN): {e}",
                config.listen
            ))
        })?;
    if let Some(addr) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            crate::StartupError(format!("cannot listen on {addr} (BFF_METRICS_LISTEN): {e}"))
        })?;
        tracing::info!(%addr, "serving /metrics");
        tokio::spawn(crate::metrics::serve(metrics, pool.clone()));
    }
    Ok(listener)
}

/// Serves until SIGINT or SIGTERM, then gives requests in flight `BFF_SHUTDOWN_TIMEOUT_MS`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &Config,
) -> std::io::Result<()> {
    server::serve_until(listener, app, config.timeouts, shutdown_signal()).await
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

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_uuids() {
        let mut ids = RequestIds::new();
        let request = axum::http::Request::new(());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = ids.make_request_id(&request).unwrap();
            let text = id.header_value().to_str().unwrap().to_owned();
            let uuid = uuid::Uuid::parse_str(&text).unwrap();
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert!(seen.insert(text));
        }
        // Another process (another prefix) does not repeat them.
        let mut other = RequestIds::new();
        assert_ne!(
            other.make_request_id(&request).unwrap().header_value(),
            RequestIds {
                prefix: ids.prefix,
                next: Arc::default()
            }
            .make_request_id(&request)
            .unwrap()
            .header_value()
        );
    }
}
