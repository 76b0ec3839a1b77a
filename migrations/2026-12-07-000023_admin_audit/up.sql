-- The administration's audit trail: one row per action of the people who run the app (the
-- admin API's mutations, `bff admin grant-role`, and what an admin's impersonation of a person
-- did), written in the same transaction as the action, so an action that rolls back leaves
-- none. Append-only: a trigger refuses updates and deletes, except the anonymisation of a
-- person who deleted their account.
CREATE TABLE admin_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Who acted: a user id, or `cli:<name>` for the command line. No foreign key: the trail
    -- outlives the people in it.
    actor_id TEXT NOT NULL,
    -- The role they acted in (`admin`, `support`, `cli`).
    actor_role TEXT NOT NULL,
    -- The admin whose impersonation session acted, when it was one (then actor_id is the admin
    -- too, and target_id the person impersonated).
    impersonating BOOLEAN NOT NULL DEFAULT false,
    -- Whom it was about: a user id, or `deleted_…` once that person deleted their account.
    target_id TEXT,
    action TEXT NOT NULL,
    reason TEXT,
    -- The state the action changed, before and after (no personal data beyond ids).
    before JSONB,
    after JSONB
);
CREATE INDEX admin_audit_actor ON admin_audit (actor_id, id);
CREATE INDEX admin_audit_target ON admin_audit (target_id, id);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only admin_audit_anonymise (a trigger: depth 2 here), only once per row, only for a
    -- person who is gone.
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1
       AND OLD.target_id IS NOT NULL AND OLD.target_id NOT LIKE 'deleted\_%'
       AND NEW.target_id LIKE 'deleted\_%'
       AND NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.target_id)
       AND (NEW.id, NEW.at, NEW.actor_id, NEW.actor_role, NEW.impersonating, NEW.action,
            NEW.reason, NEW.before, NEW.after)
           IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor_id, OLD.actor_role, OLD.impersonating,
            OLD.action, OLD.reason, OLD.before, OLD.after) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'admin_audit is append-only' USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER admin_audit_append_only BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();
CREATE FUNCTION admin_audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only' USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_no_truncate();

-- A person's deletion (by bff, Better Auth or an operator) keeps the rows about them under a
-- random tombstone, as the money trail is kept.
CREATE FUNCTION admin_audit_anonymise() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tombstone TEXT := 'deleted_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    UPDATE admin_audit SET target_id = tombstone WHERE target_id = OLD.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER admin_audit_anonymise AFTER DELETE ON "user"
    FOR EACH ROW EXECUTE FUNCTION admin_audit_anonymise();

-- Support's search: email and name prefixes, case-insensitively, and people newest first.
CREATE INDEX IF NOT EXISTS bff_user_email_prefix ON "user" (lower(email) text_pattern_ops);
CREATE INDEX IF NOT EXISTS bff_user_name_prefix ON "user" (lower(name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS bff_user_newest ON "user" ("createdAt", id);

INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000023', 'expand: a new table, its triggers, three indexes on "user"');
