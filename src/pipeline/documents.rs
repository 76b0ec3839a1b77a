//! Persisted documents. Two modes:
//!
//! - **Trusted documents** (`BFF_TRUSTED_DOCUMENTS=<manifest>`): only the operations in the
//!   manifest run. A client sends `{"documentId": "sha256:<hex>"}` (the GraphQL-over-HTTP
//!   persisted documents appendix), the bare key, Apollo's
//!   `extensions.persistedQuery.sha256Hash`, or the full text of a listed document. The
//!   manifest is what graphql-codegen's client preset writes (`persisted-documents.json`:
//!   `{ "<hash>": "<document>" }`) or an Apollo persisted query manifest
//!   (`{"format": "apollo-persisted-query-manifest", "operations": [{ "id", "body" }]}`).
//! - Otherwise **automatic persisted queries** (Apollo's protocol): a client sends only
//!   `extensions.persistedQuery.sha256Hash`; an unknown hash answers
//!   `PERSISTED_QUERY_NOT_FOUND`, and the client resends it with the text, which is checked
//!   against the hash. The text is remembered only once the request has passed every limit
//!   and paid its rate charge plus [`registration_cost`] (in proportion to its size), and only
//!   while the client's registrations stay within [`REGISTRATIONS_BURST`] (then one per
//!   [`REGISTRATION_EVERY`]; past it the request still runs, its text is not kept). It is kept
//!   in this process (up to [`APQ_MAX_ENTRIES`] documents and [`APQ_MAX_BYTES`] bytes) and,
//!   with `BFF_APQ_REDIS_URL`, in that Redis (for [`APQ_SHARED_TTL`], renewed on each use),
//!   where every other instance finds a hash it does not know yet. Never in the limits'
//!   Redis: documents there could crowd out the rate-limit buckets.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::cache::BoundedCache;
use crate::error::code::{BAD_USER_INPUT, PERSISTED_QUERY_NOT_FOUND};
use crate::redis::Redis;

/// Most documents the automatic persisted query cache holds.
pub const APQ_MAX_ENTRIES: usize = 1_000;
/// Most bytes of document text it holds.
pub const APQ_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of a registered document per unit of rate-limit cost.
pub const REGISTRATION_BYTES_PER_UNIT: usize = 100;
/// Documents a client (a viewer, or an address) may register at once…
pub const REGISTRATIONS_BURST: u32 = 100;
/// …and then one per this long.
pub const REGISTRATION_EVERY: std::time::Duration = std::time::Duration::from_secs(36);

/// What registering a document of `bytes` costs on top of its request: one unit per
/// [`REGISTRATION_BYTES_PER_UNIT`] bytes (an 8 KB document: 82).
pub fn registration_cost(bytes: usize) -> u64 {
    bytes.div_ceil(REGISTRATION_BYTES_PER_UNIT) as u64
}

/// Why a request's document could not be found or may not run.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An id (or APQ hash) that is not known: `PERSISTED_QUERY_NOT_FOUND`.
    NotFound,
    /// Trusted documents only, and this text is not one of them.
    Untrusted,
    /// APQ text whose SHA-256 is not the hash sent with it.
    HashMismatch,
    /// Malformed `extensions.persistedQuery`, or neither a query nor an id.
    Malformed(&'static str),
}

impl Refusal {
    /// The error's message and code.
    pub fn message_and_code(&self) -> (&'static str, &'static str) {
        match self {
            // Apollo's clients match this exact message.
            Refusal::NotFound => ("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND),
            Refusal::Untrusted => (
                "This server runs only trusted documents: send a documentId from the manifest \
                 in BFF_TRUSTED_DOCUMENTS",
                BAD_USER_INPUT,
            ),
            Refusal::HashMismatch => ("provided sha does not match query", BAD_USER_INPUT),
            Refusal::Malformed(message) => (message, BAD_USER_INPUT),
        }
    }
}

/// The document a request will run, and the APQ hash to remember it under once admitted.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The document text.
    pub query: String,
    /// Set when the text came with an APQ hash not yet remembered.
    pub remember: Option<String>,
}

/// How long a document registered through APQ stays in Redis after its last use.
pub const APQ_SHARED_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Known documents: the trusted manifest, or the APQ cache (and Redis, when shared).
pub struct Documents {
    trusted: Option<Trusted>,
    apq: BoundedCache<String, Arc<str>>,
    shared: Option<Arc<Redis>>,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("trusted", &self.trusted_count())
            .finish_non_exhaustive()
    }
}

struct Trusted {
    by_id: HashMap<String, Arc<str>>,
    texts: HashSet<Arc<str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Manifest {
    Apollo {
        format: String,
        operations: Vec<ApolloOperation>,
    },
    Map(HashMap<String, String>),
}

#[derive(Deserialize)]
struct ApolloOperation {
    id: String,
    body: String,
}

/// The lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bare(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

impl Documents {
    /// APQ only: any document may run.
    pub fn open() -> Documents {
        Documents {
            trusted: None,
            apq: BoundedCache::new(APQ_MAX_ENTRIES, APQ_MAX_BYTES),
            shared: None,
        }
    }

    /// These documents, with APQ registrations shared through `redis` (if given).
    pub fn shared_through(mut self, redis: Option<Arc<Redis>>) -> Documents {
        self.shared = redis;
        self
    }

    /// Trusted documents from the manifest at `path`; every document must parse.
    pub fn trusted(path: &Path) -> Result<Documents, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is neither a {{\"<hash>\": \"<document>\"}} map nor an Apollo persisted query manifest: {e}",
                path.display()
            )
        })?;
        let entries: Vec<(String, String)> = match manifest {
            Manifest::Apollo { format, operations }
                if format == "apollo-persisted-query-manifest" =>
            {
                operations.into_iter().map(|op| (op.id, op.body)).collect()
            }
            Manifest::Apollo { format, .. } => {
                return Err(format!(
                    "{}: unknown manifest format {format:?}",
                    path.display()
                ));
            }
            Manifest::Map(map) => map.into_iter().collect(),
        };
        let mut by_id = HashMap::new();
        let mut texts = HashSet::new();
        for (id, body) in entries {
            if let Err(e) = async_graphql::parser::parse_query(&body) {
                return Err(format!(
                    "{}: document {id} does not parse: {e}",
                    path.display()
                ));
            }
            let body: Arc<str> = body.into();
            by_id.insert(bare(&id).to_owned(), body.clone());
            texts.insert(body);
        }
        if by_id.is_empty() {
            return Err(format!("{} lists no documents", path.display()));
        }
        Ok(Documents {
            trusted: Some(Trusted { by_id, texts }),
            apq: BoundedCache::new(APQ_MAX_ENTRIES, APQ_MAX_BYTES),
            shared: None,
        })
    }

    /// How many trusted documents are listed (`None` when the mode is off).
    pub fn trusted_count(&self) -> Option<usize> {
        self.trusted.as_ref().map(|t| t.by_id.len())
    }

    /// The document a request runs, from its `query`, `documentId` and
    /// `extensions.persistedQuery`.
    pub fn resolve(
        &self,
        query: Option<String>,
        document_id: Option<&str>,
        extensions: Option<&serde_json::Value>,
    ) -> Result<Resolved, Refusal> {
        let apq_hash = match extensions.and_then(|e| e.get("persistedQuery")) {
            None => None,
            Some(pq) => {
                if pq.get("version").and_then(|v| v.as_u64()) != Some(1) {
                    return Err(Refusal::Malformed(
                        "extensions.persistedQuery.version must be 1",
                    ));
                }
                let hash = pq
                    .get("sha256Hash")
                    .and_then(|h| h.as_str())
                    .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or(Refusal::Malformed(
                        "extensions.persistedQuery.sha256Hash must be 64 hex digits",
                    ))?;
                Some(hash.to_ascii_lowercase())
            }
        };
        let id = document_id
            .map(|id| bare(id).to_owned())
            .or(apq_hash.clone());
        if let Some(trusted) = &self.trusted {
            if let Some(id) = id {
                return trusted
                    .by_id
                    .get(&id)
                    .map(|text| Resolved {
                        query: text.to_string(),
                        remember: None,
                    })
                    .ok_or(Refusal::NotFound);
            }
            let query =
                query.ok_or(Refusal::Malformed("The request has no query or documentId"))?;
            return if trusted.texts.contains(query.as_str()) {
                Ok(Resolved {
                    query,
                    remember: None,
                })
            } else {
                Err(Refusal::Untrusted)
            };
        }
        match (query, id) {
            (Some(query), Some(hash)) if apq_hash.is_some() => {
                if sha256_hex(&query) != hash {
                    return Err(Refusal::HashMismatch);
                }
                let known = self.apq.contains(&hash);
                Ok(Resolved {
                    query,
                    remember: (!known).then_some(hash),
                })
            }
            (Some(query), _) => Ok(Resolved {
                query,
                remember: None,
            }),
            (None, Some(hash)) => self
                .apq
                .get(&hash)
                .map(|text| Resolved {
                    query: text.to_string(),
                    remember: None,
                })
                .ok_or(Refusal::NotFound),
            (None, None) => Err(Refusal::Malformed("The request has no query")),
        }
    }

    /// [`Documents::resolve`], then, for an APQ hash this process does not know, Redis: a
    /// document another instance registered is found there (checked against its hash) and
    /// remembered here.
    pub async fn resolve_shared(
        &self,
        query: Option<String>,
        document_id: Option<&str>,
        extensions: Option<&serde_json::Value>,
    ) -> Result<Resolved, Refusal> {
        let hash = match self.resolve(query, document_id, extensions) {
            Err(Refusal::NotFound) if self.trusted.is_none() => extensions
                .and_then(|e| e["persistedQuery"]["sha256Hash"].as_str())
                .map(str::to_ascii_lowercase),
            other => return other,
        };
        let (Some(hash), Some(redis)) = (hash, &self.shared) else {
            return Err(Refusal::NotFound);
        };
        if !redis.available() {
            crate::metrics::redis_fallback("apq");
            return Err(Refusal::NotFound);
        }
        let key = redis.key(&format!("apq:{hash}"));
        let reply = redis
            .run::<Option<Vec<u8>>>(
                redis::cmd("GETEX")
                    .arg(&key)
                    .arg("EX")
                    .arg(APQ_SHARED_TTL.as_secs()),
            )
            .await;
        match reply {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(text) if sha256_hex(&text) == hash => {
                    self.apq.insert(hash, text.as_str().into(), text.len());
                    Ok(Resolved {
                        query: text,
                        remember: None,
                    })
                }
                _ => {
                    tracing::warn!(%hash, "a shared APQ document does not match its hash");
                    Err(Refusal::NotFound)
                }
            },
            Ok(None) => Err(Refusal::NotFound),
            Err(_) => {
                crate::metrics::redis_fallback("apq");
                Err(Refusal::NotFound)
            }
        }
    }

    /// Remembers an admitted and paid-for APQ document, forgetting the least recently used
    /// beyond the caps (and shares it through Redis, when shared).
    pub async fn remember(&self, hash: String, query: &str) {
        if self.trusted.is_some() {
            return;
        }
        if let Some(redis) = self.shared.as_deref().filter(|r| r.available()) {
            let key = redis.key(&format!("apq:{hash}"));
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg(query)
                .arg("EX")
                .arg(APQ_SHARED_TTL.as_secs());
            if redis.run::<()>(&set).await.is_err() {
                crate::metrics::redis_fallback("apq");
            }
        }
        self.apq.insert(hash, query.into(), query.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = "query Me { viewer { id } }";

    fn apq(hash: &str) -> serde_json::Value {
        json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
    }

    #[test]
    fn automatic_persisted_queries_follow_apollos_protocol() {
        let docs = Documents::open();
        let hash = sha256_hex(DOC);
        assert_eq!(
            docs.resolve(None, None, Some(&apq(&hash))),
            Err(Refusal::NotFound)
        );
        let first = docs
            .resolve(Some(DOC.into()), None, Some(&apq(&hash)))
            .unwrap();
        assert_eq!(first.remember.as_deref(), Some(hash.as_str()));
        futures_util::FutureExt::now_or_never(docs.remember(hash.clone(), DOC)).unwrap();
        assert_eq!(
            docs.resolve(None, None, Some(&apq(&hash))).unwrap().query,
            DOC
        );
        assert_eq!(
            docs.resolve(Some("{ x }".into()), None, Some(&apq(&hash))),
            Err(Refusal::HashMismatch)
        );
        assert!(matches!(
            docs.resolve(
                None,
                None,
                Some(&json!({ "persistedQuery": { "version": 2 } }))
            ),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn the_cache_is_bounded() {
        let docs = Documents::open();
        for i in 0..APQ_MAX_ENTRIES + 10 {
            let text = format!("{{ a{i}: __typename }}");
            futures_util::FutureExt::now_or_never(docs.remember(sha256_hex(&text), &text)).unwrap();
        }
        assert_eq!(docs.apq.len(), APQ_MAX_ENTRIES);
        // The oldest went first.
        let first = "{ a0: __typename }";
        assert!(!docs.apq.contains(&sha256_hex(first)));
    }

    #[test]
    fn trusted_documents_run_by_id_or_exact_text_only() {
        let dir = std::env::temp_dir().join(format!("bff-trusted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hash = sha256_hex(DOC);
        let codegen = dir.join("persisted-documents.json");
        std::fs::write(&codegen, json!({ hash.clone(): DOC }).to_string()).unwrap();
        let apollo = dir.join("apollo.json");
        std::fs::write(
            &apollo,
            json!({ "format": "apollo-persisted-query-manifest", "version": 1,
                    "operations": [{ "id": hash, "name": "Me", "type": "query", "body": DOC }] })
            .to_string(),
        )
        .unwrap();
        for manifest in [&codegen, &apollo] {
            let docs = Documents::trusted(manifest).unwrap();
            assert_eq!(docs.trusted_count(), Some(1));
            let prefixed = format!("sha256:{hash}");
            for id in [prefixed.as_str(), hash.as_str()] {
                assert_eq!(docs.resolve(None, Some(id), None).unwrap().query, DOC);
            }
            assert_eq!(
                docs.resolve(None, None, Some(&apq(&hash))).unwrap().query,
                DOC
            );
            assert_eq!(
                docs.resolve(Some(DOC.into()), None, None).unwrap().query,
                DOC
            );
            assert_eq!(
                docs.resolve(Some("{ viewer { email } }".into()), None, None),
                Err(Refusal::Untrusted)
            );
            assert_eq!(
                docs.resolve(None, Some("sha256:00"), None),
                Err(Refusal::NotFound)
            );
        }
        std::fs::write(&codegen, json!({ "abc": "query {" }).to_string()).unwrap();
        assert!(Documents::trusted(&codegen).unwrap_err().contains("abc"));
    }
}
