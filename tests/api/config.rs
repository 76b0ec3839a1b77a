//! Configuration errors name the variable.

use std::collections::HashMap;

use bff::config::{Config, ConfigError, Environment};

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| env.get(k).cloned())
}

const MINIMAL: [(&str, &str); 3] = [
    ("DATABASE_URL", "postgres://localhost/bff"),
    (
        "BETTER_AUTH_SECRET",
        "a-secret-that-is-long-enough-0123456789",
    ),
    ("BETTER_AUTH_URL", "http://localhost:5173"),
];

fn with(extra: (&str, &str)) -> Result<Config, ConfigError> {
    let mut pairs: Vec<(&str, &str)> = MINIMAL
        .iter()
        .copied()
        .filter(|(k, _)| *k != extra.0)
        .collect();
    pairs.push(extra);
    load(&pairs)
}

#[test]
fn defaults_apply_to_a_minimal_environment() {
    let config = load(&MINIMAL).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.environment, Environment::Production);
    assert_eq!(config.database_pool_size, 5);
    assert_eq!(config.free_photo_allowance, 3);
    assert_eq!(
        config.statement_timeout,
        Some(std::time::Duration::from_millis(5000))
    );
    assert_eq!(config.metrics_listen, None);
    assert_eq!(
        with(("DATABASE_STATEMENT_TIMEOUT_MS", "0"))
            .unwrap()
            .statement_timeout,
        None,
        "0 leaves the server's setting"
    );
    assert_eq!(
        with(("BFF_METRICS_LISTEN", "0.0.0.0:9100"))
            .unwrap()
            .metrics_listen
            .map(|a| a.port()),
        Some(9100)
    );
    assert_eq!(config.session_cookie_name, "better-auth.session_token");
    let https = with(("BETTER_AUTH_URL", "https://photos.example.com")).unwrap();
    assert_eq!(
        https.session_cookie_name,
        "__Secure-better-auth.session_token"
    );
}

#[test]
fn every_required_variable_is_named_when_missing() {
    for (name, _) in MINIMAL {
        let pairs: Vec<_> = MINIMAL
            .iter()
            .copied()
            .filter(|(k, _)| *k != name)
            .collect();
        let error = load(&pairs).unwrap_err();
        assert!(error.to_string().starts_with(name), "{error}");
    }
}

#[test]
fn malformed_values_are_named() {
    for (name, value) in [
        ("DATABASE_URL", "mysql://localhost/bff"),
        ("BETTER_AUTH_URL", "localhost:5173"),
        ("BFF_LISTEN", "eight-thousand"),
        ("BFF_ENV", "staging"),
        ("DATABASE_POOL_SIZE", "0"),
        ("DATABASE_POOL_SIZE", "many"),
        ("DATABASE_POOL_TIMEOUT_MS", "0"),
        ("FREE_PHOTO_ALLOWANCE", "-1"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com/path"),
        ("SERVICE_JWT_SECRET", "short"),
        ("BETTER_AUTH_SESSION_COOKIE", "bad name;"),
        ("STRIPE_SECRET_KEY", "pk_live_publishable"),
        ("STRIPE_WEBHOOK_SECRET", "not-a-signing-secret"),
        ("STRIPE_API_BASE", "ftp://stripe.example"),
        ("STRIPE_SUCCESS_URL", "/relative"),
        ("DATABASE_CA_CERT", "/nonexistent/ca.pem"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "5s"),
        ("DATABASE_STATEMENT_TIMEOUT_MS", "600001"),
        ("BFF_METRICS_LISTEN", "9100"),
        ("BFF_METRICS_LISTEN", "127.0.0.1:8080"),
    ] {
        let error = with((name, value)).unwrap_err();
        assert!(
            matches!(error, ConfigError::Malformed(n, _) if n == name),
            "{name}={value}: {error}"
        );
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let config = load(&MINIMAL).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("a-secret-that-is-long-enough"), "{debug}");
    assert!(!debug.contains("postgres://localhost/bff"), "{debug}");
}

#[test]
fn a_trusted_documents_manifest_must_exist_and_parse() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bff-config-manifest");
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, r#"{"abc": "query {"}"#).unwrap();
    for path in [
        broken.display().to_string(),
        "/nonexistent/manifest.json".into(),
    ] {
        let error = bff::config::Config::from_lookup(|name| match name {
            "BFF_TRUSTED_DOCUMENTS" => Some(path.clone()),
            _ => crate::support::base_env("postgres://localhost/x")
                .get(name)
                .cloned(),
        })
        .unwrap_err();
        assert!(
            error.to_string().contains("BFF_TRUSTED_DOCUMENTS"),
            "{error}"
        );
    }
}

#[test]
fn every_variable_is_documented_in_the_readme_and_env_example() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../../.env.example");
    for variable in bff::config::VARIABLES {
        let name = variable.name;
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name} missing from README.md"
        );
        assert!(example.contains(name), "{name} missing from .env.example");
    }
}
