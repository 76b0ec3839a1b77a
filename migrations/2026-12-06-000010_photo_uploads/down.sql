DROP TRIGGER photo_uploads_queue_deletion ON photo_uploads;
DROP FUNCTION photo_uploads_queue_deletion();
DROP TABLE storage_deletions;
ALTER TABLE photo_jobs DROP COLUMN result_key;
DROP TABLE photo_uploads;
ALTER TABLE plans DROP COLUMN storage_bytes_limit;
