-- Money invariants. Expect no rows: each row is an account whose balance differs from the sum
-- of its ledger, or is negative. Run it any time: psql "$DATABASE_URL" -f sql/check_invariants.sql
SELECT a.user_id,
       a.balance_cents,
       COALESCE(l.total_cents, 0) AS ledger_total_cents
FROM credit_accounts a
LEFT JOIN (SELECT user_id, SUM(amount_cents) AS total_cents FROM credit_ledger GROUP BY user_id) l
       USING (user_id)
WHERE a.balance_cents <> COALESCE(l.total_cents, 0)
   OR a.balance_cents < 0;
