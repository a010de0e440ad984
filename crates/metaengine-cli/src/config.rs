//! Opening the database the command line points at.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use metaengine_server::auth::load_or_create_audit_key;
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
    let key = audit_key(global.audit_key.as_deref(), &global.data_dir())?;
    open_store_at(&database_url(global), None, migrate, &key).await
}

/// The audit key in force (SPEC §16): the one given, else the data directory's `audit-key` file
/// (created on first use).
pub fn audit_key(given: Option<&str>, data_dir: &Path) -> anyhow::Result<String> {
    match given.filter(|key| !key.is_empty()) {
        Some(key) => Ok(key.to_owned()),
        None => load_or_create_audit_key(data_dir)
            .map(|(key, _)| key)
            .with_context(|| {
                format!(
                    "cannot read or create the audit key in {} (or set METAENGINE_AUDIT_KEY)",
                    data_dir.display()
                )
            }),
    }
}

/// Connects to the store `url` names, with a pool of `pool_size` connections (the store's
/// default when `None`) and the audit key `audit_key`, and applies pending migrations when
/// `migrate`.
pub async fn open_store_at(
    url: &str,
    pool_size: Option<u32>,
    migrate: bool,
    audit_key: &str,
) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let size = pool_size.unwrap_or(SqliteStore::DEFAULT_POOL_SIZE);
        Arc::new(
            SqliteStore::connect_with_pool_size(url, size)
                .await
                .with_context(|| format!("cannot open the SQLite database `{url}`"))?
                .with_audit_key(audit_key.as_bytes()),
        )
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let size = pool_size.unwrap_or(PostgresStore::DEFAULT_POOL_SIZE);
        Arc::new(
            PostgresStore::connect_with_pool_size(url, size)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at `{}`", redact(url)))?
                .with_audit_key(audit_key.as_bytes()),
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
