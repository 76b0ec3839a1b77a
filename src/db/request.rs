//! One connection per request. A request checks a connection out of the pool at its first
//! database need (the session lookup, usually) and gives it back when the request ends; every
//! resolver of the request uses it. Queries resolved concurrently share it through
//! [`RequestDb::read`] and are pipelined on it by diesel-async (sent together, answered in
//! order); a mutation takes it exclusively with [`RequestDb::write`] for its transaction.

use diesel::pg::Pg;
use diesel_async::AsyncConnectionCore;
use tokio::sync::{OnceCell, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::db::pool::{DbConn, DbPool, PoolError};

/// A connection queries can run on: one held alone (`&mut AsyncPgConnection`) or one shared by
/// concurrent resolvers (`&mut &AsyncPgConnection`, pipelined).
pub trait Db: AsyncConnectionCore<Backend = Pg> + Send {}

impl<T: AsyncConnectionCore<Backend = Pg> + Send> Db for T {}

/// The request's connection, checked out on first use.
pub struct RequestDb {
    pool: DbPool,
    conn: OnceCell<RwLock<DbConn>>,
    /// A subscription's: each use checks a connection out and gives it back (an operation
    /// that lasts hours must not hold one).
    per_use: bool,
}

/// A connection to read on: the request's, shared, or one checked out for this use alone.
pub enum DbGuard<'a> {
    /// The request's connection.
    Shared(RwLockReadGuard<'a, DbConn>),
    /// Checked out for one use (a subscription's), back to the pool when dropped.
    Owned(Box<DbConn>),
}

impl std::ops::Deref for DbGuard<'_> {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        match self {
            DbGuard::Shared(guard) => guard,
            DbGuard::Owned(conn) => conn,
        }
    }
}

impl RequestDb {
    /// Nothing is checked out until a resolver needs the database.
    pub fn new(pool: DbPool) -> Self {
        RequestDb {
            pool,
            conn: OnceCell::new(),
            per_use: false,
        }
    }

    /// For a subscription: every [`RequestDb::read`] checks a connection out for that use only.
    pub fn per_use(pool: DbPool) -> Self {
        RequestDb {
            per_use: true,
            ..RequestDb::new(pool)
        }
    }

    async fn cell(&self) -> Result<&RwLock<DbConn>, PoolError> {
        self.conn
            .get_or_try_init(|| async { Ok(RwLock::new(self.pool.get().await?)) })
            .await
    }

    /// The connection, shared with the request's other readers.
    pub async fn read(&self) -> Result<DbGuard<'_>, PoolError> {
        if self.per_use {
            return Ok(DbGuard::Owned(Box::new(self.pool.get().await?)));
        }
        Ok(DbGuard::Shared(self.cell().await?.read().await))
    }

    /// The connection alone, for a transaction. Take it only while holding no read guard.
    /// (Never on a subscription's, whose operations do not write.)
    pub async fn write(&self) -> Result<RwLockWriteGuard<'_, DbConn>, PoolError> {
        Ok(self.cell().await?.write().await)
    }
}
