-- Every change a viewer can see, in that viewer's own order: what `viewer.changes(since:)` and
-- the `viewerChanged` subscription replay. The position is the viewer's version
-- (viewer_versions, …000018), which every statement writing what they read bumps, under that
-- row's lock until commit: a viewer's versions are taken in commit order, so a reader that has
-- seen version N has seen every change at or below N, and nothing above it is committed yet.
-- These triggers fire after the version's (their names sort after `bff_version_…`), read the
-- version the statement just took, and log each object it touched (a job, a purchase, an
-- upload, a notification) or just the kind (credits, subscription, usage, preferences), then
-- tell the listeners (`log`, with the version). Entries older than
-- BFF_CHANGES_RETENTION_HOURS are pruned; `pruned_through` says how far, so a cursor from
-- before it is refused (CURSOR_EXPIRED) instead of silently missing changes.
CREATE TABLE viewer_changes (
    user_id text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    object_id bigint,
    deleted boolean NOT NULL DEFAULT false,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX viewer_changes_position ON viewer_changes (user_id, seq);
CREATE INDEX viewer_changes_age ON viewer_changes (at);

ALTER TABLE viewer_versions ADD COLUMN pruned_through bigint NOT NULL DEFAULT 0;

-- A statement's objects: TG_ARGV[0] is the kind. (`changed`: the statement's new rows, or its
-- old rows for a DELETE.)
CREATE FUNCTION bff_log_objects() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_changes (user_id, seq, kind, object_id, deleted)
    SELECT c.user_id, v.version, TG_ARGV[0], c.id, TG_OP = 'DELETE'
    FROM changed c JOIN viewer_versions v ON v.user_id = c.user_id;
    PERFORM pg_notify('bff_live', json_build_object('t', 'log', 'u', v.user_id, 's', v.version)::text)
    FROM viewer_versions v WHERE v.user_id IN (SELECT user_id FROM changed);
    RETURN NULL;
END;
$$;

-- A statement's kind only (one entry per viewer, whatever the rows).
CREATE FUNCTION bff_log_kind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_changes (user_id, seq, kind)
    SELECT v.user_id, v.version, TG_ARGV[0]
    FROM viewer_versions v WHERE v.user_id IN (SELECT user_id FROM changed);
    PERFORM pg_notify('bff_live', json_build_object('t', 'log', 'u', v.user_id, 's', v.version)::text)
    FROM viewer_versions v WHERE v.user_id IN (SELECT user_id FROM changed);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('photo_jobs', 'job', 'bff_log_objects'),
        ('photo_uploads', 'upload', 'bff_log_objects'),
        ('purchases', 'purchase', 'bff_log_objects'),
        ('notifications', 'notification', 'bff_log_objects'),
        ('credit_accounts', 'credits', 'bff_log_kind'),
        ('credit_ledger', 'credits', 'bff_log_kind'),
        ('subscriptions', 'subscription', 'bff_log_kind'),
        ('subscription_history', 'subscription', 'bff_log_kind'),
        ('usage_counters', 'usage', 'bff_log_kind'),
        ('notification_preferences', 'preferences', 'bff_log_kind')
    ) AS x (tab, kind, fn)
    LOOP
        EXECUTE format('CREATE TRIGGER bff_vlog_insert AFTER INSERT ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION %I(%L)', t.tab, t.fn, t.kind);
        EXECUTE format('CREATE TRIGGER bff_vlog_update AFTER UPDATE ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION %I(%L)', t.tab, t.fn, t.kind);
        EXECUTE format('CREATE TRIGGER bff_vlog_delete AFTER DELETE ON %I '
                       'REFERENCING OLD TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION %I(%L)', t.tab, t.fn, t.kind);
    END LOOP;
END;
$$;

-- A person's log goes with them (their version row already does).
CREATE FUNCTION bff_forget_user_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM viewer_changes v USING changed c WHERE v.user_id = c.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_vlog_delete AFTER DELETE ON "user"
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION bff_forget_user_changes();

INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000025', 'expand: viewer_changes, a column on viewer_versions, triggers that only write to them');
