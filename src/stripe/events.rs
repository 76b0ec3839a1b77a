//! What each Stripe event does. [`handle`] records the event id and applies its effect in one
//! transaction: a redelivery (sequential or concurrent — the second insert waits on the first's
//! row and then finds it) changes nothing; a failure commits nothing, so Stripe's retry can
//! succeed later. Events bff cannot act on (unknown type, unknown customer, unknown price) are
//! recorded with that outcome and logged, never retried forever.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;

use crate::db::credits::{Change, CreditAccount, CreditTransactionKind};
use crate::db::plans::Plan;
use crate::db::purchases::{CreditPack, NewPurchase, PurchaseStatus};
use crate::db::stripe::refunds::{self, RefundStatus};
use crate::db::stripe::{self, DisputeStatus, EventOutcome};
use crate::db::subscriptions::history::{self, HistoryKind};
use crate::stripe::snapshot::{Snapshot, customer_id, timestamp};

pub use super::handled::HANDLED;

/// An event as Stripe sends it (the fields bff reads).
#[derive(Debug, Clone)]
pub struct Event {
    /// `evt_…`.
    pub id: String,
    /// e.g. `checkout.session.completed`.
    pub kind: String,
    /// When Stripe created it.
    pub created: DateTime<Utc>,
    /// Live or test mode.
    pub livemode: bool,
    /// `data.object`.
    pub object: Value,
}

impl Event {
    /// Reads a verified payload; `None` when it is not an event.
    pub fn from_json(body: &Value) -> Option<Event> {
        Some(Event {
            id: body["id"].as_str().filter(|id| !id.is_empty())?.to_owned(),
            kind: body["type"].as_str()?.to_owned(),
            created: timestamp(&body["created"]).unwrap_or_else(Utc::now),
            livemode: body["livemode"].as_bool().unwrap_or(false),
            object: body["data"]["object"].clone(),
        })
    }
}

/// What happened to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// First delivery; the outcome was recorded.
    Recorded(EventOutcome),
    /// Seen before: nothing was done.
    Duplicate,
}

/// Records `event` and applies its effect, in one transaction.
pub async fn handle(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<Handled> {
    conn.transaction(async |conn| {
        if !stripe::record_event(conn, &event.id, &event.kind, event.created, event.livemode).await? {
            return Ok(Handled::Duplicate);
        }
        let outcome = apply(conn, event).await?;
        if outcome != EventOutcome::Applied {
            tracing::warn!(event = %event.id, kind = %event.kind, %outcome, "Stripe event not applied");
        }
        stripe::set_event_outcome(conn, &event.id, outcome).await?;
        Ok(Handled::Recorded(outcome))
    })
    .await
}

async fn apply(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<EventOutcome> {
    let object = &event.object;
    match event.kind.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            checkout_completed(conn, object).await
        }
        "checkout.session.async_payment_failed" | "checkout.session.expired" => {
            checkout_failed(conn, object).await
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            subscription_changed(conn, object, event.created).await
        }
        "invoice.paid" => invoice_paid(conn, object, event.created).await,
        "charge.refunded" => charge_refunded(conn, object, event.created).await,
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            refund_changed(conn, object).await
        }
        "charge.dispute.created" => dispute_changed(conn, object, false).await,
        "charge.dispute.closed" => dispute_changed(conn, object, true).await,
        "invoice.payment_failed" => invoice_failed(conn, object, event.created).await,
        _ => Ok(EventOutcome::Ignored),
    }
}

/// The user of a Checkout Session: `client_reference_id` (set by bff), else
/// `metadata.user_id`, else the customer's known user.
async fn checkout_user(
    conn: &mut AsyncPgConnection,
    session: &Value,
) -> QueryResult<Option<String>> {
    for candidate in [
        &session["client_reference_id"],
        &session["metadata"]["user_id"],
    ] {
        if let Some(user_id) = candidate.as_str()
            && stripe::user_exists(conn, user_id).await?
        {
            return Ok(Some(user_id.to_owned()));
        }
    }
    match customer_id(&session["customer"]) {
        Some(customer) => stripe::user_for_customer(conn, &customer).await,
        None => Ok(None),
    }
}

async fn checkout_completed(
    conn: &mut AsyncPgConnection,
    session: &Value,
) -> QueryResult<EventOutcome> {
    let Some(session_id) = session["id"].as_str() else {
        return Ok(EventOutcome::Malformed);
    };
    let Some(user_id) = checkout_user(conn, session).await? else {
        return Ok(EventOutcome::UnknownCustomer);
    };
    if let Some(customer) = customer_id(&session["customer"]) {
        stripe::remember_customer(conn, &user_id, &customer).await?;
    }
    if session["mode"].as_str() != Some("payment") {
        // Subscriptions take effect through customer.subscription.* events.
        return Ok(EventOutcome::Applied);
    }
    let Some(pack) = session["metadata"]["pack"].as_str() else {
        return Ok(EventOutcome::NotACreditPack);
    };
    let Some(credits_cents) = CreditPack::credits_of(conn, pack).await? else {
        return Ok(EventOutcome::UnknownPack);
    };
    NewPurchase {
        user_id: &user_id,
        stripe_checkout_session_id: session_id,
        pack,
        amount_cents: session["amount_total"].as_i64().unwrap_or(0).max(0),
        currency: session["currency"].as_str().unwrap_or("usd"),
        credits_cents,
        status: PurchaseStatus::Pending,
    }
    .insert(conn)
    .await?;
    let paid = matches!(
        session["payment_status"].as_str(),
        Some("paid" | "no_payment_required")
    );
    if !paid {
        return Ok(EventOutcome::AwaitingPayment);
    }
    // The payment's lock, then the account's: the order every refund takes them in.
    let payment_intent = session["payment_intent"].as_str();
    if let Some(payment_intent) = payment_intent {
        let amount = session["amount_total"].as_i64().unwrap_or(0);
        stripe::lock_payment(conn, payment_intent, amount, 0).await?;
    }
    CreditAccount::lock(conn, &user_id).await?;
    let completed = stripe::complete_purchase(conn, session_id, payment_intent).await?;
    let Some((purchase_id, owner, credits)) = completed else {
        return Ok(EventOutcome::AlreadyGranted);
    };
    if owner != user_id {
        CreditAccount::lock(conn, &owner).await?;
    }
    let description = format!("Credit pack {pack}");
    let change = Change {
        user_id: &owner,
        kind: CreditTransactionKind::Purchase,
        amount_cents: credits,
        description: &description,
        photo_job_id: None,
        purchase_id: Some(purchase_id),
    };
    CreditAccount::apply(conn, &change).await?;
    // A refund that arrived before this completion is applied now, after the grant.
    if let Some(payment_intent) = payment_intent {
        settle(conn, payment_intent).await?;
    }
    Ok(EventOutcome::Applied)
}

/// The credits to take back of a purchase of `credits` paid `paid` when `refunded` of it was
/// refunded: all of them for a full refund, else the same share rounded down (a partial refund
/// never takes back more than its share, and the total never more than the pack gave).
pub fn credits_to_take_back(credits: i64, paid: i64, refunded: i64) -> i64 {
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
async fn charge_refunded(
    conn: &mut AsyncPgConnection,
    charge: &Value,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let (Some(payment_intent), Some(amount), Some(refunded)) = (
        charge["payment_intent"].as_str(),
        charge["amount"].as_i64(),
        charge["amount_refunded"].as_i64(),
    ) else {
        return Ok(EventOutcome::Malformed);
    };
    if charge["invoice"].as_str().is_some() {
        tracing::warn!(%payment_intent, refunded, "a subscription payment was refunded");
        if let (Some(id), Some(customer)) =
            (charge["id"].as_str(), customer_id(&charge["customer"]))
        {
            let entry = history::Entry {
                kind: HistoryKind::PaymentRefunded,
                stripe_object_id: id,
                amount_cents: refunded,
                currency: charge["currency"].as_str().unwrap_or("usd"),
                occurred_at: created,
            };
            history::record_for_customer(conn, &customer, &entry).await?;
        }
        return Ok(EventOutcome::SubscriptionPayment);
    }
    stripe::lock_payment(conn, payment_intent, amount, refunded).await?;
    // Older API versions list the charge's refunds: each is recorded as a refund event would.
    if let Some(list) = charge["refunds"]["data"].as_array() {
        for refund in list {
            if let (Some(id), Some(amount), Some(status)) = (
                refund["id"].as_str(),
                refund["amount"].as_i64(),
                refund["status"]
                    .as_str()
                    .and_then(RefundStatus::from_stripe),
            ) {
                refunds::record(conn, id, payment_intent, amount, status).await?;
            }
        }
    }
    settled(conn, payment_intent).await
}

/// `refund.created` / `refund.updated` / `refund.failed` (and the older
/// `charge.refund.updated`): one refund and where it is, recorded under the payment's lock; a
/// refund that failed gives back the credits it took.
async fn refund_changed(conn: &mut AsyncPgConnection, refund: &Value) -> QueryResult<EventOutcome> {
    let (Some(id), Some(payment_intent), Some(amount), Some(status)) = (
        refund["id"].as_str(),
        refund["payment_intent"].as_str(),
        refund["amount"].as_i64(),
        refund["status"]
            .as_str()
            .and_then(RefundStatus::from_stripe),
    ) else {
        return Ok(EventOutcome::Malformed);
    };
    stripe::lock_payment(conn, payment_intent, 0, 0).await?;
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
async fn settle(conn: &mut AsyncPgConnection, payment_intent: &str) -> QueryResult<bool> {
    let (amount, charge_refunded) = stripe::refunded_of(conn, payment_intent)
        .await?
        .unwrap_or((0, 0));
    let refunded = refunds::refunded_now(conn, payment_intent, charge_refunded).await?;
    let Some(purchase) = stripe::paid_purchase(conn, payment_intent).await? else {
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
    let disputes = stripe::disputes_of(conn, payment_intent).await?;
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
            stripe::set_dispute_hold(conn, &dispute.id, hold, false).await?;
        } else if dispute.status == DisputeStatus::Won && dispute.hold_applied && !dispute.released
        {
            if dispute.held_cents > 0 {
                let release = change(CreditTransactionKind::DisputeRelease, dispute.held_cents, 3);
                CreditAccount::apply(conn, &release).await?;
            }
            held -= dispute.held_cents;
            stripe::set_dispute_hold(conn, &dispute.id, dispute.held_cents, true).await?;
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
    stripe::set_purchase_refund(conn, purchase.id, refunded, reversed, status).await?;
    Ok(true)
}

/// `charge.dispute.created` / `charge.dispute.closed`: the dispute recorded under the payment's
/// lock, then the purchase settled (or later, when it completes). A dispute of a payment bff has
/// no purchase for (a subscription's) is recorded and logged; access follows the subscription's
/// own events.
async fn dispute_changed(
    conn: &mut AsyncPgConnection,
    dispute: &Value,
    closed: bool,
) -> QueryResult<EventOutcome> {
    let (Some(id), Some(payment_intent)) =
        (dispute["id"].as_str(), dispute["payment_intent"].as_str())
    else {
        return Ok(EventOutcome::Malformed);
    };
    let status = match (closed, dispute["status"].as_str()) {
        (true, Some("won" | "warning_closed")) => DisputeStatus::Won,
        (true, Some("lost")) => DisputeStatus::Lost,
        (true, _) => return Ok(EventOutcome::Malformed),
        (false, _) => DisputeStatus::Open,
    };
    let amount = dispute["amount"].as_i64().unwrap_or(0);
    stripe::lock_payment(conn, payment_intent, amount, 0).await?;
    stripe::record_dispute(conn, id, payment_intent, status, amount).await?;
    tracing::warn!(dispute = %id, %payment_intent, %status, "a payment is disputed");
    settled(conn, payment_intent).await
}

async fn checkout_failed(
    conn: &mut AsyncPgConnection,
    session: &Value,
) -> QueryResult<EventOutcome> {
    let Some(session_id) = session["id"].as_str() else {
        return Ok(EventOutcome::Malformed);
    };
    Ok(if stripe::fail_pending_purchase(conn, session_id).await? {
        EventOutcome::Applied
    } else {
        EventOutcome::NoPendingPurchase
    })
}

async fn subscription_changed(
    conn: &mut AsyncPgConnection,
    object: &Value,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let Some(snapshot) = Snapshot::from_json(object) else {
        return Ok(EventOutcome::Malformed);
    };
    let mut user_id = match &snapshot.customer_id {
        Some(customer) => stripe::user_for_customer(conn, customer).await?,
        None => None,
    };
    if user_id.is_none()
        && let Some(candidate) = &snapshot.user_id
        && stripe::user_exists(conn, candidate).await?
    {
        if let Some(customer) = &snapshot.customer_id {
            stripe::remember_customer(conn, candidate, customer).await?;
        }
        user_id = Some(candidate.clone());
    }
    let Some(user_id) = user_id else {
        return Ok(EventOutcome::UnknownCustomer);
    };
    let Some(price) = &snapshot.price_id else {
        return Ok(EventOutcome::Malformed);
    };
    let Some(plan) = Plan::for_price(conn, price).await? else {
        tracing::error!(%price, "a subscription's price is not any plan's stripe_price_id");
        return Ok(EventOutcome::UnknownPrice);
    };
    let written = stripe::apply_snapshot(conn, &user_id, plan, &snapshot, created).await?;
    Ok(if written {
        EventOutcome::Applied
    } else {
        EventOutcome::Stale
    })
}

/// The subscription an invoice is for (older and newer API shapes).
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    invoice["subscription"]
        .as_str()
        .or_else(|| invoice["parent"]["subscription_details"]["subscription"].as_str())
        .or_else(|| invoice["lines"]["data"][0]["subscription"].as_str())
}

/// Writes an invoice on its subscription's history (whether or not the event is stale for the
/// subscription's state: the payment happened either way).
async fn invoice_history(
    conn: &mut AsyncPgConnection,
    invoice: &Value,
    subscription: &str,
    kind: HistoryKind,
    amount_field: &str,
    created: DateTime<Utc>,
) -> QueryResult<()> {
    let Some(id) = invoice["id"].as_str() else {
        return Ok(());
    };
    let entry = history::Entry {
        kind,
        stripe_object_id: id,
        amount_cents: invoice[amount_field].as_i64().unwrap_or(0),
        currency: invoice["currency"].as_str().unwrap_or("usd"),
        occurred_at: created,
    };
    history::record_for_subscription(conn, subscription, &entry)
        .await
        .map(drop)
}

async fn invoice_paid(
    conn: &mut AsyncPgConnection,
    invoice: &Value,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let Some(subscription) = invoice_subscription(invoice) else {
        return Ok(EventOutcome::NotASubscriptionInvoice);
    };
    let period = &invoice["lines"]["data"][0]["period"];
    let (Some(start), Some(end)) = (timestamp(&period["start"]), timestamp(&period["end"])) else {
        return Ok(EventOutcome::Malformed);
    };
    invoice_history(
        conn,
        invoice,
        subscription,
        HistoryKind::InvoicePaid,
        "amount_paid",
        created,
    )
    .await?;
    let renewed = stripe::renew_subscription(conn, subscription, start, end, created).await?;
    Ok(if renewed {
        EventOutcome::Applied
    } else {
        EventOutcome::UnknownOrStaleSubscription
    })
}

async fn invoice_failed(
    conn: &mut AsyncPgConnection,
    invoice: &Value,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let Some(subscription) = invoice_subscription(invoice) else {
        return Ok(EventOutcome::NotASubscriptionInvoice);
    };
    invoice_history(
        conn,
        invoice,
        subscription,
        HistoryKind::PaymentFailed,
        "amount_due",
        created,
    )
    .await?;
    let changed = stripe::mark_past_due(conn, subscription, created).await?;
    Ok(if changed {
        EventOutcome::Applied
    } else {
        EventOutcome::UnknownOrStaleSubscription
    })
}
