//! PostgreSQL backend of the metaengine [`Store`](metaengine_store::Store), the production
//! store: how to open a [`SqlStore`] on PostgreSQL, and the engine's migrations for it. The
//! store's implementation is `metaengine-store-sql`'s, shared with SQLite.
//!
//! Key decision: changes to one entity are serialized by locking its `meta_entities` row
//! (`SELECT … FOR UPDATE`) at the start of the transaction, so concurrent activations queue up
//! instead of failing; the partial unique index on `meta_versions (entity_name) WHERE is_active`
//! backs the "one active version" rule even against code that forgets the lock.
#![deny(missing_docs)]

use std::time::Duration;

use metaengine_store::StoreResult;
use metaengine_store_sql::{Pool, SqlStore};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

#[cfg(feature = "testing")]
pub mod testing;

/// The engine's migrations for PostgreSQL, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens [`SqlStore`]s on PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct PostgresStore;

impl PostgresStore {
    /// Connections of the pool [`PostgresStore::connect`] opens.
    pub const DEFAULT_POOL_SIZE: u32 = 16;

    /// Connects to `url` (`postgres://user@host:port/db`) with the default pool size.
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        Self::connect_with_pool_size(url, Self::DEFAULT_POOL_SIZE).await
    }

    /// Connects to `url` with a pool of at most `max_connections` connections.
    pub async fn connect_with_pool_size(url: &str, max_connections: u32) -> StoreResult<SqlStore> {
        // No ping before handing out a connection: it would double the round trips of every
        // statement. A connection the server dropped fails its next statement and leaves the pool.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| metaengine_store::StoreError::Database(Box::new(e)))?;
        Self::from_pool(pool)
    }

    /// A store on an existing pool: its statements run on connections like the pool's (same
    /// options and size), the pool itself serves `LISTEN`.
    pub fn from_pool(pool: PgPool) -> StoreResult<SqlStore> {
        Ok(SqlStore::new(Pool::postgres(pool)?, &MIGRATOR))
    }
}
