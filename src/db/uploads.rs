//! Photo uploads and job results: the record of every object bff keeps in storage, always read
//! through its owner. Deleting a row (directly, or by the cascade of its job's or its owner's
//! deletion) queues its object's deletion in the same transaction (a trigger, see the
//! migration); [`claim_deletions`] and friends drain that queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{photo_uploads, storage_deletions};
use crate::db::states::db_enum;

db_enum! {
    /// What an upload holds.
    UploadPurpose {
        /// A photo, one of a job's inputs.
        Photo => "PHOTO",
        /// A job's result, uploaded by the worker.
        Result => "RESULT",
    }
}

/// An object in storage and whose it is.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = photo_uploads, check_for_backend(Pg))]
pub struct Upload {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: String,
    /// A photo or a result.
    pub purpose: UploadPurpose,
    /// The job it belongs to (a photo: once attached).
    pub photo_job_id: Option<i64>,
    /// Its place among the job's photos.
    pub position: Option<i32>,
    /// The object's key.
    pub object_key: String,
    /// The file name the client gave.
    pub file_name: String,
    /// Its declared content type.
    pub content_type: String,
    /// Its declared size in bytes.
    pub byte_size: i64,
    /// Until when its upload URL works.
    pub url_expires_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// An upload to record.
#[derive(Insertable, Clone, Debug)]
#[diesel(table_name = photo_uploads)]
pub struct NewUpload<'a> {
    /// Owner.
    pub user_id: &'a str,
    /// A photo or a result.
    pub purpose: UploadPurpose,
    /// The job (results only).
    pub photo_job_id: Option<i64>,
    /// The object's key.
    pub object_key: String,
    /// The file name.
    pub file_name: &'a str,
    /// The content type.
    pub content_type: &'a str,
    /// The size in bytes.
    pub byte_size: i64,
    /// Until when its upload URL works.
    pub url_expires_at: DateTime<Utc>,
}

/// Bytes `user_id` keeps in storage.
pub(crate) async fn storage_used(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<i64> {
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(user_id))
        .select(diesel::dsl::sql::<BigInt>(
            "COALESCE(sum(byte_size), 0)::int8",
        ))
        .get_result(conn)
        .await
}

/// How many of `user_id`'s photos wait for a job.
pub(crate) async fn pending_count(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<i64> {
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(user_id))
        .filter(photo_uploads::photo_job_id.is_null())
        .filter(photo_uploads::purpose.eq(UploadPurpose::Photo))
        .count()
        .get_result(conn)
        .await
}

/// Makes `keys` the checked copies of `user_id`'s uploads `ids` waiting for a job (one each,
/// in order), queueing the deletion of copies an earlier attempt left; how many uploads took
/// theirs (fewer when some were attached meanwhile).
pub(crate) async fn assign_copies(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    ids: &[i64],
    keys: &[String],
) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Assigned {
        #[diesel(sql_type = BigInt)]
        assigned: i64,
    }
    let assigned: Assigned = diesel::sql_query(
        "WITH assigned AS ( \
             UPDATE photo_uploads pu SET checked_key = n.key \
             FROM unnest($2::int8[], $3::text[]) AS n(id, key), photo_uploads was \
             WHERE pu.id = n.id AND was.id = pu.id AND pu.user_id = $1 \
               AND pu.purpose = 'PHOTO' AND pu.photo_job_id IS NULL \
             RETURNING was.checked_key AS replaced \
         ), queued AS ( \
             INSERT INTO storage_deletions (object_key) \
             SELECT replaced FROM assigned WHERE replaced IS NOT NULL \
         ) \
         SELECT count(*) AS assigned FROM assigned",
    )
    .bind::<Text, _>(user_id)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Text>, _>(keys)
    .get_result(conn)
    .await?;
    Ok(usize::try_from(assigned.assigned).unwrap_or(0))
}

/// The checked copies `keys` will not be used (their job failed): they leave their uploads and
/// are queued for deletion now.
pub(crate) async fn release_copies(
    conn: &mut AsyncPgConnection,
    keys: &[String],
) -> QueryResult<()> {
    diesel::sql_query(
        "WITH released AS ( \
             UPDATE photo_uploads SET checked_key = NULL WHERE checked_key = ANY($1::text[]) \
         ) \
         INSERT INTO storage_deletions (object_key) SELECT unnest($1::text[])",
    )
    .bind::<Array<Text>, _>(keys)
    .execute(conn)
    .await
    .map(drop)
}

/// Records uploads; they come back in the order given.
pub(crate) async fn insert_all(
    conn: &mut AsyncPgConnection,
    uploads: &[NewUpload<'_>],
) -> QueryResult<Vec<Upload>> {
    let mut rows: Vec<Upload> = diesel::insert_into(photo_uploads::table)
        .values(uploads)
        .returning(Upload::as_returning())
        .get_results(conn)
        .await?;
    rows.sort_by_key(|u| u.id);
    Ok(rows)
}

/// Those of `ids` that are `user_id`'s photos (others' and unknown ids are left out).
pub(crate) async fn owned_photos(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    ids: &[i64],
) -> QueryResult<Vec<Upload>> {
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(user_id))
        .filter(photo_uploads::purpose.eq(UploadPurpose::Photo))
        .filter(photo_uploads::id.eq_any(ids))
        .select(Upload::as_select())
        .load(conn)
        .await
}

/// Attaches `user_id`'s unattached photos `ids` to job `job_id`, in that order; how many were.
/// Where `keys` gives one, the photo must hold that checked copy ([`assign_copies`]; another
/// attempt's copy is not this job's), which becomes its object; the object as uploaded is
/// queued for deletion once its upload URL has expired.
pub(crate) async fn attach(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    job_id: i64,
    ids: &[i64],
    keys: &[Option<String>],
) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Attached {
        #[diesel(sql_type = BigInt)]
        attached: i64,
    }
    let attached: Attached = diesel::sql_query(
        "WITH moved AS ( \
             UPDATE photo_uploads pu SET photo_job_id = $1, position = o.ord - 1, \
                    object_key = COALESCE(o.key, pu.object_key), checked_key = NULL \
             FROM unnest($3::int8[], $4::text[]) WITH ORDINALITY AS o(id, key, ord), \
                  photo_uploads was \
             WHERE pu.id = o.id AND was.id = pu.id AND pu.user_id = $2 \
               AND pu.purpose = 'PHOTO' AND pu.photo_job_id IS NULL \
               AND (o.key IS NULL OR pu.checked_key = o.key) \
             RETURNING o.key AS checked, was.object_key AS uploaded, was.url_expires_at \
         ), replaced AS ( \
             INSERT INTO storage_deletions (object_key, not_before) \
             SELECT uploaded, greatest(now(), url_expires_at + interval '1 minute') \
             FROM moved WHERE checked IS NOT NULL \
         ) \
         SELECT count(*) AS attached FROM moved",
    )
    .bind::<BigInt, _>(job_id)
    .bind::<Text, _>(user_id)
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<diesel::sql_types::Nullable<Text>>, _>(keys)
    .get_result(conn)
    .await?;
    Ok(usize::try_from(attached.attached).unwrap_or(0))
}

/// The photos of `owner`'s job `job_id`, in order.
pub(crate) async fn photos_of_job(
    conn: &mut impl crate::db::request::Db,
    owner: &str,
    job_id: i64,
) -> QueryResult<Vec<Upload>> {
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(owner))
        .filter(photo_uploads::photo_job_id.eq(job_id))
        .filter(photo_uploads::purpose.eq(UploadPurpose::Photo))
        .order(photo_uploads::position)
        .select(Upload::as_select())
        .load(conn)
        .await
}

/// The photos of `owner`'s jobs `job_ids`, by job and in order: one statement for a page.
pub(crate) async fn photos_of_jobs(
    conn: &mut impl crate::db::request::Db,
    owner: &str,
    job_ids: &[i64],
) -> QueryResult<Vec<Upload>> {
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(owner))
        .filter(photo_uploads::photo_job_id.eq_any(job_ids))
        .filter(photo_uploads::purpose.eq(UploadPurpose::Photo))
        .order((photo_uploads::photo_job_id, photo_uploads::position))
        .select(Upload::as_select())
        .load(conn)
        .await
}

/// The result upload of `owner`'s job `job_id`, if the worker asked for one.
pub(crate) async fn result_of_job(
    conn: &mut AsyncPgConnection,
    owner: &str,
    job_id: i64,
) -> QueryResult<Option<Upload>> {
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(owner))
        .filter(photo_uploads::photo_job_id.eq(job_id))
        .filter(photo_uploads::purpose.eq(UploadPurpose::Result))
        .select(Upload::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records `upload` as its job's result, replacing (and so queueing the deletion of) an
/// earlier one.
pub(crate) async fn replace_result(
    conn: &mut AsyncPgConnection,
    upload: &NewUpload<'_>,
) -> QueryResult<Upload> {
    diesel::delete(
        photo_uploads::table
            .filter(photo_uploads::photo_job_id.eq(upload.photo_job_id))
            .filter(photo_uploads::purpose.eq(UploadPurpose::Result)),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(photo_uploads::table)
        .values(upload)
        .returning(Upload::as_returning())
        .get_result(conn)
        .await
}

/// Deletes up to 500 photos never attached to a job and older than `age` (their objects are
/// queued for deletion); how many.
pub(crate) async fn expire_unattached(
    conn: &mut AsyncPgConnection,
    age: Duration,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM photo_uploads WHERE id IN (SELECT id FROM photo_uploads \
           WHERE photo_job_id IS NULL AND created_at < now() - $1 * interval '1 second' \
           ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
    .execute(conn)
    .await
}

/// An object to delete from storage.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Deletion {
    /// Row id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The object's key.
    #[diesel(sql_type = Text)]
    pub object_key: String,
    /// Earlier attempts, this one included.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Takes up to `limit` due deletions for `lease` (another sweeper skips them meanwhile; if this
/// one dies, they are due again when the lease ends).
pub(crate) async fn claim_deletions(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: Duration,
) -> QueryResult<Vec<Deletion>> {
    diesel::sql_query(
        "UPDATE storage_deletions SET not_before = now() + $2 * interval '1 millisecond', \
                attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM storage_deletions WHERE not_before <= now() \
                      ORDER BY not_before LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, object_key, attempts",
    )
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .load(conn)
    .await
}

/// The object of deletion `id` is gone.
pub(crate) async fn deletion_done(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(storage_deletions::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Deletion `id` failed with `error`: try again after `retry_in`.
pub(crate) async fn deletion_failed(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    retry_in: Duration,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE storage_deletions SET last_error = $2, \
                not_before = now() + $3 * interval '1 millisecond' WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(error)
    .bind::<BigInt, _>(i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX))
    .execute(conn)
    .await
    .map(drop)
}
