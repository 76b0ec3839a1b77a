//! One person's account as support reads it, beyond the person and their credits: the
//! subscription and its history, purchases, jobs, stored photos. Each list is the latest 50.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::db::request::Db;

/// How many of each list support sees at once.
pub(crate) const LATEST: i64 = 50;

/// The person's subscription row.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Subscription {
    #[diesel(sql_type = Text)]
    pub(crate) plan: String,
    #[diesel(sql_type = Text)]
    pub(crate) status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) stripe_subscription_id: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(crate) current_period_end: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    pub(crate) cancel_at_period_end: bool,
}

/// Their subscription, if they ever had one.
pub(crate) async fn subscription(
    conn: &mut impl Db,
    user_id: &str,
) -> diesel::QueryResult<Option<Subscription>> {
    use diesel::OptionalExtension;
    diesel::sql_query(
        "SELECT plan, status, stripe_subscription_id, current_period_end, cancel_at_period_end
         FROM subscriptions WHERE user_id = $1",
    )
    .bind::<Text, _>(user_id)
    .get_result(conn)
    .await
    .optional()
}

/// An invoice paid, a payment failed or refunded.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct BillingEvent {
    #[diesel(sql_type = Text)]
    pub(crate) kind: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) amount_cents: i64,
    #[diesel(sql_type = Text)]
    pub(crate) currency: String,
    #[diesel(sql_type = Timestamptz)]
    pub(crate) occurred_at: DateTime<Utc>,
}

/// Their subscription's latest billing events, newest first.
pub(crate) async fn history(
    conn: &mut impl Db,
    user_id: &str,
) -> diesel::QueryResult<Vec<BillingEvent>> {
    diesel::sql_query(
        "SELECT kind, amount_cents, currency, occurred_at FROM subscription_history
         WHERE user_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
    )
    .bind::<Text, _>(user_id)
    .bind::<BigInt, _>(LATEST)
    .load(conn)
    .await
}

/// A credit pack bought, with what was refunded or disputed of it.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Purchase {
    #[diesel(sql_type = BigInt)]
    pub(crate) id: i64,
    #[diesel(sql_type = Text)]
    pub(crate) pack: String,
    #[diesel(sql_type = Text)]
    pub(crate) status: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) amount_cents: i64,
    #[diesel(sql_type = Text)]
    pub(crate) currency: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) credits_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) refunded_amount_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) credits_reversed_cents: i64,
    /// Credits held while a dispute is open.
    #[diesel(sql_type = BigInt)]
    pub(crate) disputed_cents: i64,
    #[diesel(sql_type = Timestamptz)]
    pub(crate) created_at: DateTime<Utc>,
}

/// Their latest purchases, newest first.
pub(crate) async fn purchases(
    conn: &mut impl Db,
    user_id: &str,
) -> diesel::QueryResult<Vec<Purchase>> {
    diesel::sql_query(
        "SELECT p.id, p.pack, p.status, p.amount_cents, p.currency, p.credits_cents,
                p.refunded_amount_cents, p.credits_reversed_cents,
                COALESCE((SELECT sum(d.held_cents) FROM stripe_disputes d
                          WHERE d.payment_intent_id = p.stripe_payment_intent_id
                            AND d.hold_applied AND NOT d.released), 0)::int8 AS disputed_cents,
                p.created_at
         FROM purchases p WHERE p.user_id = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT $2",
    )
    .bind::<Text, _>(user_id)
    .bind::<BigInt, _>(LATEST)
    .load(conn)
    .await
}

/// What they keep in photo storage.
#[derive(QueryableByName, Clone, Copy, Debug)]
pub(crate) struct Stored {
    #[diesel(sql_type = BigInt)]
    pub(crate) uploads: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) bytes: i64,
}

/// Their uploads and results in storage.
pub(crate) async fn stored(conn: &mut impl Db, user_id: &str) -> diesel::QueryResult<Stored> {
    diesel::sql_query(
        "SELECT count(*) AS uploads, COALESCE(sum(byte_size), 0)::int8 AS bytes
         FROM photo_uploads WHERE user_id = $1",
    )
    .bind::<Text, _>(user_id)
    .get_result(conn)
    .await
}

/// A count of something by its kind.
#[derive(QueryableByName, Clone, Debug)]
pub(crate) struct Counted {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) detail: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub(crate) count: i64,
}

/// Subscriptions by plan (`name`) and status (`detail`).
pub(crate) async fn subscriptions_by_plan(conn: &mut impl Db) -> diesel::QueryResult<Vec<Counted>> {
    diesel::sql_query(
        "SELECT plan AS name, status AS detail, count(*) AS count FROM subscriptions
         GROUP BY plan, status ORDER BY plan, status",
    )
    .load(conn)
    .await
}

/// Jobs created in the last 24 hours by status (`name`).
pub(crate) async fn jobs_last_day(conn: &mut impl Db) -> diesel::QueryResult<Vec<Counted>> {
    diesel::sql_query(
        "SELECT status AS name, NULL::text AS detail, count(*) AS count FROM photo_jobs
         WHERE created_at > now() - interval '1 day' GROUP BY status ORDER BY status",
    )
    .load(conn)
    .await
}
