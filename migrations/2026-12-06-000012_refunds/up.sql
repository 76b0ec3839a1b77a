-- Money back out: a refund of a credit-pack payment takes the pack's credits back, in proportion
-- to what was refunded. Credits already spent make the balance negative rather than vanishing,
-- so the balance may now go below zero — but only through a reversal: spending still needs a
-- balance that covers it (the code's conditional update), and Σ ledger = balance as ever.
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_balance_non_negative;
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_balance_after_cents_check;
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_kind_check;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_kind_check
    CHECK (kind IN ('PURCHASE', 'GRANT', 'JOB_CHARGE', 'JOB_REFUND', 'ADJUSTMENT', 'PURCHASE_REFUND'));

ALTER TABLE purchases DROP CONSTRAINT purchases_status_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_status_check
    CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED'));
-- What Stripe refunded of the payment (money, cumulative) and the credits taken back for it.
ALTER TABLE purchases
    ADD COLUMN refunded_amount_cents BIGINT NOT NULL DEFAULT 0 CHECK (refunded_amount_cents >= 0),
    ADD COLUMN credits_reversed_cents BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT purchases_reversal_within_grant
        CHECK (credits_reversed_cents BETWEEN 0 AND credits_cents);
CREATE INDEX purchases_payment_intent ON purchases (stripe_payment_intent_id)
    WHERE stripe_payment_intent_id IS NOT NULL;

-- What Stripe says was refunded of a payment (the largest cumulative amount seen), kept whether
-- or not bff knows the purchase yet: a refund that arrives before its checkout.session.completed
-- is applied when the purchase completes.
CREATE TABLE stripe_payment_refunds (
    payment_intent_id TEXT PRIMARY KEY,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    refunded_cents BIGINT NOT NULL CHECK (refunded_cents >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_known;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_known
    CHECK (outcome IN ('processing', 'applied', 'ignored', 'malformed', 'unknown_customer', 'not_a_credit_pack', 'unknown_pack', 'awaiting_payment', 'already_granted', 'no_pending_purchase', 'unknown_price', 'stale', 'not_a_subscription_invoice', 'unknown_or_stale_subscription', 'awaiting_purchase', 'subscription_payment'));
