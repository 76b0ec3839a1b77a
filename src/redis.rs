//! The Redis (or Valkey) servers the instances share state through: the limits' one
//! (`BFF_REDIS_URL`: the rate limit's and the export limit's buckets) and, optionally, another
//! for automatic persisted query documents (`BFF_APQ_REDIS_URL`).
//!
//! bff speaks to them through the `redis` crate: one multiplexed connection per server,
//! reconnected by its connection manager, over TLS for `rediss://` (rustls; the system's roots
//! or `BFF_REDIS_CA_CERT`), with `AUTH` and `SELECT` from the URL. No reply is parsed here.
//! Every connect and command has the short `BFF_REDIS_TIMEOUT_MS`. When one fails, the
//! instance logs it once, sets its `up` gauge to 0 and answers from its own state
//! ([`Redis::available`] is false) for [`RETRY_AFTER`], then tries again: a request never
//! waits on a Redis known to be down, and the sharing comes back by itself.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, FromRedisValue, IntoConnectionInfo, RedisConnectionInfo};

use crate::config::redis::Redis as RedisConfig;

/// How long an instance uses its own state after Redis failed, before trying it again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a Redis holds for bff, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The rate limit's and the export limit's buckets (`BFF_REDIS_URL`).
    Limits,
    /// Automatic persisted query documents (`BFF_APQ_REDIS_URL`).
    Documents,
}

impl Role {
    /// Its name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Limits => "limits",
            Role::Documents => "documents",
        }
    }
}

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Could not connect (refused, TLS, authentication), or the connection failed.
    #[error("{0}")]
    Unreachable(String),
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Redis answered with an error (out of memory, a wrong type, a script error).
    #[error("Redis answered: {0}")]
    Server(String),
    /// An answer of another shape than the command's.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

impl From<redis::RedisError> for RedisError {
    fn from(error: redis::RedisError) -> Self {
        use redis::ErrorKind;
        if error.is_timeout() {
            return RedisError::Timeout;
        }
        match error.kind() {
            ErrorKind::Server(_) | ErrorKind::Extension => RedisError::Server(error.to_string()),
            ErrorKind::UnexpectedReturnType | ErrorKind::Parse => {
                RedisError::Unexpected(error.to_string())
            }
            _ => RedisError::Unreachable(error.to_string()),
        }
    }
}

/// One shared Redis: its client, its connection (made at the first command), and whether it
/// is up.
pub struct Redis {
    config: RedisConfig,
    role: Role,
    client: Client,
    /// The connection, made at the first command and made afresh after a failure to reach
    /// Redis (a connection that failed to authenticate is not retried by the manager itself).
    manager: Mutex<Option<ConnectionManager>>,
    /// Whether the last attempt failed (so a recovery is logged once, and an outage once).
    down: AtomicBool,
    /// Milliseconds after `epoch` before which Redis is not tried again.
    retry_at: AtomicU64,
    epoch: Instant,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("role", &self.role)
            .field("at", &self.config.describe())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// The Redis of `config` holding `role`'s state; nothing connects until the first command.
    /// The error names a CA file that cannot be read or used.
    pub fn new(config: RedisConfig, role: Role) -> Result<Redis, String> {
        let client = client(&config)?;
        crate::metrics::redis_up(role.as_str(), true);
        Ok(Redis {
            config,
            role,
            client,
            manager: Mutex::new(None),
            down: AtomicBool::new(false),
            retry_at: AtomicU64::new(0),
            epoch: Instant::now(),
        })
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

    fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let mut slot = self.manager.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            // bff retries itself, after [`RETRY_AFTER`], and meanwhile uses its own state.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(RETRY_AFTER);
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    /// Runs `command`, within the timeout; a failure to reach Redis marks it down for
    /// [`RETRY_AFTER`] (logged once per outage); a success after one is logged too.
    pub async fn run<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, RedisError> {
        let sent = async {
            let mut connection = self.connection()?;
            Ok(command.query_async::<T>(&mut connection).await?)
        };
        let result = tokio::time::timeout(self.config.timeout, sent)
            .await
            .unwrap_or(Err(RedisError::Timeout));
        self.observe(&result);
        result
    }

    /// Runs a Lua script (`EVALSHA`, sending the script only when Redis does not have it yet),
    /// within the timeout, like [`Redis::run`].
    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, RedisError> {
        let sent = async {
            let mut connection = self.connection()?;
            let mut invocation = script.prepare_invoke();
            for key in keys {
                invocation.key(*key);
            }
            for arg in args {
                invocation.arg(*arg);
            }
            Ok(invocation.invoke_async::<T>(&mut connection).await?)
        };
        let result = tokio::time::timeout(self.config.timeout, sent)
            .await
            .unwrap_or(Err(RedisError::Timeout));
        self.observe(&result);
        result
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let pong: String = self.run(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(RedisError::Unexpected(pong))
        }
    }

    /// The server's `maxmemory-policy` (from `INFO memory`, which managed services allow
    /// where `CONFIG` is refused); `None` when it does not say.
    pub async fn eviction_policy(&self) -> Result<Option<String>, RedisError> {
        let info: String = self.run(redis::cmd("INFO").arg("memory")).await?;
        Ok(info.lines().find_map(|line| {
            line.strip_prefix("maxmemory_policy:")
                .map(|policy| policy.trim().to_owned())
        }))
    }

    fn observe<T>(&self, result: &Result<T, RedisError>) {
        match result {
            Ok(_) | Err(RedisError::Server(_) | RedisError::Unexpected(_)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(redis = self.role.as_str(), "Redis is back: shared again");
                    crate::metrics::redis_up(self.role.as_str(), true);
                }
            }
            Err(error) => {
                *self.manager.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let retry = self.epoch.elapsed() + RETRY_AFTER;
                self.retry_at
                    .store(retry.as_millis() as u64, Ordering::Relaxed);
                crate::metrics::redis_error(self.role.as_str());
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        redis = self.role.as_str(),
                        at = %self.config.describe(),
                        "Redis is unreachable: each instance uses its own state until it is back"
                    );
                    crate::metrics::redis_up(self.role.as_str(), false);
                }
            }
        }
    }
}

/// The client of `config`: TCP or TLS, with `AUTH` and `SELECT`.
fn client(config: &RedisConfig) -> Result<Client, String> {
    let address = if config.tls {
        ConnectionAddr::TcpTls {
            host: config.host.clone(),
            port: config.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(config.host.clone(), config.port)
    };
    let mut settings = RedisConnectionInfo::default().set_db(i64::from(config.database));
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = config.password() {
        settings = settings.set_password(password);
    }
    let info = address
        .into_connection_info()
        .map_err(|e| e.to_string())?
        .set_redis_settings(settings);
    match (&config.ca_cert, config.tls) {
        (Some(path), true) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("BFF_REDIS_CA_CERT: cannot read {}: {e}", path.display()))?;
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            Client::build_with_tls(info, certificates)
                .map_err(|e| format!("BFF_REDIS_CA_CERT: {}: {e}", path.display()))
        }
        _ => Client::open(info).map_err(|e| e.to_string()),
    }
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
    script: redis::Script,
}

impl Default for SharedBuckets {
    fn default() -> Self {
        SharedBuckets {
            script: redis::Script::new(GCRA),
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
            .invoke::<Vec<i64>>(&self.script, &[&key], &[&interval, &burst, &cost])
            .await;
        match reply {
            Ok(reply) => match reply.as_slice() {
                [1, _] => Some(Ok(())),
                [0, ms] => Some(Err(Duration::from_millis(
                    u64::try_from(*ms).unwrap_or(0).max(1),
                ))),
                other => {
                    tracing::warn!(?other, "unexpected reply from the rate-limit script");
                    None
                }
            },
            Err(error @ (RedisError::Server(_) | RedisError::Unexpected(_))) => {
                tracing::warn!(%error, "the rate-limit script failed");
                None
            }
            Err(_) => None,
        }
    }
}
