//! The account export's limits, shared by the handler ([`super::export`]) and the state.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

/// Exports one process runs at once.
pub const CONCURRENT_EXPORTS: usize = 4;
/// Exports a person may start at once; then one per [`EXPORT_EVERY`].
pub const EXPORT_BURST: u32 = 3;
/// How often a person may export once the burst is spent.
pub const EXPORT_EVERY: Duration = Duration::from_secs(60);

/// The export limits of this process.
pub struct Exports {
    /// Each person's bucket.
    pub per_person: DefaultKeyedRateLimiter<String>,
    /// Permits for the exports running in this process.
    pub running: Arc<Semaphore>,
}

impl Default for Exports {
    fn default() -> Self {
        let quota = Quota::with_period(EXPORT_EVERY)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::new(EXPORT_BURST).expect("a non-zero burst"));
        Exports {
            per_person: DefaultKeyedRateLimiter::keyed(quota),
            running: Arc::new(Semaphore::new(CONCURRENT_EXPORTS)),
        }
    }
}
