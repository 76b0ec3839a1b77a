//! The audit trail (`admin_audit`): one row per action of the people who run the app, written
//! in the transaction of the action itself, read newest first. Append-only: the table's
//! trigger refuses updates and deletes (a person's deletion only replaces their id with a
//! tombstone).

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::db::pagination::Cursor;
use crate::db::request::Db;

/// One action to record.
#[derive(Clone, Debug)]
pub(crate) struct Action<'a> {
    /// Who acted: a user id, or `cli:…`.
    pub(crate) actor_id: &'a str,
    /// The role they acted in.
    pub(crate) actor_role: &'a str,
    /// Whether it was an admin's impersonation session acting as `target_id`.
    pub(crate) impersonating: bool,
    /// Whom it was about.
    pub(crate) target_id: Option<&'a str>,
    /// What was done, e.g. `GRANT_CREDITS`.
    pub(crate) action: &'a str,
    /// Why, in the actor's words.
    pub(crate) reason: Option<&'a str>,
    /// The state it changed, before.
    pub(crate) before: Option<serde_json::Value>,
    /// The state it changed, after.
    pub(crate) after: Option<serde_json::Value>,
}

/// Appends `action` to the trail, in the caller's transaction.
pub(crate) async fn record(conn: &mut impl Db, action: &Action<'_>) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO admin_audit (actor_id, actor_role, impersonating, target_id, action, reason,
                                  before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<Text, _>(action.actor_id)
    .bind::<Text, _>(action.actor_role)
    .bind::<Bool, _>(action.impersonating)
    .bind::<Nullable<Text>, _>(action.target_id)
    .bind::<Text, _>(action.action)
    .bind::<Nullable<Text>, _>(action.reason)
    .bind::<Nullable<Jsonb>, _>(action.before.as_ref())
    .bind::<Nullable<Jsonb>, _>(action.after.as_ref())
    .execute(conn)
    .await
    .map(drop)
}

/// A row of the trail.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Entry {
    #[diesel(sql_type = BigInt)]
    pub(crate) id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub(crate) at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub(crate) actor_id: String,
    #[diesel(sql_type = Text)]
    pub(crate) actor_role: String,
    #[diesel(sql_type = Bool)]
    pub(crate) impersonating: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) target_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub(crate) action: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) reason: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub(crate) before: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub(crate) after: Option<serde_json::Value>,
}

impl Entry {
    /// Its place in the newest-first trail.
    pub(crate) fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.at,
            id: self.id,
        }
    }
}

/// How many rows [`page`] pages through for these filters.
pub(crate) async fn count(
    conn: &mut impl Db,
    actor_id: Option<&str>,
    target_id: Option<&str>,
) -> diesel::QueryResult<i64> {
    let counted: super::Count = diesel::sql_query(format!(
        "SELECT count(*) AS count FROM admin_audit WHERE {FILTERED}"
    ))
    .bind::<Nullable<Text>, _>(actor_id)
    .bind::<Nullable<Text>, _>(target_id)
    .get_result(conn)
    .await?;
    Ok(counted.count)
}

/// The filters on actor (`$1`) and target (`$2`), each off when null.
const FILTERED: &str =
    "($1::text IS NULL OR actor_id = $1) AND ($2::text IS NULL OR target_id = $2)";

/// Up to `limit` rows, newest first, after `after`, of `actor_id`'s actions and about
/// `target_id` when given.
pub(crate) async fn page(
    conn: &mut impl Db,
    actor_id: Option<&str>,
    target_id: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> diesel::QueryResult<Vec<Entry>> {
    diesel::sql_query(format!(
        "SELECT id, at, actor_id, actor_role, impersonating, target_id, action, reason, before, after
         FROM admin_audit
         WHERE {FILTERED} AND ($3::timestamptz IS NULL OR (at, id) < ($3, $4))
         ORDER BY at DESC, id DESC LIMIT $5"
    ))
    .bind::<Nullable<Text>, _>(actor_id)
    .bind::<Nullable<Text>, _>(target_id)
    .bind::<Nullable<Timestamptz>, _>(after.map(|c| c.created_at))
    .bind::<Nullable<BigInt>, _>(after.map(|c| c.id))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}
