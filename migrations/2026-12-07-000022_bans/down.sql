-- The columns stay: they are Better Auth's admin plugin's, which may have created them and may
-- hold bans and roles that are not bff's to drop.
DELETE FROM bff_compatible_migrations WHERE version = '20261207000022';
DROP TRIGGER bff_banned ON "user";
DROP FUNCTION bff_banned();
DROP FUNCTION bff_ban_in_force(boolean, timestamptz);
