//! Structured logs. `RUST_LOG` filters (default `info`); `BFF_LOG_FORMAT=json` emits JSON
//! lines for log collectors. Every request's span carries its request id.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber for the server.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BFF_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Installs a subscriber that writes through the test harness (shown only for failing
/// tests); quiet unless `RUST_LOG` says otherwise. Safe to call more than once.
pub fn init_for_tests() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
