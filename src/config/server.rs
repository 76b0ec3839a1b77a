//! The HTTP server: `BFF_LISTEN`, `BFF_ENV`, `BFF_METRICS_LISTEN`, `CORS_ALLOWED_ORIGINS`,
//! `BFF_TRUSTED_PROXIES`, `BFF_HEADER_READ_TIMEOUT_MS`, `BFF_REQUEST_TIMEOUT_MS`,
//! `BFF_SHUTDOWN_TIMEOUT_MS`, `BFF_SHUTDOWN_DELAY_MS`, `PORT`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use super::env::{Env, Variable};

/// `BFF_LISTEN`.
pub const LISTEN: Variable = Variable::optional(
    "BFF_LISTEN",
    "address the server binds",
    "0.0.0.0:$PORT when PORT is set, else 127.0.0.1:8080",
);
/// `PORT`.
pub const PORT: Variable = Variable::optional(
    "PORT",
    "the port a PaaS (Heroku, Render, Fly.io, Cloud Run) assigns: with BFF_LISTEN unset, bff listens on 0.0.0.0:PORT",
    "BFF_LISTEN decides",
);
/// `BFF_ENV`.
pub const ENVIRONMENT: Variable = Variable::value(
    "BFF_ENV",
    "development (GraphiQL, introspection) or production",
    "production",
);
/// `BFF_METRICS_LISTEN`.
pub const METRICS_LISTEN: Variable = Variable::optional(
    "BFF_METRICS_LISTEN",
    "address of the Prometheus /metrics listener; never the public port",
    "no metrics listener",
);
/// `CORS_ALLOWED_ORIGINS`.
pub const CORS_ALLOWED_ORIGINS: Variable = Variable::optional(
    "CORS_ALLOWED_ORIGINS",
    "comma-separated origins that may call with credentials (and open WebSockets with cookies)",
    "no cross-origin caller",
);
/// `BFF_TRUSTED_PROXIES`.
pub const TRUSTED_PROXIES: Variable = Variable::optional(
    "BFF_TRUSTED_PROXIES",
    "comma-separated addresses or CIDRs of proxies whose X-Forwarded-For is believed",
    "the TCP peer is the client",
);
/// `BFF_HEADER_READ_TIMEOUT_MS`.
pub const HEADER_READ_TIMEOUT_MS: Variable = Variable::number(
    "BFF_HEADER_READ_TIMEOUT_MS",
    "time to send a request's head, and to keep an idle connection open, in ms",
    10_000,
    100,
    600_000,
);
/// `BFF_REQUEST_TIMEOUT_MS`.
pub const REQUEST_TIMEOUT_MS: Variable = Variable::number(
    "BFF_REQUEST_TIMEOUT_MS",
    "time to read a request's body and answer it, in ms (503 after)",
    30_000,
    100,
    600_000,
);
/// `BFF_SEND_TIMEOUT_MS`.
pub const SEND_TIMEOUT_MS: Variable = Variable::number(
    "BFF_SEND_TIMEOUT_MS",
    "a write to a client that makes no progress this long (it stopped reading) closes its connection, whatever the response (an export, a WebSocket), in ms",
    30_000,
    100,
    600_000,
);
/// `BFF_SHUTDOWN_TIMEOUT_MS`.
pub const SHUTDOWN_TIMEOUT_MS: Variable = Variable::number(
    "BFF_SHUTDOWN_TIMEOUT_MS",
    "on SIGTERM or SIGINT, time for requests in flight before connections are closed, in ms",
    10_000,
    0,
    600_000,
);

/// `BFF_SHUTDOWN_DELAY_MS`.
pub const SHUTDOWN_DELAY_MS: Variable = Variable::number(
    "BFF_SHUTDOWN_DELAY_MS",
    "on SIGTERM, time to keep serving while /readyz answers 503 (draining) so a load balancer stops routing here, in ms; then the shutdown timeout starts",
    0,
    0,
    600_000,
);

/// The variables of this module.
pub const VARIABLES: &[Variable] = &[
    LISTEN,
    PORT,
    ENVIRONMENT,
    METRICS_LISTEN,
    CORS_ALLOWED_ORIGINS,
    TRUSTED_PROXIES,
    HEADER_READ_TIMEOUT_MS,
    REQUEST_TIMEOUT_MS,
    SEND_TIMEOUT_MS,
    SHUTDOWN_TIMEOUT_MS,
    SHUTDOWN_DELAY_MS,
];

/// Whether the server runs for a developer or in production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// GraphiQL at `/graphiql` and introspection enabled.
    Development,
    /// Neither GraphiQL nor introspection.
    Production,
}

/// How long connections and requests may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To send the request head; also how long an idle keep-alive connection stays open.
    pub header_read: Duration,
    /// To read the body and answer.
    pub request: Duration,
    /// For a write to a client to make progress; then the connection is closed.
    pub send: Duration,
    /// After SIGTERM, for requests in flight; then connections are closed.
    pub shutdown: Duration,
    /// After SIGTERM and before `shutdown`: still serving, but `/readyz` answers 503
    /// (draining) and every response closes its connection.
    pub drain_delay: Duration,
}

/// The HTTP server's settings.
#[derive(Clone, Debug)]
pub struct Server {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Development or production.
    pub environment: Environment,
    /// Address of the metrics listener, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Origins allowed to call with credentials.
    pub cors_allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Connection and request timeouts.
    pub timeouts: Timeouts,
}

fn address(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("expected ip:port, got {text:?}"))
}

/// `scheme://host[:port]` with no path: what browsers send in `Origin`.
fn origin(value: &str) -> Result<String, String> {
    let valid = value.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && !rest.contains(['/', '?', '#', ' ', '@'])
    });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not an origin like https://app.example.com"
        ))
    }
}

impl Server {
    /// Reads the variables of this module.
    pub fn read(env: &mut Env) -> Self {
        let listen = read_listen(env);
        let metrics_listen = env.parse(&METRICS_LISTEN, address);
        if metrics_listen.is_some_and(|m| m.port() != 0 && m.port() == listen.port()) {
            env.fail(
                &METRICS_LISTEN,
                "must use another port than BFF_LISTEN: metrics are never served on the public port",
            );
        }
        let environment = env
            .parse(&ENVIRONMENT, |value| match value {
                "production" => Ok(Environment::Production),
                "development" => Ok(Environment::Development),
                other => Err(format!("expected development or production, got {other:?}")),
            })
            .unwrap_or(Environment::Production);
        Server {
            listen,
            environment,
            metrics_listen,
            cors_allowed_origins: env.list(&CORS_ALLOWED_ORIGINS, origin),
            trusted_proxies: env.list(&TRUSTED_PROXIES, |p| {
                p.parse()
                    .map_err(|()| format!("{p:?} is not an IP address or CIDR like 10.0.0.0/8"))
            }),
            timeouts: Timeouts {
                header_read: env.millis(&HEADER_READ_TIMEOUT_MS),
                request: env.millis(&REQUEST_TIMEOUT_MS),
                send: env.millis(&SEND_TIMEOUT_MS),
                shutdown: env.millis(&SHUTDOWN_TIMEOUT_MS),
                drain_delay: env.millis(&SHUTDOWN_DELAY_MS),
            },
        }
    }
}

/// `BFF_LISTEN` alone, or `PORT` when it is unset (for `bff healthcheck` too).
pub fn read_listen(env: &mut Env) -> SocketAddr {
    let port = env.parse(&PORT, |p| {
        p.parse::<u16>()
            .map_err(|_| format!("expected a port number, got {p:?}"))
    });
    env.parse(&LISTEN, address).unwrap_or(match port {
        Some(port) => SocketAddr::from(([0, 0, 0, 0], port)),
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    })
}

/// An address or a CIDR block (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNet {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| ())?,
            None => max,
        };
        if prefix > max {
            return Err(());
        }
        Ok(IpNet { addr, prefix })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpNet {
    /// Whether `ip` is in this block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IpNet;

    #[test]
    fn cidrs_contain_their_addresses() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(
            "fd00::/8"
                .parse::<IpNet>()
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("proxy".parse::<IpNet>().is_err());
    }
}
