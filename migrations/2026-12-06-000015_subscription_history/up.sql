-- What happened to the money of a person's subscription, as Stripe reported it: invoices paid
-- and failed, and refunds of invoice payments. Access never follows these rows (it follows the
-- subscription's own events); they are the viewer's billing history. One row per Stripe object
-- and kind, whatever the order or number of deliveries; a refund's amount is cumulative.
CREATE TABLE subscription_history (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    stripe_subscription_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('INVOICE_PAID', 'PAYMENT_FAILED', 'PAYMENT_REFUNDED')),
    -- The invoice (INVOICE_PAID, PAYMENT_FAILED) or the charge (PAYMENT_REFUNDED).
    stripe_object_id TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    currency TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    UNIQUE (kind, stripe_object_id)
);
CREATE INDEX subscription_history_user ON subscription_history (user_id, occurred_at DESC, id DESC);
