-- What the attacks on the viewer's surfaces found, in the database's part.

-- The uploads waiting for a job, counted per person at every createPhotoUploads (bounded by
-- BFF_UPLOAD_MAX_PENDING).
CREATE INDEX photo_uploads_pending ON photo_uploads (user_id) WHERE photo_job_id IS NULL;

-- The copy of an upload's object that createPhotoJob made (under a key no upload URL names) and
-- checked, until a job takes it as the upload's object. One per upload: a later attempt's copy
-- replaces it (the earlier one is queued for deletion), so jobs that fail or whose client goes
-- away leave at most one copy per upload, deleted with the upload.
ALTER TABLE photo_uploads ADD COLUMN checked_key TEXT UNIQUE;
CREATE OR REPLACE FUNCTION photo_uploads_queue_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage_deletions (object_key, not_before)
        VALUES (OLD.object_key, greatest(now(), OLD.url_expires_at + interval '1 minute'));
    IF OLD.checked_key IS NOT NULL THEN
        INSERT INTO storage_deletions (object_key) VALUES (OLD.checked_key);
    END IF;
    RETURN OLD;
END;
$$;

-- An update bumps the version of the row's owner before and after: a row moved from one
-- person to another (by SQL) changes what both see.
CREATE FUNCTION bff_bump_viewer_versions_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_versions AS v (user_id)
    SELECT c.user_id FROM (SELECT user_id FROM old_rows UNION SELECT user_id FROM new_rows) c
    WHERE EXISTS (SELECT 1 FROM "user" u WHERE u.id = c.user_id)
    ORDER BY c.user_id
    ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END;
$$;

-- TRUNCATE names no rows: it bumps everyone's version ('*', part of every cached answer's key).
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['photo_jobs', 'photo_uploads', 'credit_accounts', 'credit_ledger',
                             'purchases', 'subscriptions', 'subscription_history', 'usage_counters']
    LOOP
        EXECUTE format('DROP TRIGGER bff_version_update ON %I', t);
        EXECUTE format('CREATE TRIGGER bff_version_update AFTER UPDATE ON %I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions_update()', t);
        EXECUTE format('CREATE TRIGGER bff_version_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION bff_bump_global_version()', t);
    END LOOP;
END;
$$;
CREATE TRIGGER bff_version_truncate AFTER TRUNCATE ON "user"
    FOR EACH STATEMENT EXECUTE FUNCTION bff_bump_global_version();

-- Whoever deletes a user (bff, Better Auth's deleteUser, an operator), every bff process
-- closes their live connections when it commits, whatever credential they signed in with.
CREATE OR REPLACE FUNCTION bff_forget_user_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM viewer_versions v USING changed c WHERE v.user_id = c.id;
    PERFORM pg_notify('bff_live', json_build_object('t', 'gone', 'u', c.id)::text) FROM changed c;
    RETURN NULL;
END;
$$;

-- Expand-only: an index, a nullable column older binaries never read, and triggers.
INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000019', 'expand: pending-upload index, version bumps on moves and TRUNCATE, gone notices on every user deletion');
