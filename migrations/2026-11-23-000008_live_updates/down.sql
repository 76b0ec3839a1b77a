DROP TRIGGER bff_live_billing ON subscriptions;
DROP TRIGGER bff_live_credits ON credit_accounts;
DROP FUNCTION bff_live_user();
DROP TRIGGER bff_live_photo_job ON photo_jobs;
DROP FUNCTION bff_live_photo_job();
DROP INDEX photo_jobs_user_updated;
DROP TABLE photo_job_tombstones;
