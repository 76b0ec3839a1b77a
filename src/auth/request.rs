//! One request's credential: read from its headers at once (no database), looked up at most
//! once and only when something asks who the viewer is — a resolver, or the pipeline choosing
//! whose rate bucket pays.

use axum::http::HeaderMap;
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use super::credentials::{AuthSettings, bearer_value, cookie_pairs, session_token};
use super::jwt;
use super::recheck::Credential;
use super::service::{self, ServiceCredential};
use crate::db::pool::PoolError;
use crate::db::request::RequestDb;
use crate::db::viewer::{Ban, SessionUser};

/// Why the session could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No connection.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    /// The credential is good but its person is banned: refused on every path
    /// ([`crate::error::code::ACCOUNT_BANNED`]).
    #[error("the account is banned")]
    Banned(Ban),
}

/// One request's credential, resolved at most once and only if a resolver asks.
#[derive(Debug)]
pub struct RequestAuth {
    token: Option<String>,
    jwt: Option<(String, String)>,
    service: ServiceCredential,
    presented: bool,
    /// Whether the session lookup may skip the viewer's state (the operation selects none).
    lean: bool,
    /// What an impersonation session's lookup records in the audit trail.
    purpose: Purpose,
    user: OnceCell<Option<SessionUser>>,
}

/// What a request does, as the audit trail records it when an admin's impersonation session
/// makes it (`IMPERSONATED_READ` and no operation unless said).
#[derive(Clone, Debug)]
pub struct Purpose {
    /// `IMPERSONATED_READ`, `IMPERSONATED_WRITE` or `IMPERSONATED_CONNECTION`.
    pub action: &'static str,
    /// The operation's name, or what the transport does (`connection_init`, `export`).
    pub operation: String,
}

impl Default for Purpose {
    fn default() -> Self {
        Purpose::read("")
    }
}

impl Purpose {
    /// A read: a query, or what a transport reads (`export`).
    pub fn read(operation: impl Into<String>) -> Purpose {
        Purpose {
            action: "IMPERSONATED_READ",
            operation: operation.into(),
        }
    }

    /// A GraphQL operation: a read when a query, else a write (a mutation).
    pub fn operation(is_query: bool, name: impl Into<String>) -> Purpose {
        Purpose {
            action: if is_query {
                "IMPERSONATED_READ"
            } else {
                "IMPERSONATED_WRITE"
            },
            operation: name.into(),
        }
    }

    /// A WebSocket connection signed in.
    pub fn connection() -> Purpose {
        Purpose {
            action: "IMPERSONATED_CONNECTION",
            operation: "connection_init".into(),
        }
    }
}

impl RequestAuth {
    /// Reads (and verifies the signature of) the request's credential; no database access
    /// (a Better Auth JWT's key is looked up only when the viewer is needed).
    pub fn from_headers(headers: &HeaderMap, settings: &AuthSettings) -> Self {
        let mut auth = RequestAuth {
            token: None,
            jwt: None,
            service: ServiceCredential::Absent,
            presented: bearer_value(headers).is_some()
                || cookie_pairs(headers).any(|(name, _)| name == settings.cookie_name),
            lean: false,
            purpose: Purpose::default(),
            user: OnceCell::new(),
        };
        match bearer_value(headers).filter(|v| service::looks_like_jwt(v)) {
            Some(token) if jwt::is_better_auth_jwt(&token) => {
                auth.jwt = Some((token, settings.jwt_issuer.clone()));
            }
            Some(token) => {
                let secret = settings
                    .service_secret
                    .as_ref()
                    .map(|s| s.expose_secret().as_bytes());
                auth.service = service::verify(&token, secret);
                if let ServiceCredential::Rejected(reason) = &auth.service {
                    tracing::info!(%reason, "refused a bearer JWT");
                }
            }
            None => auth.token = session_token(headers, settings),
        }
        auth
    }

    /// Look the session up without the viewer's billing, credits and usage (for an operation
    /// that selects none of them; [`crate::graphql::viewer::Viewer`] still reads them on demand).
    pub fn lean(mut self, lean: bool) -> Self {
        self.lean = lean;
        self
    }

    /// What the request does, for the audit row of an impersonation session.
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// What the request's bearer JWT, if any, proved.
    pub fn service(&self) -> &ServiceCredential {
        &self.service
    }

    /// Whether the request presented a viewer credential (a correctly signed session token
    /// or a Better Auth JWT, not yet looked up).
    pub fn has_credential(&self) -> bool {
        self.token.is_some() || self.jwt.is_some()
    }

    /// The viewer credential, which a WebSocket connection keeps to check again while open.
    pub fn credential(&self) -> Option<Credential> {
        if let Some(token) = &self.token {
            return Some(Credential::Session(token.clone()));
        }
        let (token, issuer) = self.jwt.as_ref()?;
        Some(Credential::Jwt(token.clone(), issuer.clone()))
    }

    /// Whether the request carried any credential at all (a session cookie or a bearer),
    /// valid or not: one that signs nobody in is a failed authentication.
    pub fn presented_credential(&self) -> bool {
        self.presented
    }

    /// The signed-in user, looked up on first use on the request's connection. A person
    /// whose ban holds is [`LookupError::Banned`], whatever the credential: the one place a
    /// ban is refused for a request (connections that stay open check again, [`super::recheck`]).
    pub async fn user(&self, db: &RequestDb) -> Result<Option<&SessionUser>, LookupError> {
        let user = self.lookup(db).await?;
        if let Some(ban) = user.and_then(|u| u.ban.as_ref()) {
            return Err(LookupError::Banned(ban.clone()));
        }
        Ok(user)
    }

    /// The person the credential signed in, if it has been looked up and is not banned.
    pub fn looked_up(&self) -> Option<&SessionUser> {
        self.user
            .get()
            .and_then(Option::as_ref)
            .filter(|u| u.ban.is_none())
    }

    /// The user as looked up, banned or not (once per request). An admin's impersonation
    /// session is audited here, under the admin's name, in the lookup itself: whatever asks
    /// first (the rate limiter, the response cache, a resolver, a WebSocket's sign-in), the
    /// request cannot go on without its audit row, and a request that never needs the viewer
    /// costs nothing more.
    async fn lookup(&self, db: &RequestDb) -> Result<Option<&SessionUser>, LookupError> {
        let user = self
            .user
            .get_or_try_init(|| async {
                if let Some(token) = &self.token {
                    let conn = db.read().await?;
                    let mut conn: &AsyncPgConnection = &conn;
                    let user = if self.lean {
                        SessionUser::identify_by_token(&mut conn, token).await?
                    } else {
                        SessionUser::find_by_token(&mut conn, token).await?
                    };
                    if let Some(user) = &user
                        && let Some(admin) = &user.impersonated_by
                        && user.ban.is_none()
                    {
                        self.audit(&mut conn, &user.id, admin).await?;
                    }
                    return Ok(user);
                }
                if let Some((token, issuer)) = &self.jwt {
                    let conn = db.read().await?;
                    let mut conn: &AsyncPgConnection = &conn;
                    return Ok(match jwt::verify(&mut conn, token, issuer).await? {
                        Some(user_id) => SessionUser::find_by_user_id(&mut conn, &user_id).await?,
                        None => None,
                    });
                }
                Ok::<_, LookupError>(None)
            })
            .await?;
        Ok(user.as_ref())
    }
}

impl RequestAuth {
    /// The audit row of one request of `admin`'s impersonation of `user_id`.
    async fn audit(
        &self,
        conn: &mut &AsyncPgConnection,
        user_id: &str,
        admin: &str,
    ) -> Result<(), LookupError> {
        let operation = serde_json::json!({ "operation": self.purpose.operation });
        let action = crate::db::admin::audit::Action {
            actor_id: admin,
            actor_role: "impersonation",
            impersonating: true,
            target_id: Some(user_id),
            action: self.purpose.action,
            reason: None,
            before: None,
            after: Some(operation),
        };
        crate::db::admin::audit::record(conn, &action).await?;
        Ok(())
    }
}

/// Who a request's credentials turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A signed-in viewer, by user id.
    Viewer(String),
    /// The photo worker, with a valid service token.
    Service,
    /// No credential at all.
    Anonymous,
    /// A credential that signs nobody in (forged, expired, signed out, unknown).
    Failed,
    /// A good credential of a person whose ban holds.
    Banned(Ban),
    /// The lookup could not be made (the database is unreachable); the request will fail on
    /// its own.
    Unknown,
}

impl RequestAuth {
    /// Who the credentials sign in, looking the session up (once; the resolvers reuse it).
    pub async fn identify(&self, db: &RequestDb) -> Identity {
        match self.service() {
            ServiceCredential::Valid(_) => return Identity::Service,
            ServiceCredential::Rejected(_) => return Identity::Failed,
            ServiceCredential::Absent => {}
        }
        if !self.has_credential() {
            return if self.presented_credential() {
                Identity::Failed
            } else {
                Identity::Anonymous
            };
        }
        match self.user(db).await {
            Ok(Some(user)) => Identity::Viewer(user.id.clone()),
            Ok(None) => Identity::Failed,
            Err(LookupError::Banned(ban)) => Identity::Banned(ban),
            Err(_) => Identity::Unknown,
        }
    }
}
