//! `GET /healthz` (the process answers) and `GET /readyz` (and the database does, within
//! [`READY_WAIT`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use super::state::AppState;

/// How long `/readyz` waits for a pooled connection before answering "busy".
pub(crate) const READY_WAIT: Duration = Duration::from_millis(500);

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 503 `draining` from SIGTERM on (see [`super::server::Draining`]).
pub(crate) async fn readyz(
    State(state): State<AppState>,
    draining: Option<axum::Extension<super::server::Draining>>,
) -> Response {
    if draining.is_some_and(|axum::Extension(d)| d.is_draining()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
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
