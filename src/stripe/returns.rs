//! Money that arrives after its person is gone goes back. A Checkout Session bff opened stays
//! payable for a day; when its person is deleted meanwhile, the deletion queues it to expire
//! (`EXPIRE_CHECKOUT`), and when it completes anyway — paid before the expiry landed, or while
//! the deletion ran — [`checkout_of_gone_person`] queues the payment's full refund, the
//! cancellation of the subscription it created and the deletion of the customer it created,
//! in the event's own transaction: recorded once with the event, done by the clean-up sweeper
//! with retries ([`perform`]), each Stripe call idempotent. The expiry itself, finding the
//! session paid, queues the same ([`paid_before_expiry`]), so the money goes back even when
//! its webhook never reached a bff that knows to return it (a lost delivery, an older replica
//! during a rolling deploy).

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::client::{StripeClient, StripeError};
use super::objects::{self, CheckoutSession, Invoice};
use crate::db::account::{self, CleanupAction};
use crate::db::purchases::Purchase;
use crate::db::stripe::checkouts::{self, CheckoutState};
use crate::db::stripe::customers;
use crate::db::stripe::events::EventOutcome;

/// A Checkout Session completed (or its delayed payment succeeded) for a person deleted since
/// it opened: nobody gets the credits or the plan; the money goes back. Queues, once: the
/// full refund of what was paid (the payment intent of a pack; the first invoice of a
/// subscription), the cancellation of the subscription, the deletion of the customer when it
/// is no living person's. A session not paid yet (a delayed payment method) cancels the
/// subscription now and refunds when its payment succeeds.
pub(crate) async fn checkout_of_gone_person(
    conn: &mut AsyncPgConnection,
    session: &CheckoutSession,
    session_id: &str,
) -> QueryResult<EventOutcome> {
    if let Some(subscription) = &session.subscription {
        account::queue(conn, CleanupAction::CancelSubscription, subscription).await?;
    }
    if let Some(customer) = &session.customer
        && customers::user_for_customer(conn, customer)
            .await?
            .is_none()
    {
        account::queue(conn, CleanupAction::DeleteCustomer, customer).await?;
    }
    if !session.paid() {
        return Ok(EventOutcome::AwaitingPayment);
    }
    if session.amount_total.unwrap_or(0) > 0 {
        if let Some(payment_intent) = &session.payment_intent {
            account::queue(conn, CleanupAction::RefundPayment, payment_intent).await?;
        } else if let Some(invoice) = &session.invoice {
            account::queue(conn, CleanupAction::RefundInvoice, invoice).await?;
        } else {
            tracing::error!(
                session = %session_id,
                "a paid checkout of a deleted person names no payment intent or invoice: refund it by hand in Stripe's dashboard"
            );
        }
    }
    // A pack's purchase, kept under its tombstone: no credits will come of it.
    Purchase::fail_pending(conn, session_id).await?;
    checkouts::set_state(conn, session_id, CheckoutState::Returned).await?;
    tracing::warn!(
        session = %session_id,
        "a checkout completed after its person was deleted: refunded, its subscription canceled"
    );
    Ok(EventOutcome::RefundedDeletedAccount)
}

/// What a clean-up found in Stripe.
#[derive(Debug)]
pub(crate) enum Performed {
    /// Done (or already so).
    Done,
    /// A checkout to expire was completed before: the session, for [`paid_before_expiry`].
    Completed(Box<CheckoutSession>),
}

/// The expiry of a gone person's checkout found it completed: its money goes back, as its
/// webhook would have made it (once: a session already returned is left alone).
pub(crate) async fn paid_before_expiry(
    conn: &mut AsyncPgConnection,
    session: &CheckoutSession,
) -> QueryResult<()> {
    let Some(session_id) = session.id.as_deref() else {
        return Ok(());
    };
    let Some(checkout) = checkouts::lock(conn, session_id).await? else {
        return Ok(());
    };
    if checkout.user_id.is_some() || checkout.state == CheckoutState::Returned {
        return Ok(());
    }
    if checkout_of_gone_person(conn, session, session_id).await?
        == EventOutcome::RefundedDeletedAccount
    {
        crate::metrics::checkout_returned();
    }
    Ok(())
}

/// Does one queued clean-up in Stripe. What is already so (a customer or subscription gone, a
/// checkout expired already, a payment refunded already) counts as done.
pub(crate) async fn perform(
    client: &StripeClient,
    action: CleanupAction,
    stripe_id: &str,
) -> Result<Performed, StripeError> {
    if action == CleanupAction::ExpireCheckout {
        return expire(client, stripe_id).await;
    }
    let result = match action {
        CleanupAction::CancelSubscription => client
            .delete(&format!("subscriptions/{stripe_id}"))
            .await
            .map(drop),
        CleanupAction::DeleteCustomer => client
            .delete(&format!("customers/{stripe_id}"))
            .await
            .map(drop),
        CleanupAction::ExpireCheckout => Ok(()),
        CleanupAction::RefundPayment => refund(client, "payment_intent", stripe_id).await,
        CleanupAction::RefundInvoice => refund_invoice(client, stripe_id).await,
    };
    match result {
        Ok(()) | Err(StripeError::Api { status: 404, .. }) => Ok(Performed::Done),
        Err(error) => Err(error),
    }
}

/// Expires checkout `id`. Stripe refuses one that is no longer open (400): then the session
/// says whether it completed.
async fn expire(client: &StripeClient, id: &str) -> Result<Performed, StripeError> {
    match client
        .post(&format!("checkout/sessions/{id}/expire"), &[], None)
        .await
    {
        Ok(_) | Err(StripeError::Api { status: 404, .. }) => Ok(Performed::Done),
        Err(StripeError::Api { status: 400, .. }) => {
            let session: CheckoutSession =
                objects::read(&client.get(&format!("checkout/sessions/{id}")).await?);
            Ok(if session.status.as_deref() == Some("complete") {
                Performed::Completed(Box::new(session))
            } else {
                Performed::Done
            })
        }
        Err(error) => Err(error),
    }
}

/// Refunds payment `id` (a `payment_intent` or a `charge`) in full, once.
async fn refund(client: &StripeClient, by: &str, id: &str) -> Result<(), StripeError> {
    let form = [
        (by.to_owned(), id.to_owned()),
        ("reason".to_owned(), "requested_by_customer".to_owned()),
        (
            "metadata[bff_reason]".to_owned(),
            "account_deleted".to_owned(),
        ),
    ];
    match client
        .post("refunds", &form, Some(&format!("bff-return-{id}")))
        .await
    {
        Err(StripeError::Api { code, .. }) if code == "charge_already_refunded" => Ok(()),
        other => other.map(drop),
    }
}

/// Refunds what invoice `id` was paid with (its payment intent, in the API's older and newer
/// shapes, or its charge); nothing when nothing was paid.
async fn refund_invoice(client: &StripeClient, id: &str) -> Result<(), StripeError> {
    let invoice: Invoice = objects::read(
        &client
            .get_with(
                &format!("invoices/{id}"),
                &[("expand[]", "payments".to_owned())],
            )
            .await?,
    );
    if invoice.amount_paid.unwrap_or(0) <= 0 {
        return Ok(());
    }
    match (invoice.payment_intent(), invoice.charge.as_deref()) {
        (Some(payment_intent), _) => refund(client, "payment_intent", payment_intent).await,
        (None, Some(charge)) => refund(client, "charge", charge).await,
        (None, None) => Err(StripeError::Api {
            status: 422,
            kind: "bff".into(),
            code: String::new(),
            message: format!("invoice {id} was paid but names no payment to refund"),
        }),
    }
}
