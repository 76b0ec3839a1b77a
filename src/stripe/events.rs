//! What each Stripe event does. [`handle`] records the event id and applies its effect in one
//! transaction: a redelivery (sequential or concurrent — the second insert waits on the first's
//! row and then finds it) changes nothing; a failure commits nothing, so Stripe's retry can
//! succeed later. Events bff cannot act on (unknown type, unknown customer, unknown price) are
//! recorded with that outcome and logged, never retried forever. Refunds and disputes are in
//! [`super::reversals`].

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;

use super::reversals;
use crate::db::credits::{Change, CreditAccount, CreditTransactionKind};
use crate::db::plans::Plan;
use crate::db::purchases::{CreditPack, NewPurchase, PurchaseStatus};
use crate::db::stripe::checkouts::{self, CheckoutState};
use crate::db::stripe::{self, EventOutcome};
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
    let handled = conn.transaction(async |conn| {
        if !stripe::record_event(conn, &event.id, &event.kind, event.created, event.livemode).await? {
            return Ok::<_, diesel::result::Error>(Handled::Duplicate);
        }
        let outcome = apply(conn, event).await?;
        if outcome != EventOutcome::Applied {
            tracing::warn!(event = %event.id, kind = %event.kind, %outcome, "Stripe event not applied");
        }
        stripe::set_event_outcome(conn, &event.id, outcome).await?;
        Ok(Handled::Recorded(outcome))
    })
    .await?;
    if handled == Handled::Recorded(EventOutcome::RefundedDeletedAccount) {
        crate::metrics::checkout_returned();
    }
    Ok(handled)
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
        "charge.refunded" => reversals::charge_refunded(conn, object, event.created).await,
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            reversals::refund_changed(conn, object).await
        }
        "charge.dispute.created" => reversals::dispute_changed(conn, object, false).await,
        "charge.dispute.closed" => reversals::dispute_changed(conn, object, true).await,
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
    // A checkout bff opened whose person was deleted since: the money goes back. (The lock
    // orders this against the deletion: whichever commits first, the other sees it.)
    let recorded = checkouts::lock(conn, session_id).await?;
    match &recorded {
        // Its expiry found it paid and returned the money already.
        Some(checkout)
            if checkout.user_id.is_none() && checkout.state == CheckoutState::Returned =>
        {
            return Ok(EventOutcome::RefundedDeletedAccount);
        }
        Some(checkout) if checkout.user_id.is_none() => {
            return super::returns::checkout_of_gone_person(conn, session, session_id).await;
        }
        Some(_) => checkouts::set_state(conn, session_id, CheckoutState::Completed).await?,
        None => {}
    }
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
        reversals::settle(conn, payment_intent).await?;
    }
    Ok(EventOutcome::Applied)
}

async fn checkout_failed(
    conn: &mut AsyncPgConnection,
    session: &Value,
) -> QueryResult<EventOutcome> {
    let Some(session_id) = session["id"].as_str() else {
        return Ok(EventOutcome::Malformed);
    };
    if checkouts::lock(conn, session_id).await?.is_some() {
        checkouts::set_state(conn, session_id, CheckoutState::Expired).await?;
    }
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
