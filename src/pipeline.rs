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
//! 6. **identity and rate**: who pays, the viewer or the client address ([`identity`]),
//!    charged the cost ([`rate_limit`]);
//! 7. **execution**, on the fully validating schema the first time a request is seen and on the
//!    revalidating one after; errors get codes and internal ones are masked, and the outcome
//!    is counted ([`outcome`]).
//!
//! Steps 1–5 are [`admission`]. Steps 2–5 decide the same for the same text, operation name and variables, so what they
//! found for an admitted request is kept ([`prepared::Admission`]): a repeat only checks its
//! operation's kind against its transport again. Refusals are never kept.

mod admission;
pub(crate) mod cache;
pub mod cost;
pub mod documents;
pub mod guard;
mod identity;
pub(crate) mod operation;
pub(crate) mod outcome;
pub(crate) mod prepared;
pub(crate) mod rate_limit;
pub(crate) mod request;
pub(crate) mod response_cache;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_graphql::Value;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::admin::AdminSchema;
use crate::admin::staff::Staff;
use crate::auth::service::ServiceCredential;
use crate::auth::{AuthSettings, Identity, Purpose, RequestAuth};
use crate::config::Config;
use crate::db::instrumentation::counting;
use crate::db::pool::DbPool;
use crate::db::request::RequestDb;
use crate::error::code;
use crate::graphql::AppSchema;
use crate::live::viewer::LiveViewer;
use admission::{Gate, graphql_request};
use async_graphql::Executor;
use axum::http::HeaderMap;
use documents::Documents;
use identity::payer;
use outcome::{classified, classify, record};
use prepared::Prepared;
use rate_limit::{FAILED_AUTH_COST, Key, RateLimiter};
pub use request::{Caller, Refusal, Request, Transport, variables};

/// One schema the pipeline serves, with what steps 1–5 keep for it.
struct Endpoint<S> {
    schema: S,
    /// The same schema in `ValidationMode::Fast`, for requests that passed full validation
    /// before ([`Prepared::is_validated`]).
    revalidated: S,
    /// Steps 1–5.
    gate: Gate,
}

impl<S> Endpoint<S> {
    fn new(schemas: crate::graphql::Schemas<S>, gate: Gate) -> Self {
        Endpoint {
            // No extensions on either: with one, async-graphql sends every field through it.
            schema: schemas.strict,
            revalidated: schemas.revalidating,
            gate,
        }
    }
}

/// The pipeline and everything it remembers between requests.
pub struct Pipeline {
    /// The viewer's schema (`/graphql`, WebSocket).
    viewer: Endpoint<AppSchema>,
    /// The administration's (`/admin/graphql`), for staff only.
    admin: Endpoint<AdminSchema>,
    /// Who is staff.
    staff: crate::config::admin::Admin,
    rate: Option<RateLimiter>,
    /// Each client's APQ registrations ([`documents::REGISTRATIONS_BURST`]).
    registrations: RateLimiter,
    responses: Option<response_cache::ResponseCache>,
    auth: AuthSettings,
    pool: DbPool,
}

impl Pipeline {
    /// The pipeline of `config` over `schemas` and `admin` (built once, by the application),
    /// with the documents it may run and the Redis its limits are shared through, if any.
    pub fn new(
        config: &Config,
        pool: DbPool,
        schemas: crate::graphql::Schemas,
        admin: crate::graphql::Schemas<AdminSchema>,
        documents: Documents,
        redis: Option<Arc<crate::redis::Redis>>,
    ) -> Pipeline {
        let documents = Arc::new(documents);
        let gate = |api| Gate {
            documents: documents.clone(),
            api,
            prepared: Prepared::default(),
            limits: config.limits.document,
            introspection: config.is_development(),
        };
        Pipeline {
            viewer: Endpoint::new(schemas, gate(cost::Api::Viewer)),
            admin: Endpoint::new(admin, gate(cost::Api::Admin)),
            staff: config.admin.clone(),
            rate: RateLimiter::new(&config.limits.rate, redis.clone()),
            registrations: RateLimiter::with_quota(
                "registrations",
                documents::REGISTRATION_EVERY,
                std::num::NonZeroU32::new(documents::REGISTRATIONS_BURST)
                    .unwrap_or(std::num::NonZeroU32::MIN),
                redis,
            ),
            responses: response_cache::ResponseCache::new(config.response_cache.bytes),
            auth: AuthSettings::new(&config.auth),
            pool,
        }
    }

    /// Who `credentials` sign in, for a transport that runs no GraphQL request (`purpose`
    /// says what it does, for an impersonation's audit row); the lean lookup when `lean`. A
    /// service token signs nobody in here ([`Identity::Failed`]).
    pub async fn identify(
        &self,
        credentials: &HeaderMap,
        lean: bool,
        purpose: Purpose,
    ) -> (RequestAuth, Identity) {
        let auth = RequestAuth::from_headers(credentials, &self.auth)
            .lean(lean)
            .purpose(purpose);
        if !matches!(auth.service(), ServiceCredential::Absent) {
            return (auth, Identity::Failed);
        }
        let db = RequestDb::new(self.pool.clone());
        let identity = auth.identify(&db).await;
        (auth, identity)
    }

    /// Takes `cost` from the bucket of the client at `address` (nothing when rate limiting is
    /// off).
    pub async fn charge_address(&self, address: Option<IpAddr>, cost: u64) -> Result<(), Duration> {
        self.charge(&Key::address(address), cost).await
    }

    /// What a credential that signed nobody in costs its client address: [`FAILED_AUTH_COST`].
    pub async fn charge_failed_sign_in(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        self.charge_address(address, FAILED_AUTH_COST).await
    }

    /// Runs a query or mutation (HTTP): every step, then execution on one connection — or,
    /// for a signed-in viewer's query whose answer is kept ([`response_cache`]), that answer.
    pub async fn execute(
        &self,
        request: Request,
        transport: Transport,
        caller: Caller<'_>,
    ) -> Result<Answer, Refusal> {
        self.run(&self.viewer, request, transport, caller).await
    }

    /// Runs a query or mutation of the administration's schema (`/admin/graphql`): the
    /// caller's credential first (only staff go on: [`Refusal::Unauthenticated`] without
    /// one, [`Refusal::Forbidden`] without a role, before anything of the document is looked
    /// at), then every step as for [`Pipeline::execute`], never cached.
    pub async fn execute_admin(
        &self,
        request: Request,
        transport: Transport,
        caller: Caller<'_>,
    ) -> Result<Answer, Refusal> {
        self.run(&self.admin, request, transport, caller).await
    }

    /// Who may use the administration's schema: the staff `auth` signs in, or the refusal.
    /// Every refusal pays: a credential that signs nobody in as a failed sign-in, from the
    /// address's bucket; someone without a role (or an impersonation session, which acts for
    /// the person, never as staff) as much from their own; no credential at all, 1.
    async fn staff(
        &self,
        auth: &RequestAuth,
        db: &RequestDb,
        address: Option<IpAddr>,
    ) -> Result<Staff, Refusal> {
        let sign_in = "Sign in with an account that has an admin or support role";
        let (payer, cost, refusal) = match auth.identify(db).await {
            Identity::Viewer(user_id) => {
                let staff = auth
                    .looked_up()
                    .filter(|user| user.impersonated_by.is_none())
                    .and_then(|user| Staff::of(user, &self.staff));
                if let Some(staff) = staff {
                    return Ok(staff);
                }
                (
                    Key::Viewer(user_id),
                    FAILED_AUTH_COST,
                    Refusal::Forbidden("This endpoint is for the people who run the app".into()),
                )
            }
            Identity::Anonymous => (
                Key::address(address),
                1,
                Refusal::Unauthenticated(sign_in.into()),
            ),
            Identity::Unknown => {
                return Err(Refusal::Request {
                    message: crate::error::UNAVAILABLE_MESSAGE.into(),
                    code: code::SERVICE_UNAVAILABLE,
                    limit: None,
                });
            }
            Identity::Failed | Identity::Service | Identity::Banned(_) => (
                Key::address(address),
                FAILED_AUTH_COST,
                Refusal::Unauthenticated(sign_in.into()),
            ),
        };
        match self.charge(&payer, cost).await {
            Ok(()) => Err(refusal),
            Err(wait) => Err(Refusal::RateLimited(wait)),
        }
    }

    async fn run<S: Executor>(
        &self,
        endpoint: &Endpoint<S>,
        request: Request,
        transport: Transport,
        caller: Caller<'_>,
    ) -> Result<Answer, Refusal> {
        let name = request.operation_name.clone();
        let admin = endpoint.gate.api == cost::Api::Admin;
        let db = RequestDb::new(self.pool.clone());
        let statements = Arc::new(AtomicU32::new(0));
        // Staff only: who is calling comes before anything about the document.
        let staff = if admin {
            let auth = RequestAuth::from_headers(caller.credentials, &self.auth)
                .lean(true)
                .purpose(Purpose::read("/admin/graphql"));
            let staff = counting(&statements, self.staff(&auth, &db, caller.address))
                .await
                .inspect_err(|refusal| record(name.as_deref(), refusal.code(), 0))?;
            Some((auth, staff))
        } else {
            None
        };
        let mut admitted = endpoint
            .gate
            .admit(request, transport, caller.address, self.rate.as_ref())
            .await
            .inspect_err(|refusal| record(name.as_deref(), refusal.code(), 0))?;
        // A cached answer needs the viewer's versions, which only the full lookup reads: a
        // query the lean lookup serves (`viewer { id name }`, a page of jobs) is not kept, as
        // the full lookup would cost it more than its execution (measured: `viewer { id }`
        // 0.53x → 0.32x of the baseline when it was).
        let cache = self
            .responses
            .as_ref()
            .filter(|_| !admin && admitted.is_query && admitted.viewer_state);
        let (auth, staff) = match staff {
            Some((auth, staff)) => (auth, Some(staff)),
            None => (
                RequestAuth::from_headers(caller.credentials, &self.auth)
                    .lean(!admitted.viewer_state)
                    .purpose(Purpose::operation(
                        admitted.is_query,
                        admitted.label.clone(),
                    )),
                None,
            ),
        };
        if self.rate.is_some() || admitted.register.is_some() {
            let identity = counting(&statements, auth.identify(&db)).await;
            let (key, cost) = payer(identity, caller.address, admitted.cost);
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
                let payer = key.unwrap_or_else(|| Key::address(caller.address));
                self.register(&payer, hash, &admitted.query).await;
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
        if let Some(staff) = staff {
            request = request.data(staff);
        }
        let revalidated = endpoint.gate.prepared.is_validated(&validation);
        let schema = if revalidated {
            &endpoint.revalidated
        } else {
            &endpoint.schema
        };
        let mut response = counting(&statements, schema.execute(request)).await;
        if !revalidated && response.data != Value::Null {
            // It executed, so it passed validation: next time the rules need not run again.
            endpoint.gate.prepared.validated(validation);
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
            .viewer
            .gate
            .admit(request, Transport::WebSocket, address, self.rate.as_ref())
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
        Ok(classified(self.viewer.schema.execute_stream(request), request_id).boxed())
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
        self.viewer.gate.documents.remember(hash, query).await;
        crate::metrics::apq_registration("stored");
    }

    /// Takes `cost` from `key`'s bucket (nothing when rate limiting is off).
    async fn charge(&self, key: &Key, cost: u64) -> Result<(), Duration> {
        rate_limit::charge(self.rate.as_ref(), key, cost).await
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
}

/// What a request that brings an APQ text to remember pays for it on top of its cost (whether
/// or not its client's registrations let it be kept): [`documents::registration_cost`].
fn registration_cost(register: Option<&String>, query: &str) -> u64 {
    register.map_or(0, |_| documents::registration_cost(query.len()))
}
