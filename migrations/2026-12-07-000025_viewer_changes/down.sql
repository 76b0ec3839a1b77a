DELETE FROM bff_compatible_migrations WHERE version = '20261207000025';
DROP TRIGGER bff_vlog_delete ON "user";
DROP FUNCTION bff_forget_user_changes();
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['photo_jobs', 'photo_uploads', 'purchases', 'notifications',
                             'credit_accounts', 'credit_ledger', 'subscriptions',
                             'subscription_history', 'usage_counters', 'notification_preferences']
    LOOP
        EXECUTE format('DROP TRIGGER bff_vlog_insert ON %I', t);
        EXECUTE format('DROP TRIGGER bff_vlog_update ON %I', t);
        EXECUTE format('DROP TRIGGER bff_vlog_delete ON %I', t);
        EXECUTE format('DROP TRIGGER bff_vlog_truncate ON %I', t);
    END LOOP;
END;
$$;
DROP FUNCTION bff_log_truncate();
DROP FUNCTION bff_log_kind_update();
DROP FUNCTION bff_log_kind();
DROP FUNCTION bff_log_objects_update();
DROP FUNCTION bff_log_objects();
DROP FUNCTION bff_log_notify(text[]);
ALTER TABLE viewer_versions DROP COLUMN pruned_through;
DROP TABLE viewer_changes;
