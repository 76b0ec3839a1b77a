//! Configuration, read once from the environment at start-up. [`VARIABLES`] lists every
//! variable with its default; `bff --help` prints that list, and README.md repeats it.
//!
//! A missing or malformed variable stops start-up with a message that names it. Secrets are
//! [`SecretString`]s, so they never reach a log through `Debug`.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

/// One environment variable bff reads.
#[derive(Clone, Copy, Debug)]
pub struct Variable {
    /// Its name.
    pub name: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// The value when it is unset.
    pub default: &'static str,
}

const fn var(name: &'static str, meaning: &'static str, default: &'static str) -> Variable {
    Variable {
        name,
        meaning,
        default,
    }
}

/// Every variable bff reads (a `.env` file in the working directory also works).
pub const VARIABLES: &[Variable] = &[
    var(
        "DATABASE_URL",
        "PostgreSQL URL shared with the SvelteKit app; libpq's meaning, sslmode included",
        "required",
    ),
    var(
        "BETTER_AUTH_SECRET",
        "Better Auth's secret: the HMAC key of its session cookies",
        "required",
    ),
    var(
        "BETTER_AUTH_URL",
        "Better Auth's base URL; https:// selects the __Secure- cookie name",
        "required",
    ),
    var(
        "BETTER_AUTH_SESSION_COOKIE",
        "the session cookie's name, when Better Auth's is customised",
        "derived from BETTER_AUTH_URL",
    ),
    var("BFF_LISTEN", "address the server binds", "127.0.0.1:8080"),
    var(
        "BFF_ENV",
        "development (GraphiQL, introspection) or production",
        "production",
    ),
    var(
        "BFF_METRICS_LISTEN",
        "address of the Prometheus /metrics listener (never the public port)",
        "unset: no metrics listener",
    ),
    var(
        "DATABASE_CA_CERT",
        "PEM file of CA certificates (or a self-signed server certificate) trusted for TLS to PostgreSQL",
        "none: Mozilla's roots",
    ),
    var("DATABASE_POOL_SIZE", "connections per process, 1-100", "5"),
    var(
        "DATABASE_POOL_TIMEOUT_MS",
        "how long a request waits for (or to open) a connection, 1-60000",
        "5000",
    ),
    var(
        "DATABASE_STATEMENT_TIMEOUT_MS",
        "PostgreSQL statement_timeout of pooled connections, 0-600000 (0: none)",
        "5000",
    ),
    var(
        "CORS_ALLOWED_ORIGINS",
        "comma-separated origins that may call with credentials",
        "none",
    ),
    var(
        "FREE_PHOTO_ALLOWANCE",
        "free photos every user gets before credits are spent, 0-1000",
        "3",
    ),
    var(
        "SERVICE_JWT_SECRET",
        "HS256 key of the photo worker's service tokens (>= 32 bytes)",
        "unset: no worker access",
    ),
    var(
        "STRIPE_SECRET_KEY",
        "Stripe API key (sk_... or rk_...)",
        "unset: billing operations disabled",
    ),
    var(
        "STRIPE_WEBHOOK_SECRET",
        "signing secret of the webhook endpoint (whsec_...)",
        "unset: webhooks refused (503)",
    ),
    var(
        "STRIPE_API_BASE",
        "Stripe's API base URL (tests point it at a fake)",
        "https://api.stripe.com",
    ),
    var(
        "STRIPE_SUCCESS_URL",
        "where Checkout returns after payment",
        "{BETTER_AUTH_URL}/billing?checkout=success",
    ),
    var(
        "STRIPE_CANCEL_URL",
        "where Checkout returns when abandoned",
        "{BETTER_AUTH_URL}/billing?checkout=canceled",
    ),
    var(
        "STRIPE_PORTAL_RETURN_URL",
        "where the billing portal returns",
        "{BETTER_AUTH_URL}/billing",
    ),
    var(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OpenTelemetry collector (OTLP over HTTP) to export traces to",
        "unset: no traces",
    ),
    var(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "http/protobuf or http/json",
        "http/protobuf",
    ),
    var("OTEL_SERVICE_NAME", "service.name of exported spans", "bff"),
    var(
        "BFF_MAX_TOKENS",
        "tokens a GraphQL document may have",
        "5000",
    ),
    var(
        "BFF_MAX_ALIASES",
        "aliases a GraphQL document may have",
        "30",
    ),
    var(
        "BFF_MAX_FRAGMENT_SPREADS",
        "fragment spreads a GraphQL document may have",
        "100",
    ),
    var(
        "BFF_MAX_DIRECTIVES",
        "directives a GraphQL document may have",
        "50",
    ),
    var(
        "BFF_MAX_FIELDS",
        "fields a document selects with its fragments expanded",
        "1000",
    ),
    var(
        "BFF_MAX_COST",
        "cost of one operation: 1 a field, 10 a database field, lists times their page size",
        "5000",
    ),
    var(
        "BFF_RATE_LIMIT_PER_SECOND",
        "cost refilled per second for each viewer (or client address when anonymous); 0: off",
        "200",
    ),
    var(
        "BFF_RATE_LIMIT_BURST",
        "cost a viewer (or address) may spend at once; at least BFF_MAX_COST",
        "10000",
    ),
    var(
        "BFF_TRUSTED_PROXIES",
        "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed",
        "none: the peer address is the client's",
    ),
    var(
        "BFF_TRUSTED_DOCUMENTS",
        "manifest of the only operations allowed to run (graphql-codegen or Apollo format)",
        "unset: any document, plus automatic persisted queries",
    ),
    var(
        "BFF_HEADER_READ_TIMEOUT_MS",
        "time to send a request's headers, and to keep an idle connection open, 100-600000",
        "10000",
    ),
    var(
        "BFF_REQUEST_TIMEOUT_MS",
        "time to read a request's body and answer it, 100-600000",
        "30000",
    ),
    var(
        "BFF_SHUTDOWN_TIMEOUT_MS",
        "on SIGTERM, time for requests in flight before connections are closed, 0-600000",
        "10000",
    ),
    var(
        "BFF_WORKER_LEASE_MS",
        "how long a worker's claim on a job lasts without heartbeatPhotoJob, 1000-86400000",
        "300000",
    ),
    var(
        "BFF_WORKER_MAX_ATTEMPTS",
        "claims a job gets; when the last one's lease expires the job fails and is refunded, 1-100",
        "3",
    ),
    var(
        "BFF_WS_MAX_CONNECTIONS",
        "open WebSocket connections per process (past it: close 1013)",
        "20000",
    ),
    var(
        "BFF_WS_MAX_CONNECTIONS_PER_VIEWER",
        "open WebSocket connections per signed-in user (past it: close 1013)",
        "16",
    ),
    var(
        "BFF_WS_MAX_SUBSCRIPTIONS",
        "subscriptions per WebSocket connection (past it: an error for that one)",
        "32",
    ),
    var(
        "BFF_WS_INIT_TIMEOUT_MS",
        "time from the upgrade to connection_init (past it: close 4408), 100-600000",
        "10000",
    ),
    var(
        "BFF_WS_KEEPALIVE_MS",
        "how often the server pings; a peer silent for two is dropped, 100-600000",
        "15000",
    ),
    var(
        "BFF_WS_SESSION_CHECK_MS",
        "how often open connections' sessions are checked (signed out: close 4403), 100-60000",
        "30000",
    ),
    var("RUST_LOG", "log filter", "info"),
    var("BFF_LOG_FORMAT", "json for JSON log lines", "text"),
];

/// Whether the server runs for a developer or in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// GraphiQL at `/graphiql` and introspection enabled.
    Development,
    /// Neither GraphiQL nor introspection.
    Production,
}

/// Everything the server reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// PostgreSQL connection URL.
    pub database_url: SecretString,
    /// Extra CA certificates (PEM file) trusted for TLS to PostgreSQL.
    pub database_ca_cert: Option<std::path::PathBuf>,
    /// Connections in the pool.
    pub database_pool_size: usize,
    /// How long a request waits for a pooled connection before failing.
    pub database_pool_timeout: Duration,
    /// `statement_timeout` of pooled connections; `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
    /// Better Auth's secret (cookie signatures).
    pub better_auth_secret: SecretString,
    /// Better Auth's base URL.
    pub better_auth_url: String,
    /// Name of the session cookie to read.
    pub session_cookie_name: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address of the metrics listener, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Development or production.
    pub environment: Environment,
    /// Origins allowed to call with credentials (CORS).
    pub cors_allowed_origins: Vec<String>,
    /// Free photos per user before credits are spent.
    pub free_photo_allowance: i32,
    /// Key of service tokens for internal workers; `None` disables worker operations.
    pub service_jwt_secret: Option<SecretString>,
    /// Stripe settings.
    pub stripe: StripeConfig,
    /// What one GraphQL operation may cost.
    pub limits: crate::graphql::admission::Limits,
    /// Cost-based rate limiting.
    pub rate_limit: RateLimitConfig,
    /// Connection and request timeouts.
    pub timeouts: Timeouts,
    /// The WebSocket surface's limits (`BFF_WS_*`).
    pub live: crate::live::Limits,
    /// How long a worker's claim lasts without a heartbeat.
    pub worker_lease: Duration,
    /// Claims a job gets before an expired lease fails it.
    pub worker_max_attempts: i32,
    /// The trusted documents manifest, when only its operations may run.
    pub trusted_documents: Option<std::sync::Arc<crate::http::documents::Documents>>,
}

/// Cost-based rate limiting: a token bucket per viewer, or per client address.
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// Cost refilled per second; 0 turns rate limiting off.
    pub per_second: u64,
    /// The bucket's size.
    pub burst: u64,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::http::client::IpNet>,
}

/// How long connections and requests may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To send the request head; also how long an idle keep-alive connection stays open.
    pub header_read: Duration,
    /// To read the body and answer.
    pub request: Duration,
    /// After SIGTERM, for requests in flight; then connections are closed.
    pub shutdown: Duration,
}

/// How bff talks to Stripe.
#[derive(Clone, Debug)]
pub struct StripeConfig {
    /// API key; `None` disables the operations that call Stripe.
    pub secret_key: Option<SecretString>,
    /// Webhook signing secret; `None` refuses webhooks.
    pub webhook_secret: Option<SecretString>,
    /// API base URL, without a trailing slash.
    pub api_base: String,
    /// Checkout's return URL after payment.
    pub success_url: String,
    /// Checkout's return URL when abandoned.
    pub cancel_url: String,
    /// The billing portal's return URL.
    pub portal_return_url: String,
}

/// A variable that is missing or cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("{0} is not set: {1}")]
    Missing(&'static str, &'static str),
    /// A variable is set to something unusable.
    #[error("{0} is malformed: {1}")]
    Malformed(&'static str, String),
}

/// The session cookie's name as Better Auth derives it from its base URL.
pub fn default_session_cookie_name(better_auth_url: &str) -> String {
    if better_auth_url.starts_with("https://") {
        "__Secure-better-auth.session_token".to_owned()
    } else {
        "better-auth.session_token".to_owned()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, which returns a variable's value if it is set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL").ok_or(ConfigError::Missing(
            "DATABASE_URL",
            "set it to the PostgreSQL URL shared with the SvelteKit app (or run `bff dev`)",
        ))?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError::Malformed(
                "DATABASE_URL",
                "expected a postgres:// or postgresql:// URL".into(),
            ));
        }

        let database_ca_cert = match get("DATABASE_CA_CERT") {
            Some(path) if std::path::Path::new(path.trim()).is_file() => {
                Some(std::path::PathBuf::from(path.trim()))
            }
            Some(path) => {
                return Err(ConfigError::Malformed(
                    "DATABASE_CA_CERT",
                    format!("{path:?} is not a readable file"),
                ));
            }
            None => None,
        };

        let better_auth_secret = get("BETTER_AUTH_SECRET").ok_or(ConfigError::Missing(
            "BETTER_AUTH_SECRET",
            "use the same value as the SvelteKit app's Better Auth",
        ))?;

        let better_auth_url = get("BETTER_AUTH_URL").ok_or(ConfigError::Missing(
            "BETTER_AUTH_URL",
            "use the same base URL as the SvelteKit app's Better Auth",
        ))?;
        let better_auth_url = better_auth_url.trim().to_owned();
        if !(better_auth_url.starts_with("http://") || better_auth_url.starts_with("https://"))
            || better_auth_url.len() <= "https://".len()
        {
            return Err(ConfigError::Malformed(
                "BETTER_AUTH_URL",
                "expected an http:// or https:// URL".into(),
            ));
        }

        let session_cookie_name = match get("BETTER_AUTH_SESSION_COOKIE") {
            Some(name) => {
                let name = name.trim().to_owned();
                if !name.bytes().all(is_cookie_name_byte) {
                    return Err(ConfigError::Malformed(
                        "BETTER_AUTH_SESSION_COOKIE",
                        "not a valid cookie name".into(),
                    ));
                }
                name
            }
            None => default_session_cookie_name(&better_auth_url),
        };

        let address = |name: &'static str| -> Result<Option<SocketAddr>, ConfigError> {
            get(name)
                .map(|value| {
                    value.trim().parse().map_err(|_| {
                        ConfigError::Malformed(name, format!("expected ip:port, got {value:?}"))
                    })
                })
                .transpose()
        };
        let listen = address("BFF_LISTEN")?.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let metrics_listen = address("BFF_METRICS_LISTEN")?;
        if metrics_listen.is_some_and(|m| m.port() != 0 && m.port() == listen.port()) {
            return Err(ConfigError::Malformed(
                "BFF_METRICS_LISTEN",
                "must use another port than BFF_LISTEN: metrics are never served on the public port"
                    .into(),
            ));
        }

        let environment = match get("BFF_ENV").as_deref().map(str::trim) {
            None | Some("production") => Environment::Production,
            Some("development") => Environment::Development,
            Some(other) => {
                return Err(ConfigError::Malformed(
                    "BFF_ENV",
                    format!("expected development or production, got {other:?}"),
                ));
            }
        };

        let database_pool_size = parse_number(&get, "DATABASE_POOL_SIZE", 5, 1, 100)? as usize;
        let database_pool_timeout = Duration::from_millis(parse_number(
            &get,
            "DATABASE_POOL_TIMEOUT_MS",
            5000,
            1,
            60_000,
        )?);
        let statement_timeout =
            match parse_number(&get, "DATABASE_STATEMENT_TIMEOUT_MS", 5000, 0, 600_000)? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            };
        let free_photo_allowance = parse_number(&get, "FREE_PHOTO_ALLOWANCE", 3, 0, 1000)? as i32;

        let cors_allowed_origins = match get("CORS_ALLOWED_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|origin| {
                    if is_origin(origin) {
                        Ok(origin.to_owned())
                    } else {
                        Err(ConfigError::Malformed(
                            "CORS_ALLOWED_ORIGINS",
                            format!("{origin:?} is not an origin like https://app.example.com"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };

        let service_jwt_secret = match get("SERVICE_JWT_SECRET") {
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::Malformed(
                    "SERVICE_JWT_SECRET",
                    "must be at least 32 bytes".into(),
                ));
            }
            other => other.map(SecretString::from),
        };

        let app_url = better_auth_url.trim_end_matches('/').to_owned();
        let url = |name: &'static str, default: String| -> Result<String, ConfigError> {
            match get(name) {
                Some(v) if v.starts_with("https://") || v.starts_with("http://") => {
                    Ok(v.trim().to_owned())
                }
                Some(_) => Err(ConfigError::Malformed(
                    name,
                    "expected an http:// or https:// URL".into(),
                )),
                None => Ok(default),
            }
        };
        let stripe = StripeConfig {
            secret_key: match get("STRIPE_SECRET_KEY") {
                Some(k) if !(k.starts_with("sk_") || k.starts_with("rk_")) => {
                    return Err(ConfigError::Malformed(
                        "STRIPE_SECRET_KEY",
                        "expected a Stripe secret key (sk_…) or restricted key (rk_…)".into(),
                    ));
                }
                other => other.map(SecretString::from),
            },
            webhook_secret: match get("STRIPE_WEBHOOK_SECRET") {
                Some(k) if !k.starts_with("whsec_") => {
                    return Err(ConfigError::Malformed(
                        "STRIPE_WEBHOOK_SECRET",
                        "expected the endpoint's signing secret (whsec_…)".into(),
                    ));
                }
                other => other.map(SecretString::from),
            },
            api_base: url("STRIPE_API_BASE", "https://api.stripe.com".into())?
                .trim_end_matches('/')
                .to_owned(),
            success_url: url(
                "STRIPE_SUCCESS_URL",
                format!("{app_url}/billing?checkout=success"),
            )?,
            cancel_url: url(
                "STRIPE_CANCEL_URL",
                format!("{app_url}/billing?checkout=canceled"),
            )?,
            portal_return_url: url("STRIPE_PORTAL_RETURN_URL", format!("{app_url}/billing"))?,
        };

        let d = crate::graphql::admission::Limits::default();
        let limits = crate::graphql::admission::Limits {
            tokens: parse_number(&get, "BFF_MAX_TOKENS", d.tokens, 1, 1_000_000)?,
            aliases: parse_number(&get, "BFF_MAX_ALIASES", d.aliases, 0, 100_000)?,
            fragment_spreads: parse_number(
                &get,
                "BFF_MAX_FRAGMENT_SPREADS",
                d.fragment_spreads,
                0,
                100_000,
            )?,
            directives: parse_number(&get, "BFF_MAX_DIRECTIVES", d.directives, 0, 100_000)?,
            fields: parse_number(&get, "BFF_MAX_FIELDS", d.fields, 1, 1_000_000)?,
            cost: parse_number(&get, "BFF_MAX_COST", d.cost, 1, 100_000_000)?,
        };
        let rate_limit = RateLimitConfig {
            per_second: parse_number(&get, "BFF_RATE_LIMIT_PER_SECOND", 200, 0, 100_000_000)?,
            burst: parse_number(&get, "BFF_RATE_LIMIT_BURST", 10_000, 1, 1_000_000_000)?,
            trusted_proxies: match get("BFF_TRUSTED_PROXIES") {
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse().map_err(|_| {
                            ConfigError::Malformed(
                                "BFF_TRUSTED_PROXIES",
                                format!("{p:?} is not an IP address or CIDR like 10.0.0.0/8"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
        };
        if rate_limit.per_second > 0 && rate_limit.burst < limits.cost {
            return Err(ConfigError::Malformed(
                "BFF_RATE_LIMIT_BURST",
                format!(
                    "must be at least BFF_MAX_COST ({}), or the costliest allowed operation could never run",
                    limits.cost
                ),
            ));
        }
        let millis = |name, default, min| -> Result<Duration, ConfigError> {
            parse_number(&get, name, default, min, 600_000).map(Duration::from_millis)
        };
        let timeouts = Timeouts {
            header_read: millis("BFF_HEADER_READ_TIMEOUT_MS", 10_000, 100)?,
            request: millis("BFF_REQUEST_TIMEOUT_MS", 30_000, 100)?,
            shutdown: millis("BFF_SHUTDOWN_TIMEOUT_MS", 10_000, 0)?,
        };
        let l = crate::live::Limits::default();
        let count = |name, default: usize| -> Result<usize, ConfigError> {
            parse_number(&get, name, default as u64, 1, 1_000_000).map(|n| n as usize)
        };
        let live = crate::live::Limits {
            connections: count("BFF_WS_MAX_CONNECTIONS", l.connections)?,
            connections_per_viewer: count(
                "BFF_WS_MAX_CONNECTIONS_PER_VIEWER",
                l.connections_per_viewer,
            )?,
            subscriptions_per_connection: count(
                "BFF_WS_MAX_SUBSCRIPTIONS",
                l.subscriptions_per_connection,
            )?,
            init_timeout: millis("BFF_WS_INIT_TIMEOUT_MS", 10_000, 100)?,
            keepalive: millis("BFF_WS_KEEPALIVE_MS", 15_000, 100)?,
            session_check: Duration::from_millis(parse_number(
                &get,
                "BFF_WS_SESSION_CHECK_MS",
                30_000,
                100,
                60_000,
            )?),
            ..l
        };

        let trusted_documents = get("BFF_TRUSTED_DOCUMENTS")
            .map(|path| {
                crate::http::documents::Documents::trusted(std::path::Path::new(path.trim()))
                    .map(std::sync::Arc::new)
                    .map_err(|e| ConfigError::Malformed("BFF_TRUSTED_DOCUMENTS", e))
            })
            .transpose()?;

        Ok(Config {
            database_url: database_url.into(),
            database_ca_cert,
            database_pool_size,
            database_pool_timeout,
            statement_timeout,
            better_auth_secret: better_auth_secret.into(),
            better_auth_url,
            session_cookie_name,
            listen,
            metrics_listen,
            environment,
            cors_allowed_origins,
            free_photo_allowance,
            service_jwt_secret,
            stripe,
            limits,
            rate_limit,
            timeouts,
            live,
            worker_lease: Duration::from_millis(parse_number(
                &get,
                "BFF_WORKER_LEASE_MS",
                300_000,
                1_000,
                86_400_000,
            )?),
            worker_max_attempts: parse_number(&get, "BFF_WORKER_MAX_ATTEMPTS", 3, 1, 100)? as i32,
            trusted_documents,
        })
    }

    /// Whether GraphiQL and introspection are on.
    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }
}

fn parse_number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Malformed(
            name,
            format!("expected a whole number from {min} to {max}, got {value:?}"),
        )),
    }
}

/// RFC 6265 token characters.
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `scheme://host[:port]` with no path: what browsers send in `Origin`.
fn is_origin(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' ', '@'])
}
