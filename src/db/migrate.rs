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
    migrate_reporting(conn, || {}).await
}

/// [`migrate`], calling `waiting` first when another migration holds the lock (so
/// `bff migrate` can say why it pauses).
pub async fn migrate_reporting(
    conn: AsyncPgConnection,
    waiting: impl FnOnce(),
) -> StartupResult<Vec<String>> {
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
    let lock_error =
        |e: diesel::result::Error| StartupError(format!("cannot take the migration lock: {e}"));
    let taken: Exists = diesel::sql_query(format!(
        "SELECT pg_try_advisory_lock({MIGRATION_LOCK}) AS exists"
    ))
    .get_result(&mut conn)
    .await
    .map_err(lock_error)?;
    if !taken.exists {
        waiting();
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .await
            .map_err(lock_error)?;
    }
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

/// The versions of our migrations this binary knows.
pub fn known_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    use diesel::pg::Pg;
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
        .unwrap_or_default()
}

/// Migrations applied to a database that this binary does not know (a newer bff ran them).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Newer {
    /// Declared compatible in `bff_compatible_migrations`: this binary may serve.
    pub compatible: Vec<String>,
    /// Not declared compatible: this binary must not serve.
    pub incompatible: Vec<String>,
}

#[derive(QueryableByName)]
struct Tables {
    #[diesel(sql_type = Bool)]
    migrations: bool,
    #[diesel(sql_type = Bool)]
    compatible: bool,
}

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
    #[diesel(sql_type = Bool)]
    compatible: bool,
}

/// The migrations applied to the database that this binary does not know, sorted into those
/// declared compatible and the rest (for `bff serve`, which refuses the rest). A database
/// without diesel's migrations table has none.
pub async fn newer_migrations(conn: &mut AsyncPgConnection) -> QueryResult<Newer> {
    let tables: Tables = diesel::sql_query(
        "SELECT to_regclass('public.__diesel_schema_migrations') IS NOT NULL AS migrations, \
                to_regclass('public.bff_compatible_migrations') IS NOT NULL AS compatible",
    )
    .get_result(conn)
    .await?;
    if !tables.migrations {
        return Ok(Newer::default());
    }
    let rows: Vec<AppliedVersion> = diesel::sql_query(if tables.compatible {
        "SELECT m.version::text AS version, c.version IS NOT NULL AS compatible \
         FROM __diesel_schema_migrations m \
         LEFT JOIN bff_compatible_migrations c ON c.version = m.version"
    } else {
        "SELECT version::text AS version, false AS compatible FROM __diesel_schema_migrations"
    })
    .load(conn)
    .await?;
    let known = known_versions();
    let mut newer = Newer::default();
    for row in rows {
        if known.contains(&row.version) {
            continue;
        }
        if row.compatible {
            newer.compatible.push(row.version);
        } else {
            newer.incompatible.push(row.version);
        }
    }
    newer.compatible.sort();
    newer.incompatible.sort();
    Ok(newer)
}

/// Why [`check_serving`] did not pass.
#[derive(Debug)]
pub enum ServingCheck {
    /// The database could not be asked (it may come up later).
    Unreachable(String),
    /// The database holds migrations this binary does not know and that are not declared
    /// compatible: serving could corrupt what a newer binary wrote.
    Refused(String),
}

/// Whether this binary may serve against the database's schema (`bff serve` at startup): it
/// may unless a newer bff applied a migration not declared compatible. Compatible newer
/// migrations are logged.
pub async fn check_serving(pool: &super::pool::DbPool) -> Result<(), ServingCheck> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| ServingCheck::Unreachable(e.to_string()))?;
    let newer = newer_migrations(&mut conn)
        .await
        .map_err(|e| ServingCheck::Unreachable(e.to_string()))?;
    if !newer.incompatible.is_empty() {
        return Err(ServingCheck::Refused(format!(
            "the database has migrations this bff ({}) does not know and that are not declared \
             compatible: {}. A newer bff migrated it; deploy that version (or newer), or, if \
             they only expand the schema, declare them with INSERT INTO \
             bff_compatible_migrations (version, note)",
            env!("CARGO_PKG_VERSION"),
            newer.incompatible.join(", ")
        )));
    }
    if !newer.compatible.is_empty() {
        tracing::info!(
            versions = %newer.compatible.join(", "),
            "the database has newer migrations, declared compatible with this bff"
        );
    }
    Ok(())
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
