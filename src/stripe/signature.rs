//! `Stripe-Signature` verification, before the body is parsed: `t=` and every `v1=` value;
//! HMAC-SHA256 (hex) of `"{t}.{raw body}"` keyed by the endpoint's signing secret; any matching
//! `v1` passes (Stripe sends several while a secret is rolled); the timestamp must be within
//! the tolerance; comparisons are constant-time.
//!
//! The header is bounded before any hashing (at most [`MAX_HEADER_BYTES`] and
//! [`MAX_SIGNATURES`] `v1` entries), the timestamp is checked first, and the body is hashed
//! once whatever the number of entries: an unsigned request costs one pass over the header.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far `t` may be from now, in seconds (Stripe's default).
pub const TOLERANCE_SECONDS: i64 = 300;

/// Longest `Stripe-Signature` header accepted (Stripe's is about 150 bytes; a few more `v1`
/// entries while a secret is rolled).
pub const MAX_HEADER_BYTES: usize = 1024;
/// Most `v1` entries accepted.
pub const MAX_SIGNATURES: usize = 5;

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=` in the header.
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    /// No `v1` matches.
    #[error("no v1 signature matches")]
    Mismatch,
    /// `t` is too far from now.
    #[error("the timestamp is outside the tolerance")]
    Stale,
    /// The header is longer than [`MAX_HEADER_BYTES`] or has more than [`MAX_SIGNATURES`]
    /// `v1` entries.
    #[error(
        "the Stripe-Signature header is too long (at most {MAX_HEADER_BYTES} bytes and {MAX_SIGNATURES} v1 signatures)"
    )]
    TooLong,
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The hex signature Stripe would send for `payload` at `timestamp`.
pub fn sign(payload: &[u8], timestamp: i64, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks `header` against `payload`; returns the signed timestamp.
pub fn verify(header: &str, payload: &[u8], secret: &str, now: i64) -> Result<i64, SignatureError> {
    if header.len() > MAX_HEADER_BYTES {
        return Err(SignatureError::TooLong);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(SignatureError::TooLong);
    }
    let (Some(timestamp), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    if now.abs_diff(timestamp) > TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    let matches = signatures.iter().any(|candidate| {
        decode_hex(candidate).is_some_and(|candidate| mac.clone().verify_slice(&candidate).is_ok())
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret_for_vectors";
    const PAYLOAD: &str =
        r#"{"id":"evt_test_1","object":"event","type":"checkout.session.completed"}"#;
    const V1: &str = "bcc9f26f6382458a21e36204c7fa836d921584ff5660961d544c485b0c338e4b";
    const T: i64 = 1_700_000_000;

    #[test]
    fn the_test_vector_is_accepted_with_the_clock_at_t() {
        assert_eq!(sign(PAYLOAD.as_bytes(), T, SECRET), V1);
        let header = format!("t={T},v1={V1}");
        assert_eq!(verify(&header, PAYLOAD.as_bytes(), SECRET, T), Ok(T));
        assert_eq!(verify(&header, PAYLOAD.as_bytes(), SECRET, T + 300), Ok(T));
        assert_eq!(verify(&header, PAYLOAD.as_bytes(), SECRET, T - 300), Ok(T));
    }

    #[test]
    fn the_test_vector_is_refused_outside_the_tolerance() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(
            verify(&header, PAYLOAD.as_bytes(), SECRET, T + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&header, PAYLOAD.as_bytes(), SECRET, T - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_matching_v1_passes_and_nothing_else_does() {
        let other = "0".repeat(64);
        let header = format!("t={T},v1={other},v0=ignored,v1={V1}");
        assert_eq!(verify(&header, PAYLOAD.as_bytes(), SECRET, T), Ok(T));
        let changed = PAYLOAD.replace("evt_test_1", "evt_test_2");
        assert_eq!(
            verify(&format!("t={T},v1={V1}"), changed.as_bytes(), SECRET, T),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &format!("t={T},v1={V1}"),
                PAYLOAD.as_bytes(),
                "whsec_other",
                T
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &format!("t={},v1={V1}", T + 1),
                PAYLOAD.as_bytes(),
                SECRET,
                T
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&format!("v1={V1}"), PAYLOAD.as_bytes(), SECRET, T),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&format!("t={T}"), PAYLOAD.as_bytes(), SECRET, T),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify("", PAYLOAD.as_bytes(), SECRET, T),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&format!("t={T},v1=zz"), PAYLOAD.as_bytes(), SECRET, T),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_header_is_bounded_and_the_timestamp_checked_before_any_hashing() {
        let many = format!("t={T},{}", "v1=,".repeat(10_000));
        assert_eq!(
            verify(&many, PAYLOAD.as_bytes(), SECRET, T),
            Err(SignatureError::TooLong)
        );
        let six = format!("t={T}{}", format!(",v1={}", "0".repeat(64)).repeat(6));
        assert!(six.len() < MAX_HEADER_BYTES);
        assert_eq!(
            verify(&six, PAYLOAD.as_bytes(), SECRET, T),
            Err(SignatureError::TooLong)
        );
        // A stale timestamp is refused even with a correct signature, so forging one buys
        // nothing; a matching v1 among five passes.
        let five = format!(
            "t={T}{},v1={V1}",
            format!(",v1={}", "0".repeat(64)).repeat(4)
        );
        assert_eq!(verify(&five, PAYLOAD.as_bytes(), SECRET, T), Ok(T));
        assert_eq!(
            verify(&five, PAYLOAD.as_bytes(), SECRET, T + 1000),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(
                &format!("t=1,{}", "v1=ab,".repeat(3)),
                PAYLOAD.as_bytes(),
                SECRET,
                T
            ),
            Err(SignatureError::Stale)
        );
    }
}
