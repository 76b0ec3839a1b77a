//! Money back out: refunds (`charge.refunded`, `refund.*`) and disputes (`charge.dispute.*`) of
//! credit-pack payments, settled per payment under its lock in any order (see [`settle`]), and
//! refunds of subscription invoices recorded on the subscription's history.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::objects::{Charge, Dispute, Refund};
use crate::db::credits::{Change, CreditAccount, CreditTransactionKind};
use crate::db::purchases::{Purchase, PurchaseStatus};
use crate::db::stripe::disputes::{self, DisputeStatus};
use crate::db::stripe::events::EventOutcome;
use crate::db::stripe::payments;
use crate::db::stripe::refunds::{self, RefundStatus};
use crate::db::subscriptions::history::{self, HistoryKind};

/// The credits to take back of a purchase of `credits` paid `paid` when `refunded` of it was
/// refunded: all of them for a full refund, else the same share rounded down (a partial refund
/// never takes back more than its share, and the total never more than the pack gave).
pub(crate) fn credits_to_take_back(credits: i64, paid: i64, refunded: i64) -> i64 {
    if refunded <= 0 {
        0
    } else if paid <= 0 || refunded >= paid {
        credits
    } else {
        i64::try_from(i128::from(credits) * i128::from(refunded) / i128::from(paid))
            .unwrap_or(credits)
    }
}

/// `charge.refunded`: Stripe's cumulative `amount_refunded` of a payment. Recorded under the
/// payment's lock, then the purchase's credits are taken back in proportion — or later, when
/// the purchase completes. A subscription invoice's charge changes no credits: access follows
/// the subscription's own events.
pub(crate) async fn charge_refunded(
    conn: &mut AsyncPgConnection,
    charge: &Charge,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let (Some(payment_intent), Some(amount), Some(refunded)) = (
        charge.payment_intent.as_deref(),
        charge.amount,
        charge.amount_refunded,
    ) else {
        return Ok(EventOutcome::Malformed);
    };
    if charge.invoice.is_some() {
        tracing::warn!(%payment_intent, refunded, "a subscription payment was refunded");
        if let (Some(id), Some(customer)) = (charge.id.as_deref(), &charge.customer) {
            let entry = history::Entry {
                kind: HistoryKind::PaymentRefunded,
                stripe_object_id: id,
                amount_cents: refunded,
                currency: charge.currency.as_deref().unwrap_or("usd"),
                occurred_at: created,
            };
            history::record_for_customer(conn, customer, &entry).await?;
        }
        return Ok(EventOutcome::SubscriptionPayment);
    }
    payments::lock(conn, payment_intent, amount, refunded).await?;
    // Older API versions list the charge's refunds: each is recorded as a refund event would.
    for refund in &charge.refunds.data {
        if let (Some(id), Some(amount), Some(status)) = (
            refund.id.as_deref(),
            refund.amount,
            refund.status.as_deref().and_then(RefundStatus::from_stripe),
        ) {
            refunds::record(conn, id, payment_intent, amount, status).await?;
        }
    }
    settled(conn, payment_intent).await
}

/// `refund.created` / `refund.updated` / `refund.failed` (and the older
/// `charge.refund.updated`): one refund and where it is, recorded under the payment's lock; a
/// refund that failed gives back the credits it took.
pub(crate) async fn refund_changed(
    conn: &mut AsyncPgConnection,
    refund: &Refund,
) -> QueryResult<EventOutcome> {
    let (Some(id), Some(payment_intent), Some(amount), Some(status)) = (
        refund.id.as_deref(),
        refund.payment_intent.as_deref(),
        refund.amount,
        refund.status.as_deref().and_then(RefundStatus::from_stripe),
    ) else {
        return Ok(EventOutcome::Malformed);
    };
    payments::lock(conn, payment_intent, 0, 0).await?;
    refunds::record(conn, id, payment_intent, amount, status).await?;
    if status == RefundStatus::Failed {
        tracing::warn!(refund = %id, %payment_intent, amount, "a refund failed");
    }
    settled(conn, payment_intent).await
}

/// Settles the purchase of `payment_intent`: applied, or waiting for its purchase.
async fn settled(conn: &mut AsyncPgConnection, payment_intent: &str) -> QueryResult<EventOutcome> {
    Ok(if settle(conn, payment_intent).await? {
        EventOutcome::Applied
    } else {
        EventOutcome::AwaitingPurchase
    })
}

/// Settles the purchase paid by `payment_intent` with what Stripe said of the payment, under
/// the owner's account lock (the caller holds the payment's): takes back what is refunded and
/// not yet taken back, holds the remaining credits for each open (or lost) dispute not yet held,
/// gives back the hold of each won one, and sets the purchase's status. Each step happens once
/// whatever the order of the events; `false` when no paid purchase is known for it yet.
pub(crate) async fn settle(
    conn: &mut AsyncPgConnection,
    payment_intent: &str,
) -> QueryResult<bool> {
    let (amount, charge_refunded) = payments::refunded_of(conn, payment_intent)
        .await?
        .unwrap_or((0, 0));
    let refunded = refunds::refunded_now(conn, payment_intent, charge_refunded).await?;
    let Some(purchase) = Purchase::paid_by(conn, payment_intent).await? else {
        return Ok(false);
    };
    CreditAccount::lock(conn, &purchase.user_id).await?;
    // Every row names its pack: "Refund: credit pack MEDIUM".
    let texts = [
        "Refund: credit pack",
        "Partial refund: credit pack",
        "Dispute: credits held of credit pack",
        "Dispute won: credits released of credit pack",
        "Refund failed: credits returned of credit pack",
    ]
    .map(|text| format!("{text} {}", purchase.pack));
    let change = |kind, amount_cents, description: usize| Change {
        user_id: &purchase.user_id,
        kind,
        amount_cents,
        description: &texts[description],
        photo_job_id: None,
        purchase_id: Some(purchase.id),
    };
    let paid = if purchase.amount_cents > 0 {
        purchase.amount_cents
    } else {
        amount
    };
    // What is refunded now decides what is taken back: a refund that failed gives back its
    // share (a PURCHASE_REFUND row with a positive amount).
    let reversed = credits_to_take_back(purchase.credits_cents, paid, refunded);
    let delta = reversed - purchase.credits_reversed_cents;
    if delta > 0 {
        let description = if refunded >= paid { 0 } else { 1 };
        CreditAccount::take_back(
            conn,
            &change(CreditTransactionKind::PurchaseRefund, -delta, description),
        )
        .await?;
    } else if delta < 0 {
        let given_back = change(CreditTransactionKind::PurchaseRefund, -delta, 4);
        CreditAccount::apply(conn, &given_back).await?;
    }
    let disputes = disputes::of_payment(conn, payment_intent).await?;
    let mut held: i64 = disputes
        .iter()
        .filter(|d| d.hold_applied && !d.released)
        .map(|d| d.held_cents)
        .sum();
    for dispute in &disputes {
        let wants_hold = dispute.status != DisputeStatus::Won;
        if wants_hold && !dispute.hold_applied {
            let hold = (purchase.credits_cents - reversed - held).max(0);
            if hold > 0 {
                CreditAccount::take_back(
                    conn,
                    &change(CreditTransactionKind::DisputeHold, -hold, 2),
                )
                .await?;
            }
            held += hold;
            disputes::set_hold(conn, &dispute.id, hold, false).await?;
        } else if dispute.status == DisputeStatus::Won && dispute.hold_applied && !dispute.released
        {
            if dispute.held_cents > 0 {
                let release = change(CreditTransactionKind::DisputeRelease, dispute.held_cents, 3);
                CreditAccount::apply(conn, &release).await?;
            }
            held -= dispute.held_cents;
            disputes::set_hold(conn, &dispute.id, dispute.held_cents, true).await?;
        }
    }
    let status = if disputes.iter().any(|d| d.status == DisputeStatus::Lost) {
        PurchaseStatus::DisputeLost
    } else if disputes.iter().any(|d| d.status == DisputeStatus::Open) {
        PurchaseStatus::Disputed
    } else if refunded >= paid && refunded > 0 {
        PurchaseStatus::Refunded
    } else if refunded > 0 {
        PurchaseStatus::PartiallyRefunded
    } else {
        PurchaseStatus::Completed
    };
    Purchase::set_refund(conn, purchase.id, refunded, reversed, status).await?;
    Ok(true)
}

/// `charge.dispute.created` / `charge.dispute.closed`: the dispute recorded under the payment's
/// lock, then the purchase settled (or later, when it completes). A dispute of a payment bff has
/// no purchase for (a subscription's) is recorded and logged; access follows the subscription's
/// own events.
pub(crate) async fn dispute_changed(
    conn: &mut AsyncPgConnection,
    dispute: &Dispute,
    closed: bool,
) -> QueryResult<EventOutcome> {
    let (Some(id), Some(payment_intent)) =
        (dispute.id.as_deref(), dispute.payment_intent.as_deref())
    else {
        return Ok(EventOutcome::Malformed);
    };
    let status = match (closed, dispute.status.as_deref()) {
        (true, Some("won" | "warning_closed")) => DisputeStatus::Won,
        (true, Some("lost")) => DisputeStatus::Lost,
        (true, _) => return Ok(EventOutcome::Malformed),
        (false, _) => DisputeStatus::Open,
    };
    let amount = dispute.amount.unwrap_or(0);
    payments::lock(conn, payment_intent, amount, 0).await?;
    disputes::record(conn, id, payment_intent, status, amount).await?;
    tracing::warn!(dispute = %id, %payment_intent, %status, "a payment is disputed");
    settled(conn, payment_intent).await
}
