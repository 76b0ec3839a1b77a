//! A Stripe subscription object as bff stores it, and how a snapshot is applied: only when it
//! is at least as new as the one stored, so redelivered or reordered events cannot roll a
//! subscription back.

use crate::db::subscriptions::SubscriptionStatus;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::schema::plans;

/// Seconds since the epoch from a JSON number.
pub fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value.as_i64()?, 0)
}

/// What bff keeps of a Stripe subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// `sub_…`.
    pub subscription_id: String,
    /// `cus_…`.
    pub customer_id: Option<String>,
    /// The first item's price.
    pub price_id: Option<String>,
    /// Status (Stripe's, upper-cased).
    pub status: SubscriptionStatus,
    /// Period start (top level in older API versions, on the item in newer ones).
    pub current_period_start: Option<DateTime<Utc>>,
    /// Period end.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Trial end.
    pub trial_end: Option<DateTime<Utc>>,
    /// Ends with the period.
    pub cancel_at_period_end: bool,
    /// When canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// `metadata.user_id`, set by bff when it creates the Checkout Session.
    pub user_id: Option<String>,
}

impl Snapshot {
    /// Reads a Stripe `subscription` object; `None` when it lacks an id or a known status.
    pub fn from_json(object: &Value) -> Option<Snapshot> {
        let item = &object["items"]["data"][0];
        let status = SubscriptionStatus::parse(&object["status"].as_str()?.to_ascii_uppercase())?;
        let period = |field: &str| timestamp(&object[field]).or_else(|| timestamp(&item[field]));
        Some(Snapshot {
            subscription_id: object["id"].as_str()?.to_owned(),
            customer_id: customer_id(&object["customer"]),
            price_id: item["price"]["id"].as_str().map(str::to_owned),
            status,
            current_period_start: period("current_period_start"),
            current_period_end: period("current_period_end"),
            trial_end: timestamp(&object["trial_end"]),
            cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false),
            canceled_at: timestamp(&object["canceled_at"]),
            user_id: object["metadata"]["user_id"].as_str().map(str::to_owned),
        })
    }
}

/// A customer reference, expanded (`{"id": …}`) or not (`"cus_…"`).
pub fn customer_id(value: &Value) -> Option<String> {
    value
        .as_str()
        .or_else(|| value["id"].as_str())
        .map(str::to_owned)
}

/// The plan sold at `price_id`.
pub async fn plan_for_price(
    conn: &mut AsyncPgConnection,
    price_id: &str,
) -> QueryResult<Option<String>> {
    plans::table
        .filter(plans::stripe_price_id.eq(price_id))
        .select(plans::code)
        .first(conn)
        .await
        .optional()
}

/// Writes the snapshot to the user's subscription row unless a newer one is stored (the
/// check is in the upsert's `WHERE`, so it also holds against a concurrent write); returns
/// whether it was written.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    plan: &str,
    snapshot: &Snapshot,
    as_of: DateTime<Utc>,
) -> QueryResult<bool> {
    use diesel::sql_types::{Bool, Nullable, Text, Timestamptz};
    let written = diesel::sql_query(
        "INSERT INTO subscriptions AS s (user_id, plan, status, stripe_customer_id, \
             stripe_subscription_id, stripe_price_id, current_period_start, current_period_end, \
             trial_end, cancel_at_period_end, canceled_at, stripe_event_created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (user_id) DO UPDATE SET plan = excluded.plan, status = excluded.status, \
             stripe_customer_id = excluded.stripe_customer_id, \
             stripe_subscription_id = excluded.stripe_subscription_id, \
             stripe_price_id = excluded.stripe_price_id, \
             current_period_start = excluded.current_period_start, \
             current_period_end = excluded.current_period_end, trial_end = excluded.trial_end, \
             cancel_at_period_end = excluded.cancel_at_period_end, \
             canceled_at = excluded.canceled_at, \
             stripe_event_created_at = excluded.stripe_event_created_at, updated_at = now() \
         WHERE s.stripe_event_created_at IS NULL \
            OR s.stripe_event_created_at <= excluded.stripe_event_created_at",
    )
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(plan)
    .bind::<Text, _>(snapshot.status)
    .bind::<Nullable<Text>, _>(&snapshot.customer_id)
    .bind::<Text, _>(&snapshot.subscription_id)
    .bind::<Nullable<Text>, _>(&snapshot.price_id)
    .bind::<Nullable<Timestamptz>, _>(snapshot.current_period_start)
    .bind::<Nullable<Timestamptz>, _>(snapshot.current_period_end)
    .bind::<Nullable<Timestamptz>, _>(snapshot.trial_end)
    .bind::<Bool, _>(snapshot.cancel_at_period_end)
    .bind::<Nullable<Timestamptz>, _>(snapshot.canceled_at)
    .bind::<Timestamptz, _>(as_of)
    .execute(conn)
    .await?;
    Ok(written > 0)
}
