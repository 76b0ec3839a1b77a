//! Property-based fuzzing (proptest) of what reads untrusted bytes before anything else: the
//! pre-parse guard and the admission measure, the credential parsers (cookie, bearer, JWT
//! header, service token), the Stripe signature header, and the file descriptors of
//! `createPhotoUploads` (name, type, size) with the content sniffing of uploaded objects.
//!
//! `cargo test` runs 256 cases of each. For a longer run, in release mode:
//!
//! ```sh
//! PROPTEST_CASES=200000 cargo test --release --test fuzz
//! ```

use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue};
use bff::auth::{AuthSettings, RequestAuth};
use bff::pipeline::cost::{Api, Limits, admit};
use bff::pipeline::guard;
use bff::stripe::signature;
use proptest::prelude::*;

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789abcdef";

fn settings() -> AuthSettings {
    AuthSettings {
        secret: SECRET.to_owned().into(),
        cookie_name: "better-auth.session_token".into(),
        service_secret: Some("service-secret-for-fuzzing-0123456789ab".to_owned().into()),
        jwt_issuer: "http://localhost:5173".into(),
    }
}

/// Fragments of GraphQL, recombined: brackets, strings, spreads, names, numbers, directives.
fn graphql_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        "query",
        "mutation",
        "fragment F on Query",
        "fragment G on Viewer",
        "...F",
        "...G",
        "... on Viewer",
        "viewer",
        "photoJobs",
        "first:",
        "100",
        "-1",
        "1e999",
        "$v",
        "\"s\"",
        "\"\"\"b\"\"\"",
        "\"\\u0000\"",
        "#c\n",
        "@skip(if: true)",
        "a:",
        ":",
        ",",
        "edges",
        "node",
        "id",
        "__typename",
        "usage",
        "\"",
        "\\",
        "\u{0}",
        "é",
        " ",
        "\n",
    ])
}

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(graphql_piece(), 0..200).prop_map(|pieces| pieces.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    /// The guard never panics, and whatever it lets through the parser and the admission
    /// measure handle without overflowing the stack, in time linear in the input.
    #[test]
    fn the_guard_parser_and_admission_never_fall_over(doc in document(), raw in ".{0,400}") {
        for text in [doc.as_str(), raw.as_str()] {
            let _ = guard::check_json(text.as_bytes());
            if guard::check_document(text, 5_000).is_ok()
                && let Ok(parsed) = async_graphql::parser::parse_query(text)
            {
                let started = Instant::now();
                let variables = async_graphql::Variables::from_json(serde_json::json!({ "v": 3 }));
                for api in [Api::Viewer, Api::Admin] {
                    let _ = admit(&parsed, None, &variables, &Limits::default(), api);
                }
                prop_assert!(started.elapsed().as_millis() < 500);
            }
        }
    }

    /// Nesting past the limit is always refused, whatever surrounds it.
    #[test]
    fn deep_nesting_is_always_refused(depth in 65usize..3000, open in prop::sample::select(vec!["[", "{", "("]), prefix in "[a-z ]{0,20}") {
        let doc = format!("{prefix}{}", open.repeat(depth));
        prop_assert_eq!(guard::check_document(&doc, u64::MAX), Err(guard::Refused::TooDeep));
    }

    /// Any cookie or Authorization header parses without panicking, and only a correctly
    /// signed token is ever taken as a session token.
    #[test]
    fn credential_parsers_accept_only_what_they_should(
        cookie in ".{0,300}",
        authorization in ".{0,300}",
        token in "[A-Za-z0-9]{1,64}",
        flip in 0usize..44,
    ) {
        let settings = settings();
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.insert("cookie", value);
        }
        if let Ok(value) = HeaderValue::from_str(&authorization) {
            headers.insert("authorization", value);
        }
        let _ = RequestAuth::from_headers(&headers, &settings);
        let _ = bff::auth::session_token(&headers, &settings);
        let _ = bff::auth::jwt::is_better_auth_jwt(&authorization);
        let _ = bff::auth::service::verify(&authorization, Some(b"service-secret-for-fuzzing-0123456789ab"));

        // A signed cookie round-trips; the same cookie with one signature byte changed does not.
        let signed = bff::auth::signed_token(&token, SECRET);
        let mut headers = HeaderMap::new();
        let cookie = format!("better-auth.session_token={}", bff::auth::cookie_value(&token, SECRET));
        headers.insert("cookie", HeaderValue::from_str(&cookie).unwrap());
        prop_assert_eq!(bff::auth::session_token(&headers, &settings), Some(token));
        let signature_start = signed.len() - 44;
        let mut bytes = signed.into_bytes();
        let at = signature_start + flip % 43;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {tampered}")).unwrap());
        prop_assert_eq!(bff::auth::session_token(&headers, &settings), None);
    }

    /// The Stripe header parser never panics, stays bounded, and accepts only the true
    /// signature within the tolerance.
    #[test]
    fn stripe_signature_headers(
        header in ".{0,2000}",
        payload in prop::collection::vec(any::<u8>(), 0..2000),
        t in 1_600_000_000i64..1_900_000_000,
        skew in -600i64..600,
        extra in prop::collection::vec("[0-9a-f]{64}", 0..8),
    ) {
        let secret = "whsec_fuzz";
        let started = Instant::now();
        let _ = signature::verify(&header, &payload, secret, t);
        prop_assert!(started.elapsed().as_millis() < 100);

        let good = signature::sign(&payload, t, secret);
        let mut entries: Vec<String> = extra.iter().map(|v| format!("v1={v}")).collect();
        entries.push(format!("v1={good}"));
        let header = format!("t={t},{}", entries.join(","));
        let result = signature::verify(&header, &payload, secret, t + skew);
        if entries.len() > signature::MAX_SIGNATURES {
            prop_assert_eq!(result, Err(signature::SignatureError::TooLong));
        } else if skew.abs() > signature::TOLERANCE_SECONDS {
            prop_assert_eq!(result, Err(signature::SignatureError::Stale));
        } else {
            prop_assert_eq!(result, Ok(t));
        }
        let forged = format!("t={t},v1={}", "0".repeat(64));
        prop_assert!(signature::verify(&forged, &payload, secret, t).is_err());
    }

    /// Any file descriptors: validation never panics, and what it accepts is safe to store —
    /// a name of 1 to 255 characters with no path separator or control character, one of the
    /// photo types, a size within the limit — and it names the first field that is wrong.
    #[test]
    fn file_descriptors_are_validated_exactly(
        files in prop::collection::vec(
            (
                prop_oneof![".{0,300}", "[a-z]{1,10}\\.(jpg|png)", "(\\.\\./)+[a-z/\\\\]{0,20}"],
                prop_oneof![
                    prop::sample::select(vec!["image/jpeg", "IMAGE/PNG", "image/webp; q=1", "image/heic", "image/heif", "image/gif", "application/zip", "", "image/jpeg\u{0}"]).prop_map(str::to_owned),
                    ".{0,40}",
                ],
                prop_oneof![Just(0i64), Just(1i64), Just(1_000i64), Just(1_001i64), any::<i64>()],
            ),
            0..12,
        ),
        head in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        use bff::graphql::uploads::{CreatePhotoUploadsInput, MAX_FILES, PhotoFileInput, validate_files};
        use bff::storage::kinds;
        let input = CreatePhotoUploadsInput {
            files: files
                .iter()
                .map(|(name, kind, size)| PhotoFileInput { file_name: name.clone(), content_type: kind.clone(), byte_size: *size })
                .collect(),
        };
        match validate_files(input, 1_000) {
            Ok(valid) => {
                prop_assert!(!valid.is_empty() && valid.len() <= MAX_FILES);
                prop_assert_eq!(valid.len(), files.len());
                for file in &valid {
                    let chars = file.file_name.chars().count();
                    prop_assert!((1..=255).contains(&chars));
                    prop_assert!(!file.file_name.contains(['/', '\\']));
                    prop_assert!(!file.file_name.chars().any(char::is_control));
                    prop_assert!(kinds::PHOTO_TYPES.contains(&file.content_type));
                    prop_assert!((1..=1_000).contains(&file.byte_size));
                }
            }
            Err(error) => {
                let error = async_graphql::Error::from(error);
                let field = error
                    .extensions
                    .as_ref()
                    .and_then(|e| e.get("field"))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                prop_assert!(field.starts_with("\"files"), "{field}");
            }
        }
        // Sniffing any bytes never panics, and nothing passes as two different types.
        let matching: Vec<_> = kinds::RESULT_TYPES.iter().filter(|t| kinds::looks_like(t, &head)).collect();
        prop_assert!(matching.len() <= 1 || matching.iter().all(|t| t.starts_with("image/hei")), "{matching:?}");
    }
}
