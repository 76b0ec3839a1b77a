-- How much of a metered resource a user used in one usage window.
CREATE TABLE usage_counters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    metric TEXT NOT NULL CHECK (metric IN ('PHOTOS')),
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    count INTEGER NOT NULL DEFAULT 0 CONSTRAINT usage_counters_count_non_negative CHECK (count >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT usage_counters_window_ordered CHECK (window_end > window_start),
    CONSTRAINT usage_counters_one_per_window UNIQUE (user_id, metric, window_start)
);
