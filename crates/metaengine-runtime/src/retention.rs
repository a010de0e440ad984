//! Audit retention (SPEC §16): the background purge of audit rows older than
//! `audit_retention_days`, at start and then hourly. Each purge deletes a tenant's oldest rows
//! and leaves one `audit.purge` checkpoint from which the rest of its chain verifies; several
//! instances may purge at once (each tenant's purge runs under its chain's lock, and a second
//! one finds nothing left to delete).

use std::sync::Arc;
use std::time::Duration;

use metaengine_store::{Store, Timestamp};
use tokio::task::JoinHandle;

/// Time between two purges.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The time before which rows are purged when they are kept `days` days; `None` for 0 (keep
/// everything).
pub fn cutoff(days: u32) -> Option<Timestamp> {
    (days > 0).then(|| Timestamp::from(chrono::Utc::now() - chrono::Duration::days(days.into())))
}

/// Starts the hourly purge (none when `days` is 0). Abort the handle to stop it.
pub fn spawn(store: Arc<dyn Store>, days: u32) -> Option<JoinHandle<()>> {
    cutoff(days)?;
    Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(before) = cutoff(days) else { return };
            match store.purge_audit(before).await {
                Ok(done) if done.rows > 0 => tracing::info!(
                    rows = done.rows,
                    tenants = done.tenants,
                    days,
                    "purged audit rows past their retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the audit retention purge failed"),
            }
        }
    }))
}
