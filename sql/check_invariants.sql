-- Money invariants. Expect no rows: each row names a user and what is wrong. Run it any time:
--   psql "$DATABASE_URL" -f sql/check_invariants.sql
-- 1. An account whose balance differs from the sum of its ledger.
SELECT a.user_id, 'balance differs from the ledger' AS problem
FROM credit_accounts a
LEFT JOIN (SELECT user_id, SUM(amount_cents) AS total_cents FROM credit_ledger GROUP BY user_id) l
       USING (user_id)
WHERE a.balance_cents <> COALESCE(l.total_cents, 0)
UNION ALL
-- 2. A balance below zero that no refund or dispute explains: only taking back a purchase's
--    credits may leave an account negative (spending never does).
SELECT a.user_id, 'negative balance without a refund or dispute'
FROM credit_accounts a
WHERE a.balance_cents < 0
  AND NOT EXISTS (SELECT 1 FROM credit_ledger r
                  WHERE r.user_id = a.user_id AND r.kind IN ('PURCHASE_REFUND', 'DISPUTE_HOLD'))
UNION ALL
-- 3. A purchase whose credits taken back differ from its refund rows, or exceed its grant.
SELECT p.user_id, 'purchase refunds differ from the ledger'
FROM purchases p
LEFT JOIN (SELECT purchase_id, -SUM(amount_cents) AS reversed_cents FROM credit_ledger
           WHERE kind = 'PURCHASE_REFUND' GROUP BY purchase_id) r ON r.purchase_id = p.id
WHERE p.credits_reversed_cents <> COALESCE(r.reversed_cents, 0)
   OR p.credits_reversed_cents > p.credits_cents
UNION ALL
-- 4. A payment whose dispute holds or releases differ from the ledger.
SELECT p.user_id, 'dispute holds differ from the ledger'
FROM purchases p
JOIN (SELECT payment_intent_id,
             SUM(held_cents) FILTER (WHERE hold_applied) AS held,
             SUM(held_cents) FILTER (WHERE released) AS released
      FROM stripe_disputes GROUP BY payment_intent_id) d
  ON d.payment_intent_id = p.stripe_payment_intent_id
LEFT JOIN (SELECT purchase_id,
                  -SUM(amount_cents) FILTER (WHERE kind = 'DISPUTE_HOLD') AS held,
                  SUM(amount_cents) FILTER (WHERE kind = 'DISPUTE_RELEASE') AS released
           FROM credit_ledger GROUP BY purchase_id) l ON l.purchase_id = p.id
WHERE COALESCE(d.held, 0) <> COALESCE(l.held, 0)
   OR COALESCE(d.released, 0) <> COALESCE(l.released, 0)
UNION ALL
-- 5. A purchase refunded beyond what was paid, or taking back a negative amount.
SELECT p.user_id, 'purchase refunded beyond its payment'
FROM purchases p
WHERE (p.amount_cents > 0 AND p.refunded_amount_cents > p.amount_cents) OR p.credits_reversed_cents < 0
UNION ALL
-- 6. A canceled or failed job whose charge was not refunded in full, exactly once.
SELECT j.user_id, 'a canceled or failed job was not refunded'
FROM photo_jobs j
LEFT JOIN (SELECT photo_job_id, SUM(amount_cents) AS refunded_cents FROM credit_ledger
           WHERE kind = 'JOB_REFUND' GROUP BY photo_job_id) r ON r.photo_job_id = j.id
WHERE j.status IN ('CANCELED', 'FAILED') AND j.cost_cents <> COALESCE(r.refunded_cents, 0);
