DROP TRIGGER stripe_customers_queue_deletion ON stripe_customers;
DROP FUNCTION stripe_customers_queue_deletion();
DROP TRIGGER subscriptions_queue_cancel ON subscriptions;
DROP FUNCTION subscriptions_queue_cancel();
DROP TABLE account_cleanups;
DROP TABLE money_owners;
DROP FUNCTION money_owner_anonymise();
DROP TRIGGER money_owner_register ON credit_accounts;
DROP TRIGGER money_owner_register ON purchases;
DROP FUNCTION money_owner_register();
CREATE OR REPLACE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM "user" WHERE id = OLD.user_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'credit_ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
DELETE FROM credit_ledger WHERE NOT EXISTS (SELECT 1 FROM "user" u WHERE u.id = user_id);
DELETE FROM purchases WHERE NOT EXISTS (SELECT 1 FROM "user" u WHERE u.id = user_id);
DELETE FROM credit_accounts WHERE NOT EXISTS (SELECT 1 FROM "user" u WHERE u.id = user_id);
ALTER TABLE credit_accounts ADD CONSTRAINT credit_accounts_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES "user" (id) ON DELETE CASCADE;
ALTER TABLE credit_ledger ADD CONSTRAINT credit_ledger_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES "user" (id) ON DELETE CASCADE;
ALTER TABLE purchases ADD CONSTRAINT purchases_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES "user" (id) ON DELETE CASCADE;
