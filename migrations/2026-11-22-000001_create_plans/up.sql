-- Plans and their entitlements. Prices are data, not code: change a row, not a release.
CREATE TABLE plans (
    code TEXT PRIMARY KEY CHECK (code IN ('FREE', 'BASIC', 'PRO', 'ENTERPRISE')),
    name TEXT NOT NULL,
    -- Photos per usage window; NULL means unlimited.
    monthly_photo_quota INTEGER CHECK (monthly_photo_quota >= 0),
    -- Price of one photo beyond the free allowance, in cents.
    price_per_photo_cents BIGINT NOT NULL CHECK (price_per_photo_cents >= 0),
    max_photos_per_job INTEGER NOT NULL CHECK (max_photos_per_job BETWEEN 1 AND 1000),
    -- Subscription price per month, in cents; informative (Stripe holds the real price).
    monthly_price_cents BIGINT NOT NULL DEFAULT 0 CHECK (monthly_price_cents >= 0),
    -- The Stripe Price that subscribes to this plan; NULL for plans not sold through Stripe.
    stripe_price_id TEXT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO plans (code, name, monthly_photo_quota, price_per_photo_cents, max_photos_per_job, monthly_price_cents) VALUES
    ('FREE', 'Free', 20, 50, 10, 0),
    ('BASIC', 'Basic', 200, 40, 50, 900),
    ('PRO', 'Pro', 1000, 30, 100, 2900),
    ('ENTERPRISE', 'Enterprise', NULL, 20, 100, 9900);
