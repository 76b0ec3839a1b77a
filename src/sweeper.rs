//! The sweepers. Leases: every quarter lease (at least every 100 ms, at most every 30 s), jobs
//! whose worker vanished go back to PENDING, or fail with a refund on their last attempt (see
//! [`crate::db::photo_jobs::money::sweep_expired_leases`]). Every process sweeps; they do not
//! collide. `claimPhotoJobs` sweeps too, before it claims.

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::config::jobs::Jobs;
use crate::db::account;
use crate::db::pool::DbPool;
use crate::db::uploads;
use crate::storage::Store;
use crate::tasks::Stop;

/// Sweeps until the process stops.
pub(crate) async fn sweep_leases(pool: DbPool, jobs: Jobs, mut stop: Stop) {
    let period = (jobs.worker_lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.tick(&mut ticks).await {
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

/// How often a viewer's old changes are pruned.
const CHANGES_PRUNE_PERIOD: Duration = Duration::from_secs(600);

/// Prunes viewers' changes older than `hours` every ten minutes until the process stops
/// (every process does; the deletes do not collide).
pub(crate) async fn prune_changes(pool: DbPool, hours: i64, mut stop: Stop) {
    let first = tokio::time::Instant::now() + CHANGES_PRUNE_PERIOD;
    let mut ticks = tokio::time::interval_at(first, CHANGES_PRUNE_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.tick(&mut ticks).await {
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        match crate::db::changes::prune(&mut conn, hours).await {
            Ok(0) => {}
            Ok(viewers) => tracing::debug!(viewers, "pruned viewers' old changes"),
            Err(error) => tracing::warn!(%error, "pruning viewers' changes failed"),
        }
    }
}

/// How often the storage sweeper looks for work.
pub(crate) const STORAGE_SWEEP_PERIOD: Duration = Duration::from_secs(2);
/// How long a sweeper holds the deletions it took before another may retry them.
const DELETION_LEASE: Duration = Duration::from_secs(120);
/// The longest wait between two attempts at one deletion.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The wait after attempt `attempts` failed: 2 s, 4 s, … at most [`MAX_BACKOFF`].
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 12)).unwrap_or(12);
    (Duration::from_secs(1) * 2u32.pow(exponent)).min(MAX_BACKOFF)
}

/// Sweeps storage until the process stops: deletes uploads no job claimed within `unattached`
/// (which queues their objects), then deletes the queued objects that are due. A deletion
/// that fails (storage down, credentials refused) is retried with a growing backoff (2 s,
/// 4 s, … at most an hour); one taken by a process that died is retried when its lease ends.
/// Nothing is lost: the queue is a table written in the transaction that deleted the row.
pub(crate) async fn sweep_storage(
    pool: DbPool,
    store: Arc<Store>,
    unattached: Duration,
    mut stop: Stop,
) {
    let mut ticks = tokio::time::interval(STORAGE_SWEEP_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.tick(&mut ticks).await {
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        if let Err(error) = sweep_storage_once(&mut conn, &store, unattached).await {
            tracing::warn!(%error, "sweeping storage failed");
        }
    }
}

/// One pass of [`sweep_storage`]; (uploads expired, objects deleted).
pub(crate) async fn sweep_storage_once(
    conn: &mut AsyncPgConnection,
    store: &Store,
    unattached: Duration,
) -> QueryResult<(usize, usize)> {
    let expired = uploads::expire_unattached(conn, unattached).await?;
    if expired > 0 {
        crate::metrics::uploads_expired(expired);
        tracing::info!(expired, "deleted uploads no job claimed in time");
    }
    let mut deleted = 0;
    loop {
        let due = uploads::claim_deletions(conn, 50, DELETION_LEASE).await?;
        if due.is_empty() {
            break;
        }
        let results =
            futures_util::future::join_all(due.iter().map(|d| store.delete(&d.object_key))).await;
        let mut failed = 0;
        for (deletion, result) in due.iter().zip(results) {
            match result {
                Ok(()) => {
                    uploads::deletion_done(conn, deletion.id).await?;
                    deleted += 1;
                }
                Err(error) => {
                    failed += 1;
                    let backoff = backoff(deletion.attempts);
                    uploads::deletion_failed(conn, deletion.id, &error.to_string(), backoff)
                        .await?;
                    tracing::warn!(key = %deletion.object_key, attempts = deletion.attempts, %error, "deleting an object failed; will retry");
                }
            }
        }
        crate::metrics::storage_deletion("deleted", due.len() - failed);
        if failed > 0 {
            crate::metrics::storage_deletion("failed", failed);
            break;
        }
    }
    Ok((expired, deleted))
}

/// How often the account clean-up sweeper looks for work.
pub(crate) const CLEANUP_SWEEP_PERIOD: Duration = Duration::from_secs(2);

/// Does the Stripe clean-up of deleted accounts until the process stops: cancels their subscriptions,
/// deletes their customers, expires their open checkouts and refunds what was paid after the
/// deletion ([`crate::stripe::returns::perform`]). What is already so counts as done; any other
/// failure (Stripe down, a key without the permission) is retried with a growing backoff
/// (2 s, 4 s, … at most an hour). Nothing is lost: the queue is a table written by the
/// deletion's transaction.
pub(crate) async fn sweep_account_cleanups(
    pool: DbPool,
    stripe: crate::stripe::StripeClient,
    mut stop: Stop,
) {
    let mut ticks = tokio::time::interval(CLEANUP_SWEEP_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.tick(&mut ticks).await {
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        if let Err(error) = sweep_account_cleanups_once(&mut conn, &stripe).await {
            tracing::warn!(%error, "sweeping account clean-ups failed");
        }
    }
}

/// One pass of [`sweep_account_cleanups`]: how many clean-ups were done.
pub(crate) async fn sweep_account_cleanups_once(
    conn: &mut AsyncPgConnection,
    stripe: &crate::stripe::StripeClient,
) -> QueryResult<usize> {
    let mut done = 0;
    loop {
        let due = account::claim_cleanups(conn, 20, DELETION_LEASE).await?;
        if due.is_empty() {
            return Ok(done);
        }
        let mut failed = 0;
        for cleanup in &due {
            let performed =
                crate::stripe::returns::perform(stripe, cleanup.action, &cleanup.stripe_id).await;
            match performed {
                Ok(performed) => {
                    if let crate::stripe::returns::Performed::Completed(session) = performed {
                        conn.transaction(async |conn| {
                            crate::stripe::returns::paid_before_expiry(conn, &session).await
                        })
                        .await?;
                    }
                    account::cleanup_done(conn, cleanup).await?;
                    crate::metrics::account_cleanup(cleanup.action.as_db(), "done");
                    done += 1;
                }
                Err(error) => {
                    failed += 1;
                    let backoff = backoff(cleanup.attempts);
                    account::cleanup_failed(conn, cleanup, &error.to_string(), backoff).await?;
                    crate::metrics::account_cleanup(cleanup.action.as_db(), "failed");
                    tracing::warn!(action = %cleanup.action, attempts = cleanup.attempts, %error, "a Stripe clean-up after an account deletion failed; will retry");
                }
            }
        }
        if failed > 0 {
            return Ok(done);
        }
    }
}
