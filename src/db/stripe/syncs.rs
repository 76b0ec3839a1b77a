//! The runs of the reconciliation with Stripe's event list (`stripe_syncs`), and the lock
//! that lets one process at a time run it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The advisory lock a sync holds (`'bff-stri'` as a number).
const SYNC_LOCK: i64 = 0x6266_662d_7374_7269;
/// How far before the last successful run's start the next run lists again: an event may show
/// up in Stripe's list a little after its `created` instant.
pub(crate) const OVERLAP_SECONDS: i64 = 600;
/// How far back Stripe keeps events.
pub(crate) const STRIPE_RETENTION_DAYS: i64 = 30;

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    value: bool,
}

#[derive(QueryableByName)]
struct Instant {
    #[diesel(sql_type = Timestamptz)]
    value: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct MaybeInstant {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    value: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct Known {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Takes the sync lock for this session: waiting for it when `wait`, else `false` when another
/// process holds it. Released by [`unlock`] or when the connection closes.
pub(crate) async fn lock(conn: &mut AsyncPgConnection, wait: bool) -> QueryResult<bool> {
    if wait {
        diesel::sql_query(format!("SELECT pg_advisory_lock({SYNC_LOCK})"))
            .execute(conn)
            .await?;
        return Ok(true);
    }
    let row: Flag = diesel::sql_query(format!("SELECT pg_try_advisory_lock({SYNC_LOCK}) AS value"))
        .get_result(conn)
        .await?;
    Ok(row.value)
}

/// Releases the sync lock.
pub(crate) async fn unlock(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_advisory_unlock({SYNC_LOCK})"))
        .execute(conn)
        .await
        .map(drop)
}

/// When the last successful run started, if one did.
pub(crate) async fn last_success(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Option<DateTime<Utc>>> {
    let row: MaybeInstant =
        diesel::sql_query("SELECT max(started_at) AS value FROM stripe_syncs WHERE succeeded")
            .get_result(conn)
            .await?;
    Ok(row.value)
}

/// Whether a run is due: none succeeded within `interval`, and none at all was started within
/// `retry` (a failing run is retried that often, not at every tick).
pub(crate) async fn due(
    conn: &mut AsyncPgConnection,
    interval: std::time::Duration,
    retry: std::time::Duration,
) -> QueryResult<bool> {
    let row: Flag = diesel::sql_query(
        "SELECT NOT EXISTS (SELECT 1 FROM stripe_syncs WHERE succeeded \
                              AND started_at > now() - make_interval(secs => $1)) \
            AND NOT EXISTS (SELECT 1 FROM stripe_syncs \
                              WHERE started_at > now() - make_interval(secs => $2)) AS value",
    )
    .bind::<diesel::sql_types::Double, _>(interval.as_secs_f64())
    .bind::<diesel::sql_types::Double, _>(retry.as_secs_f64())
    .get_result(conn)
    .await?;
    Ok(row.value)
}

/// Starts a run (and forgets runs older than 90 days): its id and the instant from which it
/// lists — the last successful run's start less [`OVERLAP_SECONDS`], or Stripe's whole
/// retention when none succeeded or `full`.
pub(crate) async fn start(
    conn: &mut AsyncPgConnection,
    full: bool,
) -> QueryResult<(i64, DateTime<Utc>)> {
    diesel::sql_query("DELETE FROM stripe_syncs WHERE started_at < now() - interval '90 days'")
        .execute(conn)
        .await?;
    let since: Instant = diesel::sql_query(format!(
        "SELECT GREATEST(now() - interval '{STRIPE_RETENTION_DAYS} days', \
             CASE WHEN $1 THEN NULL ELSE \
               (SELECT max(started_at) FROM stripe_syncs WHERE succeeded) \
                 - interval '{OVERLAP_SECONDS} seconds' END) AS value"
    ))
    .bind::<Bool, _>(full)
    .get_result(conn)
    .await?;
    let id: Id = diesel::sql_query(
        "INSERT INTO stripe_syncs (listed_since) VALUES ($1) RETURNING id AS value",
    )
    .bind::<Timestamptz, _>(since.value)
    .get_result(conn)
    .await?;
    Ok((id.value, since.value))
}

/// What a run came to.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Events Stripe listed.
    pub listed: usize,
    /// Events applied that had never been processed.
    pub recovered: usize,
    /// Events that could not be applied (left for the next run).
    pub failed: usize,
}

/// Ends run `id`: it succeeded when `error` is `None` and no event failed.
pub(crate) async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    counts: &Counts,
    error: Option<&str>,
) -> QueryResult<()> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    diesel::sql_query(
        "UPDATE stripe_syncs SET finished_at = now(), succeeded = $2, events_listed = $3, \
             events_recovered = $4, events_failed = $5, error = $6 WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Bool, _>(error.is_none() && counts.failed == 0)
    .bind::<Integer, _>(count(counts.listed))
    .bind::<Integer, _>(count(counts.recovered))
    .bind::<Integer, _>(count(counts.failed))
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await
    .map(drop)
}

/// Which of `ids` were processed before.
pub(crate) async fn processed(
    conn: &mut AsyncPgConnection,
    ids: &[String],
) -> QueryResult<Vec<String>> {
    let rows: Vec<Known> = diesel::sql_query("SELECT id FROM stripe_events WHERE id = ANY($1)")
        .bind::<Array<Text>, _>(ids)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}
