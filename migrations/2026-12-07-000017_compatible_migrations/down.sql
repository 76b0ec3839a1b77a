DROP TABLE bff_compatible_migrations;
