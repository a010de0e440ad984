//! The audit chainer (SPEC §16): appends the audit rows that requests' transactions wrote sealed
//! to their tenants' hash chains, shortly after they commit, in batches. A tenant's writes thus
//! never wait for each other's commits on its chain (see `metaengine_store::chain`).
//!
//! It wakes when the store has written sealed rows, waits [`GATHER`] for more (and for their
//! commit), and chains what has committed; it also runs every [`POLL_EVERY`], for rows written by
//! other instances or command lines on the same database. Several instances may chain at once:
//! the store lets one pass at a time run per database.

use std::sync::Arc;
use std::time::Duration;

use metaengine_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the chainer lets sealed rows gather after a wake-up.
pub const GATHER: Duration = Duration::from_millis(5);

/// Time between two passes when nothing wakes the chainer.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The running chainer.
#[derive(Debug)]
pub struct AuditChainer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AuditChainer {
    /// Starts chaining `store`'s sealed audit rows in the background.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                pass(store.as_ref()).await;
                tokio::select! {
                    () = store.wait_for_sealed_audit() => {}
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    _ = stopped.changed() => return,
                }
                tokio::time::sleep(GATHER).await;
            }
        });
        Self { stop, task }
    }

    /// Stops the background task, then chains what is left (shutdown).
    pub async fn shutdown(self, store: &dyn Store) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the audit chainer stopped abnormally");
        }
        pass(store).await;
    }
}

/// One pass; a failure is logged (the next pass retries: the rows stay sealed until then).
async fn pass(store: &dyn Store) {
    match store.chain_audit().await {
        Ok(rows) if rows > 0 => tracing::trace!(rows, "chained audit rows"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the audit chainer's pass failed; it will retry"),
    }
}
