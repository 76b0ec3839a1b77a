-- Live updates. Every change to a photo job, a credit account (each ledger row changes one) or a
-- subscription notifies the channel bff_live from inside its own transaction, so a notification
-- is delivered exactly when the change commits and never for a rolled-back one. Triggers rather
-- than calls in the code: no write path (mutation, worker, Stripe, seed, a person with psql) can
-- forget one. Payloads carry ids only ({"t": "job" | "credits" | "billing", "u": user id,
-- "id": job id}); each bff process reloads the object with its owner before sending it.

-- A deleted job as it was, for the subscribers told of its deletion (and for a reconnecting
-- process catching up); kept one day. No foreign key: a user's deletion cascades to their jobs
-- without leaving tombstones (see the trigger), and tombstones never hold up that deletion.
CREATE TABLE photo_job_tombstones (
    id BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    job JSONB NOT NULL
);
CREATE INDEX photo_job_tombstones_user_deleted ON photo_job_tombstones (user_id, deleted_at);
CREATE INDEX photo_job_tombstones_deleted ON photo_job_tombstones (deleted_at);

-- Catching up after a lost listening connection reads the jobs changed since then.
CREATE INDEX photo_jobs_user_updated ON photo_jobs (user_id, updated_at);

CREATE FUNCTION bff_live_photo_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- Depth 1: a DELETE on photo_jobs itself; deeper: the cascade of a user's deletion,
        -- whose subscribers are gone with them.
        IF pg_trigger_depth() = 1 THEN
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
CREATE TRIGGER bff_live_photo_job AFTER INSERT OR UPDATE OR DELETE ON photo_jobs
    FOR EACH ROW EXECUTE FUNCTION bff_live_photo_job();

CREATE FUNCTION bff_live_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bff_live', json_build_object('t', TG_ARGV[0], 'u', NEW.user_id)::text);
    RETURN NEW;
END;
$$;
-- The balance and the free photos used: every ledger row updates its account in the same
-- transaction, and so does spending the free allowance.
CREATE TRIGGER bff_live_credits AFTER INSERT OR UPDATE ON credit_accounts
    FOR EACH ROW EXECUTE FUNCTION bff_live_user('credits');
CREATE TRIGGER bff_live_billing AFTER INSERT OR UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION bff_live_user('billing');
