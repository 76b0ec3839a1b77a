//! Stripe's tables, and the writes Stripe's webhooks and answers make. None of these queries
//! can be scoped to a viewer: Stripe names a customer, a Checkout Session or a subscription,
//! and these functions map those to bff's users (or write by them). Everything a viewer reads
//! of billing goes through the owner-scoped queries of `subscriptions`, `purchases` and
//! `viewer`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

pub mod checkouts;
pub mod refunds;
pub mod syncs;

use crate::db::plans::PlanCode;
use crate::db::states::db_enum;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::better_auth::users;
use crate::db::purchases::{Purchase, PurchaseStatus};
use crate::db::schema::{
    purchases, stripe_customers, stripe_disputes, stripe_events, stripe_payment_refunds,
    subscriptions,
};
use crate::db::subscriptions::SubscriptionStatus;

db_enum! {
    /// What bff did with a Stripe event (`stripe_events.outcome`).
    EventOutcome {
        /// Being applied (only inside its transaction).
        Processing => "processing",
        /// Its effect was applied.
        Applied => "applied",
        /// A type bff does not act on.
        Ignored => "ignored",
        /// Fields bff needs are missing.
        Malformed => "malformed",
        /// No user is known for its customer (or session).
        UnknownCustomer => "unknown_customer",
        /// A payment-mode Checkout Session without a credit pack.
        NotACreditPack => "not_a_credit_pack",
        /// A credit pack bff does not sell.
        UnknownPack => "unknown_pack",
        /// A Checkout Session completed but not paid yet.
        AwaitingPayment => "awaiting_payment",
        /// The purchase's credits were granted before.
        AlreadyGranted => "already_granted",
        /// A failed or expired session with no pending purchase.
        NoPendingPurchase => "no_pending_purchase",
        /// A subscription's price is no plan's.
        UnknownPrice => "unknown_price",
        /// Older than what was applied to the subscription.
        Stale => "stale",
        /// An invoice of no subscription.
        NotASubscriptionInvoice => "not_a_subscription_invoice",
        /// An invoice of an unknown subscription, or older than what was applied.
        UnknownOrStaleSubscription => "unknown_or_stale_subscription",
        /// A refund of a payment bff has no purchase for yet: kept, applied when it completes.
        AwaitingPurchase => "awaiting_purchase",
        /// A refund of a subscription payment: recorded; access follows the subscription's
        /// own events.
        SubscriptionPayment => "subscription_payment",
        /// A checkout completed for a person deleted meanwhile: its payment is refunded in
        /// full, the subscription it created canceled and the customer it created deleted
        /// (queued clean-ups).
        RefundedDeletedAccount => "refunded_deleted_account",
    }
}

/// Records a delivered event as being processed; `false` when its id was recorded before (a
/// concurrent delivery waits on the first one's row, then finds it).
pub async fn record_event(
    conn: &mut AsyncPgConnection,
    id: &str,
    kind: &str,
    created: DateTime<Utc>,
    livemode: bool,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(stripe_events::table)
        .values((
            stripe_events::id.eq(id),
            stripe_events::type_.eq(kind),
            stripe_events::created_at.eq(created),
            stripe_events::livemode.eq(livemode),
            stripe_events::outcome.eq(EventOutcome::Processing),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted > 0)
}

/// Stores what processing an event came to.
pub async fn set_event_outcome(
    conn: &mut AsyncPgConnection,
    id: &str,
    outcome: EventOutcome,
) -> QueryResult<()> {
    diesel::update(stripe_events::table.find(id))
        .set(stripe_events::outcome.eq(outcome))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether a Better Auth user with this id exists.
pub async fn user_exists(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<bool> {
    users::table
        .find(user_id)
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|n| n > 0)
}

/// The user a customer belongs to.
pub async fn user_for_customer(
    conn: &mut AsyncPgConnection,
    customer: &str,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .filter(stripe_customers::customer_id.eq(customer))
        .select(stripe_customers::user_id)
        .first(conn)
        .await
        .optional()
}

/// The customer of a user.
pub async fn customer_for_user(
    conn: &mut AsyncPgConnection,
    user_id: &str,
) -> QueryResult<Option<String>> {
    stripe_customers::table
        .find(user_id)
        .select(stripe_customers::customer_id)
        .first(conn)
        .await
        .optional()
}

/// Remembers which user a Stripe customer is (the first answer stays).
pub async fn remember_customer(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    customer: &str,
) -> QueryResult<()> {
    diesel::insert_into(stripe_customers::table)
        .values((
            stripe_customers::user_id.eq(user_id),
            stripe_customers::customer_id.eq(customer),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

/// Marks a Checkout Session's purchase completed, unless it already is: the update is
/// conditional, so only one event ever grants its credits (the ledger's unique index on
/// `purchase_id` backs that up). Returns the purchase id, owner and credits when this call
/// completed it.
pub async fn complete_purchase(
    conn: &mut AsyncPgConnection,
    checkout_session_id: &str,
    payment_intent_id: Option<&str>,
) -> QueryResult<Option<(i64, String, i64)>> {
    diesel::update(
        purchases::table
            .filter(purchases::stripe_checkout_session_id.eq(checkout_session_id))
            // Once paid (and perhaps refunded since), a purchase never completes again.
            .filter(purchases::status.eq_any([PurchaseStatus::Pending, PurchaseStatus::Failed])),
    )
    .set((
        purchases::status.eq(PurchaseStatus::Completed),
        purchases::completed_at.eq(Some(Utc::now())),
        purchases::stripe_payment_intent_id.eq(payment_intent_id),
    ))
    .returning((purchases::id, purchases::user_id, purchases::credits_cents))
    .get_result(conn)
    .await
    .optional()
}

/// Marks a Checkout Session's pending purchase failed; whether there was one.
pub async fn fail_pending_purchase(
    conn: &mut AsyncPgConnection,
    checkout_session_id: &str,
) -> QueryResult<bool> {
    let changed = diesel::update(
        purchases::table
            .filter(purchases::stripe_checkout_session_id.eq(checkout_session_id))
            .filter(purchases::status.eq(PurchaseStatus::Pending)),
    )
    .set(purchases::status.eq(PurchaseStatus::Failed))
    .execute(conn)
    .await?;
    Ok(changed > 0)
}

/// A paid invoice's period on its subscription (unless a later period is stored), which also
/// clears `PAST_DUE`/`UNPAID`; whether a row changed.
pub async fn renew_subscription(
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
pub async fn mark_past_due(
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

/// Writes the snapshot to the user's subscription row unless a newer one is stored (the
/// check is in the upsert's `WHERE`, so it also holds against a concurrent write); returns
/// whether it was written.
pub async fn apply_snapshot(
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

/// Takes the lock of payment `payment_intent` (a row of `stripe_payment_refunds`, created with
/// nothing refunded if missing) until the transaction ends, and records `refunded` of `amount`
/// when given (the largest cumulative amount seen stays). A refund and the completion of the
/// purchase it refunds take this lock first, so whichever comes second sees the other.
pub async fn lock_payment(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
    amount: i64,
    refunded: i64,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO stripe_payment_refunds AS r (payment_intent_id, amount_cents, refunded_cents) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (payment_intent_id) DO UPDATE SET \
             refunded_cents = GREATEST(r.refunded_cents, EXCLUDED.refunded_cents), \
             amount_cents = GREATEST(r.amount_cents, EXCLUDED.amount_cents), updated_at = now()",
    )
    .bind::<Text, _>(payment_intent)
    .bind::<BigInt, _>(amount.max(0))
    .bind::<BigInt, _>(refunded.max(0))
    .execute(conn)
    .await
    .map(drop)
}

/// What Stripe refunded of payment `payment_intent`: (amount, refunded), if anything was said.
pub async fn refunded_of(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
) -> QueryResult<Option<(i64, i64)>> {
    stripe_payment_refunds::table
        .find(payment_intent)
        .select((
            stripe_payment_refunds::amount_cents,
            stripe_payment_refunds::refunded_cents,
        ))
        .first(conn)
        .await
        .optional()
}

/// The paid purchase (completed, or refunded in part or in full) of payment `payment_intent`,
/// locked until the transaction ends.
pub async fn paid_purchase(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
) -> QueryResult<Option<Purchase>> {
    purchases::table
        .filter(purchases::stripe_payment_intent_id.eq(payment_intent))
        .filter(purchases::status.eq_any([
            PurchaseStatus::Completed,
            PurchaseStatus::PartiallyRefunded,
            PurchaseStatus::Refunded,
            PurchaseStatus::Disputed,
            PurchaseStatus::DisputeLost,
        ]))
        .select(Purchase::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Records a purchase's refund: the money refunded, the credits taken back, its status.
pub async fn set_purchase_refund(
    conn: &mut AsyncPgConnection,
    purchase_id: i64,
    refunded_amount_cents: i64,
    credits_reversed_cents: i64,
    status: PurchaseStatus,
) -> QueryResult<()> {
    diesel::update(purchases::table.find(purchase_id))
        .set((
            purchases::refunded_amount_cents.eq(refunded_amount_cents),
            purchases::credits_reversed_cents.eq(credits_reversed_cents),
            purchases::status.eq(status),
        ))
        .execute(conn)
        .await
        .map(drop)
}

db_enum! {
    /// Where a dispute is (`stripe_disputes.status`).
    DisputeStatus {
        /// Open: the purchase's remaining credits are held.
        Open => "OPEN",
        /// Closed in the merchant's favour (or an inquiry closed): the hold is released.
        Won => "WON",
        /// Closed in the customer's favour: the held credits stay taken.
        Lost => "LOST",
    }
}

/// A dispute of a payment, as bff keeps it.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = stripe_disputes, check_for_backend(diesel::pg::Pg))]
pub struct Dispute {
    /// `dp_…`.
    pub id: String,
    /// Where it is.
    pub status: DisputeStatus,
    /// Credits the hold took.
    pub held_cents: i64,
    /// Whether the hold was taken.
    pub hold_applied: bool,
    /// Whether the hold was given back.
    pub released: bool,
}

/// Records dispute `id` of payment `payment_intent` as `status`: a closed dispute stays closed
/// (a late `created` event does not reopen it).
pub async fn record_dispute(
    conn: &mut AsyncPgConnection,
    id: &str,
    payment_intent: &str,
    status: DisputeStatus,
    amount: i64,
) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    diesel::sql_query(
        "INSERT INTO stripe_disputes AS d (id, payment_intent_id, status, amount_cents) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO UPDATE SET \
             status = CASE WHEN d.status = 'OPEN' THEN EXCLUDED.status ELSE d.status END, \
             updated_at = now()",
    )
    .bind::<Text, _>(id)
    .bind::<Text, _>(payment_intent)
    .bind::<Text, _>(status)
    .bind::<BigInt, _>(amount.max(0))
    .execute(conn)
    .await
    .map(drop)
}

/// The disputes of payment `payment_intent`, oldest first, locked until the transaction ends.
pub async fn disputes_of(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
) -> QueryResult<Vec<Dispute>> {
    stripe_disputes::table
        .filter(stripe_disputes::payment_intent_id.eq(payment_intent))
        .order((stripe_disputes::created_at, stripe_disputes::id))
        .select(Dispute::as_select())
        .for_update()
        .load(conn)
        .await
}

/// Records what settling did to dispute `id`: its hold, and whether it was given back.
pub async fn set_dispute_hold(
    conn: &mut AsyncPgConnection,
    id: &str,
    held_cents: i64,
    released: bool,
) -> QueryResult<()> {
    diesel::update(stripe_disputes::table.find(id))
        .set((
            stripe_disputes::held_cents.eq(held_cents),
            stripe_disputes::hold_applied.eq(true),
            stripe_disputes::released.eq(released),
            stripe_disputes::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}
