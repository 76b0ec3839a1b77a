//! Who is calling: a Better Auth session, exactly as Better Auth 1.7 itself reads one.
//!
//! 1. `Authorization: Bearer …` (scheme case-insensitive) carrying the signed token
//!    (`token.signature`), its URL-encoded form, or the raw token, wins when it is well formed
//!    and, if signed, correctly signed. Otherwise the session cookie is read: the first cookie
//!    of that name, quotes stripped, percent-decoded, and it must be signed ([`credentials`]).
//! 2. A signature is base64 (standard alphabet, padded: 44 characters ending in `=`) of
//!    HMAC-SHA256 keyed by `BETTER_AUTH_SECRET`; it is verified in constant time before the
//!    database is touched.
//! 3. The token is looked up lazily — only when something needs the viewer — in one query
//!    joining `session` to `"user"` with `expiresAt` in the future ([`request`]). Nothing is
//!    cached across requests, so a deleted session stops working on the very next request;
//!    connections that outlive a request check theirs again ([`recheck`]).
//! 4. A bearer that is a JWT is either a Better Auth [`jwt`] (asymmetric, for the mobile
//!    client: a viewer) or a [`service`] token for internal workers (HS256: never a viewer). A
//!    JWT bearer replaces the cookie, whatever it proves.

pub(crate) mod credentials;
pub mod jwt;
pub mod recheck;
pub(crate) mod request;
pub mod service;

pub use credentials::{AuthSettings, cookie_value, session_token, signature, signed_token};
pub use recheck::Credential;
pub use request::{Identity, LookupError, Purpose, RequestAuth};
