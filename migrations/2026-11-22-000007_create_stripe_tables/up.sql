-- Credit packs sold through Stripe Checkout: data, not code. Set stripe_price_id to the Price
-- of each pack in your Stripe account; a pack without one is not for sale.
CREATE TABLE credit_packs (
    code TEXT PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{0,31}$'),
    name TEXT NOT NULL,
    credits_cents BIGINT NOT NULL CHECK (credits_cents > 0),
    stripe_price_id TEXT UNIQUE,
    active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO credit_packs (code, name, credits_cents) VALUES
    ('SMALL', '10 credits', 1000),
    ('MEDIUM', '25 credits', 2500),
    ('LARGE', '60 credits', 6000);

-- Which Stripe customer is which user (from Checkout's client_reference_id).
CREATE TABLE stripe_customers (
    user_id TEXT PRIMARY KEY REFERENCES "user" (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every Stripe event received, recorded once in the same transaction as its effect: a
-- redelivered event finds its id here and changes nothing.
CREATE TABLE stripe_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    -- When Stripe created the event (orders snapshots of one object).
    created_at TIMESTAMPTZ NOT NULL,
    livemode BOOLEAN NOT NULL DEFAULT false,
    -- What bff did with it: applied, ignored (unknown type), unknown_customer, …
    outcome TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_received ON stripe_events (received_at);

-- The creation time of the newest Stripe event applied to a subscription, so that an older
-- snapshot delivered late never overwrites a newer one.
ALTER TABLE subscriptions ADD COLUMN stripe_event_created_at TIMESTAMPTZ;

-- A purchase grants its credits at most once.
CREATE UNIQUE INDEX credit_ledger_one_grant_per_purchase ON credit_ledger (purchase_id)
    WHERE kind = 'PURCHASE' AND purchase_id IS NOT NULL;
