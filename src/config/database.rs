//! The database: `DATABASE_URL`, `DATABASE_CA_CERT`, `DATABASE_POOL_SIZE`,
//! `DATABASE_POOL_TIMEOUT_MS`, `DATABASE_STATEMENT_TIMEOUT_MS`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::env::{Env, Variable};

/// `DATABASE_URL`.
pub const URL: Variable = Variable::required(
    "DATABASE_URL",
    "PostgreSQL URL shared with the SvelteKit app; libpq's meaning, sslmode included",
    "set it to the PostgreSQL URL shared with the SvelteKit app (or run `bff dev`)",
);
/// `DATABASE_CA_CERT`.
pub const CA_CERT: Variable = Variable::optional(
    "DATABASE_CA_CERT",
    "PEM file of CA certificates (or a self-signed server certificate) trusted for TLS to PostgreSQL",
    "Mozilla's roots only",
);
/// `DATABASE_POOL_SIZE`.
pub const POOL_SIZE: Variable =
    Variable::number("DATABASE_POOL_SIZE", "connections per process", 5, 1, 100);
/// `DATABASE_POOL_TIMEOUT_MS`.
pub const POOL_TIMEOUT_MS: Variable = Variable::number(
    "DATABASE_POOL_TIMEOUT_MS",
    "how long a request waits for a pooled connection, or to open one, in ms; past it the \
     request answers SERVICE_UNAVAILABLE",
    5000,
    1,
    60_000,
);
/// `DATABASE_STATEMENT_TIMEOUT_MS`.
pub const STATEMENT_TIMEOUT_MS: Variable = Variable::number(
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "PostgreSQL statement_timeout of pooled connections, in ms (0: the server's); a statement \
     or lock wait past it answers SERVICE_UNAVAILABLE",
    5000,
    0,
    600_000,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    URL,
    CA_CERT,
    POOL_SIZE,
    POOL_TIMEOUT_MS,
    STATEMENT_TIMEOUT_MS,
];

/// How to reach PostgreSQL and how to pool connections to it.
#[derive(Clone, Debug)]
pub struct Database {
    /// The connection URL (libpq's meaning).
    pub url: SecretString,
    /// Extra CA certificates (PEM file) trusted for TLS.
    pub ca_cert: Option<PathBuf>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long a request waits for a pooled connection (or to open one).
    pub pool_timeout: Duration,
    /// `statement_timeout` of pooled connections; `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
}

impl Database {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let url = env
            .parse(&URL, |url| {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(url.to_owned())
                } else {
                    Err("expected a postgres:// or postgresql:// URL".into())
                }
            })
            .unwrap_or_default();
        let ca_cert = env.parse(&CA_CERT, |path| {
            if std::path::Path::new(path).is_file() {
                Ok(PathBuf::from(path))
            } else {
                Err(format!("{path:?} is not a readable file"))
            }
        });
        Database {
            url: url.into(),
            ca_cert,
            pool_size: env.number(&POOL_SIZE) as usize,
            pool_timeout: env.millis(&POOL_TIMEOUT_MS),
            statement_timeout: Some(env.millis(&STATEMENT_TIMEOUT_MS))
                .filter(|timeout| !timeout.is_zero()),
        }
    }
}
