//! Opening a PostgreSQL connection the way libpq does, so the SvelteKit app's `DATABASE_URL`
//! works unchanged. `sslmode` follows libpq's table:
//!
//! | `sslmode` | plaintext | TLS | certificate checked |
//! | --- | --- | --- | --- |
//! | `disable` | always | never | — |
//! | `allow` | first | if the server refuses plaintext | no |
//! | `prefer` (default) | if the server offers no TLS | first | no |
//! | `require` | never | always | no — unless a root certificate is configured (`sslrootcert` or `DATABASE_CA_CERT`): then as `verify-ca`, like libpq |
//! | `verify-ca` | never | always | chain of trust |
//! | `verify-full` | never | always | chain of trust and host name |
//!
//! Trusted roots are Mozilla's, plus the PEM files in `DATABASE_CA_CERT` and the URL's
//! `sslrootcert` (`sslrootcert=system` means Mozilla's roots and `verify-full`, as in libpq 16).
//! Client certificates (`sslcert`, `sslkey`) are not supported and are refused by name. Every
//! other parameter is tokio-postgres's, which knows libpq's (`host`, `port`, `user`,
//! `password`, `dbname`, `options`, `application_name`, `connect_timeout`,
//! `target_session_attrs`, `channel_binding`, `keepalives`, …).

use std::path::Path;
use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use percent_encoding::percent_decode_str;
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{self, Check};
use crate::error::{StartupError, StartupResult};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext, then TLS if the server refuses plaintext.
    Allow,
    /// TLS if the server offers it, else plaintext.
    Prefer,
    /// TLS only.
    Require,
    /// TLS with a trusted certificate.
    VerifyCa,
    /// TLS with a trusted certificate that names the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The name libpq uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A parsed `DATABASE_URL`, ready to open connections.
#[derive(Clone)]
pub struct ConnectOptions {
    config: tokio_postgres::Config,
    mode: SslMode,
    check: Check,
    tls: MakeRustlsConnect,
    statement_timeout: Option<Duration>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("hosts", &self.config.get_hosts())
            .field("mode", &self.mode)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// Why one connection attempt failed.
enum Failure {
    /// Connecting or the handshake.
    Postgres(tokio_postgres::Error),
    /// The first statements on a fresh connection.
    Other(String),
}

/// Parameters libpq knows that bff refuses rather than ignores.
const UNSUPPORTED: &[&str] = &[
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
    "service",
    "passfile",
    "requirepeer",
    "krbsrvname",
    "gsslib",
];
/// Parameters libpq knows that change nothing here (rustls sends SNI and never compresses).
const IGNORED: &[&str] = &[
    "sslsni",
    "sslcompression",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
];

impl ConnectOptions {
    /// The options of `DATABASE_URL` and `DATABASE_CA_CERT`; errors name the variable.
    pub fn from_url(database_url: &str, extra_ca: Option<&Path>) -> StartupResult<ConnectOptions> {
        ConnectOptions::parse(database_url, extra_ca).map_err(|e| {
            StartupError(if e.starts_with("DATABASE_CA_CERT") {
                e
            } else {
                format!("DATABASE_URL: {e}")
            })
        })
    }

    /// Parses `url` (a `postgres://` or `postgresql://` URL). `extra_ca` is
    /// `DATABASE_CA_CERT`. Errors name the parameter; they never echo the URL (it may hold
    /// a password).
    pub fn parse(url: &str, extra_ca: Option<&Path>) -> Result<ConnectOptions, String> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut mode = SslMode::Prefer;
        let mut root_cert: Option<String> = None;
        let mut kept: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| format!("the value of {key} is not UTF-8"))?;
            match key {
                "sslmode" => {
                    mode = SslMode::parse(&value).ok_or_else(|| {
                        format!(
                            "sslmode={value} is not one of disable, allow, prefer, require, \
                             verify-ca, verify-full"
                        )
                    })?;
                }
                "sslrootcert" => root_cert = Some(value.into_owned()),
                "gssencmode" if value == "require" => {
                    return Err("gssencmode=require: GSSAPI encryption is not supported".into());
                }
                "gssencmode" => {}
                key if UNSUPPORTED.contains(&key) => {
                    return Err(format!("{key} is not supported by bff"));
                }
                key if IGNORED.contains(&key) => {}
                _ => kept.push(pair),
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config = rebuilt.parse().map_err(|e| format!("{e}"))?;
        if config.get_application_name().is_none() {
            config.application_name("bff");
        }

        let mut extra = Vec::new();
        if let Some(path) = extra_ca {
            extra.extend(
                tls::read_certificates(path).map_err(|e| format!("DATABASE_CA_CERT: {e}"))?,
            );
        }
        let mut has_root = extra_ca.is_some();
        match root_cert.as_deref() {
            Some("system") => {
                // libpq 16: the system's roots, and nothing weaker than verify-full.
                mode = SslMode::VerifyFull;
            }
            Some(path) => {
                extra.extend(
                    tls::read_certificates(Path::new(path))
                        .map_err(|e| format!("sslrootcert: {e}"))?,
                );
                has_root = true;
            }
            None => {}
        }
        let check = match mode {
            SslMode::VerifyFull => Check::Full,
            SslMode::VerifyCa => Check::Ca,
            SslMode::Require if has_root => Check::Ca,
            _ => Check::None,
        };
        let tls = tls::connector(check, &extra)?;
        Ok(ConnectOptions {
            config,
            mode,
            check,
            tls,
            statement_timeout: None,
        })
    }

    /// Every statement on connections opened from here is cancelled after `timeout`
    /// (PostgreSQL's `statement_timeout`); `None` leaves the server's setting.
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> ConnectOptions {
        self.statement_timeout = timeout;
        self
    }

    /// The `sslmode` in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// How much of the certificate is checked.
    pub fn check(&self) -> Check {
        self.check
    }

    /// The first host, for messages.
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        }
    }

    async fn attempt(&self, wire: WireMode) -> Result<AsyncPgConnection, Failure> {
        let mut config = self.config.clone();
        config.ssl_mode(wire);
        let (client, connection) = config
            .connect(self.tls.clone())
            .await
            .map_err(Failure::Postgres)?;
        let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|e| Failure::Other(e.to_string()))?;
        if let Some(timeout) = self.statement_timeout {
            conn.batch_execute(&format!("SET statement_timeout = {}", timeout.as_millis()))
                .await
                .map_err(|e| Failure::Other(e.to_string()))?;
        }
        // After the setup, so requests count (and trace) only their own statements.
        conn.set_instrumentation(super::instrumentation::DbInstrumentation::default());
        Ok(conn)
    }

    /// Opens one connection, following `sslmode`.
    pub async fn connect(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let refused = |f: &Failure| matches!(f, Failure::Postgres(e) if e.as_db_error().is_some());
        let result = match self.mode {
            SslMode::Disable => self.attempt(WireMode::Disable).await,
            SslMode::Allow => match self.attempt(WireMode::Disable).await {
                Err(f) if refused(&f) => self.attempt(WireMode::Require).await,
                other => other,
            },
            SslMode::Prefer => match self.attempt(WireMode::Prefer).await {
                // Encrypted and then refused (a `hostnossl`-only rule): try plaintext, as libpq.
                Err(f) if refused(&f) => self.attempt(WireMode::Disable).await,
                other => other,
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                self.attempt(WireMode::Require).await
            }
        };
        result.map_err(|failure| {
            crate::metrics::db_error("connection");
            ConnectionError::BadConnection(match failure {
                Failure::Postgres(e) => self.describe(&e),
                Failure::Other(message) => format!("cannot set up the connection: {message}"),
            })
        })
    }

    /// What went wrong, with the fix when it is a TLS matter.
    pub fn describe(&self, error: &tokio_postgres::Error) -> String {
        let mode = self.mode.as_str();
        let host = self.host();
        if let Some(cause) = tls::rustls_cause(error) {
            return match cause {
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                ) => format!(
                    "TLS: the server's certificate is not valid for the host {host:?} \
                     (sslmode={mode} checks the name; {cause}). Connect by a name the \
                     certificate holds, or use sslmode=verify-ca to check the CA only"
                ),
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                    | rustls::CertificateError::ExpiredContext { .. },
                ) => format!("TLS: the server's certificate has expired ({cause}); renew it"),
                rustls::Error::InvalidCertificate(_) => format!(
                    "TLS: the server's certificate is not trusted ({cause}; sslmode={mode} \
                     verifies it). Set DATABASE_CA_CERT (or sslrootcert in DATABASE_URL) to the \
                     PEM file of the CA that signed it — or of the certificate itself when it \
                     is self-signed — or use sslmode=require to encrypt without verifying, as \
                     libpq does"
                ),
                other => format!("TLS handshake with {host} failed: {other}"),
            };
        }
        let deepest =
            std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .last()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if deepest.contains("does not support TLS") {
            return format!(
                "TLS: the server at {host} does not offer TLS, and sslmode={mode} requires it. \
                 Turn on ssl in the server's postgresql.conf, or use sslmode=prefer (encrypt \
                 when offered) or sslmode=disable"
            );
        }
        if let Some(db) = error.as_db_error()
            && db.message().contains("no encryption")
        {
            return format!(
                "the server refuses unencrypted connections ({}); use sslmode=prefer or \
                 sslmode=require",
                db.message()
            );
        }
        let user = self.config.get_user().unwrap_or("(the default role)");
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "cannot connect to the database at {host}:{port} as {user}: {}",
            reason(error)
        )
    }
}

/// PostgreSQL's own reason (`database "x" does not exist`, `password authentication failed
/// for user "y"`), or the operating system's (connection refused, unknown host), rather than
/// tokio-postgres's bare "db error".
pub(crate) fn reason(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = db.message().to_owned();
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut words = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !words.contains(&cause_text) {
            words.push_str(": ");
            words.push_str(&cause_text);
        }
        source = cause.source();
    }
    words
}

/// Opens one connection outside any pool (CLI, dev, tests), as libpq would.
pub async fn connect(database_url: &str) -> StartupResult<AsyncPgConnection> {
    connect_with(database_url, None).await
}

/// Like [`connect`], trusting the CA certificates in `extra_ca` too.
pub async fn connect_with(
    database_url: &str,
    extra_ca: Option<&Path>,
) -> StartupResult<AsyncPgConnection> {
    ConnectOptions::from_url(database_url, extra_ca)?
        .connect()
        .await
        .map_err(|e| StartupError(connection_error_text(&e)))
}

/// The text of a connection error, without diesel's wrapper words.
pub fn connection_error_text(error: &ConnectionError) -> String {
    match error {
        ConnectionError::BadConnection(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What `bff check` reports of the server it connected to.
#[derive(diesel::QueryableByName, Debug)]
pub(crate) struct Server {
    /// `server_version`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub version: String,
    /// The role connected as.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub user_name: String,
    /// Whether this connection is encrypted.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub ssl: bool,
    /// TLS version, when encrypted.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub tls_version: Option<String>,
    /// TLS cipher, when encrypted.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub cipher: Option<String>,
    /// Whether Better Auth's `jwks` table exists.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub jwks: bool,
}

impl Server {
    /// Reads it over `conn`.
    pub(crate) async fn describe(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Server> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "SELECT current_setting('server_version') AS version, current_user::text AS user_name, \
             s.ssl, s.version AS tls_version, s.cipher, \
             to_regclass('public.jwks') IS NOT NULL AS jwks \
             FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
        )
        .get_result(conn)
        .await
    }
}
