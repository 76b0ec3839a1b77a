//! Prepared documents: a repeated operation is neither parsed nor validated again.
//!
//! Parsed documents are cached by their text, and which requests passed validation by the
//! text, operation name and variables together (async-graphql's rules read variable values),
//! each in a bounded least-recently-used map keyed by a SHA-256 digest. Only successes are
//! kept: a document that fails to parse or validate is checked again each time it comes. A
//! request already validated runs on a schema in `ValidationMode::Fast` (fragment cycles,
//! depth and complexity only) instead of being validated again: async-graphql has no cheaper
//! hook, since any extension slows down the resolution of every field. The cost model
//! ([`super::cost`]) measures a request once: what admitting it found (its parsed document,
//! kind, measure and label) is kept under the same key, so a request seen before skips the
//! guard, the parse, the introspection check and the cost walk (its page sizes come from the
//! variables, which the key holds). Only admissions are kept: a refused request is checked,
//! and pays, every time it comes.

use std::sync::Arc;

use async_graphql::Variables;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use sha2::{Digest, Sha256};

use super::cache::BoundedCache;

/// How many documents (and, separately, validated requests) are kept.
pub(crate) const CAPACITY: usize = 256;

type Key = [u8; 32];

/// The caches, shared by every request of the process.
pub(crate) struct Prepared {
    documents: BoundedCache<Key, Arc<ExecutableDocument>>,
    validated: BoundedCache<Key, ()>,
    admitted: BoundedCache<Key, Arc<Admission>>,
}

/// What admitting a request found (steps 2–5 of the pipeline), for the next one with the
/// same key.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The parsed document.
    pub document: Arc<ExecutableDocument>,
    /// The kind of the operation that runs (`None`: no such operation).
    pub kind: Option<OperationType>,
    /// Its measure.
    pub measure: super::cost::Measure,
    /// The name it is counted under in metrics and traces.
    pub label: String,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

/// Identifies a request by its text, operation name and variables (a SHA-256 digest): what
/// passed validation, what was admitted, and (with the viewer and versions) a kept answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestKey(Key);

impl RequestKey {
    /// The key of a request.
    pub(crate) fn of(query: &str, operation_name: Option<&str>, variables: &Variables) -> Self {
        let mut hash = Sha256::new();
        hash.update(query.len().to_le_bytes());
        hash.update(query.as_bytes());
        match operation_name {
            Some(name) => {
                hash.update([1]);
                hash.update(name.len().to_le_bytes());
                hash.update(name.as_bytes());
            }
            None => hash.update([0]),
        }
        // Serialising a Variables map is deterministic (it keeps the client's order).
        if !variables.is_empty() {
            hash.update(serde_json::to_vec(variables).unwrap_or_default());
        }
        RequestKey(hash.finalize().into())
    }

    /// The digest.
    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Default for Prepared {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl Prepared {
    /// Caches of `capacity` entries each.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Prepared {
            documents: BoundedCache::with_entries(capacity),
            validated: BoundedCache::with_entries(capacity),
            admitted: BoundedCache::with_entries(capacity),
        }
    }

    /// The parsed document of `query`, from the cache or parsed now (`None` when it does not
    /// parse: async-graphql then reports the syntax error).
    pub(crate) fn parse(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        let key: Key = Sha256::digest(query.as_bytes()).into();
        if let Some(document) = self.documents.get(&key) {
            return Some(document);
        }
        let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
        self.documents.insert(key, document.clone(), 1);
        Some(document)
    }

    /// How many parsed documents are kept now.
    #[cfg(test)]
    pub(crate) fn documents(&self) -> usize {
        self.documents.len()
    }

    /// Whether a request with this key passed full validation before.
    pub(crate) fn is_validated(&self, key: &RequestKey) -> bool {
        self.validated.get(&key.0).is_some()
    }

    /// Remembers that a request with this key passed full validation (it executed).
    pub(crate) fn validated(&self, key: RequestKey) {
        self.validated.insert(key.0, (), 1);
    }

    /// What admitting a request with this key found before, if it was admitted.
    pub(crate) fn admission(&self, key: &RequestKey) -> Option<Arc<Admission>> {
        self.admitted.get(&key.0)
    }

    /// Remembers that a request with this key was admitted, and what was found.
    pub(crate) fn admitted(&self, key: RequestKey, admission: Arc<Admission>) {
        self.admitted.insert(key.0, admission, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_parsed_once_and_bounded() {
        let prepared = Prepared::with_capacity(3);
        let first = prepared.parse("{ viewer { id } }").unwrap();
        let again = prepared.parse("{ viewer { id } }").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second parse is the cached one"
        );
        assert!(prepared.parse("{ viewer { id ").is_none());
        assert_eq!(prepared.documents(), 1, "failures are not kept");
        for i in 0..10 {
            prepared
                .parse(&format!("{{ a{i}: viewer {{ id }} }}"))
                .unwrap();
        }
        assert_eq!(prepared.documents(), 3);
    }

    #[test]
    fn validation_keys_tell_operations_and_variables_apart() {
        let vars = |json| Variables::from_json(json);
        let query = "query A { viewer { id } } query B { viewer { id } }";
        let a = RequestKey::of(query, Some("A"), &Variables::default()).0;
        assert_eq!(a, RequestKey::of(query, Some("A"), &Variables::default()).0);
        assert_ne!(a, RequestKey::of(query, Some("B"), &Variables::default()).0);
        assert_ne!(a, RequestKey::of(query, None, &Variables::default()).0);
        let one = RequestKey::of(query, Some("A"), &vars(serde_json::json!({ "n": 1 }))).0;
        let two = RequestKey::of(query, Some("A"), &vars(serde_json::json!({ "n": 2 }))).0;
        assert_ne!(one, two);
        assert_ne!(one, a);
    }
}
