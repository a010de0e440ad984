//! Opening the database the command line points at.

use std::sync::Arc;

use anyhow::{Context, bail};
use metaengine_store::Store;
use metaengine_store_postgres::PostgresStore;
use metaengine_store_sqlite::SqliteStore;

use crate::cli::GlobalArgs;

/// The database URL in force: the flag or variable, else a SQLite file in the data directory.
pub fn database_url(global: &GlobalArgs) -> String {
    match &global.database_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}",
            global.data_dir().join("metaengine.db").display()
        ),
    }
}

/// Connects to the store the URL's scheme names and applies pending migrations unless told not to.
pub async fn open_store(global: &GlobalArgs, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    open_store_at(&database_url(global), None, migrate).await
}

/// Connects to the store `url` names, with a pool of `pool_size` connections (the store's
/// default when `None`), and applies pending migrations when `migrate`.
pub async fn open_store_at(
    url: &str,
    pool_size: Option<u32>,
    migrate: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let size = pool_size.unwrap_or(SqliteStore::DEFAULT_POOL_SIZE);
        Arc::new(
            SqliteStore::connect_with_pool_size(url, size)
                .await
                .with_context(|| format!("cannot open the SQLite database `{url}`"))?,
        )
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let size = pool_size.unwrap_or(PostgresStore::DEFAULT_POOL_SIZE);
        Arc::new(
            PostgresStore::connect_with_pool_size(url, size)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at `{}`", redact(url)))?,
        )
    } else {
        bail!(
            "unsupported database URL `{}`: use sqlite://… or postgres://…",
            redact(url)
        );
    };
    if migrate {
        store
            .migrate()
            .await
            .context("cannot apply the engine's migrations")?;
    }
    Ok(store)
}

pub use metaengine_server::config::redact_url as redact;
