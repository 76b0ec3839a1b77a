//! Reading a credential from request headers without touching the database: the bearer or
//! the session cookie, and Better Auth's HMAC signature over its token, verified in constant
//! time.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::config::auth::Auth;

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

impl AuthSettings {
    /// The settings of the configuration.
    pub fn new(config: &Auth) -> Self {
        AuthSettings {
            secret: config.secret.clone(),
            cookie_name: config.session_cookie.clone(),
            service_secret: config.service_jwt_secret.clone(),
            jwt_issuer: super::jwt::origin(&config.url),
        }
    }
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
pub(super) fn bearer_value(headers: &HeaderMap) -> Option<String> {
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
pub(super) fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
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
