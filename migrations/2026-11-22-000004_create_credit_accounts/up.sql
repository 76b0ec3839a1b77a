-- Money is integer cents: exact, and summable without rounding.
CREATE TABLE credit_accounts (
    user_id TEXT PRIMARY KEY REFERENCES "user" (id) ON DELETE CASCADE,
    balance_cents BIGINT NOT NULL DEFAULT 0 CONSTRAINT credit_accounts_balance_non_negative CHECK (balance_cents >= 0),
    free_photos_used INTEGER NOT NULL DEFAULT 0 CHECK (free_photos_used >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Append-only: every balance change is one row, written in the same transaction as the change,
-- so balance_cents = sum(amount_cents) for every account.
CREATE TABLE credit_ledger (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('PURCHASE', 'GRANT', 'JOB_CHARGE', 'JOB_REFUND', 'ADJUSTMENT')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents <> 0),
    balance_after_cents BIGINT NOT NULL CHECK (balance_after_cents >= 0),
    description TEXT NOT NULL,
    -- No foreign keys: the ledger keeps its rows when a job or purchase is deleted.
    photo_job_id BIGINT,
    purchase_id BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_user_newest ON credit_ledger (user_id, created_at DESC, id DESC);
-- A job is charged at most once and refunded at most once.
CREATE UNIQUE INDEX credit_ledger_one_per_job_and_kind ON credit_ledger (photo_job_id, kind)
    WHERE photo_job_id IS NOT NULL;

CREATE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows go only when their user does (ON DELETE CASCADE); nothing else may edit history.
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'credit_ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER credit_ledger_append_only BEFORE UPDATE OR DELETE ON credit_ledger
    FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();
