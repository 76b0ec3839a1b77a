//! The request pipeline: the one path every GraphQL operation takes, whatever carried it
//! (`POST /graphql`, `GET /graphql`, a WebSocket `subscribe`). The transports only turn their
//! wire format into a [`Request`] and a [`Refusal`] or answer back into theirs; every rule is
//! here, once, in this order:
//!
//! 1. **documents**: the text from `query`, a trusted `documentId`, or an automatic persisted
//!    query ([`documents`]); under trusted documents nothing else runs;
//! 2. **guard**: nesting and tokens, counted before parsing ([`guard`]);
//! 3. **parse**, through the cache of parsed documents ([`prepared`]);
//! 4. **operation**: the kind the transport carries (GET: queries; POST: queries and
//!    mutations; WebSocket: subscriptions) and no introspection in production ([`operation`]);
//! 5. **cost**: fields, cost and lexical caps, required variables ([`cost`]); a refused
//!    document costs its client address [`rate_limit::REFUSED_COST`];
//! 6. **identity and rate**: who pays, the viewer or the client address, charged the cost
//!    ([`rate_limit`]);
//! 7. **execution**, on the fully validating schema the first time a request is seen and on the
//!    revalidating one after; errors get codes and internal ones are masked, and the outcome
//!    is counted ([`outcome`]).
//!
//! Steps 2–5 decide the same for the same text, operation name and variables, so what they
//! found for an admitted request is kept ([`prepared::Admission`]): a repeat only checks its
//! operation's kind against its transport again. Refusals are never kept.

pub mod cache;
pub mod cost;
pub mod documents;
pub mod guard;
pub mod operation;
pub mod outcome;
pub mod prepared;
pub mod rate_limit;
pub mod request;
pub mod response_cache;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{ValidationMode, Value, Variables};
use axum::http::HeaderMap;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::auth::service::ServiceCredential;
use crate::auth::{AuthSettings, Identity, RequestAuth};
use crate::config::Config;
use crate::config::limits::Limits;
use crate::db::instrumentation::counting;
use crate::db::pool::DbPool;
use crate::db::request::RequestDb;
use crate::error::code;
use crate::graphql::AppSchema;
use crate::live::viewer::LiveViewer;
use documents::Documents;
use outcome::{classified, classify, record};
use prepared::{Prepared, RequestKey};
use rate_limit::{FAILED_AUTH_COST, Key, REFUSED_COST, RateLimiter};
pub use request::{Caller, Refusal, Request, SignInRefusal, SignedIn, variables};

/// What carried a request: it decides which operations may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `GET /graphql`: queries only (the rest is refused 405: a GET must not change anything).
    Get,
    /// `POST /graphql`: queries and mutations.
    Post,
    /// A WebSocket `subscribe` (or legacy `start`): subscriptions only.
    WebSocket,
}

/// A request that passed steps 1–5.
struct Admitted {
    query: String,
    document: Option<Arc<ExecutableDocument>>,
    operation_name: Option<String>,
    /// The name of the operation that runs, for metrics and traces.
    label: String,
    variables: Variables,
    cost: u64,
    viewer_state: bool,
    /// A query (not a mutation or subscription): its answer may be kept.
    is_query: bool,
    /// Its text, operation name and variables, digested.
    key: RequestKey,
    /// An APQ hash to remember the text under once the request has paid for it (a text that
    /// did not parse or pass the limits is never remembered).
    register: Option<String>,
}

impl Admitted {
    /// Its APQ text, to remember under `register` if the request pays.
    fn with_registration(mut self, register: Option<String>) -> Admitted {
        self.register = register.filter(|_| self.document.is_some());
        self
    }
}

/// The pipeline and everything it remembers between requests.
pub struct Pipeline {
    schema: AppSchema,
    /// The same schema in `ValidationMode::Fast`, for requests that passed full validation
    /// before ([`Prepared::is_validated`]).
    revalidated: AppSchema,
    documents: Documents,
    prepared: Prepared,
    limits: Limits,
    rate: Option<RateLimiter>,
    /// Each client's APQ registrations ([`documents::REGISTRATIONS_BURST`]).
    registrations: RateLimiter,
    redis: Option<Arc<crate::redis::Redis>>,
    responses: Option<response_cache::ResponseCache>,
    auth: AuthSettings,
    pool: DbPool,
    photos: crate::storage::Photos,
    introspection: bool,
}

impl Pipeline {
    /// The pipeline of `config`: the schema with the pool and settings attached, the trusted
    /// documents manifest read (an error names it), the rate limiter.
    pub fn new(config: &Config, pool: DbPool) -> Result<Pipeline, String> {
        let documents = match &config.limits.trusted_documents {
            Some(path) => {
                Documents::trusted(path).map_err(|e| format!("BFF_TRUSTED_DOCUMENTS: {e}"))?
            }
            None => Documents::open(),
        };
        use crate::redis::{Redis, Role};
        let redis = match config.redis.clone() {
            Some(r) => Some(Arc::new(Redis::new(r, Role::Limits)?)),
            None => None,
        };
        let documents = match config.apq_redis.clone() {
            Some(r) => documents.shared_through(Some(Arc::new(Redis::new(r, Role::Documents)?))),
            None => documents,
        };
        let stripe = crate::stripe::StripeClient::new(&config.stripe);
        let photos = crate::storage::Photos::new(&config.storage)?;
        let introspection = config.is_development();
        let schema = |mode| {
            let builder = crate::graphql::schema()
                .data(config.jobs)
                .data(config.auth.fresh_session)
                .data(photos.clone())
                .data(stripe.clone())
                .data(config.stripe.clone())
                .validation_mode(mode);
            if introspection {
                builder.finish()
            } else {
                // Suggestions ("Did you mean …") would describe the schema introspection hides.
                builder
                    .disable_introspection()
                    .disable_suggestions()
                    .finish()
            }
        };
        Ok(Pipeline {
            // No extensions on either: with one, async-graphql sends every field through it.
            schema: schema(ValidationMode::Strict),
            revalidated: schema(ValidationMode::Fast),
            documents,
            prepared: Prepared::default(),
            limits: config.limits.document,
            rate: RateLimiter::new(&config.limits.rate, redis.clone()),
            registrations: RateLimiter::with_quota(
                "registrations",
                documents::REGISTRATION_EVERY,
                std::num::NonZeroU32::new(documents::REGISTRATIONS_BURST)
                    .unwrap_or(std::num::NonZeroU32::MIN),
                redis.clone(),
            ),
            redis,
            responses: response_cache::ResponseCache::new(config.response_cache.bytes),
            auth: AuthSettings::new(&config.auth),
            pool,
            photos,
            introspection,
        })
    }

    /// Photo storage (the sweeper deletes through it).
    pub fn photos(&self) -> &crate::storage::Photos {
        &self.photos
    }

    /// The Redis the instances share their limits through, if any.
    pub fn redis(&self) -> Option<&Arc<crate::redis::Redis>> {
        self.redis.as_ref()
    }

    /// How credentials are read.
    pub fn auth(&self) -> &AuthSettings {
        &self.auth
    }

    /// How many trusted documents are listed (`None` when any document may run).
    pub fn trusted_documents(&self) -> Option<usize> {
        self.documents.trusted_count()
    }

    /// Runs a query or mutation (HTTP): every step, then execution on one connection — or,
    /// for a signed-in viewer's query whose answer is kept ([`response_cache`]), that answer.
    pub async fn execute(
        &self,
        request: Request,
        transport: Transport,
        caller: Caller<'_>,
    ) -> Result<Answer, Refusal> {
        let name = request.operation_name.clone();
        let mut admitted = self
            .admit(request, transport, caller.address)
            .await
            .inspect_err(|refusal| record(name.as_deref(), refusal.code(), 0))?;
        // A cached answer needs the viewer's versions, which only the full lookup reads: a
        // query the lean lookup serves (`viewer { id name }`, a page of jobs) is not kept, as
        // the full lookup would cost it more than its execution (measured: `viewer { id }`
        // 0.53x → 0.32x of the baseline when it was).
        let cache = self
            .responses
            .as_ref()
            .filter(|_| admitted.is_query && admitted.viewer_state);
        let auth =
            RequestAuth::from_headers(caller.credentials, &self.auth).lean(!admitted.viewer_state);
        let db = RequestDb::new(self.pool.clone());
        let statements = Arc::new(AtomicU32::new(0));
        if self.rate.is_some() || admitted.register.is_some() {
            let identity = counting(&statements, auth.identify(&db)).await;
            let (key, cost) = payer(identity, caller.address, admitted.cost);
            let by_address = Key::Address(caller.address.unwrap_or(Ipv4Addr::UNSPECIFIED.into()));
            let registering = admitted.register.take();
            let cost = cost + registration_cost(registering.as_ref(), &admitted.query);
            if let (Some(limiter), Some(key)) = (&self.rate, &key)
                && let Err(wait) = limiter.charge(key, cost).await
            {
                tracing::info!(?key, cost, "rate limited");
                let refusal = Refusal::RateLimited(wait);
                record(Some(&admitted.label), refusal.code(), 0);
                return Err(refusal);
            }
            if let Some(hash) = registering {
                let payer = key.as_ref().unwrap_or(&by_address);
                self.register(payer, hash, &admitted.query).await;
            }
        }
        let kept = match cache {
            Some(cache)
                if auth.has_credential() && matches!(auth.service(), ServiceCredential::Absent) =>
            {
                match counting(&statements, auth.user(&db)).await {
                    Ok(Some(user)) => user.state.as_ref().map(|state| {
                        let key = response_cache::Key::new(&user.id, state.versions, &admitted.key);
                        (cache, key, state.changes_at().min(user.session_expires_at))
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((cache, key, _)) = &kept
            && let Some(entry) = cache.get(key)
        {
            record(
                Some(&admitted.label),
                "OK",
                statements.load(Ordering::Relaxed),
            );
            // Validators go with GET only (a POST is not revalidated): none computed otherwise.
            let etag = (transport == Transport::Get).then(|| key.etag());
            if let (Some(tags), Some(etag)) = (caller.if_none_match, &etag)
                && matches_etag(tags, etag)
            {
                return Ok(Answer::NotModified { etag: etag.clone() });
            }
            return Ok(Answer::Body {
                body: entry.body.clone(),
                etag,
            });
        }
        let changes = kept.as_ref().map(|(cache, ..)| {
            cache.missed();
            Arc::new(crate::graphql::context::AnswerChanges::default())
        });
        let validation = admitted.key;
        let label = admitted.label.clone();
        let mut request = graphql_request(admitted).data(auth).data(db);
        if let Some(changes) = &changes {
            request = request.data(changes.clone());
        }
        let revalidated = self.prepared.is_validated(&validation);
        let schema = if revalidated {
            &self.revalidated
        } else {
            &self.schema
        };
        let mut response = counting(&statements, schema.execute(request)).await;
        if !revalidated && response.data != Value::Null {
            // It executed, so it passed validation: next time the rules need not run again.
            self.prepared.validated(validation);
        }
        for error in &mut response.errors {
            classify(error, caller.request_id);
        }
        let outcome = response
            .errors
            .first()
            .and_then(|e| match e.extensions.as_ref()?.get("code")? {
                Value::String(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "OK".to_owned());
        record(Some(&label), &outcome, statements.load(Ordering::Relaxed));
        // Kept only when it answered in full: errors may be passing (the database, storage).
        if let (Some((cache, key, changes_at)), Some(changes)) = (kept, changes)
            && response.errors.is_empty()
            && response.data != Value::Null
            && let Ok(body) = serde_json::to_vec(&response)
        {
            let body = bytes::Bytes::from(body);
            let changes_at = changes.earliest().map_or(changes_at, |c| c.min(changes_at));
            let etag = (transport == Transport::Get).then(|| key.etag());
            cache.insert(key, body.clone(), changes_at);
            return Ok(Answer::Body { body, etag });
        }
        Ok(Answer::Executed(response))
    }

    /// The viewer of a plain HTTP request (the account export): their user id. A credential
    /// that signs nobody in (or a service token) pays [`FAILED_AUTH_COST`] from the client
    /// address's bucket, as on `/graphql`; the caller applies its own limit to the viewer.
    pub async fn viewer_of(
        &self,
        credentials: &HeaderMap,
        address: Option<IpAddr>,
    ) -> Result<String, ViewerRefusal> {
        let by_address = Key::Address(address.unwrap_or(Ipv4Addr::UNSPECIFIED.into()));
        let auth = RequestAuth::from_headers(credentials, &self.auth).lean(true);
        let db = RequestDb::new(self.pool.clone());
        let identity = if matches!(auth.service(), ServiceCredential::Absent) {
            auth.identify(&db).await
        } else {
            Identity::Failed
        };
        match identity {
            Identity::Viewer(user_id) => Ok(user_id),
            Identity::Unknown => Err(ViewerRefusal::Unavailable),
            Identity::Anonymous => Err(ViewerRefusal::Unauthenticated),
            Identity::Failed | Identity::Service => {
                self.charge(&by_address, FAILED_AUTH_COST)
                    .await
                    .map_err(ViewerRefusal::RateLimited)?;
                Err(ViewerRefusal::Unauthenticated)
            }
        }
    }

    /// Signs a WebSocket connection in with `credentials` (one attempt, paid from the client
    /// address's bucket; a failed one as much as a failed HTTP authentication). Service tokens
    /// never subscribe.
    pub async fn sign_in(
        &self,
        credentials: &HeaderMap,
        address: Option<IpAddr>,
    ) -> Result<SignedIn, SignInRefusal> {
        let by_address = Key::Address(address.unwrap_or(Ipv4Addr::UNSPECIFIED.into()));
        self.charge(&by_address, 1)
            .await
            .map_err(SignInRefusal::RateLimited)?;
        let auth = RequestAuth::from_headers(credentials, &self.auth);
        if !matches!(auth.service(), ServiceCredential::Absent) {
            let _ = self.charge(&by_address, FAILED_AUTH_COST).await;
            return Err(SignInRefusal::Unauthenticated(
                "service tokens do not subscribe",
            ));
        }
        let db = RequestDb::new(self.pool.clone());
        match auth.identify(&db).await {
            Identity::Viewer(user_id) => match auth.credential() {
                Some(credential) => Ok(SignedIn {
                    user_id,
                    credential,
                }),
                None => Err(SignInRefusal::Unauthenticated("sign in first")),
            },
            Identity::Unknown => Err(SignInRefusal::Unavailable),
            Identity::Anonymous | Identity::Failed | Identity::Service => {
                let _ = self.charge(&by_address, FAILED_AUTH_COST).await;
                Err(SignInRefusal::Unauthenticated("sign in first"))
            }
        }
    }

    /// Starts a subscription for a signed-in `viewer` (WebSocket): every step, charged to the
    /// viewer's bucket, then the stream of answers. The viewer is subscribed to its events
    /// before this returns, so nothing committed after it is missed.
    pub async fn subscribe(
        &self,
        request: Request,
        viewer: &LiveViewer,
        address: Option<IpAddr>,
        request_id: Option<&str>,
    ) -> Result<BoxStream<'static, async_graphql::Response>, Refusal> {
        let name = request.operation_name.clone();
        let mut admitted = self
            .admit(request, Transport::WebSocket, address)
            .await
            .inspect_err(|refusal| record(name.as_deref(), refusal.code(), 0))?;
        let label = admitted.label.clone();
        let payer = Key::Viewer(viewer.user_id.clone());
        let registering = admitted.register.take();
        let cost = admitted.cost + registration_cost(registering.as_ref(), &admitted.query);
        if let Err(wait) = self.charge(&payer, cost).await {
            let refusal = Refusal::RateLimited(wait);
            record(Some(&label), refusal.code(), 0);
            return Err(refusal);
        }
        if let Some(hash) = registering {
            self.register(&payer, hash, &admitted.query).await;
        }
        let viewer = viewer.subscribed().await.map_err(|error| {
            tracing::warn!(%error, "cannot start a subscription");
            record(Some(&label), code::SERVICE_UNAVAILABLE, 0);
            Refusal::Request {
                message: crate::error::UNAVAILABLE_MESSAGE.into(),
                code: code::SERVICE_UNAVAILABLE,
                limit: None,
            }
        })?;
        record(Some(&label), "OK", 0);
        let request = graphql_request(admitted)
            .data(viewer)
            .data(RequestDb::per_use(self.pool.clone()));
        let request_id = request_id.map(str::to_owned);
        Ok(classified(self.schema.execute_stream(request), request_id).boxed())
    }

    /// Steps 1–5: the document, the guard, the parse, the operation's kind, the cost.
    async fn admit(
        &self,
        request: Request,
        transport: Transport,
        address: Option<IpAddr>,
    ) -> Result<Admitted, Refusal> {
        let Request {
            query,
            document_id,
            extensions,
            operation_name,
            variables,
        } = request;
        let has_persisted = extensions
            .as_ref()
            .is_some_and(|e| e.get("persistedQuery").is_some());
        if query.is_none() && document_id.is_none() && !has_persisted {
            return Err(Refusal::Malformed(
                "The request has no query (or documentId)".into(),
            ));
        }
        let resolved = self
            .documents
            .resolve_shared(query, document_id.as_deref(), extensions.as_ref())
            .await
            .map_err(|refusal| {
                let (message, code) = refusal.message_and_code();
                Refusal::Request {
                    message: message.into(),
                    code,
                    limit: None,
                }
            })?;
        let query = resolved.query;
        let key = RequestKey::of(&query, operation_name.as_deref(), &variables);
        if let Some(known) = self.prepared.admission(&key) {
            // Admitted before with the same text, operation name and variables: the guard,
            // the introspection check and the cost limits passed then and would now.
            check_kind(known.kind, transport)?;
            let admitted = Admitted {
                query,
                document: Some(known.document.clone()),
                operation_name,
                label: known.label.clone(),
                variables,
                cost: known.measure.cost,
                viewer_state: known.measure.viewer_state,
                is_query: known.kind == Some(OperationType::Query),
                key,
                register: None,
            };
            return Ok(admitted.with_registration(resolved.remember));
        }
        match guard::check_document(&query, self.limits.tokens) {
            Ok(()) => {}
            Err(guard::Refused::TooDeep) => {
                return Err(Refusal::Malformed(
                    "The document is nested too deeply".into(),
                ));
            }
            Err(guard::Refused::TooManyTokens) => {
                return Err(Refusal::Request {
                    message: format!(
                        "The document has more than {} tokens (BFF_MAX_TOKENS)",
                        self.limits.tokens
                    ),
                    code: code::BAD_USER_INPUT,
                    limit: Some("BFF_MAX_TOKENS"),
                });
            }
        }
        // A document that does not parse goes on to async-graphql, which reports the syntax
        // error as validation would.
        let document = self.prepared.parse(&query);
        let mut measure = None;
        let mut kind = None;
        if let Some(document) = &document {
            kind = operation::kind(document, operation_name.as_deref());
            check_kind(kind, transport)?;
            if !self.introspection && operation::introspects(document) {
                return Err(Refusal::Request {
                    message: "Introspection is disabled (BFF_ENV=production)".into(),
                    code: code::INTROSPECTION_DISABLED,
                    limit: None,
                });
            }
            match cost::admit(
                document,
                operation_name.as_deref(),
                &variables,
                &self.limits,
            ) {
                Ok(measured) => measure = Some(measured),
                Err(refusal) => {
                    let by_address = Key::Address(address.unwrap_or(Ipv4Addr::UNSPECIFIED.into()));
                    self.charge(&by_address, REFUSED_COST)
                        .await
                        .map_err(Refusal::RateLimited)?;
                    return Err(Refusal::Request {
                        message: refusal.message,
                        code: code::BAD_USER_INPUT,
                        limit: refusal.limit,
                    });
                }
            }
        }
        let label = crate::metrics::operation_label(
            document
                .as_deref()
                .and_then(|d| operation::operation_name(d, operation_name.as_deref()))
                .as_deref()
                .or(operation_name.as_deref()),
        );
        if let (Some(document), Some(measure)) = (&document, measure) {
            let admission = prepared::Admission {
                document: document.clone(),
                kind,
                measure,
                label: label.clone(),
            };
            self.prepared.admitted(key, Arc::new(admission));
        }
        let admitted = Admitted {
            query,
            document,
            operation_name,
            label,
            variables,
            cost: measure.map_or(1, |m| m.cost),
            viewer_state: measure.is_none_or(|m| m.viewer_state),
            is_query: kind == Some(OperationType::Query),
            key,
            register: None,
        };
        Ok(admitted.with_registration(resolved.remember))
    }

    /// Remembers an APQ document its request has paid for, within `payer`'s registrations
    /// (past them the request runs, and its client keeps sending the text).
    async fn register(&self, payer: &Key, hash: String, query: &str) {
        if self.registrations.charge(payer, 1).await.is_err() {
            tracing::info!(
                ?payer,
                "APQ registrations past the client's limit: not kept"
            );
            crate::metrics::apq_registration("refused");
            return;
        }
        self.documents.remember(hash, query).await;
        crate::metrics::apq_registration("stored");
    }

    /// Takes `cost` from `key`'s bucket (nothing when rate limiting is off).
    async fn charge(&self, key: &Key, cost: u64) -> Result<(), Duration> {
        match &self.rate {
            Some(limiter) => limiter.charge(key, cost).await,
            None => Ok(()),
        }
    }
}

/// What [`Pipeline::execute`] answers.
#[derive(Debug)]
pub enum Answer {
    /// A response to frame.
    Executed(async_graphql::Response),
    /// A viewer's query answered in full, serialized (from the response cache, or just now and
    /// kept there), with its validator for a GET.
    Body {
        /// The JSON body.
        body: bytes::Bytes,
        /// The `ETag` of the answer (GET only).
        etag: Option<String>,
    },
    /// `If-None-Match` named the current answer: 304.
    NotModified {
        /// The `ETag` of the answer.
        etag: String,
    },
}

/// Whether an `If-None-Match` value names `etag` (a list, weak validators and `*` allowed).
fn matches_etag(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Why [`Pipeline::viewer_of`] found no viewer.
#[derive(Debug)]
pub enum ViewerRefusal {
    /// No credential, or one that signs nobody in.
    Unauthenticated,
    /// The client address's bucket is empty (failed authentications): wait this long.
    RateLimited(Duration),
    /// The session could not be looked up (the database is unreachable).
    Unavailable,
}

/// Refuses an operation its transport does not carry. An unknown operation passes: async-graphql
/// reports it as validation does.
fn check_kind(kind: Option<OperationType>, transport: Transport) -> Result<(), Refusal> {
    match (transport, kind) {
        (_, None) => Ok(()),
        (Transport::Get, Some(OperationType::Query)) => Ok(()),
        (Transport::Get, Some(_)) => Err(Refusal::Method(
            "Only queries may be sent with GET; send mutations with POST".into(),
        )),
        (Transport::Post, Some(OperationType::Subscription)) => Err(Refusal::input(
            "Subscriptions run over WebSocket: open one on GET /graphql (graphql-transport-ws)",
        )),
        (Transport::Post, Some(_)) => Ok(()),
        (Transport::WebSocket, Some(OperationType::Subscription)) => Ok(()),
        (Transport::WebSocket, Some(_)) => Err(Refusal::input(
            "Only subscriptions run over WebSocket: send queries and mutations to POST /graphql",
        )),
    }
}

/// What a request that brings an APQ text to remember pays for it on top of its cost (whether
/// or not its client's registrations let it be kept): [`documents::registration_cost`].
fn registration_cost(register: Option<&String>, query: &str) -> u64 {
    register.map_or(0, |_| documents::registration_cost(query.len()))
}

/// Whose bucket pays for a request, and how much: the viewer's when the credentials sign
/// someone in; the client address's when there are none or they fail (then at least
/// [`FAILED_AUTH_COST`]); nobody's for the photo worker's service tokens.
fn payer(identity: Identity, address: Option<IpAddr>, cost: u64) -> (Option<Key>, u64) {
    let by_address = Key::Address(address.unwrap_or(Ipv4Addr::UNSPECIFIED.into()));
    match identity {
        Identity::Viewer(user_id) => (Some(Key::Viewer(user_id)), cost),
        Identity::Service => (None, cost),
        Identity::Anonymous => (Some(by_address), cost),
        Identity::Failed => (Some(by_address), cost.max(FAILED_AUTH_COST)),
        // The database is unreachable: the request will fail on its own.
        Identity::Unknown => (Some(by_address), cost),
    }
}

/// The async-graphql request of an admitted one, with its parsed document.
fn graphql_request(admitted: Admitted) -> async_graphql::Request {
    let mut request = async_graphql::Request::new(admitted.query).variables(admitted.variables);
    if let Some(name) = admitted.operation_name {
        request = request.operation_name(name);
    }
    if let Some(document) = admitted.document {
        request.set_parsed_query(Arc::unwrap_or_clone(document));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transport_carries_its_own_kinds() {
        use OperationType::*;
        assert!(check_kind(Some(Query), Transport::Get).is_ok());
        assert!(matches!(
            check_kind(Some(Mutation), Transport::Get),
            Err(Refusal::Method(_))
        ));
        assert!(check_kind(Some(Mutation), Transport::Post).is_ok());
        assert!(check_kind(Some(Subscription), Transport::Post).is_err());
        assert!(check_kind(Some(Subscription), Transport::WebSocket).is_ok());
        assert!(check_kind(Some(Query), Transport::WebSocket).is_err());
        assert!(check_kind(None, Transport::WebSocket).is_ok());
    }

    #[test]
    fn the_failed_authentications_bucket_pays_at_least_its_cost() {
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(
            payer(Identity::Failed, address, 3),
            (Some(Key::Address([10, 0, 0, 1].into())), FAILED_AUTH_COST)
        );
        assert_eq!(payer(Identity::Service, address, 3), (None, 3));
        assert_eq!(
            payer(Identity::Viewer("u".into()), address, 3),
            (Some(Key::Viewer("u".into())), 3)
        );
    }
}
