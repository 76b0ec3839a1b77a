ALTER TABLE stripe_events DROP CONSTRAINT stripe_events_outcome_known;
ALTER TABLE stripe_events ADD CONSTRAINT stripe_events_outcome_known
    CHECK (outcome IN ('processing', 'applied', 'ignored', 'malformed', 'unknown_customer', 'not_a_credit_pack', 'unknown_pack', 'awaiting_payment', 'already_granted', 'no_pending_purchase', 'unknown_price', 'stale', 'not_a_subscription_invoice', 'unknown_or_stale_subscription'));
DROP TABLE stripe_payment_refunds;
DROP INDEX purchases_payment_intent;
ALTER TABLE purchases DROP CONSTRAINT purchases_reversal_within_grant,
    DROP COLUMN credits_reversed_cents, DROP COLUMN refunded_amount_cents;
ALTER TABLE purchases DROP CONSTRAINT purchases_status_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_status_check
    CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'REFUNDED'));
ALTER TABLE credit_ledger DROP CONSTRAINT credit_ledger_kind_check;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_kind_check
    CHECK (kind IN ('PURCHASE', 'GRANT', 'JOB_CHARGE', 'JOB_REFUND', 'ADJUSTMENT'));
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_balance_after_cents_check CHECK (balance_after_cents >= 0);
ALTER TABLE credit_accounts ADD CONSTRAINT credit_accounts_balance_non_negative CHECK (balance_cents >= 0);
