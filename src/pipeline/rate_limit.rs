//! Rate limiting on query cost, not request count: a token bucket (governor's GCRA) per viewer,
//! or per client address for anonymous requests and for requests whose credentials failed.
//! Without `BFF_REDIS_URL` the buckets live in this process: behind a load balancer each
//! instance keeps its own, so a viewer spread over N instances gets up to N times the rate.
//! With it they live in Redis ([`crate::redis::SharedBuckets`], the same GCRA), shared by
//! every instance; while Redis is down each instance falls back to its own.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::limits::RateLimit;
use crate::redis::{Quota as SharedQuota, Redis, SharedBuckets};

/// What a request with credentials that did not authenticate costs at least, so guessing
/// session tokens is slow.
pub(crate) const FAILED_AUTH_COST: u64 = 100;
/// What a document refused by the cost limits costs its client address, so a client looping
/// refused documents is soon answered 429 instead of having each one parsed and measured.
pub(crate) const REFUSED_COST: u64 = 100;

/// Whose bucket a request is charged to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A signed-in viewer, by user id.
    Viewer(String),
    /// An anonymous client, or one whose credentials failed, by address.
    Address(IpAddr),
}

impl Key {
    /// The bucket of a client address; an unknown one (no TCP peer) shares `0.0.0.0`'s.
    pub(crate) fn address(address: Option<IpAddr>) -> Key {
        Key::Address(address.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()))
    }

    /// The bucket's name in Redis, under `namespace`.
    fn shared_name(&self, namespace: &str) -> String {
        match self {
            Key::Viewer(id) => format!("{namespace}:v:{id}"),
            Key::Address(address) => format!("{namespace}:a:{address}"),
        }
    }
}

/// Takes `cost` from `key`'s bucket of `limiter` (nothing when rate limiting is off).
pub(crate) async fn charge(
    limiter: Option<&RateLimiter>,
    key: &Key,
    cost: u64,
) -> Result<(), Duration> {
    match limiter {
        Some(limiter) => limiter.charge(key, cost).await,
        None => Ok(()),
    }
}

/// The buckets: in Redis when shared, else (and while Redis is down) in this process.
pub(crate) struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
    burst: u32,
    checks: AtomicU64,
    shared: Option<(Arc<Redis>, SharedBuckets, SharedQuota)>,
    /// The buckets' names in Redis start with this; it labels fallbacks too.
    namespace: &'static str,
}

impl RateLimiter {
    /// The limiter for the configuration, sharing its buckets through `redis` if given;
    /// `None` when rate limiting is off.
    pub(crate) fn new(config: &RateLimit, redis: Option<Arc<Redis>>) -> Option<RateLimiter> {
        let per_second = u32::try_from(config.per_second).unwrap_or(u32::MAX);
        let per_second = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(u32::try_from(config.burst).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        Some(RateLimiter::with_quota(
            "rate",
            Duration::from_secs(1) / per_second.get(),
            burst,
            redis,
        ))
    }

    /// Buckets of `burst` units refilled one per `every`, named under `namespace` in `redis`.
    pub(crate) fn with_quota(
        namespace: &'static str,
        every: Duration,
        burst: NonZeroU32,
        redis: Option<Arc<Redis>>,
    ) -> RateLimiter {
        let quota = Quota::with_period(every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        RateLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            burst: burst.get(),
            checks: AtomicU64::new(0),
            shared: redis.map(|redis| {
                let quota = SharedQuota {
                    interval: every,
                    burst: burst.get(),
                };
                (redis, SharedBuckets::default(), quota)
            }),
            namespace,
        }
    }

    /// Takes `cost` from `key`'s bucket, or says how long until it could.
    pub(crate) async fn charge(&self, key: &Key, cost: u64) -> Result<(), Duration> {
        if let Some((redis, buckets, quota)) = &self.shared {
            let units = u32::try_from(cost).unwrap_or(u32::MAX);
            match buckets
                .charge(redis, &key.shared_name(self.namespace), *quota, units)
                .await
            {
                Some(result) => return result,
                None => crate::metrics::redis_fallback(self.namespace),
            }
        }
        self.charge_here(key, cost)
    }

    /// [`RateLimiter::charge`] on this process's bucket.
    fn charge_here(&self, key: &Key, cost: u64) -> Result<(), Duration> {
        // Forget buckets that have refilled, now and then, so memory stays bounded by the
        // clients of the last few minutes.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let cost = u32::try_from(cost).unwrap_or(u32::MAX).clamp(1, self.burst);
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_key_n(key, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // Cannot happen: the cost is clamped to the burst.
            Err(_) => Err(Duration::from_secs(1)),
        }
    }

    /// Buckets currently held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_cost_until_the_bucket_is_empty_per_key() {
        let limiter = RateLimiter::new(
            &RateLimit {
                per_second: 1,
                burst: 100,
            },
            None,
        )
        .unwrap();
        let alice = Key::Viewer("alice".into());
        assert_eq!(limiter.charge_here(&alice, 60), Ok(()));
        let wait = limiter.charge_here(&alice, 60).unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(21),
            "{wait:?}"
        );
        assert_eq!(limiter.charge_here(&Key::Viewer("bob".into()), 100), Ok(()));
        assert_eq!(limiter.len(), 2);
        let off = RateLimit {
            per_second: 0,
            burst: 100,
        };
        assert!(RateLimiter::new(&off, None).is_none());
    }
}
