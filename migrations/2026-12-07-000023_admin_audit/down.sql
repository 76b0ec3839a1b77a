DELETE FROM bff_compatible_migrations WHERE version = '20261207000023';
DROP INDEX IF EXISTS bff_user_newest;
DROP INDEX IF EXISTS bff_user_name_prefix;
DROP INDEX IF EXISTS bff_user_email_prefix;
DROP TRIGGER admin_audit_anonymise ON "user";
DROP FUNCTION admin_audit_anonymise();
DROP TABLE admin_audit;
DROP FUNCTION admin_audit_no_truncate();
DROP FUNCTION admin_audit_append_only();
