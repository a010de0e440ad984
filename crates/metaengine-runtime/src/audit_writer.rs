//! The batched audit writer: events that need not share a transaction with a change (data reads,
//! read-path policy decisions) are queued and written in batches, at least every
//! `flush_interval` (200 ms by default) and on shutdown, so a read costs no extra round trip; the
//! reads of one user on one entity in a batch share one row ([`coalesce_reads`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metaengine_store::{AuditResult, EventType, NewAudit, Store};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Settings of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditWriterConfig {
    /// Longest time an event waits in the queue.
    pub flush_interval: Duration,
    /// Most events written in one batch.
    pub max_batch: usize,
    /// Queue capacity; when full, `record` waits (back-pressure) rather than dropping events.
    pub capacity: usize,
}

impl Default for AuditWriterConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_millis(200),
            max_batch: 4_096,
            capacity: 16_384,
        }
    }
}

enum Message {
    Event(Box<NewAudit>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the background writer; clones share one queue.
#[derive(Clone)]
pub struct AuditWriter {
    sender: mpsc::Sender<Message>,
    depth: Arc<AtomicUsize>,
    task: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("depth", &self.depth())
            .finish()
    }
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Store>, config: AuditWriterConfig) -> Self {
        let (sender, receiver) = mpsc::channel(config.capacity.max(1));
        let depth = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(store, config, receiver, depth.clone()));
        Self {
            sender,
            depth,
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        }
    }

    /// Queues an event; waits only when the queue is full.
    pub async fn record(&self, event: NewAudit) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        if self
            .sender
            .send(Message::Event(Box::new(event)))
            .await
            .is_err()
        {
            self.depth.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("the audit writer has stopped; an audit event was lost");
        }
    }

    /// Events queued and not yet written (for `/metrics`).
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Returns once every event queued before the call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes what is queued and stops the task (graceful shutdown).
    pub async fn shutdown(&self) {
        self.flush().await;
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    config: AuditWriterConfig,
    mut receiver: mpsc::Receiver<Message>,
    depth: Arc<AtomicUsize>,
) {
    let mut batch: Vec<NewAudit> = Vec::with_capacity(config.max_batch);
    let mut tick = tokio::time::interval(config.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = receiver.recv() => match message {
                Some(Message::Event(event)) => {
                    batch.push(*event);
                    if batch.len() >= config.max_batch {
                        write(store.as_ref(), &mut batch, &depth).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    write(store.as_ref(), &mut batch, &depth).await;
                    let _ = done.send(());
                }
                None => {
                    write(store.as_ref(), &mut batch, &depth).await;
                    return;
                }
            },
            _ = tick.tick() => write(store.as_ref(), &mut batch, &depth).await,
        }
    }
}

/// Writes a batch, retrying once after a pause; a batch that still fails is written row by row,
/// so that one row the database refuses loses only itself, and the rows that still fail are
/// logged and dropped so that one bad moment of the database does not stall the queue forever.
async fn write(store: &dyn Store, batch: &mut Vec<NewAudit>, depth: &AtomicUsize) {
    if batch.is_empty() {
        return;
    }
    let queued = batch.len();
    let rows = coalesce_reads(std::mem::take(batch));
    let mut result = store.append_audit(&rows).await;
    if result.is_err() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        result = store.append_audit(&rows).await;
    }
    if let Err(e) = result {
        let mut lost = 0;
        for row in &rows {
            if store.append_audit(std::slice::from_ref(row)).await.is_err() {
                lost += 1;
            }
        }
        if lost > 0 {
            tracing::error!(error = ?e, lost, of = rows.len(), "could not write audit rows");
        }
    }
    depth.fetch_sub(queued, Ordering::Relaxed);
}

/// Merges the successful `data.read` events of one user (tenant, realm) on one entity within a
/// batch into one row whose details are `{ "count": n, "reads": [<each read's details>] }`.
/// Every read stays recorded, in order, at a fraction of the rows: at thousands of reads per
/// second, one row (and six index entries) per read would cost the database more than the reads.
/// A batch spans at most one flush interval, so the row's time is within 200 ms of each read.
pub fn coalesce_reads(batch: Vec<NewAudit>) -> Vec<NewAudit> {
    use std::collections::HashMap;
    // Rows in order; a merged row keeps the details of each of its reads aside until the end.
    let mut rows: Vec<(NewAudit, Vec<Value>)> = Vec::with_capacity(batch.len());
    // (user, tenant, realm, resource) -> index in `rows` of the merged row.
    let mut merged: HashMap<(String, String, String, String), usize> = HashMap::new();
    for mut event in batch {
        if event.event_type != EventType::DataRead || event.result != AuditResult::Success {
            rows.push((event, Vec::new()));
            continue;
        }
        let key = (
            event.actor.user_id.clone(),
            event.actor.tenant_id.clone(),
            event.actor.realm_id.clone(),
            event.resource.clone(),
        );
        let details = event.details.take().unwrap_or(Value::Null);
        match merged.get(&key).and_then(|&at| rows.get_mut(at)) {
            Some((_, merged_details)) => merged_details.push(details),
            None => {
                merged.insert(key, rows.len());
                rows.push((event, vec![details]));
            }
        }
    }
    rows.into_iter()
        .map(|(mut event, mut reads)| {
            if event.event_type == EventType::DataRead && event.result == AuditResult::Success {
                event.details = if reads.len() == 1 {
                    reads.pop().filter(|d| !d.is_null())
                } else {
                    let mut map = serde_json::Map::new();
                    map.insert("count".into(), Value::from(reads.len()));
                    map.insert("reads".into(), Value::Array(reads));
                    Some(Value::Object(map))
                };
            }
            event
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaengine_store::AuditActor;
    use serde_json::json;

    fn event(kind: EventType, user: &str, resource: &str, n: u64) -> NewAudit {
        let actor = AuditActor {
            user_id: user.into(),
            tenant_id: "t".into(),
            realm_id: "r".into(),
        };
        NewAudit::success(kind, &actor, resource, Some(json!({ "id": n })))
    }

    #[test]
    fn reads_of_one_user_on_one_entity_share_a_row() {
        let batch = vec![
            event(EventType::DataRead, "ann", "Invoice", 1),
            event(EventType::DataCreate, "ann", "Invoice", 2),
            event(EventType::DataRead, "bob", "Invoice", 3),
            event(EventType::DataRead, "ann", "Invoice", 4),
            event(EventType::DataRead, "ann", "Order", 5),
            event(EventType::DataRead, "ann", "Invoice", 6),
        ];
        let rows = coalesce_reads(batch);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0].details,
            Some(json!({ "count": 3, "reads": [{ "id": 1 }, { "id": 4 }, { "id": 6 }] }))
        );
        assert_eq!(rows[1].event_type, EventType::DataCreate);
        assert_eq!(rows[2].details, Some(json!({ "id": 3 })));
        assert_eq!(rows[3].resource, "Order");
    }

    #[test]
    fn failures_are_never_merged() {
        let denied = event(EventType::DataRead, "ann", "Invoice", 1).into_failure("no".into());
        let rows = coalesce_reads(vec![denied.clone(), denied]);
        assert_eq!(rows.len(), 2);
    }
}
