//! The photo worker's queries. The worker acts for no viewer, so none of these can be scoped
//! to an owner: they find jobs by id or by status, across all users, and only the worker
//! operations (authenticated by a service token) call them.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{PhotoJob, PhotoJobStatus};
use crate::db::schema::photo_jobs;

/// The owner of a job, whoever it is (for worker operations).
pub async fn owner(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    photo_jobs::table
        .find(id)
        .select(photo_jobs::user_id)
        .first(conn)
        .await
        .optional()
}

/// The status of a job, whoever owns it (for worker operations' error messages).
pub async fn status(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<PhotoJobStatus>> {
    photo_jobs::table
        .find(id)
        .select(photo_jobs::status)
        .first(conn)
        .await
        .optional()
}

/// Moves up to `limit` of the oldest PENDING jobs to PROCESSING. Rows another worker is
/// claiming are skipped (`FOR UPDATE SKIP LOCKED`), so no two workers get the same job.
pub async fn claim(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<PhotoJob>> {
    let mut jobs: Vec<PhotoJob> = diesel::sql_query(
        "UPDATE photo_jobs SET status = 'PROCESSING', started_at = now(), updated_at = now() \
         WHERE id IN (SELECT id FROM photo_jobs WHERE status = 'PENDING' \
                      ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(conn)
    .await?;
    jobs.sort_by_key(|j| (j.created_at, j.id));
    Ok(jobs)
}

/// Finishes a PROCESSING job as COMPLETED or FAILED; `None` when it is not PROCESSING.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    outcome: Outcome<'_>,
) -> QueryResult<Option<PhotoJob>> {
    let (status, download_url, failure_reason) = match outcome {
        Outcome::Completed { download_url } => {
            (PhotoJobStatus::Completed, Some(download_url), None)
        }
        Outcome::Failed { reason } => (PhotoJobStatus::Failed, None, Some(reason)),
    };
    diesel::update(
        photo_jobs::table
            .filter(photo_jobs::id.eq(id))
            .filter(photo_jobs::status.eq(PhotoJobStatus::Processing)),
    )
    .set((
        photo_jobs::status.eq(status),
        photo_jobs::download_url.eq(download_url),
        photo_jobs::failure_reason.eq(failure_reason),
        photo_jobs::finished_at.eq(Some(chrono::Utc::now())),
        photo_jobs::updated_at.eq(diesel::dsl::now),
    ))
    .returning(PhotoJob::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// How a worker finished a job.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    /// Done; the results are at this https URL.
    Completed {
        /// Where to download the results.
        download_url: &'a str,
    },
    /// It could not be done.
    Failed {
        /// Why, for the viewer.
        reason: &'a str,
    },
}
