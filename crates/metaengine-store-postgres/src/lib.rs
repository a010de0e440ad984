//! PostgreSQL backend of the metaengine [`Store`](metaengine_store::Store): the production store.
//!
//! Key decision: changes to one entity are serialized by locking its `meta_entities` row
//! (`SELECT … FOR UPDATE`) at the start of the transaction, so concurrent activations queue up
//! instead of failing; the partial unique index on `meta_versions (entity_name) WHERE is_active`
//! backs the "one active version" rule even against code that forgets the lock.
#![deny(missing_docs)]

use std::time::Duration;

use metaengine_sql::Dialect;
use metaengine_store::sql::{MODEL_CHANGES_CHANNEL, MetaSql};
use metaengine_store::{Backend, ModelChange, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::mpsc;

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
    /// Connections of the pool [`PostgresStore::connect`] opens.
    pub const DEFAULT_POOL_SIZE: u32 = 16;

    /// Connects to `url` (`postgres://user@host:port/db`) with the default pool size.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_pool_size(url, Self::DEFAULT_POOL_SIZE).await
    }

    /// Connects to `url` with a pool of at most `max_connections` connections.
    pub async fn connect_with_pool_size(url: &str, max_connections: u32) -> StoreResult<Self> {
        // No ping before handing out a connection: it would double the round trips of every
        // statement. A connection the server dropped fails its next statement and leaves the pool.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
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

    /// Forwards the `NOTIFY`s that activations, deactivations and deletions send on commit. When
    /// the listening connection drops, it says `All` (changes may have been missed) and
    /// reconnects.
    async fn watch_model_changes(&self) -> StoreResult<mpsc::Receiver<ModelChange>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(MODEL_CHANGES_CHANNEL).await?;
        let (sender, receiver) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let change = match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        ModelChange::Entity(notification.payload().to_owned())
                    }
                    Ok(None) => ModelChange::All,
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the model-change listener; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        ModelChange::All
                    }
                };
                if sender.send(change).await.is_err() {
                    return;
                }
            }
        });
        Ok(receiver)
    }
}

metaengine_store::impl_sqlx_store!(
    PostgresStore,
    Postgres,
    Backend::Postgres,
    Dialect::Postgres,
    MIGRATOR
);
