-- Disputes (chargebacks) of credit-pack payments. An open dispute takes the pack's remaining
-- credits out of use (DISPUTE_HOLD); won, it gives them back (DISPUTE_RELEASE); lost, they stay
-- taken and the purchase is marked DISPUTE_LOST. Kept per dispute, in whatever order Stripe's
-- events arrive: a closing event is final, and a purchase that completes later is settled then.
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_kind_check;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_kind_check
    CHECK (kind IN ('PURCHASE', 'GRANT', 'JOB_CHARGE', 'JOB_REFUND', 'ADJUSTMENT', 'PURCHASE_REFUND', 'DISPUTE_HOLD', 'DISPUTE_RELEASE'));
ALTER TABLE purchases DROP CONSTRAINT purchases_status_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_status_check
    CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'REFUNDED', 'PARTIALLY_REFUNDED', 'DISPUTED', 'DISPUTE_LOST'));

CREATE TABLE stripe_disputes (
    id TEXT PRIMARY KEY,
    payment_intent_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'WON', 'LOST')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    -- The credits the hold took (set once, when the purchase is known).
    held_cents BIGINT NOT NULL DEFAULT 0 CHECK (held_cents >= 0),
    hold_applied BOOLEAN NOT NULL DEFAULT false,
    released BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stripe_disputes_payment ON stripe_disputes (payment_intent_id);
