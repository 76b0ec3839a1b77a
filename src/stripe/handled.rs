//! The Stripe event types bff acts on, in a module of their own: the metrics label them and
//! the sync lists them without depending on how they are applied.

/// The event types bff acts on (what to enable on the webhook endpoint; what `bff stripe sync`
/// lists — Stripe takes at most 20).
pub const HANDLED: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
];
