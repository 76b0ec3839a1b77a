//! The account export's limits, shared by the handler ([`super::export`]) and the state (and,
//! with `BFF_REDIS_URL`, by every instance): each person's bucket, the share of the pool the
//! exports may use, the downloads a process serves at once, and their disk.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

use super::export::spool::Budget;
use crate::config::export::Export as ExportConfig;
use crate::redis::{Quota as SharedQuota, Redis, SharedBuckets};

/// Exports a person may start at once; then one per [`EXPORT_EVERY`].
pub(crate) const EXPORT_BURST: u32 = 3;
/// How often a person may export once the burst is spent.
pub(crate) const EXPORT_EVERY: Duration = Duration::from_secs(60);
/// Downloads one process serves at once (each holds a file and a socket, never a connection).
pub(crate) const CONCURRENT_DOWNLOADS: usize = 256;
/// How long an export waits for one of the pool's connections it may use.
pub(crate) const PRODUCER_WAIT: Duration = Duration::from_secs(20);

/// The connections exports may hold at once: a quarter of the pool, at least one, so GraphQL
/// always keeps the rest whatever the number of people exporting.
pub(crate) fn producers(pool_size: usize) -> usize {
    (pool_size / 4).max(1)
}

/// The export limits: each person's bucket (in Redis when the instances share one, else in
/// this process), this process's connections and downloads, and the spool's disk.
pub struct Exports {
    per_person: DefaultKeyedRateLimiter<String>,
    shared: Option<(Arc<Redis>, SharedBuckets)>,
    /// Permits to read the database for an export: [`producers`] of the pool.
    pub producing: Arc<Semaphore>,
    /// Permits for the downloads in progress.
    pub downloads: Arc<Semaphore>,
    /// Disk the spooled documents may take.
    pub spool: Arc<Budget>,
    /// The time bounds.
    pub config: ExportConfig,
}

impl Exports {
    /// The limits, with each person's bucket in `redis` if given, for a pool of `pool_size`.
    pub fn new(redis: Option<Arc<Redis>>, pool_size: usize, config: ExportConfig) -> Exports {
        let quota = Quota::with_period(EXPORT_EVERY)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(EXPORT_BURST).expect("a non-zero burst"));
        Exports {
            per_person: DefaultKeyedRateLimiter::keyed(quota),
            shared: redis.map(|r| (r, SharedBuckets::default())),
            producing: Arc::new(Semaphore::new(producers(pool_size))),
            downloads: Arc::new(Semaphore::new(CONCURRENT_DOWNLOADS)),
            spool: Arc::new(Budget::new(config.spool_bytes)),
            config,
        }
    }

    /// Takes one export from `user_id`'s bucket, or says how long until it could.
    pub async fn start(&self, user_id: &str) -> Result<(), Duration> {
        if let Some((redis, buckets)) = &self.shared {
            let quota = SharedQuota {
                interval: EXPORT_EVERY,
                burst: EXPORT_BURST,
            };
            match buckets
                .charge(redis, &format!("export:{user_id}"), quota, 1)
                .await
            {
                Some(result) => return result,
                None => crate::metrics::redis_fallback("export"),
            }
        }
        self.per_person
            .check_key(&user_id.to_owned())
            .map_err(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            })
    }
}
