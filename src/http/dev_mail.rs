//! `/dev/mail`: the emails `bff dev` caught instead of sending (`BFF_SMTP_URL=file://…`),
//! development only. The index lists them newest first; `/dev/mail/{key}` shows the HTML part,
//! `{key}.txt` the text part and `{key}.eml` the message as an SMTP server would have
//! received it. Nothing here runs a script: a strict Content-Security-Policy keeps it that way.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::AppState;
use crate::notify::email::escape;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/dev/mail", get(index))
        .route("/dev/mail/{file}", get(one))
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.into(),
    )
        .into_response()
}

async fn index(State(state): State<AppState>) -> Response {
    let Some(dir) = state.notifier.mail_dir() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let caught = match dir.list().await {
        Ok(caught) => caught,
        Err(error) => {
            let text = format!("cannot read {}: {error}", dir.path().display());
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                text,
            );
        }
    };
    let rows: String = caught
        .iter()
        .map(|mail| {
            format!(
                "<tr><td>{at}</td><td>{to}</td><td><a href=\"/dev/mail/{key}\">{subject}</a></td>\
                 <td><a href=\"/dev/mail/{key}.txt\">text</a> · <a href=\"/dev/mail/{key}.eml\">.eml</a></td></tr>",
                at = mail.at.format("%Y-%m-%d %H:%M:%S"),
                to = escape(&mail.to),
                subject = escape(&mail.subject),
                key = escape(&mail.key),
            )
        })
        .collect();
    let body = if caught.is_empty() {
        "<p>No email yet. Finish a photo job (or mark one FAILED) and it appears here.</p>"
            .to_owned()
    } else {
        format!(
            "<table><thead><tr><th>Written</th><th>To</th><th>Subject</th><th>Raw</th></tr></thead>\
             <tbody>{rows}</tbody></table>"
        )
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>Caught mail — bff dev</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         table{{border-collapse:collapse;width:100%}}th,td{{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #8884}}</style>\
         </head><body><h1>Caught mail</h1><p>bff dev writes notification emails to <code>{dir}</code> \
         instead of sending them: nothing leaves this machine. Each is also an <code>.eml</code> file any mail \
         client opens.</p>{body}</body></html>",
        dir = escape(&dir.path().display().to_string()),
    );
    respond(StatusCode::OK, "text/html; charset=utf-8", html)
}

async fn one(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let Some(dir) = state.notifier.mail_dir() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let not_found = || {
        respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no such email",
        )
    };
    if let Some(key) = file.strip_suffix(".eml") {
        return match dir.eml(key).await {
            Some(eml) => respond(StatusCode::OK, "message/rfc822", eml),
            None => not_found(),
        };
    }
    let (key, text) = match file.strip_suffix(".txt") {
        Some(key) => (key, true),
        None => (file.as_str(), false),
    };
    match dir.get(key).await {
        Some(mail) if text => respond(StatusCode::OK, "text/plain; charset=utf-8", mail.text),
        Some(mail) => respond(StatusCode::OK, "text/html; charset=utf-8", mail.html),
        None => not_found(),
    }
}
