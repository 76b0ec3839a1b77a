DELETE FROM bff_compatible_migrations WHERE version = '20261207000020';
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_known;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_known
    CHECK (outcome IN ('processing', 'applied', 'ignored', 'malformed', 'unknown_customer', 'not_a_credit_pack', 'unknown_pack', 'awaiting_payment', 'already_granted', 'no_pending_purchase', 'unknown_price', 'stale', 'not_a_subscription_invoice', 'unknown_or_stale_subscription', 'awaiting_purchase', 'subscription_payment'));
DROP TRIGGER checkout_sessions_queue_expiry ON checkout_sessions;
DROP FUNCTION checkout_sessions_queue_expiry();
DELETE FROM account_cleanups WHERE action IN ('EXPIRE_CHECKOUT', 'REFUND_PAYMENT', 'REFUND_INVOICE');
ALTER TABLE account_cleanups DROP CONSTRAINT account_cleanups_action_check;
ALTER TABLE account_cleanups ADD CONSTRAINT account_cleanups_action_check
    CHECK (action IN ('CANCEL_SUBSCRIPTION', 'DELETE_CUSTOMER'));
DROP TABLE checkout_sessions;
