//! Better Auth JWTs (its `jwt()` plugin), for the mobile client: `Authorization: Bearer <JWT>`
//! signed by a key in Better Auth's `jwks` table (EdDSA/Ed25519 by default), with `sub` = the
//! user id and `iss` = `aud` = Better Auth's base-URL origin. The algorithm is pinned to the
//! key's own `alg`, and only asymmetric algorithms are accepted (HS256 is the service tokens').
//! Like Better Auth's, such a token stays valid after sign-out until it expires (15 minutes by
//! default): it names no session. The user must still exist.

use diesel::QueryResult;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECONDS: u64 = 5;

/// The algorithms a Better Auth key may use.
const ASYMMETRIC: [Algorithm; 6] = [
    Algorithm::EdDSA,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::RS512,
];

/// Whether a JWT's header names an asymmetric algorithm (a Better Auth token) rather than
/// HS256 (a service token).
pub fn is_better_auth_jwt(token: &str) -> bool {
    jsonwebtoken::decode_header(token).is_ok_and(|h| ASYMMETRIC.contains(&h.alg))
}

/// The origin (`scheme://host[:port]`) of a URL: Better Auth's `iss` and `aud`.
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// The user id a Better Auth JWT proves, or `None` when it proves nothing (unknown or expired
/// key, wrong algorithm, bad signature, expired, wrong issuer or audience).
pub async fn verify(
    conn: &mut impl crate::db::request::Db,
    token: &str,
    issuer: &str,
) -> QueryResult<Option<String>> {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some(kid) = header.kid else {
        return Ok(None);
    };
    let Some((public_key, alg)) = crate::db::better_auth::jwk(conn, &kid).await? else {
        return Ok(None);
    };
    let algorithm = match alg.as_deref().unwrap_or("EdDSA").parse::<Algorithm>() {
        Ok(a) if ASYMMETRIC.contains(&a) && a == header.alg => a,
        _ => return Ok(None),
    };
    let Ok(jwk) = serde_json::from_str::<Jwk>(&public_key) else {
        tracing::warn!(%kid, "a jwks row holds a public key that is not a JWK");
        return Ok(None);
    };
    let Ok(key) = DecodingKey::from_jwk(&jwk) else {
        return Ok(None);
    };
    let mut validation = Validation::new(algorithm);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[issuer]);
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    Ok(jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .ok()
        .map(|data| data.claims.sub))
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn the_issuer_is_the_base_url_origin() {
        assert_eq!(
            origin("https://app.example.com/api/auth"),
            "https://app.example.com"
        );
        assert_eq!(origin("http://localhost:3000"), "http://localhost:3000");
    }
}
