//! The per-viewer response cache: a signed-in viewer's query answered from memory, never stale.
//!
//! Every write to what a viewer can read bumps their row of `viewer_versions` in the same
//! transaction (triggers, whoever writes), and plans and credit packs bump the row `'*'`. The
//! session lookup every request runs anyway returns both versions in the same statement. An
//! answer is kept under (viewer, versions, SHA-256 of the document, operation name and
//! variables), so it is found only while nothing it was built from has changed, and only by
//! that viewer. It is exactly what executing would return at the moment of the lookup, as far
//! as the data goes; what changes without a write (the usage window rolls over, a period or
//! trial ends, a presigned URL nears expiry) is the entry's `changes_at`, past which it is not
//! served. Only queries that executed without an error are kept; the memory is bounded by
//! bytes, least recently used first (`BFF_RESPONSE_CACHE_BYTES`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::prepared::RequestKey;

use super::cache::BoundedCache;
use crate::db::viewer::Versions;

/// The fixed cost of an entry beside its body, counted against the bytes bound.
const ENTRY_OVERHEAD: usize = 160;

/// Whose answer, to what, at which versions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    viewer: Arc<str>,
    versions: Versions,
    request: [u8; 32],
}

impl Key {
    /// The key of `viewer`'s request (its text, operation name and variables) at `versions`.
    pub(crate) fn new(viewer: &str, versions: Versions, request: &RequestKey) -> Key {
        Key {
            viewer: viewer.into(),
            versions,
            request: *request.digest(),
        }
    }

    /// A validator for HTTP revalidation (`ETag`): the key's hash, quoted.
    pub(crate) fn etag(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.viewer.as_bytes());
        hash.update(self.versions.viewer.to_le_bytes());
        hash.update(self.versions.global.to_le_bytes());
        hash.update(self.request);
        let digest = hash.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }
}

/// A kept answer.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The response body, as sent.
    pub body: bytes::Bytes,
    /// Not served from this instant on.
    pub changes_at: DateTime<Utc>,
}

/// The cache of one process.
pub(crate) struct ResponseCache {
    entries: BoundedCache<Key, Arc<Entry>>,
}

impl ResponseCache {
    /// A cache of at most `bytes`; `None` when 0 (off).
    pub(crate) fn new(bytes: usize) -> Option<ResponseCache> {
        (bytes > 0).then(|| ResponseCache {
            entries: BoundedCache::new(bytes / ENTRY_OVERHEAD + 1, bytes),
        })
    }

    /// The answer kept under `key`, if it may still be served.
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        let entry = self.entries.get(key)?;
        if entry.changes_at <= Utc::now() {
            self.entries.remove(key);
            crate::metrics::response_cache("expired");
            crate::metrics::response_cache_bytes(self.entries.weight());
            return None;
        }
        crate::metrics::response_cache("hit");
        Some(entry)
    }

    /// Keeps `body` under `key` until `changes_at`.
    pub(crate) fn insert(&self, key: Key, body: bytes::Bytes, changes_at: DateTime<Utc>) {
        let weight = body.len() + key.viewer.len() + ENTRY_OVERHEAD;
        let evicted = self
            .entries
            .insert(key, Arc::new(Entry { body, changes_at }), weight);
        for _ in 0..evicted {
            crate::metrics::response_cache("evicted");
        }
        crate::metrics::response_cache_bytes(self.entries.weight());
    }

    /// Counts a query that was not found (and executed).
    pub(crate) fn missed(&self) {
        crate::metrics::response_cache("miss");
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.entries.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Variables;

    fn key(viewer: &str, version: i64, query: &str) -> Key {
        let versions = Versions {
            viewer: version,
            global: 1,
        };
        Key::new(
            viewer,
            versions,
            &RequestKey::of(query, None, &Variables::default()),
        )
    }

    #[test]
    fn answers_are_kept_per_viewer_version_and_request_and_bounded_by_bytes() {
        let cache = ResponseCache::new(2_000).unwrap();
        let later = Utc::now() + chrono::Duration::hours(1);
        cache.insert(
            key("alice", 1, "{ a }"),
            bytes::Bytes::from_static(b"A1"),
            later,
        );
        assert!(cache.get(&key("alice", 1, "{ a }")).is_some());
        assert!(
            cache.get(&key("bob", 1, "{ a }")).is_none(),
            "another viewer"
        );
        assert!(
            cache.get(&key("alice", 2, "{ a }")).is_none(),
            "a newer version"
        );
        assert!(
            cache.get(&key("alice", 1, "{ b }")).is_none(),
            "another request"
        );
        let with_name = Key::new(
            "alice",
            Versions {
                viewer: 1,
                global: 1,
            },
            &RequestKey::of("{ a }", Some("A"), &Variables::default()),
        );
        assert!(cache.get(&with_name).is_none(), "another operation name");
        assert_ne!(
            key("alice", 1, "{ a }").etag(),
            key("alice", 2, "{ a }").etag()
        );

        // Past its instant an answer is gone.
        let past = Utc::now() - chrono::Duration::seconds(1);
        cache.insert(
            key("alice", 1, "{ c }"),
            bytes::Bytes::from_static(b"C"),
            past,
        );
        assert!(cache.get(&key("alice", 1, "{ c }")).is_none());

        // 2,000 bytes hold a few entries of 500; the oldest go first.
        for i in 0..10 {
            let body = bytes::Bytes::from(vec![b'x'; 500]);
            cache.insert(key("carol", i, "{ a }"), body, later);
        }
        assert!(cache.bytes() <= 2_000, "{}", cache.bytes());
        assert!(cache.get(&key("carol", 9, "{ a }")).is_some());
        assert!(cache.get(&key("carol", 0, "{ a }")).is_none());
        assert!(ResponseCache::new(0).is_none());
    }
}
