//! SQLite backend of the metaengine [`Store`](metaengine_store::Store), the embedded default, so
//! that `metaengine serve` runs on a fresh machine with nothing else installed: how to open a
//! [`SqlStore`] on a SQLite file, and the engine's migrations for it. The store's implementation
//! is `metaengine-store-sql`'s, shared with PostgreSQL.
//!
//! Key decision: writers are serialized with `BEGIN IMMEDIATE` (SQLite has one writer at a time;
//! taking the write lock up front avoids the deadlock-prone read-to-write upgrade of a deferred
//! transaction), and the file runs in WAL mode so readers never wait for the writer.
#![deny(missing_docs)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use metaengine_store::{StoreError, StoreResult};
use metaengine_store_sql::{Pool, SqlStore};
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The engine's migrations for SQLite, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens [`SqlStore`]s on SQLite.
#[derive(Debug, Clone, Copy)]
pub struct SqliteStore;

fn database(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database(Box::new(e))
}

impl SqliteStore {
    /// Connections of the pool [`SqliteStore::connect`] opens (one for an in-memory database).
    pub const DEFAULT_POOL_SIZE: u32 = 8;

    /// Opens (creating if missing, with its parent directory) the database at `url`
    /// (`sqlite://path/to/file.db` or `sqlite::memory:`) with the default pool size.
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        Self::connect_with_pool_size(url, Self::DEFAULT_POOL_SIZE).await
    }

    /// Opens the database at `url` with a pool of at most `max_connections` connections.
    pub async fn connect_with_pool_size(url: &str, max_connections: u32) -> StoreResult<SqlStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(database)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            // Reads through a memory map instead of a `pread` copy per page, and 16 MiB of
            // page cache per connection instead of 2: writing a million chained audit rows
            // spent 43 % of its time copying pages in the kernel (docs/performance.md).
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384")
            .collation(
                metaengine_sql::SQLITE_DECIMAL_COLLATION,
                metaengine_sql::decimal_text_order,
            );
        let in_memory = options.get_filename() == Path::new(":memory:");
        if let Some(dir) = options.get_filename().parent()
            && !in_memory
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(database)?;
        }
        // An in-memory database exists once per connection: keep exactly one.
        let max = if in_memory { 1 } else { max_connections.max(1) };
        // No ping before handing out a connection (sqlx's default pings on every acquire): the
        // database is in this process, and each ping is a round trip to the connection's worker
        // thread, about a fifth of a get's CPU.
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(database)?;
        Self::from_pool(pool)
    }

    /// A store on an existing pool: its statements run on connections like the pool's (same
    /// options and size; for an in-memory database, a database of their own). Its connections
    /// must register the
    /// [`decimal` collation](metaengine_sql::SQLITE_DECIMAL_COLLATION), as
    /// [`SqliteStore::connect`]'s do: statements that compare decimal columns use it.
    pub fn from_pool(pool: SqlitePool) -> StoreResult<SqlStore> {
        Ok(SqlStore::new(Pool::sqlite(pool)?, &MIGRATOR))
    }
}
