-- Bans and impersonation, as Better Auth's admin plugin (1.7) writes them. The plugin adds
-- these columns to Better Auth's own tables; an app that has not enabled it lacks them, so they
-- are added here when absent, with exactly the plugin's types (Better Auth's migrator then
-- finds them and adds nothing). All nullable, no default: adding them rewrites no row.
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "role" text;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "banned" boolean;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "banReason" text;
ALTER TABLE "user" ADD COLUMN IF NOT EXISTS "banExpires" timestamptz;
ALTER TABLE "session" ADD COLUMN IF NOT EXISTS "impersonatedBy" text;

-- The one definition of a ban in force, used by every session lookup, the WebSocket checks and
-- the worker's claim: banned, and no expiry or one still ahead. An expired ban is not lifted
-- here (Better Auth clears it at the next sign-in); it simply no longer holds. Inlined by the
-- planner (one SELECT, STABLE).
CREATE FUNCTION bff_ban_in_force(banned boolean, expires timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT banned IS TRUE AND (expires IS NULL OR expires > now()) $$;

-- A ban however it is written (Better Auth's route, bff's admin API, plain SQL) tells every bff
-- process at commit to check its open WebSocket connections at once, as a deletion does.
CREATE FUNCTION bff_banned() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bff_live', json_build_object('t', 'gone', 'u', NEW.id)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER bff_banned AFTER UPDATE OF "banned", "banExpires" ON "user"
    FOR EACH ROW
    WHEN (bff_ban_in_force(NEW."banned", NEW."banExpires")
          AND NOT bff_ban_in_force(OLD."banned", OLD."banExpires"))
    EXECUTE FUNCTION bff_banned();

INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000022', 'expand: nullable columns Better Auth''s admin plugin defines, a function and a trigger');
