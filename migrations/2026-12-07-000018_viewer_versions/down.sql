DROP TRIGGER bff_version_global ON credit_packs;
DROP TRIGGER bff_version_global ON plans;
DROP FUNCTION bff_bump_global_version();
DROP TRIGGER bff_version_delete ON "user";
DROP FUNCTION bff_forget_user_version();
DROP TRIGGER bff_version_update ON "user";
DROP FUNCTION bff_bump_user_version();
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['photo_jobs', 'photo_uploads', 'credit_accounts', 'credit_ledger',
                             'purchases', 'subscriptions', 'subscription_history', 'usage_counters']
    LOOP
        EXECUTE format('DROP TRIGGER bff_version_insert ON %I', t);
        EXECUTE format('DROP TRIGGER bff_version_update ON %I', t);
        EXECUTE format('DROP TRIGGER bff_version_delete ON %I', t);
    END LOOP;
END;
$$;
DROP FUNCTION bff_bump_viewer_versions();
DROP TABLE viewer_versions;
DELETE FROM bff_compatible_migrations WHERE version = '20261207000018';
