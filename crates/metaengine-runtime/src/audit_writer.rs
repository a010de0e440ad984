//! The batched audit writer: events that need not share a transaction with a change (data reads,
//! read-path policy decisions) are queued and written in batches, at least every
//! `flush_interval` (200 ms by default) and on shutdown, so a read costs no extra round trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metaengine_store::{NewAudit, Store};
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
            max_batch: 512,
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

/// Writes a batch, retrying once after a pause; a batch that still fails is logged and dropped
/// so that one bad moment of the database does not stall the queue forever.
async fn write(store: &dyn Store, batch: &mut Vec<NewAudit>, depth: &AtomicUsize) {
    if batch.is_empty() {
        return;
    }
    let mut result = store.append_audit(batch).await;
    if result.is_err() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        result = store.append_audit(batch).await;
    }
    if let Err(e) = result {
        tracing::error!(error = ?e, lost = batch.len(), "could not write audit events");
    }
    depth.fetch_sub(batch.len(), Ordering::Relaxed);
    batch.clear();
}
