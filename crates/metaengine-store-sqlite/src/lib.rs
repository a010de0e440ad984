//! SQLite backend of the metaengine [`Store`](metaengine_store::Store): the embedded default, so
//! `metaengine serve` runs on a fresh machine with nothing else installed.
//!
//! Key decision: writers are serialized with `BEGIN IMMEDIATE` (SQLite has one writer at a time;
//! taking the write lock up front avoids the deadlock-prone read-to-write upgrade of a deferred
//! transaction), and the file runs in WAL mode so readers never wait for the writer.
#![deny(missing_docs)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use std::collections::HashMap;

use metaengine_sql::Dialect;
use metaengine_store::sql::MetaSql;
use metaengine_store::{Backend, ModelChange, StoreError, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::mpsc;

/// The engine's migrations for SQLite, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A [`Store`](metaengine_store::Store) on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    sql: MetaSql,
}

impl SqliteStore {
    /// Connections of the pool [`SqliteStore::connect`] opens (one for an in-memory database).
    pub const DEFAULT_POOL_SIZE: u32 = 8;

    /// Opens (creating if missing, with its parent directory) the database at `url`
    /// (`sqlite://path/to/file.db` or `sqlite::memory:`) with the default pool size.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_pool_size(url, Self::DEFAULT_POOL_SIZE).await
    }

    /// Opens the database at `url` with a pool of at most `max_connections` connections.
    pub async fn connect_with_pool_size(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .collation(
                metaengine_sql::SQLITE_DECIMAL_COLLATION,
                metaengine_sql::decimal_text_order,
            );
        let in_memory = options.get_filename() == Path::new(":memory:");
        if let Some(dir) = options.get_filename().parent()
            && !in_memory
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.into()))?;
        }
        // An in-memory database exists once per connection: keep exactly one.
        let max = if in_memory { 1 } else { max_connections.max(1) };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool. Its connections must register the
    /// [`decimal` collation](metaengine_sql::SQLITE_DECIMAL_COLLATION), as
    /// [`SqliteStore::connect`]'s do: statements that compare decimal columns use it.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            sql: MetaSql::sqlite(),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction holding SQLite's write lock from its first statement.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// SQLite has no notifications: polls the entities' active versions (a tiny table) and
    /// reports what changed, so a server sees activations made by the command line.
    async fn watch_model_changes(&self) -> StoreResult<mpsc::Receiver<ModelChange>> {
        const QUERY: &str = "SELECT name, coalesce(active_version, '') || '@' || updated_at \
                             FROM meta_entities";
        let pool = self.pool.clone();
        let mut seen: HashMap<String, String> = sqlx::query_as(QUERY)
            .fetch_all(&pool)
            .await?
            .into_iter()
            .collect();
        let (sender, receiver) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            loop {
                tick.tick().await;
                if sender.is_closed() {
                    return;
                }
                let now: HashMap<String, String> =
                    match sqlx::query_as(QUERY).fetch_all(&pool).await {
                        Ok(rows) => rows.into_iter().collect(),
                        Err(e) => {
                            tracing::warn!(error = %e, "polling for model changes failed");
                            continue;
                        }
                    };
                let changed: Vec<String> = now
                    .iter()
                    .filter(|(name, state)| seen.get(*name) != Some(*state))
                    .map(|(name, _)| name.clone())
                    .chain(seen.keys().filter(|name| !now.contains_key(*name)).cloned())
                    .collect();
                seen = now;
                for name in changed {
                    if sender.send(ModelChange::Entity(name)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(receiver)
    }
}

/// How often SQLite is polled for model changes made by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

metaengine_store::impl_sqlx_store!(
    SqliteStore,
    Sqlite,
    Backend::Sqlite,
    Dialect::Sqlite,
    MIGRATOR
);
