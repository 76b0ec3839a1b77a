//! Configuration errors name the variable, and every problem is reported at once.

use std::collections::HashMap;

use bff::config::{Config, ConfigError, Environment};

/// The configuration, or its first problem (every problem is checked below).
fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| env.get(k).cloned()).map_err(|mut errors| errors.0.remove(0))
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
fn port_redis_the_response_cache_and_the_drain_are_read() {
    let config = load(&MINIMAL).unwrap();
    assert!(config.redis.is_none());
    assert_eq!(config.response_cache.bytes, 64 * 1024 * 1024);
    assert_eq!(
        config.server.timeouts.drain_delay,
        std::time::Duration::ZERO
    );
    // A PaaS's PORT counts only while BFF_LISTEN is unset.
    let paas = with(("PORT", "5000")).unwrap();
    assert_eq!(paas.server.listen.to_string(), "0.0.0.0:5000");
    let mut both = MINIMAL.to_vec();
    both.retain(|(k, _)| *k != "BFF_LISTEN");
    both.extend([("PORT", "5000"), ("BFF_LISTEN", "127.0.0.1:9000")]);
    assert_eq!(
        load(&both).unwrap().server.listen.to_string(),
        "127.0.0.1:9000"
    );
    let off = with(("BFF_RESPONSE_CACHE", "off")).unwrap();
    assert_eq!(off.response_cache.bytes, 0);
    let redis = with(("BFF_REDIS_URL", "redis://:secret@cache:6380/2"))
        .unwrap()
        .redis
        .unwrap();
    assert_eq!(
        (redis.host.as_str(), redis.port, redis.database),
        ("cache", 6380, 2)
    );
    assert!(
        !format!("{redis:?}").contains("secret"),
        "the password stays out of logs"
    );
    let tls = with((
        "BFF_REDIS_URL",
        "rediss://default:token@cache.example.com:6380",
    ))
    .unwrap()
    .redis
    .unwrap();
    assert!(tls.tls && tls.username.as_deref() == Some("default"));
    // Documents anyone can register never share the limits' Redis (its memory).
    let mut both = MINIMAL.to_vec();
    both.extend([
        ("BFF_REDIS_URL", "redis://cache:6379/0"),
        ("BFF_APQ_REDIS_URL", "redis://cache:6379/1"),
    ]);
    assert!(
        matches!(
            load(&both),
            Err(ConfigError::Malformed("BFF_APQ_REDIS_URL", _))
        ),
        "{:?}",
        load(&both).map(|_| ())
    );
    both.pop();
    both.push(("BFF_APQ_REDIS_URL", "redis://documents:6379"));
    let config = load(&both).unwrap();
    assert_eq!(config.apq_redis.unwrap().host, "documents");
}

#[test]
fn defaults_apply_to_a_minimal_environment() {
    let config = load(&MINIMAL).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.environment, Environment::Production);
    assert_eq!(config.database.pool_size, 5);
    assert_eq!(config.jobs.free_photo_allowance, 3);
    assert_eq!(
        config.database.statement_timeout,
        Some(std::time::Duration::from_millis(5000))
    );
    assert_eq!(config.server.metrics_listen, None);
    assert_eq!(
        config.limits.document,
        bff::config::limits::Limits::default()
    );
    assert_eq!(
        with(("DATABASE_STATEMENT_TIMEOUT_MS", "0"))
            .unwrap()
            .database
            .statement_timeout,
        None,
        "0 leaves the server's setting"
    );
    assert_eq!(
        with(("BFF_METRICS_LISTEN", "0.0.0.0:9100"))
            .unwrap()
            .server
            .metrics_listen
            .map(|a| a.port()),
        Some(9100)
    );
    assert_eq!(config.auth.session_cookie, "better-auth.session_token");
    let https = with(("BETTER_AUTH_URL", "https://photos.example.com")).unwrap();
    assert_eq!(
        https.auth.session_cookie,
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
        // These three were read outside the configuration once, and a bad value went unseen.
        ("BFF_LOG_FORMAT", "yaml"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("BFF_WS_SESSION_CHECK_MS", "soon"),
        ("RUST_LOG", "bff=[["),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces"),
        ("BFF_MAX_COST", "0"),
        ("BFF_RATE_LIMIT_BURST", "10"),
        ("PORT", "http"),
        ("BFF_RESPONSE_CACHE", "maybe"),
        ("BFF_REDIS_URL", "rediss://cache:6379/#insecure"),
        ("BFF_REDIS_URL", "cache:6379"),
        ("BFF_REDIS_CA_CERT", "/nonexistent/ca.pem"),
        ("BFF_REDIS_TIMEOUT_MS", "1"),
        ("BFF_SHUTDOWN_DELAY_MS", "soon"),
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
fn every_problem_is_reported_at_once() {
    let env: HashMap<&str, &str> = [
        ("DATABASE_URL", "mysql://localhost/bff"),
        ("BFF_LISTEN", "eight-thousand"),
        ("BFF_LOG_FORMAT", "yaml"),
    ]
    .into_iter()
    .collect();
    let errors = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
    let named: Vec<&str> = errors.0.iter().map(ConfigError::variable).collect();
    for variable in [
        "DATABASE_URL",
        "BETTER_AUTH_SECRET",
        "BETTER_AUTH_URL",
        "BFF_LISTEN",
        "BFF_LOG_FORMAT",
    ] {
        assert!(named.contains(&variable), "{variable} not in {named:?}");
    }
}

#[tokio::test]
async fn a_trusted_documents_manifest_must_exist_and_parse() {
    let missing = Config::from_lookup(|name| match name {
        "BFF_TRUSTED_DOCUMENTS" => Some("/nonexistent/manifest.json".into()),
        _ => crate::support::base_env("postgres://localhost/x")
            .get(name)
            .cloned(),
    })
    .unwrap_err();
    assert!(
        missing.to_string().contains("BFF_TRUSTED_DOCUMENTS"),
        "{missing}"
    );
    // A manifest that exists but does not parse stops the server from starting, naming it.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bff-config-manifest");
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(&broken, r#"{"abc": "query {"}"#).unwrap();
    let config = Config::from_lookup(|name| match name {
        "BFF_TRUSTED_DOCUMENTS" => Some(broken.display().to_string()),
        _ => crate::support::base_env("postgres://localhost/x")
            .get(name)
            .cloned(),
    })
    .unwrap();
    let pool = bff::db::pool_from_config(&config.database).unwrap();
    let Err(error) = bff::app::App::new(&config, pool) else {
        panic!("a broken manifest must stop start-up");
    };
    assert!(
        error.to_string().contains("BFF_TRUSTED_DOCUMENTS"),
        "{error}"
    );
    assert!(error.to_string().contains("does not parse"), "{error}");
}

/// `docs/configuration.md` holds the generated reference; `BFF_UPDATE_DOCS=1 cargo test`
/// rewrites it after a variable changes.
#[test]
fn the_configuration_reference_is_generated_from_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    const START: &str = "<!-- generated: bff::config::markdown() -->\n";
    const END: &str = "<!-- end of generated -->";
    let generated = bff::config::markdown();
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        panic!("docs/configuration.md lacks the generated section markers");
    };
    let current = &text[start + START.len()..end];
    if current != generated {
        if std::env::var_os("BFF_UPDATE_DOCS").is_some() {
            let updated = format!("{}{START}{generated}{}", &text[..start], &text[end..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "docs/configuration.md is out of date: run BFF_UPDATE_DOCS=1 cargo test --test api config::"
            );
        }
    }
}

#[test]
fn every_variable_is_in_env_example() {
    let example = include_str!("../../.env.example");
    for variable in bff::config::variables() {
        let name = variable.name;
        assert!(example.contains(name), "{name} missing from .env.example");
    }
}

#[test]
fn secrets_can_come_from_files_as_docker_and_kubernetes_mount_them() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("better_auth_secret");
    std::fs::write(&secret, "a-secret-from-a-file-0123456789abcdef\n").unwrap();
    let url = dir.join("database_url");
    std::fs::write(&url, "postgres://from-a-file/bff\n").unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let (secret, url, empty) = (
        secret.display().to_string(),
        url.display().to_string(),
        empty.display().to_string(),
    );

    let config = load(&[
        ("DATABASE_URL_FILE", &url),
        ("BETTER_AUTH_SECRET_FILE", &secret),
        ("BETTER_AUTH_URL", "http://localhost:5173"),
    ])
    .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        config.auth.secret.expose_secret(),
        "a-secret-from-a-file-0123456789abcdef"
    );
    assert_eq!(
        config.database.url.expose_secret(),
        "postgres://from-a-file/bff"
    );

    let both = with(("BETTER_AUTH_SECRET_FILE", &secret))
        .unwrap_err()
        .to_string();
    assert!(
        both.contains("BETTER_AUTH_SECRET or BETTER_AUTH_SECRET_FILE, not both"),
        "{both}"
    );
    let missing = load(&[
        ("DATABASE_URL", "postgres://localhost/bff"),
        ("BETTER_AUTH_SECRET_FILE", "/nonexistent/secret"),
        ("BETTER_AUTH_URL", "http://localhost:5173"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("BETTER_AUTH_SECRET_FILE: cannot read /nonexistent/secret"),
        "{missing}"
    );
    let blank = load(&[
        ("DATABASE_URL", "postgres://localhost/bff"),
        ("BETTER_AUTH_SECRET_FILE", &empty),
        ("BETTER_AUTH_URL", "http://localhost:5173"),
    ])
    .unwrap_err()
    .to_string();
    assert!(blank.contains("is empty"), "{blank}");
    assert!(!blank.contains("0123456789abcdef"), "never the content");
}
