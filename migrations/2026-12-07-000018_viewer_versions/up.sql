-- A version per viewer, bumped in the same transaction as every write to what the viewer can
-- read, whoever writes (bff's mutations, the worker, a Stripe webhook, the seed, plain psql):
-- the session lookup reads it, and bff's response cache answers a query from memory only
-- while it is unchanged. The row '*' is everyone's: plans and credit packs. A row goes with
-- its user; writes to rows whose user is gone (an account being deleted, the anonymous money
-- trail) bump nothing.
CREATE TABLE viewer_versions (
    user_id text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 1
);

INSERT INTO viewer_versions (user_id, version) VALUES ('*', 1);

-- Statement-level: one upsert per statement and user however many rows it changed, the
-- users in order so that two bulk statements lock their rows in the same order.
CREATE FUNCTION bff_bump_viewer_versions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_versions AS v (user_id)
    SELECT DISTINCT c.user_id FROM changed c
    WHERE EXISTS (SELECT 1 FROM "user" u WHERE u.id = c.user_id)
    ORDER BY c.user_id
    ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['photo_jobs', 'photo_uploads', 'credit_accounts', 'credit_ledger',
                             'purchases', 'subscriptions', 'subscription_history', 'usage_counters']
    LOOP
        EXECUTE format('CREATE TRIGGER bff_version_insert AFTER INSERT ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions()', t);
        EXECUTE format('CREATE TRIGGER bff_version_update AFTER UPDATE ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions()', t);
        EXECUTE format('CREATE TRIGGER bff_version_delete AFTER DELETE ON %I '
                       'REFERENCING OLD TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION bff_bump_viewer_versions()', t);
    END LOOP;
END;
$$;

-- Better Auth's user row: its name, email, image, emailVerified are the viewer's fields. (A
-- deleted user's version row goes with it.)
CREATE FUNCTION bff_bump_user_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_versions AS v (user_id)
    SELECT DISTINCT c.id FROM changed c ORDER BY c.id
    ON CONFLICT (user_id) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_version_update AFTER UPDATE ON "user"
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION bff_bump_user_version();

CREATE FUNCTION bff_forget_user_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM viewer_versions v USING changed c WHERE v.user_id = c.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_version_delete AFTER DELETE ON "user"
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION bff_forget_user_version();

-- Plans and credit packs are everyone's.
CREATE FUNCTION bff_bump_global_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE viewer_versions SET version = version + 1 WHERE user_id = '*';
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_version_global AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plans
    FOR EACH STATEMENT EXECUTE FUNCTION bff_bump_global_version();
CREATE TRIGGER bff_version_global AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_packs
    FOR EACH STATEMENT EXECUTE FUNCTION bff_bump_global_version();

-- Expand-only: older binaries never read this table, and the triggers only write to it.
INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000018', 'expand: viewer_versions and the triggers that bump it');
