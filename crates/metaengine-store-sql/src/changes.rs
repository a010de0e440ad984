//! How a change to an entity's active model (an activation, a deactivation, a deletion) made by
//! one process reaches the others: PostgreSQL's `LISTEN`/`NOTIFY`, sent in the change's own
//! transaction; SQLite has no notifications, so the entities' table is polled.

use std::collections::HashMap;
use std::time::Duration;

use metaengine_store::{ModelChange, StoreResult};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;

use crate::db::{Bind, Db, Pool, Tx, database, query};
use crate::meta_sql::{MODEL_CHANGES_CHANNEL, MetaSql};

/// How often SQLite is polled for model changes made by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Tells other processes that `entity`'s active model changed, when the transaction commits
/// (PostgreSQL; a no-op on SQLite, whose watchers poll).
pub(crate) async fn notify(tx: &mut Tx, sql: &MetaSql, entity: &str) -> StoreResult<()> {
    if let Some(notify) = &sql.notify_model_change {
        tx.execute(&query(notify).bind(Bind::Text(entity))).await?;
    }
    Ok(())
}

/// The model changes other processes make, as they happen.
pub(crate) async fn watch(pool: &Pool) -> StoreResult<mpsc::Receiver<ModelChange>> {
    match pool.db() {
        Db::Postgres(p) => listen(p).await,
        Db::Sqlite(..) => poll(pool.clone()).await,
    }
}

/// Forwards the `NOTIFY`s that activations, deactivations and deletions send on commit. When the
/// listening connection drops, it says `All` (changes may have been missed) and reconnects.
async fn listen(pool: &PgPool) -> StoreResult<mpsc::Receiver<ModelChange>> {
    let mut listener = PgListener::connect_with(pool).await.map_err(database)?;
    listener
        .listen(MODEL_CHANGES_CHANNEL)
        .await
        .map_err(database)?;
    let (sender, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let change = match listener.try_recv().await {
                Ok(Some(notification)) => ModelChange::Entity(notification.payload().to_owned()),
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

/// Polls the entities' active versions (a tiny table) and reports what changed, so that a
/// server sees activations made by the command line.
async fn poll(pool: Pool) -> StoreResult<mpsc::Receiver<ModelChange>> {
    let mut seen = active_versions(&pool).await?;
    let (sender, receiver) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        loop {
            tick.tick().await;
            if sender.is_closed() {
                return;
            }
            let now = match active_versions(&pool).await {
                Ok(now) => now,
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

/// Each entity's active version and last change, as `version@updated_at` (not counted as a
/// statement of the pool: the poll runs in the background).
async fn active_versions(pool: &Pool) -> StoreResult<HashMap<String, String>> {
    const QUERY: &str = "SELECT name, coalesce(active_version, '') || '@' || updated_at \
                         FROM meta_entities";
    let rows = pool.acquire().await?.fetch_all(&query(QUERY)).await?;
    rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?))).collect()
}
