-- What bff did with a Stripe event is one of a known set (bff::db::stripe::EventOutcome), like
-- every other state column.
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_known
    CHECK (outcome IN ('processing', 'applied', 'ignored', 'malformed', 'unknown_customer', 'not_a_credit_pack', 'unknown_pack', 'awaiting_payment', 'already_granted', 'no_pending_purchase', 'unknown_price', 'stale', 'not_a_subscription_invoice', 'unknown_or_stale_subscription'));
