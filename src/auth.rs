//! Who is calling: a Better Auth session, exactly as Better Auth 1.7 itself reads one.
//!
//! 1. `Authorization: Bearer …` (scheme case-insensitive) carrying the signed token
//!    (`token.signature`), its URL-encoded form, or the raw token, wins when it is well formed
//!    and, if signed, correctly signed. Otherwise the session cookie is read: the first cookie
//!    of that name, quotes stripped, percent-decoded, and it must be signed.
//! 2. A signature is base64 (standard alphabet, padded: 44 characters ending in `=`) of
//!    HMAC-SHA256 keyed by `BETTER_AUTH_SECRET`; it is verified in constant time before the
//!    database is touched.
//! 3. The token is looked up lazily — only when a resolver needs the viewer — in one query
//!    joining `session` to `"user"` with `expiresAt` in the future. Nothing is cached across
//!    requests, so a deleted session stops working on the very next request.
//! 4. A bearer that is a JWT is either a Better Auth [`jwt`] (asymmetric, for the mobile
//!    client: a viewer) or a [`service`] token for internal workers (HS256: never a viewer). A
//!    JWT bearer replaces the cookie, whatever it proves.

pub mod jwt;
pub mod service;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel_async::AsyncPgConnection;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::db::PoolError;
use crate::db::request::RequestDb;
use service::ServiceCredential;

type HmacSha256 = Hmac<Sha256>;

/// Length of a base64 HMAC-SHA256 signature with its padding.
const SIGNATURE_LEN: usize = 44;
/// Longest raw token we bother looking up (Better Auth's are 32 characters).
const MAX_TOKEN_LEN: usize = 255;

/// What authentication needs from the configuration.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Better Auth's secret.
    pub secret: SecretString,
    /// The session cookie's name.
    pub cookie_name: String,
    /// Key of service tokens (`None`: worker operations are disabled).
    pub service_secret: Option<SecretString>,
    /// `iss` and `aud` of Better Auth JWTs: the origin of `BETTER_AUTH_URL`.
    pub jwt_issuer: String,
}

/// The signature Better Auth appends to a session token.
pub fn signature(token: &str, secret: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(token.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `token.signature`: the `set-auth-token` value Better Auth returns to bearer clients.
pub fn signed_token(token: &str, secret: &str) -> String {
    format!("{token}.{}", signature(token, secret))
}

/// What JavaScript's `encodeURIComponent` escapes (all but `A-Za-z0-9-_.!~*'()`).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The session cookie's value on the wire: `encodeURIComponent(token + "." + signature)`.
pub fn cookie_value(token: &str, secret: &str) -> String {
    utf8_percent_encode(&signed_token(token, secret), URI_COMPONENT).to_string()
}

/// The token of a signed value (already percent-decoded), if its signature is right.
fn verify_signed(value: &str, secret: &SecretString) -> Option<String> {
    let (token, signature) = value.rsplit_once('.')?;
    if token.is_empty() || signature.len() != SIGNATURE_LEN || !signature.ends_with('=') {
        return None;
    }
    let expected = STANDARD.decode(signature).ok()?;
    let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()).ok()?;
    mac.update(token.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).ok()?;
    Some(token.to_owned())
}

fn plausible_raw_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The credentials of an `Authorization: Bearer` header, percent-decoded.
fn bearer_value(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    percent_decode_str(credentials.trim())
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

/// The session token a bearer value carries, if well formed (and correctly signed if signed).
fn bearer_token(value: &str, settings: &AuthSettings) -> Option<String> {
    if value.contains('.') {
        verify_signed(value, &settings.secret)
    } else if plausible_raw_token(value) {
        Some(value.to_owned())
    } else {
        None
    }
}

/// The session token in the (first) session cookie, if correctly signed.
fn cookie_token(headers: &HeaderMap, settings: &AuthSettings) -> Option<String> {
    let raw = cookie_pairs(headers)
        .find(|(name, _)| *name == settings.cookie_name)
        .map(|(_, value)| value)?;
    let unquoted = raw
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(raw);
    let decoded = percent_decode_str(unquoted).decode_utf8().ok()?;
    verify_signed(&decoded, &settings.secret)
}

/// The `name=value` pairs of the request's cookies, trimmed.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value.trim()))
}

/// The session token a request presents: a valid bearer wins over the cookie.
pub fn session_token(headers: &HeaderMap, settings: &AuthSettings) -> Option<String> {
    bearer_value(headers)
        .and_then(|v| bearer_token(&v, settings))
        .or_else(|| cookie_token(headers, settings))
}

/// The signed-in user (looked up with their billing, credits and usage: see [`crate::db::viewer`]).
pub use crate::db::viewer::SessionUser;

/// Why the session could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No connection.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The query failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
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
    user: OnceCell<Option<SessionUser>>,
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
    pub fn credential(&self) -> Option<crate::live::Credential> {
        if let Some(token) = &self.token {
            return Some(crate::live::Credential::Session(token.clone()));
        }
        let (token, issuer) = self.jwt.as_ref()?;
        Some(crate::live::Credential::Jwt(token.clone(), issuer.clone()))
    }

    /// Whether the request carried any credential at all (a session cookie or a bearer),
    /// valid or not: one that signs nobody in is a failed authentication.
    pub fn presented_credential(&self) -> bool {
        self.presented
    }

    /// The signed-in user, looked up on first use on the request's connection.
    pub async fn user(&self, db: &RequestDb) -> Result<Option<&SessionUser>, LookupError> {
        let user = self
            .user
            .get_or_try_init(|| async {
                if let Some(token) = &self.token {
                    let conn = db.read().await?;
                    let mut conn: &AsyncPgConnection = &conn;
                    return Ok(if self.lean {
                        SessionUser::identify_by_token(&mut conn, token).await?
                    } else {
                        SessionUser::find_by_token(&mut conn, token).await?
                    });
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
