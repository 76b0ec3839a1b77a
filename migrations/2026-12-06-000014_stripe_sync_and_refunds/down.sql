DROP TABLE stripe_refunds;
DROP TABLE stripe_syncs;
