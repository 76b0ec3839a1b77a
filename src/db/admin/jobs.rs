//! Photo jobs across people, as support sees and mends them: listed by status (a job "stuck"
//! is PROCESSING past its lease), failed and refunded, refunded after a bad result, or put
//! back in the queue. Each write takes the owner's account lock first, as every money path
//! does, then locks the job.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::credits::CreditAccount;
use crate::db::pagination::Cursor;
use crate::db::photo_jobs::{PhotoJob, PhotoJobStatus};
use crate::db::request::Db;
use crate::db::schema::{credit_ledger, photo_jobs};

/// Which jobs to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// In this status.
    Status(PhotoJobStatus),
    /// PROCESSING with its lease expired: its worker stopped heartbeating.
    Stuck,
}

/// Up to `limit` jobs of everyone (or of `owner`), newest first, after `after`, in `filter`,
/// created since `since` when given.
pub(crate) async fn page(
    conn: &mut impl Db,
    owner: Option<&str>,
    filter: Option<Filter>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    after: Option<Cursor>,
    limit: i64,
) -> QueryResult<Vec<PhotoJob>> {
    let mut query = photo_jobs::table
        .select(PhotoJob::as_select())
        .order((photo_jobs::created_at.desc(), photo_jobs::id.desc()))
        .limit(limit)
        .into_boxed();
    match filter {
        Some(Filter::Status(status)) => query = query.filter(photo_jobs::status.eq(status)),
        Some(Filter::Stuck) => {
            query = query
                .filter(photo_jobs::status.eq(PhotoJobStatus::Processing))
                .filter(photo_jobs::lease_expires_at.lt(diesel::dsl::now));
        }
        None => {}
    }
    if let Some(owner) = owner {
        query = query.filter(photo_jobs::user_id.eq(owner));
    }
    if let Some(since) = since {
        query = query.filter(photo_jobs::created_at.ge(since));
    }
    if let Some(c) = after {
        query = query.filter(
            photo_jobs::created_at
                .lt(c.created_at)
                .or(photo_jobs::created_at
                    .eq(c.created_at)
                    .and(photo_jobs::id.lt(c.id))),
        );
    }
    query.load(conn).await
}

/// Job `id`, its owner's account locked and then the job itself (`None`: no such job).
pub(crate) async fn lock(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<PhotoJob>> {
    let Some(owner) = crate::db::photo_jobs::worker::owner(conn, id).await? else {
        return Ok(None);
    };
    CreditAccount::lock(conn, &owner).await?;
    photo_jobs::table
        .find(id)
        .select(PhotoJob::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Whether job `id` has had its credits refunded.
pub(crate) async fn refunded(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        credit_ledger::table
            .filter(credit_ledger::photo_job_id.eq(id))
            .filter(credit_ledger::kind.eq(crate::db::credits::CreditTransactionKind::JobRefund)),
    ))
    .get_result(conn)
    .await
}

/// Moves a PENDING or PROCESSING job (locked by [`lock`]) to FAILED with `reason` for the
/// person to read; the caller refunds it in the same transaction.
pub(crate) async fn fail(
    conn: &mut AsyncPgConnection,
    id: i64,
    reason: &str,
) -> QueryResult<PhotoJob> {
    diesel::update(photo_jobs::table.find(id))
        .set((
            photo_jobs::status.eq(PhotoJobStatus::Failed),
            photo_jobs::failure_reason.eq(reason),
            photo_jobs::finished_at.eq(diesel::dsl::now),
            photo_jobs::updated_at.eq(diesel::dsl::now),
            photo_jobs::lease_expires_at.eq(None::<chrono::DateTime<chrono::Utc>>),
        ))
        .returning(PhotoJob::as_returning())
        .get_result(conn)
        .await
}

/// Puts a PROCESSING job (locked by [`lock`]) back in the queue for another worker, its
/// attempts counted afresh; its charge stands.
pub(crate) async fn requeue(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<PhotoJob> {
    diesel::update(photo_jobs::table.find(id))
        .set((
            photo_jobs::status.eq(PhotoJobStatus::Pending),
            photo_jobs::started_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            photo_jobs::lease_expires_at.eq(None::<chrono::DateTime<chrono::Utc>>),
            photo_jobs::attempts.eq(0),
            photo_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(PhotoJob::as_returning())
        .get_result(conn)
        .await
}
