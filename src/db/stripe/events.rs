//! The events Stripe delivered (`stripe_events`): each recorded once, with what bff did with
//! it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::stripe_events;
use crate::db::states::db_enum;

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
pub(crate) async fn record(
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
pub(crate) async fn set_outcome(
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
