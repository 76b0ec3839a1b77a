//! Photo jobs, always read through their owner.

use crate::db::states::db_enum;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::pagination::Cursor;
use crate::db::schema::photo_jobs;

pub(crate) mod money;
pub(crate) mod worker;

db_enum! {
    /// Where a photo job is in its life.
    PhotoJobStatus {
        /// Paid for and waiting for a worker.
        Pending => "PENDING",
        /// A worker is processing it.
        Processing => "PROCESSING",
        /// Done: `downloadUrl` has the results.
        Completed => "COMPLETED",
        /// Processing failed (see `failureReason`); its credits were refunded.
        Failed => "FAILED",
        /// Canceled before processing; its credits were refunded.
        Canceled => "CANCELED",
    }
}

/// A photo-processing job.
#[derive(Queryable, QueryableByName, Selectable, Clone, Debug)]
#[diesel(table_name = photo_jobs, check_for_backend(Pg))]
pub struct PhotoJob {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: String,
    /// What to do with the photos.
    pub prompt: String,
    /// How many photos.
    pub photo_count: i32,
    /// Credits charged, in cents.
    pub cost_cents: i64,
    /// Photos paid from the free allowance.
    pub free_photos_applied: i32,
    /// `PENDING`, `PROCESSING`, `COMPLETED`, `FAILED` or `CANCELED`.
    pub status: PhotoJobStatus,
    /// Where the results are, once completed.
    pub download_url: Option<String>,
    /// The viewer's label.
    pub group_name: Option<String>,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Processing started.
    pub started_at: Option<DateTime<Utc>>,
    /// Completed, failed or canceled.
    pub finished_at: Option<DateTime<Utc>>,
    /// While PROCESSING: when its worker's lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// How many times a worker has claimed it.
    pub attempts: i32,
    /// Once COMPLETED with storage: the key of its result object.
    pub result_key: Option<String>,
    /// While PROCESSING, once its worker reported it: photos done.
    pub progress_done: Option<i32>,
    /// ... of how many.
    pub progress_total: Option<i32>,
    /// ... and the stage the worker named, if any.
    pub progress_stage: Option<String>,
    /// ... as of when.
    pub progress_at: Option<DateTime<Utc>>,
}

/// Which of the viewer's jobs a list shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these statuses (any when `None`).
    pub statuses: Option<Vec<PhotoJobStatus>>,
    /// Only this group (any when `None`).
    pub group_name: Option<String>,
}

type BoxedJobs<'a> = photo_jobs::BoxedQuery<'a, Pg>;

impl PhotoJob {
    /// The position of this job in the newest-first list.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id,
        }
    }

    fn owned_by<'a>(user_id: &'a str, filter: &'a Filter) -> BoxedJobs<'a> {
        let mut query = photo_jobs::table
            .filter(photo_jobs::user_id.eq(user_id))
            .into_boxed();
        if let Some(statuses) = &filter.statuses {
            query = query.filter(photo_jobs::status.eq_any(statuses));
        }
        if let Some(group) = &filter.group_name {
            query = query.filter(photo_jobs::group_name.eq(group));
        }
        query
    }

    /// The user's jobs matching `filter`, newest first, strictly after `after`.
    fn newest_after<'a>(
        user_id: &'a str,
        filter: &'a Filter,
        after: Option<Cursor>,
    ) -> BoxedJobs<'a> {
        let mut query = Self::owned_by(user_id, filter)
            .order((photo_jobs::created_at.desc(), photo_jobs::id.desc()));
        if let Some(c) = after {
            query = query.filter(
                photo_jobs::created_at
                    .lt(c.created_at)
                    .or(photo_jobs::created_at
                        .eq(c.created_at)
                        .and(photo_jobs::id.lt(c.id))),
            );
        }
        query
    }

    /// One of the user's jobs; `None` for unknown ids and other users' jobs alike.
    pub async fn find(
        conn: &mut impl crate::db::request::Db,
        user_id: &str,
        id: i64,
    ) -> QueryResult<Option<PhotoJob>> {
        photo_jobs::table
            .filter(photo_jobs::user_id.eq(user_id))
            .filter(photo_jobs::id.eq(id))
            .select(PhotoJob::as_select())
            .first(conn)
            .await
            .optional()
    }

    /// Up to `limit` of the user's jobs matching `filter`, newest first, after `after`.
    pub async fn page(
        conn: &mut impl crate::db::request::Db,
        user_id: &str,
        filter: &Filter,
        after: Option<Cursor>,
        limit: i64,
    ) -> QueryResult<Vec<PhotoJob>> {
        Self::newest_after(user_id, filter, after)
            .select(PhotoJob::as_select())
            .limit(limit)
            .load(conn)
            .await
    }

    /// A page as [`PhotoJob::page`] does, with the number of all jobs matching `filter` in the
    /// same statement (a subquery beside each row). An empty page after a cursor carries no
    /// count, so that rare case costs a second statement.
    pub async fn page_with_count(
        conn: &mut impl crate::db::request::Db,
        user_id: &str,
        filter: &Filter,
        after: Option<Cursor>,
        limit: i64,
    ) -> QueryResult<(Vec<PhotoJob>, i64)> {
        let total = Self::owned_by(user_id, filter).count().single_value();
        let rows: Vec<(PhotoJob, Option<i64>)> = Self::newest_after(user_id, filter, after)
            .select((PhotoJob::as_select(), total))
            .limit(limit)
            .load(conn)
            .await?;
        let total = match rows.as_slice().first() {
            Some((_, total)) => total.unwrap_or(0),
            None if after.is_none() => 0,
            None => Self::count(conn, user_id, filter).await?,
        };
        Ok((rows.into_iter().map(|(job, _)| job).collect(), total))
    }

    /// How many of the user's jobs match `filter`.
    pub async fn count(
        conn: &mut impl crate::db::request::Db,
        user_id: &str,
        filter: &Filter,
    ) -> QueryResult<i64> {
        Self::owned_by(user_id, filter)
            .count()
            .get_result(conn)
            .await
    }
}

/// A job to insert.
#[derive(Insertable, Debug)]
#[diesel(table_name = photo_jobs, check_for_backend(Pg))]
pub struct NewPhotoJob<'a> {
    /// Owner.
    pub user_id: &'a str,
    /// Trimmed prompt.
    pub prompt: &'a str,
    /// Photos.
    pub photo_count: i32,
    /// Charged credits, in cents.
    pub cost_cents: i64,
    /// Photos from the free allowance.
    pub free_photos_applied: i32,
    /// Group label.
    pub group_name: Option<&'a str>,
    /// The client's idempotency key.
    pub idempotency_key: Option<&'a str>,
}

impl NewPhotoJob<'_> {
    /// Inserts the job as PENDING.
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<PhotoJob> {
        diesel::insert_into(photo_jobs::table)
            .values(self)
            .returning(PhotoJob::as_returning())
            .get_result(conn)
            .await
    }
}

impl PhotoJob {
    /// The user's job created with this idempotency key, if any.
    pub async fn find_by_idempotency_key(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        key: &str,
    ) -> QueryResult<Option<PhotoJob>> {
        photo_jobs::table
            .filter(photo_jobs::user_id.eq(user_id))
            .filter(photo_jobs::idempotency_key.eq(key))
            .select(PhotoJob::as_select())
            .first(conn)
            .await
            .optional()
    }
}

impl PhotoJob {
    /// Sets the group of one of the user's jobs; `None` when the user has no such job.
    pub async fn set_group(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        id: i64,
        group_name: Option<&str>,
    ) -> QueryResult<Option<PhotoJob>> {
        diesel::update(
            photo_jobs::table
                .filter(photo_jobs::user_id.eq(user_id))
                .filter(photo_jobs::id.eq(id)),
        )
        .set((
            photo_jobs::group_name.eq(group_name),
            photo_jobs::updated_at.eq(diesel::dsl::now),
        ))
        .returning(PhotoJob::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Moves one of the user's jobs from `from` to `to`, only if it is in `from` now (so two
    /// racing transitions cannot both happen); `None` when it was not.
    pub async fn transition(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        id: i64,
        from: PhotoJobStatus,
        to: PhotoJobStatus,
    ) -> QueryResult<Option<PhotoJob>> {
        diesel::update(
            photo_jobs::table
                .filter(photo_jobs::user_id.eq(user_id))
                .filter(photo_jobs::id.eq(id))
                .filter(photo_jobs::status.eq(from)),
        )
        .set((
            photo_jobs::status.eq(to),
            photo_jobs::updated_at.eq(diesel::dsl::now),
            photo_jobs::finished_at.eq(Some(Utc::now())),
        ))
        .returning(PhotoJob::as_returning())
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes one of the user's jobs unless it is PROCESSING; returns whether it was deleted.
    pub async fn delete_unless_processing(
        conn: &mut AsyncPgConnection,
        user_id: &str,
        id: i64,
    ) -> QueryResult<bool> {
        diesel::delete(
            photo_jobs::table
                .filter(photo_jobs::user_id.eq(user_id))
                .filter(photo_jobs::id.eq(id))
                .filter(photo_jobs::status.ne(PhotoJobStatus::Processing)),
        )
        .execute(conn)
        .await
        .map(|n| n > 0)
    }
}
