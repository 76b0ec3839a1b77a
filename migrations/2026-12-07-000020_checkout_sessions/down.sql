-- Refuses while money is still to go back: let the sweeper drain checkout_cleanups first.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM checkout_cleanups WHERE action <> 'EXPIRE_CHECKOUT') THEN
        RAISE EXCEPTION 'checkout_cleanups still holds refunds to make: let bff serve drain it before reverting';
    END IF;
END;
$$;
DELETE FROM bff_compatible_migrations WHERE version = '20261207000020';
-- Events recorded with the new outcome stay as they are (NOT VALID: only new rows are checked).
ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_known;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_known
    CHECK (outcome IN ('processing', 'applied', 'ignored', 'malformed', 'unknown_customer', 'not_a_credit_pack', 'unknown_pack', 'awaiting_payment', 'already_granted', 'no_pending_purchase', 'unknown_price', 'stale', 'not_a_subscription_invoice', 'unknown_or_stale_subscription', 'awaiting_purchase', 'subscription_payment')) NOT VALID;
DROP TRIGGER checkout_sessions_queue_expiry ON checkout_sessions;
DROP FUNCTION checkout_sessions_queue_expiry();
DROP TABLE checkout_cleanups;
DROP TABLE checkout_sessions;
