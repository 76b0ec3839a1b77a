//! One connection per request. A request checks a connection out of the pool at its first
//! database need (the session lookup, usually) and gives it back when the request ends; every
//! resolver of the request uses it. Queries resolved concurrently share it through
//! [`RequestDb::read`] and are pipelined on it by diesel-async (sent together, answered in
//! order); a mutation takes it exclusively with [`RequestDb::write`] for its transaction.

use diesel::pg::Pg;
use diesel_async::AsyncConnectionCore;
use tokio::sync::{OnceCell, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::db::{DbConn, DbPool, PoolError};

/// A connection queries can run on: one held alone (`&mut AsyncPgConnection`) or one shared by
/// concurrent resolvers (`&mut &AsyncPgConnection`, pipelined).
pub trait Db: AsyncConnectionCore<Backend = Pg> + Send {}

impl<T: AsyncConnectionCore<Backend = Pg> + Send> Db for T {}

/// The request's connection, checked out on first use.
pub struct RequestDb {
    pool: DbPool,
    conn: OnceCell<RwLock<DbConn>>,
}

impl RequestDb {
    /// Nothing is checked out until a resolver needs the database.
    pub fn new(pool: DbPool) -> Self {
        RequestDb {
            pool,
            conn: OnceCell::new(),
        }
    }

    async fn cell(&self) -> Result<&RwLock<DbConn>, PoolError> {
        self.conn
            .get_or_try_init(|| async { Ok(RwLock::new(self.pool.get().await?)) })
            .await
    }

    /// The connection, shared with the request's other readers.
    pub async fn read(&self) -> Result<RwLockReadGuard<'_, DbConn>, PoolError> {
        Ok(self.cell().await?.read().await)
    }

    /// The connection alone, for a transaction. Take it only while holding no read guard.
    pub async fn write(&self) -> Result<RwLockWriteGuard<'_, DbConn>, PoolError> {
        Ok(self.cell().await?.write().await)
    }

    /// Whether a connection has been checked out.
    pub fn checked_out(&self) -> bool {
        self.conn.initialized()
    }
}
