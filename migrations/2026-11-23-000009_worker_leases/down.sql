DROP INDEX photo_jobs_lease_expiry;
ALTER TABLE photo_jobs DROP COLUMN attempts, DROP COLUMN lease_expires_at;
