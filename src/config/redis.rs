//! Limits shared by every instance: `BFF_REDIS_URL`, `BFF_REDIS_TIMEOUT_MS`,
//! `BFF_REDIS_PREFIX`.

use std::time::Duration;

use secrecy::SecretString;

use super::env::{Env, Variable};

/// `BFF_REDIS_URL`.
pub const URL: Variable = Variable::optional(
    "BFF_REDIS_URL",
    "Redis or Valkey holding the rate-limit buckets, the export limit and the automatic persisted queries every instance shares: redis://[[user]:password@]host[:port][/db]",
    "each instance keeps its own",
);
/// `BFF_REDIS_TIMEOUT_MS`.
pub const TIMEOUT_MS: Variable = Variable::number(
    "BFF_REDIS_TIMEOUT_MS",
    "time to connect to Redis, and for each command, in ms; past it the request uses this instance's own limits",
    100,
    5,
    10_000,
);
/// `BFF_REDIS_PREFIX`.
pub const PREFIX: Variable = Variable::value(
    "BFF_REDIS_PREFIX",
    "prefix of every key bff writes to Redis (to share one Redis between deployments)",
    "bff:",
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[URL, TIMEOUT_MS, PREFIX];

/// Where the shared limits live.
#[derive(Clone, Debug)]
pub struct Redis {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// ACL user, for `AUTH user password`.
    pub username: Option<String>,
    /// Password, for `AUTH`.
    pub password: Option<SecretString>,
    /// Logical database (`SELECT`).
    pub database: u32,
    /// Connect and command timeout.
    pub timeout: Duration,
    /// Key prefix.
    pub prefix: String,
}

impl Redis {
    /// Reads the variables of this module; `None` without `BFF_REDIS_URL`.
    pub fn read(env: &mut Env) -> Option<Redis> {
        let timeout = env.millis(&TIMEOUT_MS);
        let prefix = env.text(&PREFIX).unwrap_or_else(|| "bff:".to_owned());
        let parsed = env.parse(&URL, parse_url)?;
        let (host, port, username, password, database) = parsed;
        Some(Redis {
            host,
            port,
            username,
            password: password.map(SecretString::from),
            database,
            timeout,
            prefix,
        })
    }
}

type Parts = (String, u16, Option<String>, Option<String>, u32);

/// `redis://[[user]:password@]host[:port][/db]`.
fn parse_url(url: &str) -> Result<Parts, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let rest = match url.split_once("://") {
        Some(("redis", rest)) => rest,
        Some(("rediss", _)) => {
            return Err(
                "rediss:// (TLS) is not supported: reach Redis over a private network, or through a local TLS tunnel"
                    .into(),
            );
        }
        _ => return Err(format!("expected redis://host[:port][/db], got {url:?}")),
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
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host_port.starts_with('[') => (
            host.trim_start_matches('[').trim_end_matches(']'),
            port.parse::<u16>()
                .map_err(|_| format!("{port:?} is not a port"))?,
        ),
        _ => (
            host_port.trim_start_matches('[').trim_end_matches(']'),
            6379,
        ),
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let database = match path.split('?').next().unwrap_or("") {
        "" => 0,
        db => db
            .parse::<u32>()
            .map_err(|_| format!("{db:?} is not a database number"))?,
    };
    Ok((host.to_owned(), port, username, password, database))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6380/2").unwrap(),
            ("127.0.0.1".into(), 6380, None, None, 2)
        );
        assert_eq!(
            parse_url("redis://redis").unwrap(),
            ("redis".into(), 6379, None, None, 0)
        );
        assert_eq!(
            parse_url("redis://:p%40ss@cache:6379").unwrap(),
            ("cache".into(), 6379, None, Some("p@ss".into()), 0)
        );
        assert_eq!(
            parse_url("redis://bff:secret@[::1]:7000/1").unwrap(),
            (
                "::1".into(),
                7000,
                Some("bff".into()),
                Some("secret".into()),
                1
            )
        );
        assert!(parse_url("rediss://cache").unwrap_err().contains("TLS"));
        assert!(parse_url("http://cache").is_err());
        assert!(parse_url("redis://cache:port").is_err());
        assert!(parse_url("redis://cache/x").is_err());
    }
}
