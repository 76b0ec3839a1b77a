//! The connection pool, the embedded migrations, and the models with their queries
//! (one module per domain; queries take the connection first and filter by owner).

pub mod better_auth;
pub mod connect;
pub mod credits;
pub mod instrumentation;
pub mod live;
pub mod pagination;
pub mod photo_jobs;
pub mod plans;
pub mod purchases;
pub mod request;
pub mod schema;
pub mod states;
pub mod stripe;
pub mod subscriptions;
pub mod tls;
pub mod usage;
pub mod viewer;

use std::path::Path;
use std::time::Duration;

use futures_util::FutureExt;

use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use crate::config::Config;
pub use connect::{ConnectOptions, SslMode};

/// Our migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The pool every request draws from.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection borrowed from the pool.
pub type DbConn = Object<AsyncPgConnection>;
/// Why a connection could not be had.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// Builds the pool. Connections open lazily as `options` says (libpq's `sslmode`, see
/// [`connect`]); waiting for one and opening one are both bounded by `timeout`, so an
/// exhausted pool or an unreachable database fails fast. A connection whose socket has closed
/// (a database restart) is dropped at checkout and replaced, with no query to find out.
pub fn pool(
    options: ConnectOptions,
    size: usize,
    timeout: Duration,
) -> crate::StartupResult<DbPool> {
    let options = std::sync::Arc::new(options);
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |_url| {
        let options = options.clone();
        async move { options.connect().await }.boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config("", config);
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| crate::StartupError(format!("cannot build the database pool: {e}")))
}

/// The connection options for `DATABASE_URL` and `DATABASE_CA_CERT`; errors name them.
pub fn options(
    database_url: &str,
    extra_ca: Option<&Path>,
) -> crate::StartupResult<ConnectOptions> {
    ConnectOptions::parse(database_url, extra_ca).map_err(|e| {
        crate::StartupError(if e.starts_with("DATABASE_CA_CERT") {
            e
        } else {
            format!("DATABASE_URL: {e}")
        })
    })
}

/// Builds the pool from the configuration, with its statement timeout.
pub fn pool_from_config(config: &Config) -> crate::StartupResult<DbPool> {
    let options = options(
        config.database_url.expose_secret(),
        config.database_ca_cert.as_deref(),
    )?
    .with_statement_timeout(config.statement_timeout);
    pool(
        options,
        config.database_pool_size,
        config.database_pool_timeout,
    )
}

/// Opens one connection outside any pool (CLI, dev, tests), as libpq would.
pub async fn connect(database_url: &str) -> crate::StartupResult<AsyncPgConnection> {
    connect_with(database_url, None).await
}

/// Like [`connect`], trusting the CA certificates in `extra_ca` too.
pub async fn connect_with(
    database_url: &str,
    extra_ca: Option<&Path>,
) -> crate::StartupResult<AsyncPgConnection> {
    options(database_url, extra_ca)?
        .connect()
        .await
        .map_err(|e| crate::StartupError(connection_error_text(&e)))
}

/// The text of a connection error, without diesel's wrapper words.
pub fn connection_error_text(error: &diesel::ConnectionError) -> String {
    match error {
        diesel::ConnectionError::BadConnection(text) => text.clone(),
        other => other.to_string(),
    }
}

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
    conn.batch_execute(better_auth::DDL).await
}

/// Applies our pending migrations, after checking that Better Auth's tables exist.
/// Returns the versions applied.
pub async fn migrate(conn: AsyncPgConnection) -> crate::StartupResult<Vec<String>> {
    let mut conn = conn;
    if !better_auth_tables_exist(&mut conn)
        .await
        .map_err(|e| crate::StartupError(format!("cannot inspect the database: {e}")))?
    {
        return Err(crate::StartupError(
            "Better Auth's tables (\"user\", session) are missing from this database. \
             Run Better Auth's migrate step first (`npx @better-auth/cli migrate` in the SvelteKit \
             app, or getMigrations(options).runMigrations() from better-auth/db/migration), \
             then run `bff migrate` again."
                .into(),
        ));
    }
    // The harness drives diesel's sync migration code with block_in_place.
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        harness
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(|e| crate::StartupError(format!("migration failed: {e}")))
    })
    .await
    .map_err(|e| crate::StartupError(format!("migration task failed: {e}")))?
}

/// Runs `SELECT 1` on a pooled connection (readiness).
pub async fn ping(pool: &DbPool) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
