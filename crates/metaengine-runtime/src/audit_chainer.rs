//! The audit chainer (SPEC §16): appends the audit rows that requests' transactions wrote sealed
//! to their tenants' hash chains, shortly after they commit, in batches. A tenant's writes thus
//! never wait for each other's commits on its chain (see `metaengine_store::chain`).
//!
//! It wakes when the store has written sealed rows, waits [`GATHER`] for more (and for their
//! commit), and chains those rows, looked up by their ids (`Store::chain_written_audit`). Every
//! [`SWEEP_EVERY`] it chains every row without a position sealed [`LEFT_TO_QUICK_PASS`] ago or
//! earlier instead (`Store::chain_audit_older_than`): rows written by other instances or command
//! lines on the same database, or left by a process that stopped before chaining them. Several
//! instances may chain at once: the store lets one pass at a time run per database.
//!
//! Chaining a row updates it and takes its id off the list of rows waiting for the chainer,
//! which on PostgreSQL leaves a dead version of each behind (the update's is usually removed by
//! the page itself: no indexed column changes, so the update is HOT); with autovacuum off (or
//! late) the waiting list, and the table, would only grow. So every [`VACUUM_CHECK_EVERY`] rows
//! it chains, the chainer vacuums the waiting list (a few thousand dead rows, a millisecond or
//! two), reads the table's dead versions from the database's statistics and vacuums it, by
//! autovacuum's rule, when they exceed `50 + 20 %` of its rows (`Vacuum`).

use std::sync::Arc;
use std::time::Duration;

use metaengine_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long the chainer lets sealed rows gather after a wake-up.
pub const GATHER: Duration = Duration::from_millis(5);

/// Time between two full passes.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The rows sealed this recently are left out of the full pass: the quick pass chains those
/// this process wrote without reading them back (under load the full pass otherwise took a third
/// of them, at several times the cost).
pub const LEFT_TO_QUICK_PASS: Duration = Duration::from_secs(2);

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
            let mut sweep_at = tokio::time::Instant::now();
            let mut vacuum = Vacuum::default();
            loop {
                let now = tokio::time::Instant::now();
                let chained = if now >= sweep_at {
                    sweep_at = now + SWEEP_EVERY;
                    pass(store.chain_audit_older_than(LEFT_TO_QUICK_PASS)).await
                } else {
                    pass(store.chain_written_audit()).await
                };
                vacuum.chained(store.as_ref(), chained).await;
                tokio::select! {
                    () = store.wait_for_sealed_audit() => {}
                    () = tokio::time::sleep_until(sweep_at) => {}
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
        pass(store.chain_audit()).await;
    }
}

/// One pass; how many rows it chained. A failure is logged (the next pass retries: the rows stay
/// sealed until then).
async fn pass(
    chained: impl std::future::Future<Output = metaengine_store::StoreResult<u64>>,
) -> u64 {
    match chained.await {
        Ok(rows) => {
            if rows > 0 {
                tracing::trace!(rows, "chained audit rows");
            }
            rows
        }
        Err(e) => {
            tracing::warn!(error = %e, "the audit chainer's pass failed; it will retry");
            0
        }
    }
}

/// Rows chained between two looks at the audit table's dead versions.
pub const VACUUM_CHECK_EVERY: u64 = 2_000;

/// When the chainer vacuums the audit table (see the module documentation).
#[derive(Debug, Default)]
struct Vacuum {
    /// Rows chained since the last look.
    since: u64,
    /// The database keeps no dead versions (SQLite).
    never: bool,
}

impl Vacuum {
    /// Notes `chained` rows; every [`VACUUM_CHECK_EVERY`], vacuums if due. A failure is logged.
    async fn chained(&mut self, store: &dyn Store, chained: u64) {
        self.since += chained;
        if self.never || self.since < VACUUM_CHECK_EVERY {
            return;
        }
        self.since = 0;
        if let Err(e) = store.vacuum_audit_pending().await {
            tracing::warn!(error = %e, "vacuuming the audit rows' waiting list failed");
        }
        let due = match store.audit_dead_rows().await {
            Ok(Some((dead, live))) => metaengine_store::vacuum_due(dead, live),
            Ok(None) => {
                self.never = true;
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the audit table's statistics failed");
                false
            }
        };
        if due && let Err(e) = store.vacuum_audit().await {
            tracing::warn!(error = %e, "vacuuming the audit table failed");
        }
    }
}
