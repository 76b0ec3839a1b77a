-- Photos in and out through object storage. A client asks for uploads (createPhotoUploads), sends
-- each photo straight to the store with the presigned PUT it got, and names the uploads when it
-- creates a job; the worker reads them and uploads the job's result the same way. Rows here are
-- the only record of what the store holds for whom: a deleted row (its job's or its owner's
-- deletion cascades to it) queues its object's deletion in the same transaction, and a sweeper
-- drains the queue with retries.

-- What each plan may keep in storage, in bytes; NULL is unlimited.
ALTER TABLE plans ADD COLUMN storage_bytes_limit BIGINT CHECK (storage_bytes_limit >= 0);
UPDATE plans SET storage_bytes_limit = CASE code
    WHEN 'FREE' THEN 1073741824        -- 1 GiB
    WHEN 'BASIC' THEN 21474836480      -- 20 GiB
    WHEN 'PRO' THEN 107374182400       -- 100 GiB
    ELSE NULL END;

CREATE TABLE photo_uploads (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    -- PHOTO: a job's input, attached to at most one job (NULL until then). RESULT: the result
    -- a worker uploads for a job (one per job).
    purpose TEXT NOT NULL CHECK (purpose IN ('PHOTO', 'RESULT')),
    photo_job_id BIGINT REFERENCES photo_jobs (id) ON DELETE CASCADE,
    -- The photo's place in its job (0-based), set when attached.
    position INTEGER CHECK (position >= 0),
    object_key TEXT NOT NULL UNIQUE,
    file_name TEXT NOT NULL CHECK (char_length(file_name) BETWEEN 1 AND 255),
    content_type TEXT NOT NULL CHECK (content_type IN
        ('image/jpeg', 'image/png', 'image/webp', 'image/heic', 'image/heif', 'application/zip')),
    byte_size BIGINT NOT NULL CHECK (byte_size > 0),
    -- Until when its presigned PUT works: a deletion waits for it, so a late upload is deleted too.
    url_expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT photo_uploads_result_has_job CHECK (purpose = 'PHOTO' OR photo_job_id IS NOT NULL)
);
-- The viewer's storage in use, summed by every session lookup: an index-only scan.
CREATE INDEX photo_uploads_user ON photo_uploads (user_id) INCLUDE (byte_size);
-- A job's photos in order.
CREATE INDEX photo_uploads_job ON photo_uploads (photo_job_id, position) WHERE photo_job_id IS NOT NULL;
-- The sweep of uploads never attached to a job.
CREATE INDEX photo_uploads_unattached ON photo_uploads (created_at) WHERE photo_job_id IS NULL;
CREATE UNIQUE INDEX photo_uploads_one_result ON photo_uploads (photo_job_id) WHERE purpose = 'RESULT';

-- The object of a COMPLETED job's result (its RESULT upload's key); downloadUrl is minted from it.
ALTER TABLE photo_jobs ADD COLUMN result_key TEXT;

-- Objects to delete from the store, written in the transaction that deleted their row.
CREATE TABLE storage_deletions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_key TEXT NOT NULL,
    -- Not before this: the object's upload URL has expired (and, after a failure, the backoff).
    not_before TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX storage_deletions_due ON storage_deletions (not_before);

CREATE FUNCTION photo_uploads_queue_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage_deletions (object_key, not_before)
        VALUES (OLD.object_key, greatest(now(), OLD.url_expires_at + interval '1 minute'));
    RETURN OLD;
END;
$$;
CREATE TRIGGER photo_uploads_queue_deletion AFTER DELETE ON photo_uploads
    FOR EACH ROW EXECUTE FUNCTION photo_uploads_queue_deletion();

