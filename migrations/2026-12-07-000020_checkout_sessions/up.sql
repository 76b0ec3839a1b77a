-- Money after an account's deletion. bff records every Checkout Session it opens, so that the
-- deletion of its person (whoever deletes them) expires those still open, and a payment that
-- completes anyway, for nobody, is returned: refunded in full, a subscription it created
-- canceled, the customer it created deleted. A row outlives its person with user_id NULL
-- (nothing here names them): that NULL is how the webhook knows the person is gone.
CREATE TABLE checkout_sessions (
    stripe_checkout_session_id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES "user" (id) ON DELETE SET NULL,
    mode TEXT NOT NULL CHECK (mode IN ('payment', 'subscription')),
    -- OPEN until Stripe reports it completed or expired; RETURNED once the money of a person
    -- who is gone was queued to go back.
    state TEXT NOT NULL DEFAULT 'OPEN' CHECK (state IN ('OPEN', 'COMPLETED', 'EXPIRED', 'RETURNED')),
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_user ON checkout_sessions (user_id);

-- The credit-pack checkouts opened before this table existed (each left a pending purchase).
INSERT INTO checkout_sessions (stripe_checkout_session_id, user_id, mode, state, expires_at, created_at)
SELECT p.stripe_checkout_session_id,
       CASE WHEN EXISTS (SELECT 1 FROM "user" u WHERE u.id = p.user_id) THEN p.user_id END,
       'payment',
       CASE WHEN p.created_at > now() - interval '24 hours' THEN 'OPEN' ELSE 'EXPIRED' END,
       p.created_at + interval '24 hours', p.created_at
FROM purchases p WHERE p.status = 'PENDING'
ON CONFLICT DO NOTHING;

-- Expiring a checkout and refunding its payment: a queue like account_cleanups (Stripe ids only,
-- drained by the same sweeper, with retries), in a table of its own so that a bff older than
-- this migration, still serving during a rolling deploy, never claims work it cannot do.
-- (Canceling the subscription and deleting the customer a late checkout made go to
-- account_cleanups, which every bff drains.)
CREATE TABLE checkout_cleanups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action TEXT NOT NULL,
    stripe_id TEXT NOT NULL,
    not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (action, stripe_id)
);
ALTER TABLE checkout_cleanups ADD CONSTRAINT checkout_cleanups_action_check
    CHECK (action IN ('EXPIRE_CHECKOUT', 'REFUND_PAYMENT', 'REFUND_INVOICE'));
CREATE INDEX checkout_cleanups_due ON checkout_cleanups (not_before);

-- The person's deletion sets user_id NULL: their checkouts still open are queued to expire.
CREATE FUNCTION checkout_sessions_queue_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO checkout_cleanups (action, stripe_id)
        VALUES ('EXPIRE_CHECKOUT', NEW.stripe_checkout_session_id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$;
CREATE TRIGGER checkout_sessions_queue_expiry AFTER UPDATE OF user_id ON checkout_sessions
    FOR EACH ROW WHEN (OLD.user_id IS NOT NULL AND NEW.user_id IS NULL
                       AND NEW.state = 'OPEN' AND NEW.expires_at > now())
    EXECUTE FUNCTION checkout_sessions_queue_expiry();

ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_known;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_known
    CHECK (outcome IN ('processing', 'applied', 'ignored', 'malformed', 'unknown_customer', 'not_a_credit_pack', 'unknown_pack', 'awaiting_payment', 'already_granted', 'no_pending_purchase', 'unknown_price', 'stale', 'not_a_subscription_invoice', 'unknown_or_stale_subscription', 'awaiting_purchase', 'subscription_payment', 'refunded_deleted_account'));

-- Expand-only: new tables, and an outcome older binaries never write (they record such a late
-- checkout as unknown_customer; the expiry then finds it paid and returns the money anyway).
INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000020', 'expand: checkout_sessions, and the clean-ups and outcome that return money paid after a deletion');
