//! The photo worker's queries. The worker acts for no viewer, so none of these can be scoped
//! to an owner: they find jobs by id or by status, across all users, and only the worker
//! operations (authenticated by a service token) call them.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{PhotoJob, PhotoJobStatus};
use crate::db::schema::photo_jobs;

/// The owner of a job, whoever it is (for worker operations).
pub(crate) async fn owner(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    photo_jobs::table
        .find(id)
        .select(photo_jobs::user_id)
        .first(conn)
        .await
        .optional()
}

/// The status of a job, whoever owns it (for worker operations' error messages).
pub(crate) async fn status(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<PhotoJobStatus>> {
    photo_jobs::table
        .find(id)
        .select(photo_jobs::status)
        .first(conn)
        .await
        .optional()
}

/// A PROCESSING job, locked until the transaction ends; `None` in any other state.
pub(crate) async fn lock_processing(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<PhotoJob>> {
    photo_jobs::table
        .filter(photo_jobs::id.eq(id))
        .filter(photo_jobs::status.eq(PhotoJobStatus::Processing))
        .select(PhotoJob::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Moves up to `limit` of the oldest PENDING jobs to PROCESSING, leased for `lease`, and
/// counts the attempt. Rows another worker is claiming are skipped (`FOR UPDATE SKIP
/// LOCKED`), so no two workers get the same job. Jobs of people whose ban holds wait: they are
/// claimed when the ban ends or is lifted (support may fail or refund them meanwhile).
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
) -> QueryResult<Vec<PhotoJob>> {
    let mut jobs: Vec<PhotoJob> = diesel::sql_query(
        "UPDATE photo_jobs SET status = 'PROCESSING', started_at = now(), updated_at = now(), \
                lease_expires_at = now() + $2 * interval '1 millisecond', attempts = attempts + 1 \
         WHERE id IN (SELECT j.id FROM photo_jobs j WHERE j.status = 'PENDING' \
                        AND NOT EXISTS (SELECT 1 FROM \"user\" u WHERE u.id = j.user_id \
                                        AND bff_ban_in_force(u.banned, u.\"banExpires\")) \
                      ORDER BY j.created_at, j.id LIMIT $1 FOR UPDATE OF j SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(millis(lease))
    .load(conn)
    .await?;
    jobs.sort_by_key(|j| (j.created_at, j.id));
    Ok(jobs)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a worker reports of a job it processes: photos done of a total, and a stage name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Photos done.
    pub done: i32,
    /// Of how many (at least 1, at least `done`).
    pub total: i32,
    /// Where it is, in the worker's words.
    pub stage: Option<String>,
}

/// Extends a PROCESSING job's lease to `lease` from now, and records `progress` when it moves
/// forward (`bff_progress_forward`: a late or repeated report is ignored); `None` when the
/// job is not PROCESSING.
pub(crate) async fn heartbeat(
    conn: &mut AsyncPgConnection,
    id: i64,
    lease: Duration,
    progress: Option<&Progress>,
) -> QueryResult<Option<PhotoJob>> {
    use diesel::sql_types::{Nullable, Text};
    // Each column's CASE reads the row as locked, so two heartbeats racing keep the larger.
    diesel::sql_query(
        "UPDATE photo_jobs SET lease_expires_at = now() + $2 * interval '1 millisecond', \
                progress_stage = CASE WHEN bff_progress_forward(progress_done, progress_total, $3, $4) \
                                 THEN $5 ELSE progress_stage END, \
                progress_at = CASE WHEN bff_progress_forward(progress_done, progress_total, $3, $4) \
                              THEN now() ELSE progress_at END, \
                progress_total = CASE WHEN bff_progress_forward(progress_done, progress_total, $3, $4) \
                                 THEN $4 ELSE progress_total END, \
                progress_done = CASE WHEN bff_progress_forward(progress_done, progress_total, $3, $4) \
                                THEN $3 ELSE progress_done END \
         WHERE id = $1 AND status = 'PROCESSING' RETURNING *",
    )
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(millis(lease))
    .bind::<Nullable<Integer>, _>(progress.map(|p| p.done))
    .bind::<Nullable<Integer>, _>(progress.map(|p| p.total))
    .bind::<Nullable<Text>, _>(progress.and_then(|p| p.stage.clone()))
    .get_result(conn)
    .await
    .optional()
}

/// Returns up to 100 jobs whose lease has expired and that have been claimed fewer than
/// `max_attempts` times to PENDING, for another worker; their ids.
pub(crate) async fn requeue_expired(
    conn: &mut AsyncPgConnection,
    max_attempts: i32,
) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    // The WHERE is checked again on each locked row: a heartbeat that won the race keeps it.
    let ids: Vec<Id> = diesel::sql_query(
        "UPDATE photo_jobs SET status = 'PENDING', started_at = NULL, lease_expires_at = NULL, \
                updated_at = now() \
         WHERE id IN (SELECT id FROM photo_jobs \
                      WHERE status = 'PROCESSING' AND lease_expires_at < now() AND attempts < $1 \
                      ORDER BY lease_expires_at LIMIT 100 FOR UPDATE SKIP LOCKED) \
           AND status = 'PROCESSING' AND lease_expires_at < now() \
         RETURNING id",
    )
    .bind::<Integer, _>(max_attempts)
    .load(conn)
    .await?;
    Ok(ids.into_iter().map(|i| i.id).collect())
}

/// Up to 100 jobs whose lease has expired on their last allowed attempt: to be failed and
/// refunded, with their owners.
pub(crate) async fn exhausted(
    conn: &mut AsyncPgConnection,
    max_attempts: i32,
) -> QueryResult<Vec<(i64, String)>> {
    photo_jobs::table
        .filter(photo_jobs::status.eq(PhotoJobStatus::Processing))
        .filter(photo_jobs::lease_expires_at.lt(diesel::dsl::now))
        .filter(photo_jobs::attempts.ge(max_attempts))
        .order(photo_jobs::lease_expires_at)
        .limit(100)
        .select((photo_jobs::id, photo_jobs::user_id))
        .load(conn)
        .await
}

/// Fails a job whose lease has expired on its last attempt (the caller holds its owner's
/// account lock); `None` if it no longer is one (finished, or its lease extended meanwhile).
pub(crate) async fn fail_exhausted(
    conn: &mut AsyncPgConnection,
    id: i64,
    max_attempts: i32,
    reason: &str,
) -> QueryResult<Option<PhotoJob>> {
    diesel::update(
        photo_jobs::table
            .filter(photo_jobs::id.eq(id))
            .filter(photo_jobs::status.eq(PhotoJobStatus::Processing))
            .filter(photo_jobs::lease_expires_at.lt(diesel::dsl::now))
            .filter(photo_jobs::attempts.ge(max_attempts)),
    )
    .set((
        photo_jobs::status.eq(PhotoJobStatus::Failed),
        photo_jobs::failure_reason.eq(reason),
        photo_jobs::lease_expires_at.eq(None::<chrono::DateTime<chrono::Utc>>),
        photo_jobs::finished_at.eq(Some(chrono::Utc::now())),
        photo_jobs::updated_at.eq(diesel::dsl::now),
    ))
    .returning(PhotoJob::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Finishes a PROCESSING job as COMPLETED or FAILED; `None` when it is not PROCESSING.
pub(crate) async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    outcome: Outcome<'_>,
) -> QueryResult<Option<PhotoJob>> {
    let (status, download_url, result_key, failure_reason) = match outcome {
        Outcome::Completed {
            download_url,
            result_key,
        } => (PhotoJobStatus::Completed, download_url, result_key, None),
        Outcome::Failed { reason } => (PhotoJobStatus::Failed, None, None, Some(reason)),
    };
    diesel::update(
        photo_jobs::table
            .filter(photo_jobs::id.eq(id))
            .filter(photo_jobs::status.eq(PhotoJobStatus::Processing)),
    )
    .set((
        photo_jobs::status.eq(status),
        photo_jobs::download_url.eq(download_url),
        photo_jobs::result_key.eq(result_key),
        photo_jobs::failure_reason.eq(failure_reason),
        photo_jobs::finished_at.eq(Some(chrono::Utc::now())),
        photo_jobs::updated_at.eq(diesel::dsl::now),
        photo_jobs::lease_expires_at.eq(None::<chrono::DateTime<chrono::Utc>>),
    ))
    .returning(PhotoJob::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// How a worker finished a job.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome<'a> {
    /// Done: the result is in storage (`result_key`) or, without storage, at an https URL.
    Completed {
        /// Where to download the result (without storage).
        download_url: Option<&'a str>,
        /// The result object's key (with storage).
        result_key: Option<&'a str>,
    },
    /// It could not be done.
    Failed {
        /// Why, for the viewer.
        reason: &'a str,
    },
}
