//! `/notifications/unsubscribe?token=…`: one-click unsubscribe (RFC 8058) from an email's
//! `List-Unsubscribe` header or its footer link, with no sign-in. `POST` (a mail provider's
//! `List-Unsubscribe=One-Click`, or the page's button) turns the email of the token's kinds
//! off for its person; `GET` only shows that button, because link scanners follow links. A
//! token bff did not sign is refused (400) and changes nothing.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::state::AppState;
use crate::db::notifications::{NotificationKind, set_preferences};
use crate::notify::unsubscribe::Unsubscribe;
use crate::notify::words::words;

/// The query string.
#[derive(Deserialize)]
pub(crate) struct Token {
    token: Option<String>,
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>{title}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5\">\
         <h1 style=\"font-size:1.4rem\">{title}</h1>{body}</body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

fn verified(state: &AppState, token: Option<&str>) -> Option<Unsubscribe> {
    token.and_then(|t| state.notifier.signer.verify(t))
}

fn refused() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "<p>Copy the whole link from the email, or change what you hear about in your notification settings.</p>",
    )
}

/// What the kinds are called on the page.
fn described(kinds: &[NotificationKind]) -> String {
    kinds
        .iter()
        .map(|k| words(*k, &serde_json::Value::Null).title.to_lowercase())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `GET`: the confirmation button.
pub(crate) async fn confirm(State(state): State<AppState>, Query(query): Query<Token>) -> Response {
    let Some(unsubscribe) = verified(&state, query.token.as_deref()) else {
        return refused();
    };
    let token = query.token.unwrap_or_default();
    page(
        StatusCode::OK,
        "Stop these emails?",
        &format!(
            "<p>You will no longer get emails about: {}. They stay in your inbox in the app.</p>\
             <form method=\"post\" action=\"?token={token}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Stop these emails</button></form>",
            described(&unsubscribe.kinds)
        ),
    )
}

/// `POST`: turns the token's kinds' email off.
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    Query(query): Query<Token>,
) -> Response {
    let Some(unsubscribe) = verified(&state, query.token.as_deref()) else {
        return refused();
    };
    let changes: Vec<_> = unsubscribe
        .kinds
        .iter()
        .map(|kind| (*kind, Some(false), None))
        .collect();
    let result = match state.pool.get().await {
        Ok(mut conn) => conn
            .transaction(async |conn| {
                // A person deleted since: nothing to turn off, and nothing to tell.
                if crate::db::stripe::customers::user_exists(conn, &unsubscribe.user_id).await? {
                    set_preferences(conn, &unsubscribe.user_id, &changes).await?;
                }
                Ok::<_, diesel::result::Error>(())
            })
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = result {
        tracing::error!(%error, "an unsubscribe could not be saved");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "<p>We could not save that just now. Try the link again in a minute.</p>",
        );
    }
    tracing::info!(kinds = ?unsubscribe.kinds, "email turned off through an unsubscribe link");
    page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!(
            "<p>You will no longer get emails about: {}.</p>",
            described(&unsubscribe.kinds)
        ),
    )
}
