//! The lease sweeper: every quarter lease (at least every 100 ms, at most every 30 s), jobs
//! whose worker vanished go back to PENDING, or fail with a refund on their last attempt (see
//! [`crate::db::photo_jobs::money::sweep_expired_leases`]). Every process sweeps; they do not
//! collide. `claimPhotoJobs` sweeps too, before it claims.

use std::time::Duration;

use crate::config::jobs::Jobs;
use crate::db::pool::DbPool;

/// Sweeps forever (spawn it).
pub async fn sweep_leases(pool: DbPool, jobs: Jobs) {
    let period = (jobs.worker_lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        match crate::db::photo_jobs::money::sweep_expired_leases(
            &mut conn,
            jobs.worker_max_attempts,
        )
        .await
        {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                tracing::info!(requeued, failed, "jobs whose worker's lease expired");
            }
            Err(error) => tracing::warn!(%error, "sweeping expired leases failed"),
        }
    }
}
