//! Prepared documents: a repeated operation is neither parsed nor validated again.
//!
//! Parsed documents are cached by their text, and which requests passed validation by the
//! text, operation name and variables together (async-graphql's rules read variable values),
//! each in a bounded least-recently-used map keyed by a SHA-256 digest. Only successes are
//! kept: a document that fails to parse or validate is checked again each time it comes. A
//! request already validated runs on a schema in `ValidationMode::Fast` (fragment cycles,
//! depth and complexity only) instead of being validated again: async-graphql has no cheaper
//! hook, since any extension slows down the resolution of every field. The cost model
//! ([`super::cost`]) still measures every request (its page sizes come from
//! the variables); it is linear and cheap.

use std::sync::Arc;

use async_graphql::Variables;
use async_graphql::parser::types::ExecutableDocument;
use sha2::{Digest, Sha256};

use super::cache::BoundedCache;

/// How many documents (and, separately, validated requests) are kept.
pub const CAPACITY: usize = 256;

type Key = [u8; 32];

/// The caches, shared by every request of the process.
pub struct Prepared {
    documents: BoundedCache<Key, Arc<ExecutableDocument>>,
    validated: BoundedCache<Key, ()>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

/// Identifies a request's validation: its text, operation name and variables.
#[derive(Clone, Copy, Debug)]
pub struct ValidationKey(Key);

impl ValidationKey {
    /// The key of a request.
    pub fn of(query: &str, operation_name: Option<&str>, variables: &Variables) -> Self {
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
        ValidationKey(hash.finalize().into())
    }
}

impl Default for Prepared {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl Prepared {
    /// Caches of `capacity` entries each.
    pub fn with_capacity(capacity: usize) -> Self {
        Prepared {
            documents: BoundedCache::with_entries(capacity),
            validated: BoundedCache::with_entries(capacity),
        }
    }

    /// The parsed document of `query`, from the cache or parsed now (`None` when it does not
    /// parse: async-graphql then reports the syntax error).
    pub fn parse(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        let key: Key = Sha256::digest(query.as_bytes()).into();
        if let Some(document) = self.documents.get(&key) {
            return Some(document);
        }
        let document = Arc::new(async_graphql::parser::parse_query(query).ok()?);
        self.documents.insert(key, document.clone(), 1);
        Some(document)
    }

    /// How many parsed documents are kept now.
    pub fn documents(&self) -> usize {
        self.documents.len()
    }

    /// Whether a request with this key passed full validation before.
    pub fn is_validated(&self, key: &ValidationKey) -> bool {
        self.validated.get(&key.0).is_some()
    }

    /// Remembers that a request with this key passed full validation (it executed).
    pub fn validated(&self, key: ValidationKey) {
        self.validated.insert(key.0, (), 1);
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
        let a = ValidationKey::of(query, Some("A"), &Variables::default()).0;
        assert_eq!(
            a,
            ValidationKey::of(query, Some("A"), &Variables::default()).0
        );
        assert_ne!(
            a,
            ValidationKey::of(query, Some("B"), &Variables::default()).0
        );
        assert_ne!(a, ValidationKey::of(query, None, &Variables::default()).0);
        let one = ValidationKey::of(query, Some("A"), &vars(serde_json::json!({ "n": 1 }))).0;
        let two = ValidationKey::of(query, Some("A"), &vars(serde_json::json!({ "n": 2 }))).0;
        assert_ne!(one, two);
        assert_ne!(one, a);
    }
}
