-- Migrations an older bff may serve against. `bff serve` refuses a database holding a
-- migration it does not know, unless that migration is listed here. A migration that only
-- expands the schema (a new table, a nullable or defaulted column, an index, a new function;
-- nothing an older binary reads or writes changes meaning) declares itself compatible by
-- inserting its own version as its last statement, so a rolling deploy can run it while the
-- old replicas still serve. A contracting migration (a drop, a rename, a new NOT NULL without
-- a default) does not, and ships only after every replica runs a binary that no longer
-- needs what it removes. See docs/deployment.md, "Changing the schema under a running fleet".
CREATE TABLE bff_compatible_migrations (
    version text PRIMARY KEY,
    note text NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO bff_compatible_migrations (version, note)
VALUES ('20261207000017', 'expand: adds this table, which older binaries never read');
