//! Service tokens: how internal workers (the photo processor) authenticate. A service token is
//! a JWT signed with HS256 by `SERVICE_JWT_SECRET`, with `role: "service"` and an `exp`. The
//! algorithm is pinned (a token claiming `none` or any other algorithm is refused), and a
//! service token is never a viewer.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The role a service token must carry.
pub const SERVICE_ROLE: &str = "service";
/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECONDS: u64 = 5;

/// The claims of a service token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Who the token is for (e.g. `photo-worker`).
    pub sub: String,
    /// Must be `service`.
    pub role: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
}

/// What a request's bearer JWT turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCredential {
    /// No JWT was presented.
    Absent,
    /// A valid service token for this subject.
    Valid(String),
    /// A JWT was presented but is not a valid service token; the reason is for the log.
    Rejected(String),
}

/// Whether a bearer value has the shape of a JWT (three base64url parts) rather than a
/// Better Auth session token.
pub fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Verifies a service token with the configured key (`None`: worker access is disabled).
pub fn verify(token: &str, secret: Option<&[u8]>) -> ServiceCredential {
    let Some(secret) = secret else {
        return ServiceCredential::Rejected("SERVICE_JWT_SECRET is not configured".into());
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    match jsonwebtoken::decode::<ServiceClaims>(
        token,
        &DecodingKey::from_secret(secret),
        &validation,
    ) {
        Ok(data) if data.claims.role == SERVICE_ROLE => ServiceCredential::Valid(data.claims.sub),
        Ok(_) => ServiceCredential::Rejected("the token's role is not service".into()),
        Err(e) => ServiceCredential::Rejected(e.to_string()),
    }
}

/// Issues a service token for `subject`, valid for `ttl_seconds` (for `bff service-token`).
pub fn issue(secret: &[u8], subject: &str, ttl_seconds: u64) -> Result<String, String> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = ServiceClaims {
        sub: subject.to_owned(),
        role: SERVICE_ROLE.to_owned(),
        iat: now,
        exp: now + ttl_seconds,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

/// Reads a duration like `90s`, `15m`, `12h` or `7d` into seconds.
pub fn parse_ttl(value: &str) -> Option<u64> {
    let value = value.trim();
    let split = value.len().checked_sub(1)?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    (seconds > 0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_other_keys_do_not() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = issue(secret, "photo-worker", 60).unwrap();
        assert!(looks_like_jwt(&token));
        assert_eq!(
            verify(&token, Some(secret)),
            ServiceCredential::Valid("photo-worker".into())
        );
        assert!(matches!(
            verify(&token, Some(b"another-key-another-key-another-k")),
            ServiceCredential::Rejected(_)
        ));
        assert!(matches!(
            verify(&token, None),
            ServiceCredential::Rejected(_)
        ));
    }

    #[test]
    fn ttls_read_seconds_minutes_hours_and_days() {
        assert_eq!(parse_ttl("90s"), Some(90));
        assert_eq!(parse_ttl("15m"), Some(900));
        assert_eq!(parse_ttl("2h"), Some(7200));
        assert_eq!(parse_ttl("7d"), Some(604_800));
        assert_eq!(parse_ttl("0m"), None);
        assert_eq!(parse_ttl("soon"), None);
        assert_eq!(parse_ttl(""), None);
    }

    #[test]
    fn session_tokens_do_not_look_like_jwts() {
        assert!(!looks_like_jwt(
            "o9NbUpcKagAbkDNLjUgCYKhtMtnL291X.g0RQ48wjYt9WcgCTehRcvYfyHJg8xMlvc1iXcYHA4BQ="
        ));
        assert!(!looks_like_jwt("o9NbUpcKagAbkDNLjUgCYKhtMtnL291X"));
    }
}
