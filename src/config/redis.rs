//! What every instance shares through Redis (or Valkey): `BFF_REDIS_URL` (the limits),
//! `BFF_APQ_REDIS_URL` (automatic persisted query documents), `BFF_REDIS_CA_CERT`,
//! `BFF_REDIS_TIMEOUT_MS`, `BFF_REDIS_PREFIX`.
//!
//! Two Redis, not one: documents are written by anyone who can send a query, so under memory
//! pressure they would compete with the rate-limit buckets, and an eviction policy that drops
//! either could drop a throttled client's bucket (a full bucket back). The limits' Redis should
//! run with `maxmemory-policy noeviction`; the documents' may evict freely.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::env::{Env, Variable};

/// `BFF_REDIS_URL`.
pub(crate) const URL: Variable = Variable::optional(
    "BFF_REDIS_URL",
    "Redis or Valkey holding the rate-limit buckets and the export limit every instance shares: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS; run it with maxmemory-policy noeviction",
    "each instance keeps its own",
);
/// `BFF_APQ_REDIS_URL`.
pub(crate) const APQ_URL: Variable = Variable::optional(
    "BFF_APQ_REDIS_URL",
    "another Redis or Valkey (it may evict: allkeys-lru) where automatic persisted query documents are shared between instances; same URL forms; never the limits' Redis",
    "each instance keeps its own documents",
);
/// `BFF_REDIS_CA_CERT`.
pub(crate) const CA_CERT: Variable = Variable::optional(
    "BFF_REDIS_CA_CERT",
    "PEM file of CA certificates trusted for rediss:// (a managed Redis's own CA)",
    "the system's roots",
);
/// `BFF_REDIS_TIMEOUT_MS`.
pub(crate) const TIMEOUT_MS: Variable = Variable::number(
    "BFF_REDIS_TIMEOUT_MS",
    "time to connect to Redis, and for each command, in ms; past it the request uses this instance's own limits",
    100,
    5,
    10_000,
);
/// `BFF_REDIS_PREFIX`.
pub(crate) const PREFIX: Variable = Variable::value(
    "BFF_REDIS_PREFIX",
    "prefix of every key bff writes to Redis (to share one Redis between deployments)",
    "bff:",
);

/// The variables of this module.
pub(crate) const VARIABLES: &[Variable] = &[URL, APQ_URL, CA_CERT, TIMEOUT_MS, PREFIX];

/// One Redis bff talks to.
#[derive(Clone, Debug)]
pub struct Redis {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `rediss://`: TLS, the server's certificate checked against the system's roots or
    /// [`Redis::ca_cert`].
    pub tls: bool,
    /// ACL user, for `AUTH user password`.
    pub username: Option<String>,
    /// Password, for `AUTH`.
    pub password: Option<SecretString>,
    /// Logical database (`SELECT`).
    pub database: u32,
    /// The CA certificates (PEM) trusted for TLS instead of the system's.
    pub ca_cert: Option<PathBuf>,
    /// Connect and command timeout.
    pub timeout: Duration,
    /// Key prefix.
    pub prefix: String,
}

impl Redis {
    /// Reads the variables of this module: the limits' Redis and the documents' Redis, each
    /// `None` when its URL is unset.
    pub fn read(env: &mut Env) -> (Option<Redis>, Option<Redis>) {
        let timeout = env.millis(&TIMEOUT_MS);
        let prefix = env.text(&PREFIX).unwrap_or_else(|| "bff:".to_owned());
        let ca_cert = env.parse(&CA_CERT, |path| {
            if std::path::Path::new(path).is_file() {
                Ok(PathBuf::from(path))
            } else {
                Err(format!("{path:?} is not a readable file"))
            }
        });
        let mut read = |variable: &Variable| {
            let parts = env.parse(variable, parse_url)?;
            Some(Redis {
                host: parts.host,
                port: parts.port,
                tls: parts.tls,
                username: parts.username,
                password: parts.password.map(SecretString::from),
                database: parts.database,
                ca_cert: ca_cert.clone(),
                timeout,
                prefix: prefix.clone(),
            })
        };
        let limits = read(&URL);
        let documents = read(&APQ_URL);
        if ca_cert.is_some()
            && ![&limits, &documents]
                .iter()
                .any(|r| r.as_ref().is_some_and(|r| r.tls))
        {
            env.fail(
                &CA_CERT,
                "is only used with rediss:// (TLS), and neither BFF_REDIS_URL nor BFF_APQ_REDIS_URL is one",
            );
        }
        if let (Some(limits), Some(documents)) = (&limits, &documents)
            && limits.same_keyspace(documents)
        {
            env.fail(
                &APQ_URL,
                "must name another Redis than BFF_REDIS_URL: documents anyone can register would \
                 compete with the rate-limit buckets for its memory",
            );
        }
        (limits, documents)
    }

    /// `host:port` (and `/db`), for messages.
    pub fn describe(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}:{}/{}", self.host, self.port, self.database)
    }

    /// Whether both name the same server (any database: they share its memory).
    fn same_keyspace(&self, other: &Redis) -> bool {
        self.host.eq_ignore_ascii_case(&other.host) && self.port == other.port
    }

    /// The password, for `AUTH`.
    pub fn password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose_secret())
    }
}

/// A URL's parts.
#[derive(Debug, PartialEq, Eq)]
struct Parts {
    host: String,
    port: u16,
    tls: bool,
    username: Option<String>,
    password: Option<String>,
    database: u32,
}

/// `redis[s]://[[user]:password@]host[:port][/db]`.
fn parse_url(url: &str) -> Result<Parts, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (tls, rest) = match url.split_once("://") {
        Some(("redis", rest)) => (false, rest),
        Some(("rediss", rest)) => (true, rest),
        _ => {
            return Err(format!(
                "expected redis://host[:port][/db] or rediss://…, got {url:?}"
            ));
        }
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((credentials, host_port)) => (Some(credentials), host_port),
        None => (None, authority),
    };
    let (username, password) = match credentials {
        None => (None, None),
        Some(c) => match c.split_once(':') {
            Some((user, password)) => (
                (!user.is_empty()).then(|| decode(user)),
                Some(decode(password)),
            ),
            None => (None, Some(decode(c))),
        },
    };
    let port_of = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("{port:?} is not a port"))
    };
    let (host, port) = match host_port.strip_prefix('[') {
        // [IPv6] or [IPv6]:port
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or("an IPv6 address needs its closing ]")?;
            let port = match after {
                "" => 6379,
                after => port_of(after.strip_prefix(':').ok_or("expected :port after ]")?)?,
            };
            (host, port)
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, port_of(port)?),
            None => (host_port, 6379),
        },
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let database = match path.split(['?', '#']).next().unwrap_or("") {
        "" => 0,
        db => db
            .parse::<u32>()
            .map_err(|_| format!("{db:?} is not a database number"))?,
    };
    if path.contains('#') || rest.contains("#insecure") {
        return Err("a URL fragment (#insecure) is not accepted: bff always checks the certificate; trust a private CA with BFF_REDIS_CA_CERT".into());
    }
    Ok(Parts {
        host: host.to_owned(),
        port,
        tls,
        username,
        password,
        database,
    })
}

#[cfg(test)]
mod tests {
    use super::{Parts, parse_url};

    fn parts(
        host: &str,
        port: u16,
        tls: bool,
        user: Option<&str>,
        pw: Option<&str>,
        db: u32,
    ) -> Parts {
        Parts {
            host: host.into(),
            port,
            tls,
            username: user.map(Into::into),
            password: pw.map(Into::into),
            database: db,
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6380/2").unwrap(),
            parts("127.0.0.1", 6380, false, None, None, 2)
        );
        assert_eq!(
            parse_url("redis://redis").unwrap(),
            parts("redis", 6379, false, None, None, 0)
        );
        assert_eq!(
            parse_url("redis://:p%40ss@cache:6379").unwrap(),
            parts("cache", 6379, false, None, Some("p@ss"), 0)
        );
        assert_eq!(
            parse_url("redis://bff:secret@[::1]:7000/1").unwrap(),
            parts("::1", 7000, false, Some("bff"), Some("secret"), 1)
        );
        assert_eq!(
            parse_url("rediss://default:token@cache.example.com:6380/3").unwrap(),
            parts(
                "cache.example.com",
                6380,
                true,
                Some("default"),
                Some("token"),
                3
            )
        );
        assert_eq!(
            parse_url("redis://[::1]").unwrap(),
            parts("::1", 6379, false, None, None, 0)
        );
        assert_eq!(
            parse_url("rediss://[2001:db8::7]:6380/2").unwrap(),
            parts("2001:db8::7", 6380, true, None, None, 2)
        );
        assert!(parse_url("redis://[::1").is_err());
        assert!(parse_url("rediss://cache/#insecure").is_err());
        assert!(parse_url("http://cache").is_err());
        assert!(parse_url("redis://cache:port").is_err());
        assert!(parse_url("redis://cache/x").is_err());
        assert!(parse_url("redis://:pw@/0").is_err());
    }
}
