//! The export's producer: the document written to the spool from one read-only snapshot, page
//! by page, at the database's pace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::spool::{self, Writer};
use crate::db::export::{self, Row};
use crate::db::pool::DbConn;
use crate::storage::Store;

/// Writes the document to the spool from the snapshot, page by page; ends the transaction
/// How long the export's transaction may sit idle before PostgreSQL ends it (a backstop: the
/// writer never waits on the client).
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);
/// The `application_name` of a connection while it reads an export.
pub const EXPORT_APPLICATION_NAME: &str = "bff export";

/// One download: when it started, how large its document is so far, whether it was all
/// sent; it holds its place among the process's downloads.
pub(super) struct Download {
    pub(super) started: Instant,
    pub(super) size: AtomicU64,
    pub(super) finished: AtomicBool,
    pub(super) _slot: OwnedSemaphorePermit,
}

/// (and gives the connection back) when done, or as soon as the client is gone.
pub(super) async fn produce(
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
    Notifications,
}

impl Section {
    const ALL: [Section; 5] = [
        Section::Ledger,
        Section::Purchases,
        Section::Jobs,
        Section::Uploads,
        Section::Notifications,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Ledger => "creditLedger",
            Section::Purchases => "purchases",
            Section::Jobs => "photoJobs",
            Section::Uploads => "unattachedUploads",
            Section::Notifications => "notifications",
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
            Section::Notifications => (
                export::notifications(conn, user, after).await?,
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
pub(super) struct Snapshot {
    conn: Option<DbConn>,
    finished: bool,
}

impl Snapshot {
    pub(super) fn new(conn: DbConn) -> Self {
        Snapshot {
            conn: Some(conn),
            finished: false,
        }
    }

    pub(super) fn get(&mut self) -> &mut AsyncPgConnection {
        self.conn
            .as_mut()
            .expect("the connection is held until dropped")
    }

    pub(super) async fn begin(&mut self) -> diesel::QueryResult<()> {
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
    pub(super) async fn rollback(&mut self) {
        if self.get().batch_execute("ROLLBACK").await.is_ok() {
            self.finished = true;
        }
    }

    pub(super) async fn commit(&mut self) -> diesel::QueryResult<()> {
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
