//! GraphQL subscriptions over WebSocket: `GET /graphql` with an upgrade, speaking
//! `graphql-transport-ws` (the `graphql-ws` library's protocol) or the legacy `graphql-ws`
//! (subscriptions-transport-ws), chosen by `Sec-WebSocket-Protocol`.
//!
//! - **Authentication**: a `connection_init` payload `{"authorization": "Bearer …"}` (session
//!   token, signed token or Better Auth JWT), else the upgrade's `Authorization` header, else
//!   the Better Auth cookie, which counts only when the upgrade's `Origin` is allowed
//!   (`CORS_ALLOWED_ORIGINS`, or bff's own origin): a page on another site cannot ride a
//!   person's cookie (cross-site WebSocket hijacking). An upgrade from any other `Origin` is
//!   refused (403). No viewer: close 4403. Service tokens never subscribe. Sign-in attempts
//!   are paid from the client address's rate bucket, as on HTTP (past it: close 1013).
//! - **Revocation**: the process checks open connections' sessions every
//!   `BFF_WS_SESSION_CHECK_MS` (30 s) and closes a signed-out or expired one with 4403.
//! - **One pipeline**: a `subscribe` (or legacy `start`) is admitted by [`crate::pipeline`]
//!   exactly as an HTTP request is (trusted documents, persisted queries, guard, cost, rate);
//!   only subscriptions run here: queries and mutations get an `error` (send them over HTTP,
//!   where idempotency and transactions apply).
//! - **Limits** (close codes): init timeout 4408, subscribe before ack 4401, duplicate id 4409,
//!   second init 4429, malformed message 4400, message over 64 KiB 1009, connections past the
//!   process's or the viewer's limit 1013, a client that does not read (a write blocked 10 s)
//!   1008, a peer silent for two keepalive periods 1011, server shutdown
//!   1001. Subscriptions past the per-connection limit get an `error` (RATE_LIMITED).

mod connection;
pub(crate) mod registry;
mod sign_in;

use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use serde_json::json;
use tokio::sync::watch;

use super::state::AppState;
use crate::error::code;
use crate::http::server::Shutdown;
use connection::{Protocol, close};

/// The sub-protocols, in the server's order of preference.
const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

/// Upgrades `GET /graphql`, or refuses before upgrading: no known sub-protocol (400), a
/// foreign `Origin` (403).
pub(crate) fn upgrade(
    state: AppState,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    draining: Option<Shutdown>,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols(PROTOCOLS);
    let protocol = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some("graphql-transport-ws") => Protocol::Transport,
        Some("graphql-ws") => Protocol::Legacy,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws",
            );
        }
    };
    let origin_allowed = match headers.get(header::ORIGIN) {
        None => false,
        Some(origin)
            if allowed_origin(origin, headers, &state.config.server.cors_allowed_origins) =>
        {
            true
        }
        Some(_) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This Origin may not open a WebSocket here (CORS_ALLOWED_ORIGINS)",
            );
        }
    };
    // What the upgrade itself proves: a bearer always (no browser page can set it), the cookie
    // only from an allowed origin.
    // Copied, not cloned: a cloned value would share (and keep alive, for as long as the
    // connection lasts) the whole buffer hyper read the request into.
    let copy = |value: &HeaderValue| HeaderValue::from_bytes(value.as_bytes()).ok();
    let mut credentials = HeaderMap::new();
    if let Some(authorization) = headers.get(header::AUTHORIZATION).and_then(copy) {
        credentials.insert(header::AUTHORIZATION, authorization);
    }
    if origin_allowed {
        for cookie in headers.get_all(header::COOKIE).iter().filter_map(copy) {
            credentials.append(header::COOKIE, cookie);
        }
    }
    let client = super::state::client_address(&state, peer, headers);
    let request_id = headers
        .get(super::request_id::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limits = *state.connections.limits();
    let slot = state.connections.open();
    ws.max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        // Idle connections are most of them: small buffers, written through at once.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_message_bytes * 4)
        // No `async` block around the connection's future: it would keep its own copies of
        // the socket and state for the connection's whole life (memory per connection).
        .on_upgrade(move |socket| {
            let Some(slot) = slot else {
                return Either::Left(async move {
                    let mut socket = socket;
                    let _ = close(&mut socket, 1013, "The server is at its connection limit").await;
                });
            };
            // Without a server's (in-process use) nothing ever stops it.
            let (stop, done) = match draining {
                Some(Shutdown { stop, done }) => (stop, Some(done)),
                None => (watch::channel(false).1, None),
            };
            let opened = connection::Opened {
                state,
                stop,
                done,
                protocol,
                credentials,
                client,
                request_id,
                slot,
            };
            Either::Right(connection::serve(opened, socket))
        })
}

/// Whether `origin` may use cookies here: listed in `CORS_ALLOWED_ORIGINS`, or bff's own
/// origin (GraphiQL served by bff itself).
fn allowed_origin(origin: &HeaderValue, headers: &HeaderMap, allowed: &[String]) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let own = origin
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && Some(rest) == host);
    host.is_some() && own
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code::BAD_USER_INPUT } }] });
    (status, axum::Json(body)).into_response()
}
