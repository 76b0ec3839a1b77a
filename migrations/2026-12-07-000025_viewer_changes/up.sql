-- Every change a viewer can see, in that viewer's own order: what `viewer.changes(since:)` and
-- the `viewerChanged` subscription replay. The position is the viewer's version
-- (viewer_versions, …000018), which every statement writing what they read bumps, under that
-- row's lock until commit: a viewer's versions are taken in commit order, so a reader that has
-- seen version N has seen every change at or below N, and nothing above it is committed yet.
-- These statement triggers run after the version's on the same statement (same event and
-- timing fire in name order, and `bff_vlog_…` sorts after `bff_version_…`), read the version
-- the statement just took, and log each object it touched (a job, a purchase, an upload, a
-- notification) or just the kind (credits, subscription, usage, preferences), then tell the
-- listeners (`log`, with the version). A row moved to another person is logged for both (gone
-- for the first). An update that changed only a job's lease is not logged. A user's deletion
-- logs nothing: their cascaded deletes run after their version row is gone. Entries older
-- than BFF_CHANGES_RETENTION_HOURS are pruned; `pruned_through` says how far, so a cursor
-- from before it is refused (CURSOR_EXPIRED) instead of silently missing changes. TRUNCATE
-- (an operator's) moves every version and prunes everything: every cursor is refused.
CREATE TABLE viewer_changes (
    user_id text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    object_id bigint,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX viewer_changes_position ON viewer_changes (user_id, seq);
CREATE INDEX viewer_changes_age ON viewer_changes (at);

ALTER TABLE viewer_versions ADD COLUMN pruned_through bigint NOT NULL DEFAULT 0;

-- Tells each viewer in `users` that their version moved.
CREATE FUNCTION bff_log_notify(users text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bff_live', json_build_object('t', 'log', 'u', v.user_id, 's', v.version)::text)
    FROM viewer_versions v WHERE v.user_id = ANY(users);
END;
$$;

-- A statement's objects: TG_ARGV[0] is the kind. (`changed`: the statement's new rows, or its
-- old rows for a DELETE.)
CREATE FUNCTION bff_log_objects() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_changes (user_id, seq, kind, object_id)
    SELECT c.user_id, v.version, TG_ARGV[0], c.id
    FROM changed c JOIN viewer_versions v ON v.user_id = c.user_id;
    PERFORM bff_log_notify(ARRAY(SELECT DISTINCT user_id FROM changed));
    RETURN NULL;
END;
$$;

-- An UPDATE's objects, for the new owner and (a row moved between people) the old one; rows
-- whose only change is in the columns TG_ARGV[1] names (a job's lease) are not logged.
CREATE FUNCTION bff_log_objects_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    quiet text[];
    owners text[];
BEGIN
    quiet := coalesce(TG_ARGV[1], '{}')::text[];
    WITH touched AS (
        SELECT n.user_id, n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE to_jsonb(n) - quiet IS DISTINCT FROM to_jsonb(o) - quiet
        UNION
        SELECT o.user_id, o.id FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.user_id IS DISTINCT FROM n.user_id
    ), logged AS (
        INSERT INTO viewer_changes (user_id, seq, kind, object_id)
        SELECT t.user_id, v.version, TG_ARGV[0], t.id
        FROM touched t JOIN viewer_versions v ON v.user_id = t.user_id
        RETURNING user_id
    )
    SELECT ARRAY(SELECT DISTINCT user_id FROM logged) INTO owners;
    PERFORM bff_log_notify(owners);
    RETURN NULL;
END;
$$;

-- A statement's kind only (one entry per viewer, whatever the rows).
CREATE FUNCTION bff_log_kind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO viewer_changes (user_id, seq, kind)
    SELECT v.user_id, v.version, TG_ARGV[0]
    FROM viewer_versions v WHERE v.user_id IN (SELECT user_id FROM changed);
    PERFORM bff_log_notify(ARRAY(SELECT DISTINCT user_id FROM changed));
    RETURN NULL;
END;
$$;

-- An UPDATE's kind, for the old and the new owners.
CREATE FUNCTION bff_log_kind_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owners text[];
BEGIN
    owners := ARRAY(SELECT user_id FROM old_rows UNION SELECT user_id FROM new_rows);
    INSERT INTO viewer_changes (user_id, seq, kind)
    SELECT v.user_id, v.version, TG_ARGV[0] FROM viewer_versions v WHERE v.user_id = ANY(owners);
    PERFORM bff_log_notify(owners);
    RETURN NULL;
END;
$$;

-- TRUNCATE names no rows: every viewer's version moves and nothing before it can be replayed.
CREATE FUNCTION bff_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE viewer_versions SET version = version + 1, pruned_through = version + 1
     WHERE user_id <> '*';
    DELETE FROM viewer_changes;
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t record;
    objects boolean;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('photo_jobs', 'job', '{lease_expires_at}'),
        ('photo_uploads', 'upload', NULL),
        ('purchases', 'purchase', NULL),
        ('notifications', 'notification', NULL),
        ('credit_accounts', 'credits', NULL),
        ('credit_ledger', 'credits', NULL),
        ('subscriptions', 'subscription', NULL),
        ('subscription_history', 'subscription', NULL),
        ('usage_counters', 'usage', NULL),
        ('notification_preferences', 'preferences', NULL)
    ) AS x (tab, kind, quiet)
    LOOP
        objects := t.kind IN ('job', 'upload', 'purchase', 'notification');
        EXECUTE format('CREATE TRIGGER bff_vlog_insert AFTER INSERT ON %I '
                       'REFERENCING NEW TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION %I(%L)', t.tab,
                       CASE WHEN objects THEN 'bff_log_objects' ELSE 'bff_log_kind' END, t.kind);
        EXECUTE format('CREATE TRIGGER bff_vlog_update AFTER UPDATE ON %I '
                       'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION %I(%L, %L)', t.tab,
                       CASE WHEN objects THEN 'bff_log_objects_update' ELSE 'bff_log_kind_update' END,
                       t.kind, coalesce(t.quiet, '{}'));
        EXECUTE format('CREATE TRIGGER bff_vlog_delete AFTER DELETE ON %I '
                       'REFERENCING OLD TABLE AS changed FOR EACH STATEMENT '
                       'EXECUTE FUNCTION %I(%L)', t.tab,
                       CASE WHEN objects THEN 'bff_log_objects' ELSE 'bff_log_kind' END, t.kind);
        EXECUTE format('CREATE TRIGGER bff_vlog_truncate AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION bff_log_truncate()', t.tab);
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
