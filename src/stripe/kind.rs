//! The Stripe event types bff acts on, in a module of their own: the sync lists them, the
//! webhook's metrics label them and [`super::events`] dispatches on them.

macro_rules! event_kinds {
    ($($(#[$doc:meta])* $kind:ident => $name:literal,)+) => {
        /// An event type bff acts on. Any other type is recorded as `ignored`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($(#[$doc])* $kind,)+
        }

        impl EventKind {
            /// Every type bff acts on (what to enable on the webhook endpoint; what
            /// `bff stripe sync` lists — Stripe takes at most 20).
            pub const ALL: &[EventKind] = &[$(EventKind::$kind),+];

            /// Stripe's name of the type, e.g. `checkout.session.completed`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$kind => $name,)+
                }
            }

            /// The type Stripe names `name`; `None` for a type bff does not act on.
            pub fn parse(name: &str) -> Option<EventKind> {
                match name {
                    $($name => Some(EventKind::$kind),)+
                    _ => None,
                }
            }
        }
    };
}

event_kinds! {
    /// A Checkout Session was completed (paid, or awaiting a delayed payment).
    CheckoutSessionCompleted => "checkout.session.completed",
    /// A Checkout Session's delayed payment succeeded.
    CheckoutSessionAsyncPaymentSucceeded => "checkout.session.async_payment_succeeded",
    /// A Checkout Session's delayed payment failed.
    CheckoutSessionAsyncPaymentFailed => "checkout.session.async_payment_failed",
    /// A Checkout Session expired unpaid.
    CheckoutSessionExpired => "checkout.session.expired",
    /// A subscription was created.
    CustomerSubscriptionCreated => "customer.subscription.created",
    /// A subscription changed.
    CustomerSubscriptionUpdated => "customer.subscription.updated",
    /// A subscription ended.
    CustomerSubscriptionDeleted => "customer.subscription.deleted",
    /// A subscription's trial ends in three days.
    CustomerSubscriptionTrialWillEnd => "customer.subscription.trial_will_end",
    /// An invoice was paid.
    InvoicePaid => "invoice.paid",
    /// An invoice's payment failed.
    InvoicePaymentFailed => "invoice.payment_failed",
    /// A charge was refunded, in part or in full (its cumulative `amount_refunded`).
    ChargeRefunded => "charge.refunded",
    /// A refund was created.
    RefundCreated => "refund.created",
    /// A refund changed.
    RefundUpdated => "refund.updated",
    /// A refund failed.
    RefundFailed => "refund.failed",
    /// A refund changed (older API versions).
    ChargeRefundUpdated => "charge.refund.updated",
    /// A payment was disputed.
    ChargeDisputeCreated => "charge.dispute.created",
    /// A dispute closed, won or lost.
    ChargeDisputeClosed => "charge.dispute.closed",
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::ALL.len(), 17);
        assert!(EventKind::ALL.len() <= 20, "Stripe lists at most 20 types");
        assert_eq!(EventKind::parse("customer.created"), None);
        assert_eq!(EventKind::parse(""), None);
    }
}
