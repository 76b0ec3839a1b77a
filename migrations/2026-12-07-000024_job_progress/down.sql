DELETE FROM bff_compatible_migrations WHERE version = '20261207000024';
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
DROP TRIGGER bff_photo_job_progress_ends ON photo_jobs;
DROP FUNCTION bff_photo_job_progress_ends();
DROP FUNCTION bff_progress_forward(integer, integer, integer, integer);
ALTER TABLE photo_jobs
    DROP CONSTRAINT photo_jobs_progress_valid,
    DROP COLUMN progress_at,
    DROP COLUMN progress_stage,
    DROP COLUMN progress_total,
    DROP COLUMN progress_done;
