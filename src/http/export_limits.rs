//! The account export's limits, shared by the handler ([`super::export`]) and the state (and,
//! with `BFF_REDIS_URL`, by every instance).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

use crate::redis::{Quota as SharedQuota, Redis, SharedBuckets};

/// Exports one process runs at once.
pub const CONCURRENT_EXPORTS: usize = 4;
/// Exports a person may start at once; then one per [`EXPORT_EVERY`].
pub const EXPORT_BURST: u32 = 3;
/// How often a person may export once the burst is spent.
pub const EXPORT_EVERY: Duration = Duration::from_secs(60);

/// The export limits: each person's bucket (in Redis when the instances share one, else in
/// this process), and this process's permits.
pub struct Exports {
    per_person: DefaultKeyedRateLimiter<String>,
    shared: Option<(Arc<Redis>, SharedBuckets)>,
    /// Permits for the exports running in this process.
    pub running: Arc<Semaphore>,
}

impl Exports {
    /// The limits, with each person's bucket in `redis` if given.
    pub fn new(redis: Option<Arc<Redis>>) -> Exports {
        Exports {
            shared: redis.map(|r| (r, SharedBuckets::default())),
            ..Exports::default()
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

impl Default for Exports {
    fn default() -> Self {
        let quota = Quota::with_period(EXPORT_EVERY)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(EXPORT_BURST).expect("a non-zero burst"));
        Exports {
            per_person: DefaultKeyedRateLimiter::keyed(quota),
            shared: None,
            running: Arc::new(Semaphore::new(CONCURRENT_EXPORTS)),
        }
    }
}
