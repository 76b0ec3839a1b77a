-- Notifications: what a person should hear about, written in the same transaction as its cause
-- by whoever writes that cause (a mutation, the worker, a Stripe webhook or `bff stripe sync`,
-- the lease sweeper, plain SQL), so a cause that rolls back leaves none. Triggers write them
-- where the cause is a row (a job's status, a ledger row, a refund, a failed invoice, a
-- cancellation); bff's Stripe handler writes TRIAL_ENDING, which changes no row of ours.
-- Each notification is the inbox row; its deliveries (email, push) are queued beside it in the
-- same transaction and sent by every `bff serve` (leased, retried, then FAILED and visible).

-- The kinds, with what they are on by default and how their emails go out.
CREATE TABLE notification_kinds (
    kind TEXT PRIMARY KEY,
    -- Whether email and push are on for someone who has not chosen.
    email_default BOOLEAN NOT NULL,
    push_default BOOLEAN NOT NULL,
    -- Billing a person must see: emailed even before their address is verified.
    billing BOOLEAN NOT NULL,
    -- Emails gathered over a short window into one message ("3 jobs finished").
    batched BOOLEAN NOT NULL
);
INSERT INTO notification_kinds (kind, email_default, push_default, billing, batched) VALUES
    ('JOB_COMPLETED',         true, true,  false, true),
    ('JOB_FAILED',            true, true,  false, true),
    ('CREDITS_LOW',           true, true,  false, false),
    ('PAYMENT_FAILED',        true, true,  true,  false),
    ('TRIAL_ENDING',          true, true,  true,  false),
    ('SUBSCRIPTION_CANCELED', true, false, false, false),
    ('PURCHASE_REFUNDED',     true, false, false, false),
    ('CREDITS_HELD',          true, false, false, false);

-- The settings the triggers read: the balance below which a charge notifies CREDITS_LOW (bff
-- writes BFF_NOTIFY_CREDITS_LOW here when it starts).
CREATE TABLE notification_settings (
    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    credits_low_cents BIGINT NOT NULL DEFAULT 500 CHECK (credits_low_cents >= 0)
);
INSERT INTO notification_settings DEFAULT VALUES;

CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    kind TEXT NOT NULL REFERENCES notification_kinds (kind),
    -- What it is about (at most one; NULL once that is gone, and for CREDITS_LOW).
    photo_job_id BIGINT REFERENCES photo_jobs (id) ON DELETE SET NULL,
    purchase_id BIGINT REFERENCES purchases (id) ON DELETE SET NULL,
    subscription_id BIGINT REFERENCES subscriptions (id) ON DELETE SET NULL,
    -- The facts its words are made of, as they were then (a job's prompt, an amount, a date).
    facts JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    read_at TIMESTAMPTZ,
    CHECK (num_nonnulls(photo_job_id, purchase_id, subscription_id) <= 1)
);
CREATE INDEX notifications_user ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id, id DESC) WHERE read_at IS NULL;
CREATE INDEX notifications_job ON notifications (photo_job_id) WHERE photo_job_id IS NOT NULL;
CREATE INDEX notifications_purchase ON notifications (purchase_id) WHERE purchase_id IS NOT NULL;
CREATE INDEX notifications_subscription ON notifications (subscription_id) WHERE subscription_id IS NOT NULL;

-- A person's choices, per kind; a kind without a row follows notification_kinds' defaults.
-- The inbox is always on.
CREATE TABLE notification_preferences (
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    kind TEXT NOT NULL REFERENCES notification_kinds (kind),
    email BOOLEAN NOT NULL,
    push BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kind)
);

-- The mobile client's push tokens: one person's at a time (registered by another, it moves).
CREATE TABLE push_devices (
    token TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    platform TEXT NOT NULL CHECK (platform IN ('IOS', 'ANDROID')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX push_devices_user ON push_devices (user_id);

-- One delivery per (notification, channel). PENDING until sent: due at not_before (the batching
-- window, a retry's backoff, or the end of a sender's lease); SENT; SKIPPED (nothing to send
-- to: no verified address, no device, the channel not configured); FAILED after the last retry.
-- A sender claims a message's deliveries by setting message_id (the first delivery's id, kept
-- across retries: the message's idempotency key and its email Message-ID).
CREATE TABLE notification_deliveries (
    id BIGSERIAL PRIMARY KEY,
    notification_id BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('EMAIL', 'PUSH')),
    -- Emails of batched kinds due together go as one message.
    batched BOOLEAN NOT NULL DEFAULT false,
    state TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'SKIPPED', 'FAILED')),
    message_id BIGINT,
    not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    UNIQUE (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (not_before, id) WHERE state = 'PENDING';
CREATE INDEX notification_deliveries_message ON notification_deliveries (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX notification_deliveries_user ON notification_deliveries (user_id, channel) WHERE state = 'PENDING';

-- Writes a notification for a person who exists (a refund of a deleted person's purchase
-- notifies nobody). The one writer of notifications in the database.
CREATE FUNCTION bff_notify(p_user TEXT, p_kind TEXT, p_facts JSONB, p_job BIGINT DEFAULT NULL,
                           p_purchase BIGINT DEFAULT NULL, p_subscription BIGINT DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM "user" WHERE id = p_user) THEN
        INSERT INTO notifications (user_id, kind, facts, photo_job_id, purchase_id, subscription_id)
        VALUES (p_user, p_kind, p_facts, p_job, p_purchase, p_subscription);
    END IF;
END;
$$;

-- A notification queues its deliveries (the channels the person has on; push only with a
-- device) and tells the live subscribers, in its own transaction.
CREATE FUNCTION bff_notification_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notification_deliveries (notification_id, user_id, channel, batched)
    SELECT NEW.id, NEW.user_id, c.channel, c.channel = 'EMAIL' AND k.batched
    FROM notification_kinds k
    CROSS JOIN (VALUES ('EMAIL'), ('PUSH')) AS c (channel)
    LEFT JOIN notification_preferences p ON p.user_id = NEW.user_id AND p.kind = k.kind
    WHERE k.kind = NEW.kind
      AND CASE c.channel
          WHEN 'EMAIL' THEN coalesce(p.email, k.email_default)
          ELSE coalesce(p.push, k.push_default)
               AND EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = NEW.user_id)
          END;
    PERFORM pg_notify('bff_live', json_build_object('t', 'notification', 'u', NEW.user_id, 'id', NEW.id)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_notification_added AFTER INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION bff_notification_added();

-- JOB_COMPLETED, JOB_FAILED: a job's status becomes final (the worker, the lease sweeper, SQL).
CREATE FUNCTION bff_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bff_notify(NEW.user_id, 'JOB_' || NEW.status,
        jsonb_build_object('prompt', NEW.prompt, 'photoCount', NEW.photo_count,
                           'failureReason', NEW.failure_reason),
        p_job => NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_notify_job AFTER UPDATE OF status ON photo_jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('COMPLETED', 'FAILED'))
    EXECUTE FUNCTION bff_notify_job();

-- CREDITS_LOW: a job's charge takes the balance below the threshold from at or above it (once
-- per crossing); CREDITS_HELD: a dispute takes a pack's credits out of use.
CREATE FUNCTION bff_notify_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    threshold BIGINT := (SELECT credits_low_cents FROM notification_settings);
BEGIN
    IF NEW.kind = 'JOB_CHARGE' AND NEW.amount_cents < 0 AND NEW.balance_after_cents < threshold
       AND NEW.balance_after_cents - NEW.amount_cents >= threshold THEN
        PERFORM bff_notify(NEW.user_id, 'CREDITS_LOW',
            jsonb_build_object('balanceCents', NEW.balance_after_cents, 'thresholdCents', threshold));
    ELSIF NEW.kind = 'DISPUTE_HOLD' THEN
        PERFORM bff_notify(NEW.user_id, 'CREDITS_HELD',
            jsonb_build_object('heldCents', -NEW.amount_cents, 'balanceCents', NEW.balance_after_cents),
            p_purchase => NEW.purchase_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_notify_ledger AFTER INSERT ON credit_ledger
    FOR EACH ROW WHEN (NEW.kind IN ('JOB_CHARGE', 'DISPUTE_HOLD'))
    EXECUTE FUNCTION bff_notify_ledger();

-- PURCHASE_REFUNDED: each refund of a pack (its cumulative refunded amount grows).
CREATE FUNCTION bff_notify_refund() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bff_notify(NEW.user_id, 'PURCHASE_REFUNDED',
        jsonb_build_object('pack', NEW.pack, 'refundedCents', NEW.refunded_amount_cents - OLD.refunded_amount_cents,
                           'currency', NEW.currency,
                           'creditsReversedCents', NEW.credits_reversed_cents - OLD.credits_reversed_cents,
                           'fullyRefunded', NEW.refunded_amount_cents >= NEW.amount_cents),
        p_purchase => NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_notify_refund AFTER UPDATE OF refunded_amount_cents ON purchases
    FOR EACH ROW WHEN (NEW.refunded_amount_cents > OLD.refunded_amount_cents)
    EXECUTE FUNCTION bff_notify_refund();

-- PAYMENT_FAILED: invoice.payment_failed, recorded once per invoice in the billing history.
CREATE FUNCTION bff_notify_payment_failed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bff_notify(NEW.user_id, 'PAYMENT_FAILED',
        jsonb_build_object('amountCents', NEW.amount_cents, 'currency', NEW.currency),
        p_subscription => (SELECT id FROM subscriptions WHERE user_id = NEW.user_id));
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_notify_payment_failed AFTER INSERT ON subscription_history
    FOR EACH ROW WHEN (NEW.kind = 'PAYMENT_FAILED')
    EXECUTE FUNCTION bff_notify_payment_failed();

-- SUBSCRIPTION_CANCELED: the subscription ends (Stripe's customer.subscription.deleted, or an
-- update to canceled).
CREATE FUNCTION bff_notify_canceled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bff_notify(NEW.user_id, 'SUBSCRIPTION_CANCELED',
        jsonb_build_object('plan', (SELECT name FROM plans WHERE code = OLD.plan)),
        p_subscription => NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_notify_canceled AFTER UPDATE OF status ON subscriptions
    FOR EACH ROW WHEN (NEW.status = 'CANCELED' AND OLD.status IS DISTINCT FROM 'CANCELED')
    EXECUTE FUNCTION bff_notify_canceled();

-- What a viewer's queries read bumps their version (the response cache); the kinds are
-- everyone's. Deliveries and devices are read by the senders and the export only.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['notifications', 'notification_preferences']
    LOOP
        EXECUTE format('CREATE TRIGGER bff_version_insert AFTER INSERT ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions()', t);
        EXECUTE format('CREATE TRIGGER bff_version_update AFTER UPDATE ON %I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions_update()', t);
        EXECUTE format('CREATE TRIGGER bff_version_delete AFTER DELETE ON %I '
                       'REFERENCING OLD TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions()', t);
        EXECUTE format('CREATE TRIGGER bff_version_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION bff_bump_global_version()', t);
    END LOOP;
END;
$$;
CREATE TRIGGER bff_version_global AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON notification_kinds
    FOR EACH STATEMENT EXECUTE FUNCTION bff_bump_global_version();

-- Expand-only: new tables, and triggers that write only to them.
INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000021', 'expand: notifications, their deliveries, preferences and push devices');
