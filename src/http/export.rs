//! `GET /account/export`: everything bff holds about the viewer (cookie or bearer), as one JSON
//! document streamed page by page from one read-only repeatable-read transaction — a consistent
//! snapshot, in memory that does not grow with the account. Photos and results are short-lived
//! links (`BFF_PRESIGNED_URL_SECONDS`). Each person may start 3 exports at once and then one a
//! minute; a process runs at most 4 at a time ([`Exports`]) (each holds a connection).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::export_limits::Exports;
use super::state::AppState;
use crate::db::export::{self, Row};
use crate::db::pool::DbConn;
use crate::pipeline::ViewerRefusal;
use crate::storage::Store;

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

/// Streams the viewer's data.
pub async fn export(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
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
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "try again shortly",
                Some(Duration::from_secs(1)),
            );
        }
    };
    let exports: &Exports = &state.exports;
    if let Err(wait) = exports.start(&user_id).await {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "an export was made just now; try again later",
            Some(wait),
        );
    }
    let Ok(permit) = exports.running.clone().try_acquire_owned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "other exports are running; try again shortly",
            Some(Duration::from_secs(5)),
        );
    };
    let mut conn = match state.pool.get().await {
        Ok(conn) => Snapshot::new(conn),
        Err(error) => {
            tracing::warn!(%error, "no database connection for an export");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "try again shortly",
                Some(Duration::from_secs(1)),
            );
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
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "try again shortly",
                Some(Duration::from_secs(1)),
            );
        }
    };
    tracing::info!("an account export started");
    let now = chrono::Utc::now();
    let first = format!(
        "{{\"format\":\"bff-export/1\",\"exportedAt\":{},{},\"creditLedger\":[",
        json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        &head[1..head.len() - 1],
    );
    let stream = Stream {
        conn,
        user_id,
        store: state.pipeline.photos().store().cloned(),
        section: Section::Ledger,
        after: 0,
        first_in_section: true,
        _permit: permit,
    };
    let body =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) })
            .chain(futures_util::stream::unfold(Some(stream), next));
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
        self.get()
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Ledger,
    Purchases,
    Jobs,
    Uploads,
}

struct Stream {
    conn: Snapshot,
    user_id: String,
    store: Option<Arc<Store>>,
    section: Section,
    after: i64,
    first_in_section: bool,
    _permit: OwnedSemaphorePermit,
}

/// The next chunk: one page of the current section (and, when it is the last page, the start
/// of the next section, or the end of the document).
async fn next(state: Option<Stream>) -> Option<(Result<Bytes, std::io::Error>, Option<Stream>)> {
    let mut state = state?;
    let (rows, limit) = {
        let conn = state.conn.get();
        let user = state.user_id.as_str();
        let after = state.after;
        match state.section {
            Section::Ledger => (export::ledger(conn, user, after).await, export::PAGE),
            Section::Purchases => (export::purchases(conn, user, after).await, export::PAGE),
            Section::Jobs => (export::jobs(conn, user, after).await, export::JOB_PAGE),
            Section::Uploads => (
                export::unattached_uploads(conn, user, after).await,
                export::PAGE,
            ),
        }
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(%error, "an export failed midway; the client gets a cut-off document");
            return Some((Err(std::io::Error::other("the export failed")), None));
        }
    };
    let mut chunk = String::with_capacity(rows.iter().map(|r| r.doc.len() + 1).sum::<usize>() + 32);
    for row in &rows {
        if !std::mem::take(&mut state.first_in_section) {
            chunk.push(',');
        }
        match state.section {
            Section::Jobs | Section::Uploads => {
                chunk.push_str(&with_links(row, state.store.as_deref()));
            }
            _ => chunk.push_str(&row.doc),
        }
    }
    if let Some(last) = rows.last() {
        state.after = last.id;
    }
    if rows.len() as i64 == limit {
        return Some((Ok(Bytes::from(chunk)), Some(state)));
    }
    state.after = 0;
    state.first_in_section = true;
    let (closing, following) = match state.section {
        Section::Ledger => ("],\"purchases\":[", Some(Section::Purchases)),
        Section::Purchases => ("],\"photoJobs\":[", Some(Section::Jobs)),
        Section::Jobs => ("],\"unattachedUploads\":[", Some(Section::Uploads)),
        Section::Uploads => ("]}", None),
    };
    chunk.push_str(closing);
    match following {
        Some(section) => {
            state.section = section;
            Some((Ok(Bytes::from(chunk)), Some(state)))
        }
        None => {
            if let Err(error) = state.conn.commit().await {
                tracing::warn!(%error, "an export's transaction did not end cleanly");
            }
            tracing::info!("an account export finished");
            Some((Ok(Bytes::from(chunk)), None))
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
