//! The Redis (or Valkey) that holds what every instance shares (`BFF_REDIS_URL`): the rate
//! limit's buckets, the export limit's and the automatic persisted queries.
//!
//! bff needs three commands of it (`EVALSHA`/`EVAL` for the buckets, `SET` and `GETEX` for
//! documents), so it speaks RESP itself over a few pooled TCP connections rather than
//! depending on a client library (at most 64 connections at once, 16 kept idle). Every connect
//! and command has the short `BFF_REDIS_TIMEOUT_MS`. When one fails, the instance logs it once, sets `bff_redis_up` to 0
//! and answers from its own limits ([`Redis::available`] is false) for
//! [`RETRY_AFTER`], then tries again: a request never waits on a Redis known to be down, and
//! the shared limits come back by themselves.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use crate::config::redis::Redis as RedisConfig;

/// How long an instance uses its own limits after Redis failed, before trying it again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Idle connections kept.
const IDLE_CONNECTIONS: usize = 16;
/// Connections open at once; a command past them waits (within its timeout) for one.
const MAX_CONNECTIONS: usize = 64;
/// Largest reply accepted (a document is at most a few hundred KB).
const MAX_BULK: usize = 16 * 1024 * 1024;

/// A RESP reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// `$-1` or `*-1`.
    Nil,
    /// `:n`.
    Integer(i64),
    /// `+OK` and the like.
    Status(String),
    /// `$n` bytes.
    Bulk(Vec<u8>),
    /// `*n` replies.
    Array(Vec<Reply>),
    /// `-ERR …`.
    Error(String),
}

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Could not connect, or the connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Redis answered with an error.
    #[error("Redis answered: {0}")]
    Server(String),
    /// An answer that is not RESP, or not the expected shape.
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

/// One connection.
struct Connection {
    stream: BufStream<TcpStream>,
}

impl Connection {
    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Box::pin(read_reply(&mut self.stream)).await
    }
}

async fn read_line(stream: &mut BufStream<TcpStream>) -> Result<String, RedisError> {
    let mut line = Vec::new();
    let n = stream.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(RedisError::Protocol("a line without CRLF".into()));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| RedisError::Protocol("a line that is not UTF-8".into()))
}

async fn read_reply(stream: &mut BufStream<TcpStream>) -> Result<Reply, RedisError> {
    let line = read_line(stream).await?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| RedisError::Protocol(format!("{line:?}")))
    };
    match kind {
        "+" => Ok(Reply::Status(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => Ok(Reply::Integer(number()?)),
        "$" => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_BULK {
                return Err(RedisError::Protocol(format!("a reply of {len} bytes")));
            }
            let mut bytes = vec![0; len + 2];
            stream.read_exact(&mut bytes).await?;
            bytes.truncate(len);
            Ok(Reply::Bulk(bytes))
        }
        "*" => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Nil);
            }
            let mut items = Vec::new();
            for _ in 0..len.min(1024) {
                items.push(Box::pin(read_reply(stream)).await?);
            }
            Ok(Reply::Array(items))
        }
        _ => Err(RedisError::Protocol(format!("{line:?}"))),
    }
}

/// The shared store: a small pool of connections and whether Redis is up.
pub struct Redis {
    config: RedisConfig,
    idle: Mutex<Vec<Connection>>,
    in_use: tokio::sync::Semaphore,
    /// Whether the last attempt failed (so a recovery is logged once, and an outage once).
    down: AtomicBool,
    /// Milliseconds after `epoch` before which Redis is not tried again.
    retry_at: AtomicU64,
    epoch: Instant,
}

impl Redis {
    /// The store of `config`; nothing connects until the first command.
    pub fn new(config: RedisConfig) -> Redis {
        crate::metrics::redis_up(true);
        Redis {
            config,
            idle: Mutex::new(Vec::new()),
            in_use: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
            down: AtomicBool::new(false),
            retry_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The key for `name` under `BFF_REDIS_PREFIX`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.config.prefix)
    }

    /// Whether to ask Redis now: false for [`RETRY_AFTER`] after a failure.
    pub fn available(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        now >= self.retry_at.load(Ordering::Relaxed)
    }

    /// Runs one command on a pooled connection, within the timeout. A failure marks Redis down
    /// for [`RETRY_AFTER`] (logged once per outage); a success after one is logged too.
    pub async fn call(&self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let result = tokio::time::timeout(self.config.timeout, self.call_pooled(args))
            .await
            .unwrap_or(Err(RedisError::Timeout));
        match &result {
            Ok(_) | Err(RedisError::Server(_)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis is back: limits are shared again");
                    crate::metrics::redis_up(true);
                }
            }
            Err(error) => {
                let retry = self.epoch.elapsed() + RETRY_AFTER;
                self.retry_at
                    .store(retry.as_millis() as u64, Ordering::Relaxed);
                crate::metrics::redis_error();
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        host = %self.config.host,
                        port = self.config.port,
                        "Redis is unreachable: each instance uses its own limits until it is back"
                    );
                    crate::metrics::redis_up(false);
                }
            }
        }
        result
    }

    async fn call_pooled(&self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let _permit = self
            .in_use
            .acquire()
            .await
            .map_err(|_| RedisError::Timeout)?;
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (connection, reply) = match pooled {
            Some(mut connection) => match connection.call(args).await {
                Ok(reply) => (connection, reply),
                // A pooled connection Redis closed (it restarted, or timed the connection
                // out): the others are likely dead too. Drop them and try once afresh.
                Err(RedisError::Io(_)) => {
                    self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
                    let mut connection = self.connect().await?;
                    let reply = connection.call(args).await?;
                    (connection, reply)
                }
                Err(error) => return Err(error),
            },
            None => {
                let mut connection = self.connect().await?;
                let reply = connection.call(args).await?;
                (connection, reply)
            }
        };
        // A connection that failed mid-command was dropped above, not returned.
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(connection);
        }
        drop(idle);
        match reply {
            Reply::Error(message) => Err(RedisError::Server(message)),
            reply => Ok(reply),
        }
    }

    async fn connect(&self) -> Result<Connection, RedisError> {
        let stream = TcpStream::connect((self.config.host.as_str(), self.config.port)).await?;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            stream: BufStream::new(stream),
        };
        if let Some(password) = &self.config.password {
            let password = password.expose_secret().as_bytes();
            let reply = match &self.config.username {
                Some(user) => {
                    connection
                        .call(&[b"AUTH", user.as_bytes(), password])
                        .await?
                }
                None => connection.call(&[b"AUTH", password]).await?,
            };
            if let Reply::Error(message) = reply {
                return Err(RedisError::Server(message));
            }
        }
        if self.config.database != 0 {
            let db = self.config.database.to_string();
            if let Reply::Error(message) = connection.call(&[b"SELECT", db.as_bytes()]).await? {
                return Err(RedisError::Server(message));
            }
        }
        Ok(connection)
    }

    /// Runs a Lua script by its SHA-1 (`EVALSHA`), sending it (`EVAL`) only when Redis does not
    /// have it cached yet: one round trip per call once loaded.
    pub async fn eval(
        &self,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Reply, RedisError> {
        let count = keys.len().to_string();
        let mut command: Vec<&[u8]> = vec![b"EVALSHA", script.sha1.as_bytes(), count.as_bytes()];
        command.extend_from_slice(keys);
        command.extend_from_slice(args);
        match self.call(&command).await {
            Err(RedisError::Server(message)) if message.starts_with("NOSCRIPT") => {
                command[0] = b"EVAL";
                command[1] = script.source.as_bytes();
                self.call(&command).await
            }
            other => other,
        }
    }
}

/// A Lua script and its SHA-1, for [`Redis::eval`].
pub struct Script {
    source: &'static str,
    sha1: String,
}

impl Script {
    /// The script `source`.
    pub fn new(source: &'static str) -> Script {
        Script {
            source,
            sha1: sha1_hex(source.as_bytes()),
        }
    }
}

/// SHA-1 in hex: the name Redis caches a script under (not used for anything secret).
fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The GCRA token bucket, in Redis, with Redis's own clock (so instances' clocks do not
/// matter): `KEYS[1]` holds the bucket's theoretical arrival time in µs; `ARGV` is the µs per
/// unit of cost, the burst in units and the cost. Answers `{1, 0}` when admitted, else
/// `{0, ms to wait}`.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, math.ceil((allow_at - now) / 1000)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
";

/// A bucket's shape: it refills one unit every `interval` and holds `burst` units.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// Time to refill one unit.
    pub interval: Duration,
    /// Units the bucket holds.
    pub burst: u32,
}

/// Token buckets in Redis ([`GCRA`]).
pub struct SharedBuckets {
    script: Script,
}

impl Default for SharedBuckets {
    fn default() -> Self {
        SharedBuckets {
            script: Script::new(GCRA),
        }
    }
}

impl SharedBuckets {
    /// Takes `cost` units from the bucket `key` in Redis: `Some(Ok)` admitted, `Some(Err(wait))`
    /// refused, `None` when Redis cannot answer (the caller uses its own bucket).
    pub async fn charge(
        &self,
        redis: &Redis,
        key: &str,
        quota: Quota,
        cost: u32,
    ) -> Option<Result<(), Duration>> {
        if !redis.available() {
            return None;
        }
        let key = redis.key(key);
        let interval = format!("{:.3}", quota.interval.as_secs_f64() * 1e6);
        let burst = quota.burst.to_string();
        let cost = cost.min(quota.burst).max(1).to_string();
        let reply = redis
            .eval(
                &self.script,
                &[key.as_bytes()],
                &[interval.as_bytes(), burst.as_bytes(), cost.as_bytes()],
            )
            .await;
        match reply {
            Ok(Reply::Array(items)) => match items.as_slice() {
                [Reply::Integer(1), _] => Some(Ok(())),
                [Reply::Integer(0), Reply::Integer(ms)] => Some(Err(Duration::from_millis(
                    u64::try_from(*ms).unwrap_or(0).max(1),
                ))),
                _ => None,
            },
            Ok(other) => {
                tracing::warn!(?other, "unexpected reply from the rate-limit script");
                None
            }
            Err(RedisError::Server(message)) => {
                tracing::warn!(%message, "the rate-limit script failed");
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sha1_hex;

    #[test]
    fn sha1_matches_known_digests() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(b"The quick brown fox jumps over the lazy dog"),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(sha1_hex(&long), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    }
}
