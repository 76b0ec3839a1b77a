//! What the administration reads and writes: people found by a prefix, an id or a Stripe
//! customer id; one person's account; bans and sessions written as Better Auth's admin plugin
//! writes them; credits granted or taken back. Every write goes with one row of the audit trail
//! ([`audit`]) in the caller's transaction.

pub(crate) mod account;
pub(crate) mod audit;
pub(crate) mod jobs;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::request::Db;

/// A person as support sees them in a list.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Person {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) email: String,
    #[diesel(sql_type = Bool)]
    pub(crate) email_verified: bool,
    #[diesel(sql_type = Timestamptz)]
    pub(crate) created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) role: Option<String>,
    /// Whether a ban holds now.
    #[diesel(sql_type = Bool)]
    pub(crate) banned: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) ban_reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(crate) ban_expires: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) stripe_customer_id: Option<String>,
}

/// The columns of [`Person`], over `"user" u`.
const PERSON: &str = "u.id, u.name, u.email, u.\"emailVerified\" AS email_verified, \
    u.\"createdAt\" AS created_at, u.role, bff_ban_in_force(u.banned, u.\"banExpires\") AS banned, \
    u.\"banReason\" AS ban_reason, u.\"banExpires\" AS ban_expires, \
    (SELECT sc.customer_id FROM stripe_customers sc WHERE sc.user_id = u.id) AS stripe_customer_id";

/// A position in the list of people, newest first: `(createdAt, id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PersonCursor {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) id: String,
}

impl PersonCursor {
    pub(crate) fn of(person: &Person) -> PersonCursor {
        PersonCursor {
            created_at: person.created_at,
            id: person.id.clone(),
        }
    }

    /// The opaque text clients pass back as `after`.
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    /// Reads what [`PersonCursor::encode`] made; `None` for anything else.
    pub(crate) fn decode(text: &str) -> Option<PersonCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        Some(PersonCursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// `text` with LIKE's wildcards escaped, then `%`: a prefix pattern (lower-cased in SQL, by
/// the same `lower()` as the columns it is compared with).
fn prefix_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Whom a search finds (`$1` the search or null, `$2` its prefix pattern).
const FOUND: &str = "($1::text IS NULL
        OR u.id = $1
        OR lower(u.email) LIKE lower($2) OR lower(u.name) LIKE lower($2)
        OR u.id = (SELECT sc.user_id FROM stripe_customers sc WHERE sc.customer_id = $1))";

/// A `SELECT count(*) AS count …`'s row.
#[derive(QueryableByName)]
pub(crate) struct Count {
    #[diesel(sql_type = BigInt)]
    pub(crate) count: i64,
}

/// How many people `search` finds (see [`people`]).
pub(crate) async fn count_people(
    conn: &mut impl Db,
    search: Option<&str>,
) -> diesel::QueryResult<i64> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let counted: Count = diesel::sql_query(format!(
        "SELECT count(*) AS count FROM \"user\" u WHERE {FOUND}"
    ))
    .bind::<Nullable<Text>, _>(search)
    .bind::<Text, _>(search.map(prefix_pattern).unwrap_or_default())
    .get_result(conn)
    .await?;
    Ok(counted.count)
}

/// Up to `limit` people, newest first, after `after`: everyone without `search`; with it,
/// the person with that id or Stripe customer id, and those whose email or name starts with it
/// (case-insensitively).
pub(crate) async fn people(
    conn: &mut impl Db,
    search: Option<&str>,
    after: Option<&PersonCursor>,
    limit: i64,
) -> diesel::QueryResult<Vec<Person>> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let (after_at, after_id) = match after {
        Some(c) => (Some(c.created_at), Some(c.id.clone())),
        None => (None, None),
    };
    diesel::sql_query(format!(
        "SELECT {PERSON} FROM \"user\" u
         WHERE {FOUND}
           AND ($3::timestamptz IS NULL OR (u.\"createdAt\", u.id) < ($3, $4))
         ORDER BY u.\"createdAt\" DESC, u.id DESC
         LIMIT $5"
    ))
    .bind::<Nullable<Text>, _>(search)
    .bind::<Text, _>(search.map(prefix_pattern).unwrap_or_default())
    .bind::<Nullable<Timestamptz>, _>(after_at)
    .bind::<Nullable<Text>, _>(after_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// One person, whoever they are (`None` when no such id).
pub(crate) async fn person(conn: &mut impl Db, id: &str) -> diesel::QueryResult<Option<Person>> {
    use diesel::OptionalExtension;
    diesel::sql_query(format!("SELECT {PERSON} FROM \"user\" u WHERE u.id = $1"))
        .bind::<Text, _>(id)
        .get_result(conn)
        .await
        .optional()
}

/// Locks the person's row until the transaction ends (nothing when there is none), against
/// another administration action or their deletion. `FOR NO KEY UPDATE`: a job charge's
/// foreign-key check (`KEY SHARE`, taken after the account lock) does not wait for it, so a
/// grant (person, then account) and a charge (account, then person) cannot deadlock.
pub(crate) async fn lock_person(conn: &mut AsyncPgConnection, id: &str) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT 1 FROM \"user\" WHERE id = $1 FOR NO KEY UPDATE")
        .bind::<Text, _>(id)
        .execute(conn)
        .await
        .map(drop)
}

/// A person's Better Auth sessions, as support sees them.
#[derive(QueryableByName, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sessions {
    /// Live (unexpired) sessions.
    #[diesel(sql_type = BigInt)]
    pub(crate) count: i64,
    /// When any of them was last refreshed (Better Auth's `updatedAt`).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(crate) last_active: Option<DateTime<Utc>>,
    /// Of them, opened by an admin's impersonation.
    #[diesel(sql_type = BigInt)]
    pub(crate) impersonated: i64,
}

/// A person's live sessions.
pub(crate) async fn sessions(conn: &mut impl Db, user_id: &str) -> diesel::QueryResult<Sessions> {
    diesel::sql_query(
        "SELECT count(*) AS count, max(\"updatedAt\") AS last_active,
                count(*) FILTER (WHERE \"impersonatedBy\" IS NOT NULL) AS impersonated
         FROM session WHERE \"userId\" = $1 AND \"expiresAt\" > now()",
    )
    .bind::<Text, _>(user_id)
    .get_result(conn)
    .await
}

/// The ban columns of a person, as the audit trail records them.
pub(crate) fn ban_state(person: &Person) -> serde_json::Value {
    serde_json::json!({
        "banned": person.banned,
        "banReason": person.ban_reason,
        "banExpires": person.ban_expires,
    })
}

/// Bans `user_id` as Better Auth's `banUser` does: the columns, then every session deleted.
/// Returns the sessions deleted.
pub(crate) async fn ban(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    reason: &str,
    expires: Option<DateTime<Utc>>,
) -> diesel::QueryResult<usize> {
    diesel::sql_query(
        "UPDATE \"user\" SET banned = true, \"banReason\" = $2, \"banExpires\" = $3,
                \"updatedAt\" = now() WHERE id = $1",
    )
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(reason)
    .bind::<Nullable<Timestamptz>, _>(expires)
    .execute(conn)
    .await?;
    revoke_sessions(conn, user_id).await
}

/// Lifts a ban as Better Auth's `unbanUser` does.
pub(crate) async fn unban(conn: &mut AsyncPgConnection, user_id: &str) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "UPDATE \"user\" SET banned = false, \"banReason\" = NULL, \"banExpires\" = NULL,
                \"updatedAt\" = now() WHERE id = $1",
    )
    .bind::<Text, _>(user_id)
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes every session of `user_id` (Better Auth's `revokeUserSessions`); how many.
pub(crate) async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> diesel::QueryResult<usize> {
    diesel::sql_query("DELETE FROM session WHERE \"userId\" = $1")
        .bind::<Text, _>(user_id)
        .execute(conn)
        .await
}

/// Sets a person's roles (Better Auth's comma-separated `user.role`; `None` clears it).
pub(crate) async fn set_roles(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    roles: Option<&str>,
) -> diesel::QueryResult<()> {
    diesel::sql_query("UPDATE \"user\" SET role = $2, \"updatedAt\" = now() WHERE id = $1")
        .bind::<Text, _>(user_id)
        .bind::<Nullable<Text>, _>(roles)
        .execute(conn)
        .await
        .map(drop)
}

/// The whole business at a glance.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Stats {
    #[diesel(sql_type = BigInt)]
    pub(crate) people: i64,
    /// With a session refreshed in the last 30 days.
    #[diesel(sql_type = BigInt)]
    pub(crate) active_people: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) banned_people: i64,
    /// Credit cents bought in the last 30 days (purchases' ledger rows).
    #[diesel(sql_type = BigInt)]
    pub(crate) credits_sold_cents: i64,
    /// Credit cents taken back for refunded payments in the last 30 days.
    #[diesel(sql_type = BigInt)]
    pub(crate) credits_refunded_cents: i64,
    /// Jobs created in the last 24 hours.
    #[diesel(sql_type = Integer)]
    pub(crate) jobs_last_day: i32,
}

/// [`Stats`], in one statement.
pub(crate) async fn stats(conn: &mut impl Db) -> diesel::QueryResult<Stats> {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM \"user\") AS people,
                (SELECT count(DISTINCT \"userId\") FROM session
                  WHERE \"updatedAt\" > now() - interval '30 days') AS active_people,
                (SELECT count(*) FROM \"user\" u WHERE bff_ban_in_force(u.banned, u.\"banExpires\"))
                  AS banned_people,
                (SELECT COALESCE(sum(amount_cents), 0) FROM credit_ledger
                  WHERE kind = 'PURCHASE' AND created_at > now() - interval '30 days')::int8
                  AS credits_sold_cents,
                (SELECT COALESCE(-sum(amount_cents), 0) FROM credit_ledger
                  WHERE kind = 'PURCHASE_REFUND' AND created_at > now() - interval '30 days')::int8
                  AS credits_refunded_cents,
                (SELECT count(*) FROM photo_jobs WHERE created_at > now() - interval '1 day')::int4
                  AS jobs_last_day",
    )
    .get_result(conn)
    .await
}
