-- A claimed job is leased to its worker: the worker extends the lease (heartbeatPhotoJob) while
-- it works, and a job whose lease expires (the worker vanished) goes back to PENDING for another
-- worker, up to BFF_WORKER_MAX_ATTEMPTS claims, after which it fails and is refunded once.
ALTER TABLE photo_jobs
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
-- The sweep: PROCESSING jobs by lease expiry.
CREATE INDEX photo_jobs_lease_expiry ON photo_jobs (lease_expires_at) WHERE status = 'PROCESSING';
