DROP INDEX credit_ledger_one_grant_per_purchase;
ALTER TABLE subscriptions DROP COLUMN stripe_event_created_at;
DROP TABLE stripe_events;
DROP TABLE stripe_customers;
DROP TABLE credit_packs;
