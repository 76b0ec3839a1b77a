//! `POST /webhooks/stripe`: the signature is verified on the raw body before anything is
//! parsed (400 and nothing changed when it fails); the event is then recorded and applied in
//! one transaction. Duplicates answer 200; a database failure answers 500 with nothing
//! committed, so Stripe's retry can succeed later.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use secrecy::ExposeSecret;
use serde_json::json;

use super::state::AppState;
use crate::stripe::events::{self, Event, Handled};
use crate::stripe::signature;

/// Largest webhook body accepted.
pub(crate) const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// Receives one Stripe event.
pub(crate) async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = &state.config.stripe.webhook_secret else {
        tracing::error!("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not configured");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": "webhooks are not configured" }),
        );
    };
    let Some(header) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "missing Stripe-Signature header" }),
        );
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(error) = signature::verify(header, &body, secret.expose_secret(), now) {
        tracing::warn!(%error, "refused a Stripe webhook");
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": error.to_string() }),
        );
    }
    let Some(event) = serde_json::from_slice(&body)
        .ok()
        .and_then(|json| Event::from_json(&json))
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the body is not a Stripe event" }),
        );
    };
    let mut conn = match state.pool.get().await {
        Ok(conn) => conn,
        Err(error) => {
            tracing::error!(%error, event = %event.id, "no database connection for a Stripe webhook");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "temporarily unavailable" }),
            );
        }
    };
    match events::handle(&mut conn, &event).await {
        Ok(Handled::Duplicate) => {
            crate::metrics::stripe_event(event.label(), "duplicate");
            answer(
                StatusCode::OK,
                json!({ "received": true, "duplicate": true }),
            )
        }
        Ok(Handled::Recorded(outcome)) => {
            tracing::info!(event = %event.id, kind = %event.kind, %outcome, "Stripe event");
            crate::metrics::stripe_event(event.label(), outcome.as_db());
            answer(
                StatusCode::OK,
                json!({ "received": true, "outcome": outcome.as_db() }),
            )
        }
        Err(error) => {
            tracing::error!(%error, event = %event.id, "a Stripe event could not be applied");
            crate::metrics::stripe_event(event.label(), "error");
            crate::metrics::db_error("query");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "internal error" }),
            )
        }
    }
}
