CREATE TABLE photo_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    prompt TEXT NOT NULL CHECK (char_length(btrim(prompt)) BETWEEN 1 AND 2000),
    photo_count INTEGER NOT NULL CHECK (photo_count BETWEEN 1 AND 1000),
    -- What the viewer paid in credits (cents) and how many photos came from the free allowance.
    cost_cents BIGINT NOT NULL CHECK (cost_cents >= 0),
    free_photos_applied INTEGER NOT NULL DEFAULT 0 CHECK (free_photos_applied BETWEEN 0 AND photo_count),
    status TEXT NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELED')),
    download_url TEXT,
    group_name TEXT CONSTRAINT photo_jobs_group_name_length CHECK (char_length(group_name) <= 140),
    failure_reason TEXT,
    idempotency_key TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    CONSTRAINT photo_jobs_one_per_idempotency_key UNIQUE (user_id, idempotency_key)
);
-- The viewer's list, newest first, with the id as tiebreaker (keyset pagination).
CREATE INDEX photo_jobs_user_newest ON photo_jobs (user_id, created_at DESC, id DESC);
-- The same list filtered by group.
CREATE INDEX photo_jobs_user_group_newest ON photo_jobs (user_id, group_name, created_at DESC, id DESC);
-- The worker's queue: oldest pending first.
CREATE INDEX photo_jobs_pending_oldest ON photo_jobs (created_at, id) WHERE status = 'PENDING';
