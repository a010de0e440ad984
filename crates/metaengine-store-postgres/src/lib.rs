//! PostgreSQL backend of the metaengine [`Store`](metaengine_store::Store): the production store.
//!
//! Key decision: changes to one entity are serialized by locking its `meta_entities` row
//! (`SELECT … FOR UPDATE`) at the start of the transaction, so concurrent activations queue up
//! instead of failing; the partial unique index on `meta_versions (entity_name) WHERE is_active`
//! backs the "one active version" rule even against code that forgets the lock.
#![deny(missing_docs)]

use std::time::Duration;

use metaengine_store::sql::MetaSql;
use metaengine_store::{Backend, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

#[cfg(feature = "testing")]
pub mod testing;

/// The engine's migrations for PostgreSQL, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A [`Store`](metaengine_store::Store) on one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sql: MetaSql,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            sql: MetaSql::postgres(),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A write transaction (rows are locked per statement with `FOR UPDATE`).
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
}

metaengine_store::impl_sqlx_store!(PostgresStore, Postgres, Backend::Postgres, MIGRATOR);
