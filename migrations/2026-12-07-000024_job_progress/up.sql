-- A processing job's progress, as its worker reports it with each heartbeat: photos done of a
-- total, and an optional stage name. Set only while PROCESSING (one trigger clears it whenever
-- the job leaves that state, whoever moves it), and never backwards (the heartbeat keeps the
-- larger share). A heartbeat that changes nothing a viewer reads but the progress notifies
-- live updates as `progress`, which each process passes on at most once per
-- BFF_LIVE_PROGRESS_INTERVAL_MS per job; one that changes nothing a viewer reads at all (the
-- lease alone) notifies nobody.
ALTER TABLE photo_jobs
    ADD COLUMN progress_done INTEGER,
    ADD COLUMN progress_total INTEGER,
    ADD COLUMN progress_stage TEXT,
    ADD COLUMN progress_at TIMESTAMPTZ,
    ADD CONSTRAINT photo_jobs_progress_valid CHECK (
        (progress_done IS NULL AND progress_total IS NULL AND progress_stage IS NULL AND progress_at IS NULL)
        OR (progress_total >= 1 AND progress_done BETWEEN 0 AND progress_total AND progress_at IS NOT NULL
            AND (progress_stage IS NULL OR char_length(progress_stage) <= 100))
    );

-- Whether a reported progress (done of total) moves forward from the recorded one: never fewer
-- photos done, never a smaller share. A report that does not is ignored (a late or repeated
-- heartbeat), and the lease is still extended.
CREATE FUNCTION bff_progress_forward(old_done integer, old_total integer, done integer, total integer)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT done IS NOT NULL AND (old_done IS NULL
        OR (done >= old_done AND done::bigint * old_total >= old_done::bigint * total))
$$;

CREATE FUNCTION bff_photo_job_progress_ends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> 'PROCESSING' THEN
        NEW.progress_done := NULL;
        NEW.progress_total := NULL;
        NEW.progress_stage := NULL;
        NEW.progress_at := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER bff_photo_job_progress_ends BEFORE INSERT OR UPDATE ON photo_jobs
    FOR EACH ROW EXECUTE FUNCTION bff_photo_job_progress_ends();

-- As in …000016, plus: an update that changed only the lease notifies nobody, and one that
-- changed only the lease and the progress notifies `progress` (coalesced by the listener).
CREATE OR REPLACE FUNCTION bff_live_photo_job() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    quiet CONSTANT text[] := ARRAY['lease_expires_at', 'progress_done', 'progress_total', 'progress_stage', 'progress_at'];
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
    IF TG_OP = 'UPDATE' AND to_jsonb(NEW) - quiet = to_jsonb(OLD) - quiet THEN
        IF (NEW.progress_done, NEW.progress_total, NEW.progress_stage)
           IS DISTINCT FROM (OLD.progress_done, OLD.progress_total, OLD.progress_stage) THEN
            PERFORM pg_notify('bff_live', json_build_object('t', 'progress', 'u', NEW.user_id, 'id', NEW.id)::text);
        END IF;
        RETURN NEW;
    END IF;
    PERFORM pg_notify('bff_live', json_build_object('t', 'job', 'u', NEW.user_id, 'id', NEW.id)::text);
    RETURN NEW;
END;
$$;

INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000024', 'expand: four nullable columns and a check on photo_jobs, two functions, a trigger, a trigger function replaced');
