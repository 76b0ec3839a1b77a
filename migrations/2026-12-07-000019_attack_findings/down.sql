CREATE OR REPLACE FUNCTION bff_forget_user_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM viewer_versions v USING changed c WHERE v.user_id = c.id;
    RETURN NULL;
END;
$$;
DROP TRIGGER bff_version_truncate ON "user";
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['photo_jobs', 'photo_uploads', 'credit_accounts', 'credit_ledger',
                             'purchases', 'subscriptions', 'subscription_history', 'usage_counters']
    LOOP
        EXECUTE format('DROP TRIGGER bff_version_truncate ON %I', t);
        EXECUTE format('DROP TRIGGER bff_version_update ON %I', t);
        EXECUTE format('CREATE TRIGGER bff_version_update AFTER UPDATE ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions()', t);
    END LOOP;
END;
$$;
DROP FUNCTION bff_bump_viewer_versions_update();
CREATE OR REPLACE FUNCTION photo_uploads_queue_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage_deletions (object_key, not_before)
        VALUES (OLD.object_key, greatest(now(), OLD.url_expires_at + interval '1 minute'));
    RETURN OLD;
END;
$$;
INSERT INTO storage_deletions (object_key) SELECT checked_key FROM photo_uploads WHERE checked_key IS NOT NULL;
ALTER TABLE photo_uploads DROP COLUMN checked_key;
DROP INDEX photo_uploads_pending;
DELETE FROM bff_compatible_migrations WHERE version = '20261207000019';
