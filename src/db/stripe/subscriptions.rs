//! The writes Stripe's subscription and invoice events make to `subscriptions`: a snapshot of
//! the subscription, a renewal, a failed payment. An older event never overwrites what a newer
//! one wrote.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::plans::PlanCode;
use crate::db::schema::subscriptions;
use crate::db::subscriptions::SubscriptionStatus;

/// A paid invoice's period on its subscription (unless a later period is stored), which also
/// clears `PAST_DUE`/`UNPAID`; whether a row changed.
pub(crate) async fn renew(
    conn: &mut AsyncPgConnection,
    subscription_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    event_created: DateTime<Utc>,
) -> QueryResult<bool> {
    let renewed = diesel::update(
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(subscription_id))
            .filter(
                subscriptions::current_period_end
                    .is_null()
                    .or(subscriptions::current_period_end.le(end)),
            ),
    )
    .set((
        subscriptions::current_period_start.eq(Some(start)),
        subscriptions::current_period_end.eq(Some(end)),
        subscriptions::status.eq(diesel::dsl::sql::<diesel::sql_types::Text>(
            "CASE WHEN status IN ('PAST_DUE', 'UNPAID') THEN 'ACTIVE' ELSE status END",
        )),
        subscriptions::stripe_event_created_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("GREATEST(stripe_event_created_at, ")
        .bind::<diesel::sql_types::Timestamptz, _>(event_created)
        .sql(")")),
        subscriptions::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(renewed > 0)
}

/// A failed invoice makes an active or trialing subscription `PAST_DUE` (unless a newer event
/// was applied); whether a row changed.
pub(crate) async fn mark_past_due(
    conn: &mut AsyncPgConnection,
    subscription_id: &str,
    event_created: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(subscription_id))
            .filter(
                subscriptions::status
                    .eq_any([SubscriptionStatus::Active, SubscriptionStatus::Trialing]),
            )
            .filter(
                subscriptions::stripe_event_created_at
                    .is_null()
                    .or(subscriptions::stripe_event_created_at.le(event_created)),
            ),
    )
    .set((
        subscriptions::status.eq(SubscriptionStatus::PastDue),
        subscriptions::stripe_event_created_at.eq(Some(event_created)),
        subscriptions::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(changed > 0)
}

/// What bff keeps of a Stripe subscription.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
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

/// Writes the snapshot to the user's subscription row unless a newer one is stored (the
/// check is in the upsert's `WHERE`, so it also holds against a concurrent write); returns
/// whether it was written.
pub(crate) async fn apply_snapshot(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    plan: PlanCode,
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
