//! Authentication: `BETTER_AUTH_SECRET`, `BETTER_AUTH_URL`, `BETTER_AUTH_SESSION_COOKIE`,
//! `SERVICE_JWT_SECRET`.

use secrecy::SecretString;

use super::env::{Env, Variable, is_http_url};

/// `BETTER_AUTH_SECRET`.
pub const SECRET: Variable = Variable::required(
    "BETTER_AUTH_SECRET",
    "Better Auth's secret: the HMAC key of its session cookies",
    "use the same value as the SvelteKit app's Better Auth",
);
/// `BETTER_AUTH_URL`.
pub const URL: Variable = Variable::required(
    "BETTER_AUTH_URL",
    "Better Auth's base URL; https:// selects the __Secure- cookie name",
    "use the same base URL as the SvelteKit app's Better Auth",
);
/// `BETTER_AUTH_SESSION_COOKIE`.
pub const SESSION_COOKIE: Variable = Variable::optional(
    "BETTER_AUTH_SESSION_COOKIE",
    "the session cookie's name, when Better Auth's is customised",
    "better-auth.session_token, with the __Secure- prefix when BETTER_AUTH_URL is https",
);
/// `SERVICE_JWT_SECRET`.
pub const SERVICE_JWT_SECRET: Variable = Variable::optional(
    "SERVICE_JWT_SECRET",
    "HS256 key of the photo worker's service tokens (at least 32 bytes)",
    "no worker access",
);

/// `BFF_FRESH_SESSION_SECONDS`.
pub const FRESH_SESSION_SECONDS: Variable = Variable::number(
    "BFF_FRESH_SESSION_SECONDS",
    "how recent a sign-in deleteAccount needs (Better Auth's freshAge: the session's createdAt)",
    86_400,
    60,
    2_592_000,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    SECRET,
    URL,
    SESSION_COOKIE,
    SERVICE_JWT_SECRET,
    FRESH_SESSION_SECONDS,
];

/// How credentials are checked.
#[derive(Clone, Debug)]
pub struct Auth {
    /// Better Auth's secret (cookie signatures).
    pub secret: SecretString,
    /// Better Auth's base URL.
    pub url: String,
    /// The session cookie's name.
    pub session_cookie: String,
    /// Key of service tokens for internal workers; `None` disables worker operations.
    pub service_jwt_secret: Option<SecretString>,
    /// How recent a session must be to delete the account.
    pub fresh_session: FreshSession,
}

/// How recent a session must be to delete the account (schema data for `deleteAccount`).
#[derive(Clone, Copy, Debug)]
pub struct FreshSession(pub std::time::Duration);

/// The session cookie's name as Better Auth derives it from its base URL.
pub fn default_session_cookie(better_auth_url: &str) -> String {
    if better_auth_url.starts_with("https://") {
        "__Secure-better-auth.session_token".to_owned()
    } else {
        "better-auth.session_token".to_owned()
    }
}

/// RFC 6265 token characters.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Auth {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let secret = env.text(&SECRET).unwrap_or_default();
        let url = env
            .parse(&URL, |url| {
                if is_http_url(url) {
                    Ok(url.to_owned())
                } else {
                    Err("expected an http:// or https:// URL".into())
                }
            })
            .unwrap_or_default();
        let session_cookie = env
            .parse(&SESSION_COOKIE, |name| {
                if name.bytes().all(is_cookie_name_byte) {
                    Ok(name.to_owned())
                } else {
                    Err("not a valid cookie name".into())
                }
            })
            .unwrap_or_else(|| default_session_cookie(&url));
        Auth {
            secret: secret.into(),
            url,
            session_cookie,
            service_jwt_secret: read_service_secret(env),
            fresh_session: FreshSession(std::time::Duration::from_secs(
                env.number(&FRESH_SESSION_SECONDS),
            )),
        }
    }
}

/// `SERVICE_JWT_SECRET` alone (for `bff service-token`).
pub fn read_service_secret(env: &mut Env) -> Option<SecretString> {
    env.parse(&SERVICE_JWT_SECRET, |secret| {
        if secret.len() >= 32 {
            Ok(SecretString::from(secret))
        } else {
            Err("must be at least 32 bytes".into())
        }
    })
}
