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

use super::kind::EventKind;
use super::objects::{self, CheckoutSession, Envelope, Invoice, Subscription};
use super::reversals;
use crate::db::credits::{Change, CreditAccount, CreditTransactionKind};
use crate::db::plans::Plan;
use crate::db::purchases::{CreditPack, NewPurchase, Purchase, PurchaseStatus};
use crate::db::stripe::checkouts::{self, CheckoutState};
use crate::db::stripe::customers;
use crate::db::stripe::events::{self as recorded, EventOutcome};
use crate::db::stripe::payments;
use crate::db::stripe::subscriptions as subscription_rows;
use crate::db::subscriptions::history::{self, HistoryKind};

/// An event as Stripe sends it (the fields bff reads).
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// `evt_…`.
    pub id: String,
    /// e.g. `checkout.session.completed`: recorded as Stripe names it, handled or not.
    pub kind: String,
    /// When Stripe created it.
    pub created: DateTime<Utc>,
    /// Live or test mode.
    pub livemode: bool,
    /// `data.object`, read by [`Event::handled`]'s kind.
    pub object: Value,
}

impl Event {
    /// Reads a verified payload; `None` when it is not an event.
    pub(crate) fn from_json(body: &Value) -> Option<Event> {
        let envelope: Envelope = objects::read(body);
        Some(Event {
            id: envelope.id.filter(|id| !id.is_empty())?,
            kind: envelope.kind?,
            created: envelope.created.unwrap_or_else(Utc::now),
            livemode: envelope.livemode,
            object: envelope.data.object,
        })
    }

    /// Its kind, when bff acts on it.
    pub(crate) fn handled(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }

    /// Its type as a metric label: the kind bff acts on, else `other`.
    pub(crate) fn label(&self) -> &'static str {
        self.handled().map_or("other", EventKind::as_str)
    }
}

/// What happened to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Handled {
    /// First delivery; the outcome was recorded.
    Recorded(EventOutcome),
    /// Seen before: nothing was done.
    Duplicate,
}

/// Records `event` and applies its effect, in one transaction.
pub(crate) async fn handle(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<Handled> {
    let handled = conn.transaction(async |conn| {
        if !recorded::record(conn, &event.id, &event.kind, event.created, event.livemode).await? {
            return Ok::<_, diesel::result::Error>(Handled::Duplicate);
        }
        let outcome = apply(conn, event).await?;
        if outcome != EventOutcome::Applied {
            tracing::warn!(event = %event.id, kind = %event.kind, %outcome, "Stripe event not applied");
        }
        recorded::set_outcome(conn, &event.id, outcome).await?;
        Ok(Handled::Recorded(outcome))
    })
    .await?;
    if handled == Handled::Recorded(EventOutcome::RefundedDeletedAccount) {
        crate::metrics::checkout_returned();
    }
    Ok(handled)
}

async fn apply(conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<EventOutcome> {
    use EventKind as K;
    let Some(kind) = event.handled() else {
        return Ok(EventOutcome::Ignored);
    };
    let object = &event.object;
    match kind {
        K::CheckoutSessionCompleted | K::CheckoutSessionAsyncPaymentSucceeded => {
            checkout_completed(conn, &objects::read(object)).await
        }
        K::CheckoutSessionAsyncPaymentFailed | K::CheckoutSessionExpired => {
            checkout_failed(conn, &objects::read(object)).await
        }
        K::CustomerSubscriptionCreated
        | K::CustomerSubscriptionUpdated
        | K::CustomerSubscriptionDeleted => {
            subscription_changed(conn, &objects::read(object), event.created).await
        }
        K::CustomerSubscriptionTrialWillEnd => trial_will_end(conn, &objects::read(object)).await,
        K::InvoicePaid => invoice_paid(conn, &objects::read(object), event.created).await,
        K::InvoicePaymentFailed => {
            invoice_failed(conn, &objects::read(object), event.created).await
        }
        K::ChargeRefunded => {
            reversals::charge_refunded(conn, &objects::read(object), event.created).await
        }
        K::RefundCreated | K::RefundUpdated | K::RefundFailed | K::ChargeRefundUpdated => {
            reversals::refund_changed(conn, &objects::read(object)).await
        }
        K::ChargeDisputeCreated => {
            reversals::dispute_changed(conn, &objects::read(object), false).await
        }
        K::ChargeDisputeClosed => {
            reversals::dispute_changed(conn, &objects::read(object), true).await
        }
    }
}

/// The user of a Checkout Session: `client_reference_id` (set by bff), else
/// `metadata.user_id`, else the customer's known user.
async fn checkout_user(
    conn: &mut AsyncPgConnection,
    session: &CheckoutSession,
) -> QueryResult<Option<String>> {
    for candidate in [&session.client_reference_id, &session.metadata.user_id] {
        if let Some(user_id) = candidate
            && customers::user_exists(conn, user_id).await?
        {
            return Ok(Some(user_id.clone()));
        }
    }
    match &session.customer {
        Some(customer) => customers::user_for_customer(conn, customer).await,
        None => Ok(None),
    }
}

async fn checkout_completed(
    conn: &mut AsyncPgConnection,
    session: &CheckoutSession,
) -> QueryResult<EventOutcome> {
    let Some(session_id) = session.id.as_deref() else {
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
    if let Some(customer) = &session.customer {
        customers::remember(conn, &user_id, customer).await?;
    }
    if session.mode.as_deref() != Some("payment") {
        // Subscriptions take effect through customer.subscription.* events.
        return Ok(EventOutcome::Applied);
    }
    let Some(pack) = session.metadata.pack.as_deref() else {
        return Ok(EventOutcome::NotACreditPack);
    };
    let Some(credits_cents) = CreditPack::credits_of(conn, pack).await? else {
        return Ok(EventOutcome::UnknownPack);
    };
    let amount = session.amount_total.unwrap_or(0);
    NewPurchase {
        user_id: &user_id,
        stripe_checkout_session_id: session_id,
        pack,
        amount_cents: amount.max(0),
        currency: session.currency.as_deref().unwrap_or("usd"),
        credits_cents,
        status: PurchaseStatus::Pending,
    }
    .insert(conn)
    .await?;
    if !session.paid() {
        return Ok(EventOutcome::AwaitingPayment);
    }
    // The payment's lock, then the account's: the order every refund takes them in.
    let payment_intent = session.payment_intent.as_deref();
    if let Some(payment_intent) = payment_intent {
        payments::lock(conn, payment_intent, amount, 0).await?;
    }
    CreditAccount::lock(conn, &user_id).await?;
    let completed = Purchase::complete(conn, session_id, payment_intent).await?;
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
    session: &CheckoutSession,
) -> QueryResult<EventOutcome> {
    let Some(session_id) = session.id.as_deref() else {
        return Ok(EventOutcome::Malformed);
    };
    if checkouts::lock(conn, session_id).await?.is_some() {
        checkouts::set_state(conn, session_id, CheckoutState::Expired).await?;
    }
    Ok(if Purchase::fail_pending(conn, session_id).await? {
        EventOutcome::Applied
    } else {
        EventOutcome::NoPendingPurchase
    })
}

/// `customer.subscription.trial_will_end`: the person hears of it (TRIAL_ENDING); the
/// subscription itself changes through its own events.
async fn trial_will_end(
    conn: &mut AsyncPgConnection,
    subscription: &Subscription,
) -> QueryResult<EventOutcome> {
    let user_id = match &subscription.customer {
        Some(customer) => customers::user_for_customer(conn, customer).await?,
        None => None,
    };
    let user_id = match (user_id, &subscription.metadata.user_id) {
        (Some(user_id), _) => user_id,
        (None, Some(candidate)) if customers::user_exists(conn, candidate).await? => {
            candidate.clone()
        }
        _ => return Ok(EventOutcome::UnknownCustomer),
    };
    crate::db::notifications::trial_ending(conn, &user_id, subscription.trial_end).await?;
    Ok(EventOutcome::Applied)
}

async fn subscription_changed(
    conn: &mut AsyncPgConnection,
    subscription: &Subscription,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let Some(snapshot) = subscription.snapshot() else {
        return Ok(EventOutcome::Malformed);
    };
    let mut user_id = match &snapshot.customer_id {
        Some(customer) => customers::user_for_customer(conn, customer).await?,
        None => None,
    };
    if user_id.is_none()
        && let Some(candidate) = &snapshot.user_id
        && customers::user_exists(conn, candidate).await?
    {
        if let Some(customer) = &snapshot.customer_id {
            customers::remember(conn, candidate, customer).await?;
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
    let written =
        subscription_rows::apply_snapshot(conn, &user_id, plan, &snapshot, created).await?;
    Ok(if written {
        EventOutcome::Applied
    } else {
        EventOutcome::Stale
    })
}

/// Writes an invoice on its subscription's history (whether or not the event is stale for the
/// subscription's state: the payment happened either way), for `amount` (paid or due).
async fn invoice_history(
    conn: &mut AsyncPgConnection,
    invoice: &Invoice,
    subscription: &str,
    kind: HistoryKind,
    amount: Option<i64>,
    created: DateTime<Utc>,
) -> QueryResult<()> {
    let Some(id) = invoice.id.as_deref() else {
        return Ok(());
    };
    let entry = history::Entry {
        kind,
        stripe_object_id: id,
        amount_cents: amount.unwrap_or(0),
        currency: invoice.currency.as_deref().unwrap_or("usd"),
        occurred_at: created,
    };
    history::record_for_subscription(conn, subscription, &entry)
        .await
        .map(drop)
}

async fn invoice_paid(
    conn: &mut AsyncPgConnection,
    invoice: &Invoice,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let Some(subscription) = invoice.subscription() else {
        return Ok(EventOutcome::NotASubscriptionInvoice);
    };
    let period = invoice.lines.data.first().map(|line| &line.period);
    let (Some(start), Some(end)) = (period.and_then(|p| p.start), period.and_then(|p| p.end))
    else {
        return Ok(EventOutcome::Malformed);
    };
    invoice_history(
        conn,
        invoice,
        subscription,
        HistoryKind::InvoicePaid,
        invoice.amount_paid,
        created,
    )
    .await?;
    let renewed = subscription_rows::renew(conn, subscription, start, end, created).await?;
    Ok(if renewed {
        EventOutcome::Applied
    } else {
        EventOutcome::UnknownOrStaleSubscription
    })
}

async fn invoice_failed(
    conn: &mut AsyncPgConnection,
    invoice: &Invoice,
    created: DateTime<Utc>,
) -> QueryResult<EventOutcome> {
    let Some(subscription) = invoice.subscription() else {
        return Ok(EventOutcome::NotASubscriptionInvoice);
    };
    invoice_history(
        conn,
        invoice,
        subscription,
        HistoryKind::PaymentFailed,
        invoice.amount_due,
        created,
    )
    .await?;
    let changed = subscription_rows::mark_past_due(conn, subscription, created).await?;
    Ok(if changed {
        EventOutcome::Applied
    } else {
        EventOutcome::UnknownOrStaleSubscription
    })
}
