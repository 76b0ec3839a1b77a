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

pub mod spool;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::export_limits::{Exports, PRODUCER_WAIT};
use super::server::Closer;
use super::state::AppState;
use crate::db::export::{self, Row};
use crate::db::pool::DbConn;
use crate::pipeline::ViewerRefusal;
use crate::storage::Store;
use spool::{Reader, Writer};

/// How long the export's transaction may sit idle before PostgreSQL ends it (a backstop: the
/// writer never waits on the client).
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);
/// The `application_name` of a connection while it reads an export.
pub const EXPORT_APPLICATION_NAME: &str = "bff export";

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

fn unavailable(message: &str, wait: Duration) -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, message, Some(wait))
}

/// Streams the viewer's data.
pub async fn export(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    closer: Option<axum::Extension<Closer>>,
    headers: HeaderMap,
) -> Response {
    let address = state.client_address(peer.map(|axum::Extension(ConnectInfo(a))| a), &headers);
    let user_id = match state.pipeline.viewer_of(&headers, address).await {
        Ok(user_id) => user_id,
        Err(ViewerRefusal::Unauthenticated) => {
            return refuse(StatusCode::UNAUTHORIZED, "sign in first", None);
        }
        Err(ViewerRefusal::RateLimited(wait)) => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed sign-ins",
                Some(wait),
            );
        }
        Err(ViewerRefusal::Unavailable) => {
            return unavailable("try again shortly", Duration::from_secs(1));
        }
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
        Ok(conn) => Snapshot::new(conn),
        Err(error) => {
            tracing::warn!(%error, "no database connection for an export");
            return unavailable("try again shortly", Duration::from_secs(1));
        }
    };
    let head = match conn.begin().await {
        Ok(()) => export::head(conn.get(), &user_id).await,
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
    tokio::spawn(produce(
        conn,
        user_id,
        state.pipeline.photos().store().cloned(),
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

/// One download: when it started, how large its document is so far, whether it was all
/// sent; it holds its place among the process's downloads.
struct Download {
    started: Instant,
    size: AtomicU64,
    finished: AtomicBool,
    _slot: OwnedSemaphorePermit,
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

/// Writes the document to the spool from the snapshot, page by page; ends the transaction
/// (and gives the connection back) when done, or as soon as the client is gone.
async fn produce(
    mut conn: Snapshot,
    user_id: String,
    store: Option<Arc<Store>>,
    mut writer: Writer,
    first: String,
    download: Arc<Download>,
    _producing: OwnedSemaphorePermit,
) {
    // The body holds the download; the writer only reports its size.
    let size = &download.size;
    let written = write_document(
        &mut conn,
        &user_id,
        store.as_deref(),
        &mut writer,
        &first,
        size,
    )
    .await;
    drop(download);
    match written {
        Ok(true) => {
            if let Err(error) = conn.commit().await {
                tracing::warn!(%error, "an export's transaction did not end cleanly");
            }
            writer.finish();
            crate::metrics::account_export("written");
        }
        Ok(false) => {
            conn.rollback().await;
            tracing::info!("an export's client left: its transaction ended");
            crate::metrics::account_export("abandoned");
        }
        Err(error) => {
            conn.rollback().await;
            tracing::error!(%error, "an export failed midway; the client gets a cut-off document");
            writer.fail();
            crate::metrics::account_export("failed");
        }
    }
}

/// A section of the document: its name and how its pages are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Ledger,
    Purchases,
    Jobs,
    Uploads,
}

impl Section {
    const ALL: [Section; 4] = [
        Section::Ledger,
        Section::Purchases,
        Section::Jobs,
        Section::Uploads,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Ledger => "creditLedger",
            Section::Purchases => "purchases",
            Section::Jobs => "photoJobs",
            Section::Uploads => "unattachedUploads",
        }
    }

    /// The page after row `after`, and the page size (a shorter page is the last).
    async fn page(
        self,
        conn: &mut AsyncPgConnection,
        user: &str,
        after: i64,
    ) -> diesel::QueryResult<(Vec<Row>, i64)> {
        Ok(match self {
            Section::Ledger => (export::ledger(conn, user, after).await?, export::PAGE),
            Section::Purchases => (export::purchases(conn, user, after).await?, export::PAGE),
            Section::Jobs => (export::jobs(conn, user, after).await?, export::JOB_PAGE),
            Section::Uploads => (
                export::unattached_uploads(conn, user, after).await?,
                export::PAGE,
            ),
        })
    }
}

/// Why the document could not be written.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Spool(#[from] spool::WriteError),
}

/// Writes the whole document; `false` when the client left before the end.
async fn write_document(
    conn: &mut Snapshot,
    user_id: &str,
    store: Option<&Store>,
    writer: &mut Writer,
    first: &str,
    size: &AtomicU64,
) -> Result<bool, ExportError> {
    let mut chunk = String::from(first);
    for (i, section) in Section::ALL.into_iter().enumerate() {
        if i > 0 {
            chunk.push(',');
        }
        chunk.push_str(&format!("\"{}\":[", section.name()));
        let mut after = 0;
        let mut first_row = true;
        loop {
            if writer.abandoned() {
                return Ok(false);
            }
            let (rows, limit) = section.page(conn.get(), user_id, after).await?;
            for row in &rows {
                if !std::mem::take(&mut first_row) {
                    chunk.push(',');
                }
                match section {
                    Section::Jobs | Section::Uploads => chunk.push_str(&with_links(row, store)),
                    _ => chunk.push_str(&row.doc),
                }
            }
            if rows.len() as i64 == limit {
                after = rows.last().map_or(after, |r| r.id);
                writer.write(chunk.as_bytes())?;
                size.store(writer.written(), Ordering::Relaxed);
                chunk.clear();
                continue;
            }
            break;
        }
        chunk.push(']');
    }
    chunk.push('}');
    writer.write(chunk.as_bytes())?;
    size.store(writer.written(), Ordering::Relaxed);
    Ok(true)
}

/// The export's connection, in its read-only transaction. Dropped before the end (the client
/// went away, a statement failed), it is taken out of the pool and closed rather than handed
/// to another request with the transaction open.
struct Snapshot {
    conn: Option<DbConn>,
    finished: bool,
}

impl Snapshot {
    fn new(conn: DbConn) -> Self {
        Snapshot {
            conn: Some(conn),
            finished: false,
        }
    }

    fn get(&mut self) -> &mut AsyncPgConnection {
        self.conn
            .as_mut()
            .expect("the connection is held until dropped")
    }

    async fn begin(&mut self) -> diesel::QueryResult<()> {
        // Named in pg_stat_activity while it lasts, for an operator looking for it.
        let backstop = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET LOCAL idle_in_transaction_session_timeout = {}; \
             SET LOCAL application_name = '{EXPORT_APPLICATION_NAME}'",
            IDLE_IN_TRANSACTION.as_millis()
        );
        self.get().batch_execute(&backstop).await
    }

    /// Ends the transaction and gives the connection back (or, when that fails, closes it).
    async fn rollback(&mut self) {
        if self.get().batch_execute("ROLLBACK").await.is_ok() {
            self.finished = true;
        }
    }

    async fn commit(&mut self) -> diesel::QueryResult<()> {
        self.get().batch_execute("COMMIT").await?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if !self.finished
            && let Some(conn) = self.conn.take()
        {
            drop(deadpool::managed::Object::take(conn));
        }
    }
}

/// A job's or upload's JSON with links instead of object keys: each photo's `url` (saved
/// under its file name) and a job's `resultUrl`; null without storage.
fn with_links(row: &Row, store: Option<&Store>) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(&row.doc) else {
        return row.doc.clone();
    };
    let link = |key: &Value, name: Option<&str>| match (store, key.as_str()) {
        (Some(store), Some(key)) => json!(store.presign_get(key, name).url),
        _ => Value::Null,
    };
    if let Some(photos) = doc.get_mut("photos").and_then(Value::as_array_mut) {
        for photo in photos {
            if let Some(object) = photo.as_object_mut() {
                let key = object.remove("key").unwrap_or(Value::Null);
                let url = link(&key, object.get("fileName").and_then(Value::as_str));
                object.insert("url".into(), url);
            }
        }
    }
    if let Some(object) = doc.as_object_mut() {
        if let Some(key) = object.remove("resultKey") {
            let name = format!("result-{}.zip", row.id);
            object.insert("resultUrl".into(), link(&key, Some(&name)));
        }
        if let Some(key) = object.remove("key") {
            let url = link(&key, object.get("fileName").and_then(Value::as_str));
            object.insert("url".into(), url);
        }
    }
    doc.to_string()
}
