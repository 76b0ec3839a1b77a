//! Our migrations, embedded in the binary, and Better Auth's tables they build on. Migrating
//! holds a PostgreSQL advisory lock, so two `bff migrate` at once (two instances starting
//! together) take turns instead of failing on each other's half-made types.

use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{StartupError, StartupResult};

/// Our migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock key migrations hold (`'bff-migrate'` as a number).
const MIGRATION_LOCK: i64 = 0x6266_662d_6d69_6772;

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// Whether Better Auth's `"user"` and `session` tables exist in this database.
pub async fn better_auth_tables_exist(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    let row: Exists = diesel::sql_query(
        "SELECT to_regclass('public.\"user\"') IS NOT NULL \
         AND to_regclass('public.session') IS NOT NULL AS exists",
    )
    .get_result(conn)
    .await?;
    Ok(row.exists)
}

/// Creates Better Auth's tables as Better Auth would (only `bff dev` and the tests do this).
pub async fn create_better_auth_tables(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    conn.batch_execute(super::better_auth::DDL).await
}

/// Applies our pending migrations under the migration lock, after checking that Better
/// Auth's tables exist. Returns the versions applied.
pub async fn migrate(conn: AsyncPgConnection) -> StartupResult<Vec<String>> {
    let mut conn = conn;
    let inspect =
        |e: diesel::result::Error| StartupError(format!("cannot inspect the database: {e}"));
    if !better_auth_tables_exist(&mut conn).await.map_err(inspect)? {
        return Err(StartupError(
            "Better Auth's tables (\"user\", session) are missing from this database. \
             Run Better Auth's migrate step first (`npx @better-auth/cli migrate` in the SvelteKit \
             app, or getMigrations(options).runMigrations() from better-auth/db/migration), \
             then run `bff migrate` again."
                .into(),
        ));
    }
    // Held by this session until it ends: released when the connection closes below.
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await
        .map_err(|e| StartupError(format!("cannot take the migration lock: {e}")))?;
    // The harness drives diesel's sync migration code with block_in_place.
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        harness
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(|e| StartupError(format!("migration failed: {e}")))
    })
    .await
    .map_err(|e| StartupError(format!("migration task failed: {e}")))?
}

/// The names of the migrations not yet applied (for `bff check`).
pub async fn pending(conn: AsyncPgConnection) -> Result<Vec<String>, String> {
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        let pending = harness
            .pending_migrations(MIGRATIONS)
            .map_err(|e| e.to_string())?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    })
    .await
    .map_err(|e| e.to_string())?
}
