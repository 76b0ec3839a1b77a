//! An export's document on its way out: written to a file in the temporary directory at the
//! database's pace, read back at the client's. The file is unlinked as soon as it is open, so
//! nothing is left behind whatever happens (a crash included), and its bytes count against
//! the process's [`Budget`] until both ends are gone. The reader follows the writer: it may
//! send a page the moment it is written.
//!
//! Both ends use positional reads and writes of the page cache on the calling task (a page
//! is at most a few hundred KB: microseconds), not tokio's file, whose hand-offs to blocking
//! threads cost more than the copy and grew the process by a document's size in memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use tokio::sync::watch;

/// Bytes read back per chunk.
const CHUNK: u64 = 64 * 1024;

/// Disk the spooled documents of one process may take.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    fn take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + bytes <= self.limit).then_some(used + bytes)
            })
            .is_ok()
    }
}

/// Where the writer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// More may come.
    Writing,
    /// The document is whole.
    Done,
    /// The document will stay cut off (the database failed, the budget ran out).
    Failed,
}

/// How far the writer got.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    /// Bytes written (and readable).
    pub written: u64,
    /// Whether more may come.
    pub state: State,
}

/// The bytes one document holds in the budget, given back when both ends are gone.
struct Held {
    budget: Arc<Budget>,
    bytes: AtomicU64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let bytes = *self.bytes.get_mut();
        self.budget.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The writing end.
pub(crate) struct Writer {
    file: std::fs::File,
    progress: watch::Sender<Progress>,
    held: Arc<Held>,
}

/// The reading end.
pub(crate) struct Reader {
    file: std::fs::File,
    progress: watch::Receiver<Progress>,
    read: u64,
    _held: Arc<Held>,
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The disk failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The process's spool budget is spent.
    #[error("the export spool is full (BFF_EXPORT_SPOOL_BYTES)")]
    Full,
}

/// A new spool in `dir`, charged to `budget`.
pub(crate) fn create(dir: &Path, budget: Arc<Budget>) -> std::io::Result<(Writer, Reader)> {
    let path = dir.join(format!("bff-export-{}.json", uuid::Uuid::new_v4()));
    let write = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    let read = std::fs::File::open(&path);
    // Unlinked at once: the open files keep it; nobody else can open it, nothing is left.
    let removed = std::fs::remove_file(&path);
    let read = read?;
    removed?;
    let held = Arc::new(Held {
        budget,
        bytes: AtomicU64::new(0),
    });
    let (progress, watching) = watch::channel(Progress {
        written: 0,
        state: State::Writing,
    });
    Ok((
        Writer {
            file: write,
            progress,
            held: held.clone(),
        },
        Reader {
            file: read,
            progress: watching,
            read: 0,
            _held: held,
        },
    ))
}

impl Writer {
    /// Appends `bytes` (readable at once), within the budget.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let length = bytes.len() as u64;
        if !self.held.budget.take(length) {
            return Err(WriteError::Full);
        }
        self.held.bytes.fetch_add(length, Ordering::Relaxed);
        let at = self.written();
        self.file.write_all_at(bytes, at)?;
        self.progress.send_modify(|p| p.written += length);
        Ok(())
    }

    /// Whether the reader went away (the client left, or was cut off): nothing more is needed.
    pub(crate) fn abandoned(&self) -> bool {
        self.progress.is_closed()
    }

    /// The document is whole.
    pub(crate) fn finish(self) {
        self.progress.send_modify(|p| p.state = State::Done);
    }

    /// The document stays cut off.
    pub(crate) fn fail(self) {
        self.progress.send_modify(|p| p.state = State::Failed);
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.progress.borrow().written
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A writer dropped before it finished (its task ended early) leaves the document cut.
        self.progress.send_if_modified(|p| {
            let writing = p.state == State::Writing;
            if writing {
                p.state = State::Failed;
            }
            writing
        });
    }
}

impl Reader {
    /// How far the writer is.
    pub(crate) fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// The next chunk: waits for the writer when it has read all there is; `None` at the end
    /// of a whole document, an error for one that stays cut off.
    pub(crate) async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            let progress = *self.progress.borrow_and_update();
            if progress.written > self.read {
                let size = (progress.written - self.read).min(CHUNK) as usize;
                let mut chunk = vec![0; size];
                if let Err(error) = self.file.read_exact_at(&mut chunk, self.read) {
                    return Some(Err(error));
                }
                self.read += size as u64;
                return Some(Ok(Bytes::from(chunk)));
            }
            match progress.state {
                State::Done => return None,
                State::Failed => {
                    return Some(Err(std::io::Error::other("the export was cut off")));
                }
                State::Writing => {
                    if self.progress.changed().await.is_err() {
                        // The writer is gone without a word: see `Drop for Writer`.
                        return Some(Err(std::io::Error::other("the export was cut off")));
                    }
                }
            }
        }
    }
}
