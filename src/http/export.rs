//! `GET /account/export`: everything bff holds about the viewer (cookie or bearer), as one JSON
//! document read page by page from one read-only repeatable-read transaction — a consistent
//! snapshot. Photos and results are short-lived links (`BFF_PRESIGNED_URL_SECONDS`).
//!
//! The database is never held for the client: the document is written at the database's
//! pace to a spool file ([`spool`]: unlinked, on disk, so memory does not grow with the
//! account) and sent from there at the client's, starting with the first page. The
//! transaction ends when the last page is written, or at once when the client goes. So a
//! client that reads slowly or not at all holds a file and a socket, never a connection, and
//! is cut off: by the send timeout when it stops reading (`BFF_SEND_TIMEOUT_MS`, see
//! [`super::server::SendTimeout`]), and when the download outlasts `BFF_EXPORT_TIMEOUT_MS` plus
//! its size at `BFF_EXPORT_MIN_BYTES_PER_SECOND`. Exports read the database through at most a quarter of the pool
//! ([`super::export_limits::producers`]), however many people export; PostgreSQL's
//! `idle_in_transaction_session_timeout` ends a transaction left idle anyway. Each person may
//! start 3 exports at once and then one a minute.

mod produce;
pub(crate) mod spool;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::export_limits::{Exports, PRODUCER_WAIT};
use super::server::Closer;
use super::state::{AppState, client_address};
use crate::app::App;
use crate::auth::Identity;
use crate::error::AppError;
use produce::Download;
use spool::Reader;

pub use produce::{EXPORT_APPLICATION_NAME, IDLE_IN_TRANSACTION};

fn refuse(status: StatusCode, message: &str, retry_after: Option<Duration>) -> Response {
    let mut response = (status, axum::Json(json!({ "error": message }))).into_response();
    if let Some(wait) = retry_after {
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// A refusal with the error's message and code, as GraphQL would answer it.
fn refuse_coded(status: StatusCode, error: &AppError) -> Response {
    (
        status,
        axum::Json(json!({ "error": error.to_string(), "code": error.code() })),
    )
        .into_response()
}

fn unavailable(message: &str, wait: Duration) -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, message, Some(wait))
}

/// The viewer who exports. A credential that signs nobody in (or a service token) pays as
/// much from the client address's bucket as a failed sign-in on `/graphql`; the export's own
/// limit then applies to the viewer.
async fn viewer(
    state: &App,
    headers: &HeaderMap,
    address: Option<IpAddr>,
) -> Result<String, Response> {
    let purpose = crate::auth::Purpose::read("export");
    let (auth, identity) = state.pipeline.identify(headers, true, purpose).await;
    match identity {
        Identity::Viewer(user_id) => match auth.looked_up().map(|u| u.in_person("export the data"))
        {
            Some(Err(refused)) => Err(refuse_coded(StatusCode::FORBIDDEN, &refused)),
            _ => Ok(user_id),
        },
        Identity::Banned(ban) => Err(refuse_coded(
            StatusCode::FORBIDDEN,
            &AppError::AccountBanned(ban.expires),
        )),
        Identity::Unknown => Err(unavailable("try again shortly", Duration::from_secs(1))),
        Identity::Anonymous => Err(refuse(StatusCode::UNAUTHORIZED, "sign in first", None)),
        Identity::Failed | Identity::Service => {
            if let Err(wait) = state.pipeline.charge_failed_sign_in(address).await {
                return Err(refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed sign-ins",
                    Some(wait),
                ));
            }
            Err(refuse(StatusCode::UNAUTHORIZED, "sign in first", None))
        }
    }
}

/// Streams the viewer's data.
pub async fn export(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    closer: Option<axum::Extension<Closer>>,
    headers: HeaderMap,
) -> Response {
    let peer = peer.map(|axum::Extension(ConnectInfo(a))| a);
    let address = client_address(&state, peer, &headers);
    let user_id = match viewer(&state, &headers, address).await {
        Ok(user_id) => user_id,
        Err(refused) => return refused,
    };
    let exports: &Exports = &state.exports;
    // A place first: a person is charged only for an export that can start.
    let Ok(download) = exports.downloads.clone().try_acquire_owned() else {
        return unavailable(
            "too many exports are downloading; try again shortly",
            Duration::from_secs(5),
        );
    };
    if let Err(wait) = exports.start(&user_id).await {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "an export was made just now; try again later",
            Some(wait),
        );
    }
    let producing = tokio::time::timeout(PRODUCER_WAIT, exports.producing.clone().acquire_owned());
    let Ok(Ok(producing)) = producing.await else {
        return unavailable(
            "other exports are running; try again shortly",
            Duration::from_secs(5),
        );
    };
    let mut conn = match state.pool.get().await {
        Ok(conn) => produce::Snapshot::new(conn),
        Err(error) => {
            tracing::warn!(%error, "no database connection for an export");
            return unavailable("try again shortly", Duration::from_secs(1));
        }
    };
    let head = match conn.begin().await {
        Ok(()) => crate::db::export::head(conn.get(), &user_id).await,
        Err(error) => Err(error),
    };
    let head = match head {
        Ok(Some(head)) => head,
        Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "sign in first", None),
        Err(error) => {
            tracing::error!(%error, "an export could not start");
            return unavailable("try again shortly", Duration::from_secs(1));
        }
    };
    let (writer, reader) = match spool::create(&std::env::temp_dir(), exports.spool.clone()) {
        Ok(ends) => ends,
        Err(error) => {
            tracing::error!(%error, "an export could not open its spool file");
            return unavailable("try again shortly", Duration::from_secs(5));
        }
    };
    tracing::info!("an account export started");
    let now = chrono::Utc::now();
    let first = format!(
        "{{\"format\":\"bff-export/1\",\"exportedAt\":{},{},",
        json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        &head[1..head.len() - 1],
    );
    let progress = Arc::new(Download {
        started: Instant::now(),
        size: AtomicU64::new(0),
        finished: AtomicBool::new(false),
        _slot: download,
    });
    tokio::spawn(produce::produce(
        conn,
        user_id,
        state.photos.store().cloned(),
        writer,
        first,
        progress.clone(),
        producing,
    ));
    if let Some(axum::Extension(closer)) = closer {
        tokio::spawn(watch_deadline(
            Arc::downgrade(&progress),
            state.exports.clone(),
            closer,
        ));
    }
    let body = futures_util::stream::unfold(Some((reader, progress)), send);
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"bff-export-{}.json\"",
        now.format("%Y-%m-%d")
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The body: the spool's chunks as the writer makes them.
async fn send(
    state: Option<(Reader, Arc<Download>)>,
) -> Option<(
    Result<Bytes, std::io::Error>,
    Option<(Reader, Arc<Download>)>,
)> {
    let (mut reader, download) = state?;
    match reader.next().await {
        Some(Ok(chunk)) => Some((Ok(chunk), Some((reader, download)))),
        // Hyper ends the connection without the last chunk: the client sees a cut document.
        Some(Err(error)) => Some((Err(error), None)),
        None => {
            download.finished.store(true, Ordering::Relaxed);
            tracing::info!(
                bytes = reader.progress().written,
                "an account export was sent"
            );
            None
        }
    }
}

/// Closes the download's connection when it outlasts its time: the export timeout plus its
/// document's size (as large as it has grown) at the slowest average allowed.
async fn watch_deadline(download: Weak<Download>, exports: Arc<Exports>, closer: Closer) {
    loop {
        let deadline = {
            let Some(download) = download.upgrade() else {
                return;
            };
            if download.finished.load(Ordering::Relaxed) {
                return;
            }
            download.started
                + exports
                    .config
                    .allowed(download.size.load(Ordering::Relaxed))
        };
        tokio::time::sleep_until(deadline.into()).await;
        let Some(download) = download.upgrade() else {
            return;
        };
        if download.finished.load(Ordering::Relaxed) {
            return;
        }
        let size = download.size.load(Ordering::Relaxed);
        if Instant::now() >= download.started + exports.config.allowed(size) {
            tracing::info!(bytes = size, "an export's download took too long: cut off");
            crate::metrics::account_export("timed_out");
            closer.close();
            return;
        }
    }
}
