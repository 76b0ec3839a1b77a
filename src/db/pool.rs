//! The connection pool every request draws from. Connections open lazily as their
//! [`ConnectOptions`] say (libpq's `sslmode`); waiting for one and opening one are both bounded
//! by the pool timeout, so an exhausted pool or an unreachable database fails fast. A
//! connection whose socket has closed (a database restart) is dropped at checkout and
//! replaced, with no query to find out.

use std::time::Duration;

use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use secrecy::ExposeSecret;

use super::connect::ConnectOptions;
use crate::config::database::Database;
use crate::error::{StartupError, StartupResult};

/// The pool every request draws from.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection borrowed from the pool.
pub type DbConn = Object<AsyncPgConnection>;
/// Why a connection could not be had.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// Builds a pool of `size` connections opened with `options`, waiting at most `timeout`.
pub fn pool(options: ConnectOptions, size: usize, timeout: Duration) -> StartupResult<DbPool> {
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
        .map_err(|e| StartupError(format!("cannot build the database pool: {e}")))
}

/// The connection options of the configuration (`DATABASE_URL`, `DATABASE_CA_CERT`) with its
/// statement timeout.
pub(crate) fn options(config: &Database) -> StartupResult<ConnectOptions> {
    Ok(
        ConnectOptions::from_url(config.url.expose_secret(), config.ca_cert.as_deref())?
            .with_statement_timeout(config.statement_timeout),
    )
}

/// Builds the pool from the configuration.
pub fn from_config(config: &Database) -> StartupResult<DbPool> {
    pool(options(config)?, config.pool_size, config.pool_timeout)
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
