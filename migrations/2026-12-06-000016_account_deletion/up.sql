-- Leaving: when a user row goes (bff's deleteAccount, Better Auth's deleteUser, or an operator's
-- DELETE), bff's rows of that person go with it through ON DELETE CASCADE, except the money
-- trail, which accounting must keep: purchases, the ledger rows tied to them, and an account
-- whose balance is the sum of those rows. Those are kept under a random tombstone id, detached
-- from any personal data; nothing maps the tombstone back to the person. Work outside
-- PostgreSQL (cancel the Stripe subscription, delete the Stripe customer, delete stored
-- objects) is queued in the same transaction and drained with retries.

-- The money trail outlives its user: no foreign key to "user" on these three.
ALTER TABLE purchases DROP CONSTRAINT purchases_user_id_fkey;
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_user_id_fkey;
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_user_id_fkey;

-- One row per person with money rows; its cascaded deletion anonymises them.
CREATE TABLE money_owners (
    user_id TEXT PRIMARY KEY REFERENCES "user" (id) ON DELETE CASCADE
);
INSERT INTO money_owners (user_id)
    SELECT user_id FROM credit_accounts WHERE EXISTS (SELECT 1 FROM "user" u WHERE u.id = user_id)
    UNION
    SELECT user_id FROM purchases WHERE EXISTS (SELECT 1 FROM "user" u WHERE u.id = user_id);

CREATE FUNCTION money_owner_register() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO money_owners (user_id) VALUES (NEW.user_id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$;
CREATE TRIGGER money_owner_register AFTER INSERT ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION money_owner_register();
CREATE TRIGGER money_owner_register AFTER INSERT ON purchases
    FOR EACH ROW EXECUTE FUNCTION money_owner_register();

-- The ledger stays append-only; a deleted person's rows may only be removed, or moved to
-- their tombstone unchanged otherwise.
CREATE OR REPLACE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        IF NEW.user_id LIKE 'deleted\_%' AND (NEW.id, NEW.kind, NEW.amount_cents, NEW.balance_after_cents,
               NEW.description, NEW.photo_job_id, NEW.purchase_id, NEW.created_at)
             IS NOT DISTINCT FROM (OLD.id, OLD.kind, OLD.amount_cents, OLD.balance_after_cents,
               OLD.description, OLD.photo_job_id, OLD.purchase_id, OLD.created_at) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'credit_ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE FUNCTION money_owner_anonymise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tombstone TEXT := 'deleted_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    -- Rows about photo jobs, grants and adjustments are the person's, not the payments'; so are
    -- the last states of jobs they deleted today (kept for live updates).
    DELETE FROM credit_ledger WHERE user_id = OLD.user_id AND purchase_id IS NULL;
    DELETE FROM photo_job_tombstones WHERE user_id = OLD.user_id;
    UPDATE credit_ledger SET user_id = tombstone WHERE user_id = OLD.user_id;
    UPDATE purchases SET user_id = tombstone WHERE user_id = OLD.user_id;
    UPDATE credit_accounts SET user_id = tombstone, free_photos_used = 0, updated_at = now(),
           balance_cents = (SELECT COALESCE(SUM(amount_cents), 0) FROM credit_ledger
                            WHERE user_id = tombstone)
     WHERE user_id = OLD.user_id;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM credit_ledger WHERE user_id = tombstone) THEN
        INSERT INTO credit_accounts (user_id, balance_cents)
            SELECT tombstone, SUM(amount_cents) FROM credit_ledger WHERE user_id = tombstone;
    END IF;
    -- Every bff process closes the person's live connections when this commits.
    PERFORM pg_notify('bff_live', json_build_object('t', 'gone', 'u', OLD.user_id)::text);
    RETURN OLD;
END;
$$;
CREATE TRIGGER money_owner_anonymise BEFORE DELETE ON money_owners
    FOR EACH ROW EXECUTE FUNCTION money_owner_anonymise();

-- Clean-up outside PostgreSQL, queued by the deletion's transaction. Only Stripe ids: nothing
-- here names the person. A row goes once its action succeeded (or Stripe says the object is
-- gone); a failure waits with a growing backoff.
CREATE TABLE account_cleanups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action TEXT NOT NULL,
    stripe_id TEXT NOT NULL,
    not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (action, stripe_id)
);
ALTER TABLE account_cleanups ADD CONSTRAINT account_cleanups_action_check
    CHECK (action IN ('CANCEL_SUBSCRIPTION', 'DELETE_CUSTOMER'));
CREATE INDEX account_cleanups_due ON account_cleanups (not_before);

CREATE FUNCTION subscriptions_queue_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.stripe_subscription_id IS NOT NULL
       AND OLD.status NOT IN ('CANCELED', 'INCOMPLETE_EXPIRED')
       AND NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
        INSERT INTO account_cleanups (action, stripe_id)
            VALUES ('CANCEL_SUBSCRIPTION', OLD.stripe_subscription_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER subscriptions_queue_cancel AFTER DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION subscriptions_queue_cancel();

CREATE FUNCTION stripe_customers_queue_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
        INSERT INTO account_cleanups (action, stripe_id)
            VALUES ('DELETE_CUSTOMER', OLD.customer_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER stripe_customers_queue_deletion AFTER DELETE ON stripe_customers
    FOR EACH ROW EXECUTE FUNCTION stripe_customers_queue_deletion();

-- A job deleted with its user leaves no last state behind (it would hold the prompt).
CREATE OR REPLACE FUNCTION bff_live_photo_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
            DELETE FROM photo_job_tombstones WHERE user_id = OLD.user_id;
        ELSIF pg_trigger_depth() = 1 THEN
            DELETE FROM photo_job_tombstones WHERE deleted_at < now() - interval '1 day';
            INSERT INTO photo_job_tombstones (id, user_id, job) VALUES (OLD.id, OLD.user_id, to_jsonb(OLD))
                ON CONFLICT (id) DO UPDATE SET job = EXCLUDED.job, deleted_at = now();
            PERFORM pg_notify('bff_live', json_build_object('t', 'job', 'u', OLD.user_id, 'id', OLD.id)::text);
        END IF;
        RETURN OLD;
    END IF;
    PERFORM pg_notify('bff_live', json_build_object('t', 'job', 'u', NEW.user_id, 'id', NEW.id)::text);
    RETURN NEW;
END;
$$;
