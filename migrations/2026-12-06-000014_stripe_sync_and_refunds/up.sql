-- Reconciliation with Stripe's event list (`bff stripe sync`, and periodically in `serve`):
-- one row per run. A run lists the events created since the last successful run started (less
-- an overlap), or the whole 30 days Stripe keeps when none succeeded yet, and applies the ones
-- never processed. Rows older than 90 days are deleted by the next run.
CREATE TABLE stripe_syncs (
    id BIGSERIAL PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    listed_since TIMESTAMPTZ NOT NULL,
    succeeded BOOLEAN NOT NULL DEFAULT false,
    events_listed INTEGER NOT NULL DEFAULT 0 CHECK (events_listed >= 0),
    events_recovered INTEGER NOT NULL DEFAULT 0 CHECK (events_recovered >= 0),
    events_failed INTEGER NOT NULL DEFAULT 0 CHECK (events_failed >= 0),
    error TEXT
);
CREATE INDEX stripe_syncs_succeeded ON stripe_syncs (started_at DESC) WHERE succeeded;

-- Each refund of a credit-pack payment, from refund.created/updated/failed (and a charge's
-- `refunds` list when Stripe includes it). A refund can fail after it was reported (an
-- asynchronous refund the bank returns): the credits it took come back. FAILED is final.
CREATE TABLE stripe_refunds (
    id TEXT PRIMARY KEY,
    payment_intent_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    status TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE stripe_refunds ADD CONSTRAINT stripe_refunds_status_check
    CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED'));
CREATE INDEX stripe_refunds_payment ON stripe_refunds (payment_intent_id);
