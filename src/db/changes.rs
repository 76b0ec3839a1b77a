//! A viewer's changes in their own order (`viewer_changes`, written by triggers; see migration
//! `…000025_viewer_changes`): what changed after a position, for `viewer.changes(since:)` and
//! the `viewerChanged` subscription. A position is the viewer's version (`viewer_versions`):
//! every change at or below the version a reader holds is committed and logged, and none above.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;

use crate::db::photo_jobs::PhotoJob;
use crate::db::purchases::Purchase;
use crate::db::request::Db;
use crate::db::schema::purchases;

/// One thing that changed, at its latest position in the window read.
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `job`, `upload`, `purchase`, `notification` (with an id), or `credits`,
    /// `subscription`, `usage`, `preferences` (without).
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The object, for kinds that have one.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub object_id: Option<i64>,
    /// Its latest change's position.
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
}

/// What changed after `since` up to `through`, each thing once at its latest position, in
/// position order; at most `limit` + 1 things (the caller pages).
pub(crate) async fn window(
    conn: &mut impl Db,
    user_id: &str,
    since: i64,
    through: i64,
    limit: i64,
) -> QueryResult<Vec<Entry>> {
    diesel::sql_query(
        "SELECT kind, object_id, max(seq) AS seq FROM viewer_changes \
          WHERE user_id = $1 AND seq > $2 AND seq <= $3 \
          GROUP BY kind, object_id ORDER BY max(seq), kind, object_id LIMIT $4",
    )
    .bind::<Text, _>(user_id)
    .bind::<BigInt, _>(since)
    .bind::<BigInt, _>(through)
    .bind::<BigInt, _>(limit + 1)
    .load(conn)
    .await
}

/// How far the viewer's log has been pruned: a position below it cannot be replayed.
pub(crate) async fn pruned_through(conn: &mut impl Db, user_id: &str) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Pruned {
        #[diesel(sql_type = BigInt)]
        pruned_through: i64,
    }
    let row: Option<Pruned> =
        diesel::sql_query("SELECT pruned_through FROM viewer_versions WHERE user_id = $1")
            .bind::<Text, _>(user_id)
            .get_result(conn)
            .await
            .optional()?;
    Ok(row.map_or(0, |r| r.pruned_through))
}

/// The viewer's jobs among `ids` as they are now (the missing ones were deleted).
pub(crate) async fn jobs(
    conn: &mut impl Db,
    user_id: &str,
    ids: &[i64],
) -> QueryResult<Vec<PhotoJob>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::sql_query("SELECT * FROM photo_jobs WHERE user_id = $1 AND id = ANY($2)")
        .bind::<Text, _>(user_id)
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)
        .await
}

/// The viewer's purchases among `ids` as they are now.
pub(crate) async fn purchases(
    conn: &mut impl Db,
    user_id: &str,
    ids: &[i64],
) -> QueryResult<Vec<Purchase>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    purchases::table
        .filter(purchases::user_id.eq(user_id))
        .filter(purchases::id.eq_any(ids))
        .select(Purchase::as_select())
        .load(conn)
        .await
}

/// Forgets changes older than `hours`, and records per viewer how far; how many viewers lost
/// some. One process at a time (a transaction-level advisory lock: another finds it taken and
/// prunes nothing), and version rows locked in id order, as the writers' triggers lock them.
pub async fn prune(conn: &mut diesel_async::AsyncPgConnection, hours: i64) -> QueryResult<usize> {
    use diesel_async::AsyncConnection;
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    conn.transaction(async |conn| {
        let lock: Taken = diesel::sql_query(
            "SELECT pg_try_advisory_xact_lock(hashtext('bff_viewer_changes_prune')) AS taken",
        )
        .get_result(conn)
        .await?;
        if !lock.taken {
            return Ok(0);
        }
        diesel::sql_query(
            "WITH gone AS (DELETE FROM viewer_changes WHERE at < now() - $1 * interval '1 hour' \
                           RETURNING user_id, seq), \
                  far AS (SELECT user_id, max(seq) AS seq FROM gone GROUP BY user_id), \
                  locked AS (SELECT v.user_id FROM viewer_versions v JOIN far USING (user_id) \
                              ORDER BY v.user_id FOR UPDATE OF v) \
             UPDATE viewer_versions v SET pruned_through = greatest(v.pruned_through, far.seq) \
               FROM far, locked WHERE v.user_id = far.user_id AND locked.user_id = far.user_id",
        )
        .bind::<BigInt, _>(hours)
        .execute(conn)
        .await
    })
    .await
}

/// These viewers' versions now (a listener that was deaf tells their followers to read on).
pub(crate) async fn versions(
    conn: &mut impl Db,
    user_ids: &[String],
) -> QueryResult<Vec<(String, i64)>> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        user_id: String,
        #[diesel(sql_type = BigInt)]
        version: i64,
    }
    let rows: Vec<Version> =
        diesel::sql_query("SELECT user_id, version FROM viewer_versions WHERE user_id = ANY($1)")
            .bind::<Array<Text>, _>(user_ids)
            .load(conn)
            .await?;
    Ok(rows.into_iter().map(|v| (v.user_id, v.version)).collect())
}

/// Which of the viewer's uploads among `ids` still exist.
pub(crate) async fn uploads_left(
    conn: &mut impl Db,
    user_id: &str,
    ids: &[i64],
) -> QueryResult<Vec<i64>> {
    use crate::db::schema::photo_uploads;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    photo_uploads::table
        .filter(photo_uploads::user_id.eq(user_id))
        .filter(photo_uploads::id.eq_any(ids))
        .select(photo_uploads::id)
        .load(conn)
        .await
}
