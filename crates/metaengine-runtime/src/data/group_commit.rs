//! Group commit of single creates (issue 19). A create over `POST /api/data/{entity}` is its own
//! transaction: the record, its change row (the capture trigger), its sealed audit row, a
//! commit. With many in flight, most of a create's database time went to what every statement
//! and every commit pays once (executor start-up, the trigger's call, the commit's WAL flush),
//! and SQLite wrote them one at a time behind its single writer. So creates that arrive while
//! earlier ones are being written wait for them and are then written together, the way a batch
//! is (`Store::write_batch`: multi-row inserts in one transaction), each with its own audit rows,
//! exactly those it would have written alone:
//!
//! - a create that finds fewer than [`writers`] groups in flight starts one at once: on an idle
//!   server nothing waits, and a group of one is written by `Store::insert_record` as before;
//! - each create's answer comes when its group has committed: a 201 still means stored;
//! - a group that fails (a unique value taken by one of its creates, a lost connection) is
//!   written again one create at a time, so every create gets the answer it would have got
//!   alone: one create's error never fails another;
//! - groups are written by their own tasks, so a client that goes away while its create waits
//!   stops nobody else's write.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metaengine_store::{
    Backend, BatchOutcome, BatchWrite, NewAudit, Store, StoreError, StoreResult,
};
use tokio::sync::oneshot;

use super::Prepared;
use crate::actor::Actor;

/// Most creates written in one group (as a batch of 100 writes them).
const MAX_GROUP: usize = 100;

/// Groups written at once: PostgreSQL writes several transactions side by side; SQLite has one
/// writer, so a second group would only wait for the first, and take creates from it.
fn writers(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 4,
        Backend::Sqlite => 1,
    }
}

/// The creates waiting for a group, and the groups being written (clones share them).
#[derive(Clone)]
pub(crate) struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    writers: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Waiting>,
    /// Groups being written (tasks running [`Inner::drain`]).
    writing: usize,
}

/// A create waiting for its group.
struct Waiting {
    prepared: Prepared,
    actor: Actor,
    answer: oneshot::Sender<StoreResult<String>>,
}

impl GroupCommit {
    /// Group commit over `store`.
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                writers: writers(store.backend()),
                store,
                state: Mutex::default(),
            }),
        }
    }

    /// Writes a prepared create and its audit rows (alone, or in a group with others); the
    /// record's JSON text, as `Store::insert_record` returns it.
    pub(crate) async fn insert(&self, prepared: Prepared, actor: Actor) -> StoreResult<String> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut state = self.inner.lock();
            state.waiting.push(Waiting {
                prepared,
                actor,
                answer,
            });
            state.take_writer(self.inner.writers)
        };
        if start {
            tokio::spawn(self.inner.clone().drain());
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Database(
                "the write of this record stopped before it answered".into(),
            ))
        })
    }
}

impl State {
    /// Whether a new group writer may start (and then counts it): creates wait, and fewer
    /// than `writers` are running.
    fn take_writer(&mut self, writers: usize) -> bool {
        let start = !self.waiting.is_empty() && self.writing < writers;
        if start {
            self.writing += 1;
        }
        start
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes groups until no create waits. The writer leaves under the same lock that saw no
    /// create waiting, so a create that comes meanwhile finds a place to start one.
    async fn drain(self: Arc<Self>) {
        let mut writing = Writing {
            inner: self.clone(),
            ended: false,
        };
        loop {
            let group = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.writing -= 1;
                    writing.ended = true;
                    return;
                }
                let take = state.waiting.len().min(MAX_GROUP);
                state.waiting.drain(..take).collect::<Vec<_>>()
            };
            self.write(group).await;
        }
    }

    /// Writes one group and answers each of its creates.
    async fn write(&self, mut group: Vec<Waiting>) {
        if group.len() == 1 {
            if let Some(one) = group.pop() {
                let answer = self.insert_one(&one, &one.prepared.audits).await;
                let _ = one.answer.send(answer);
            }
            return;
        }
        // Runs of one entity, tenant, realm and user become multi-row inserts.
        group.sort_by(|a, b| a.key().cmp(&b.key()));
        let mut audits: Vec<NewAudit> = Vec::with_capacity(group.len());
        let mut spans = Vec::with_capacity(group.len());
        for w in &mut group {
            let from = audits.len();
            audits.append(&mut w.prepared.audits);
            spans.push(from..audits.len());
        }
        let writes: Vec<BatchWrite<'_>> = group
            .iter()
            .map(|w| BatchWrite::Insert {
                model: &w.prepared.model.model,
                write: w.prepared.write(&w.actor),
            })
            .collect();
        let written = self.store.write_batch(&writes, &audits).await;
        drop(writes);
        match written {
            Ok(BatchOutcome::Written(records)) if records.len() == group.len() => {
                for (w, record) in group.into_iter().zip(records) {
                    let _ = w.answer.send(Ok(record));
                }
            }
            // One of them failed, or the database did: each alone, for its own answer.
            _ => {
                for (w, span) in group.into_iter().zip(spans) {
                    let answer = self
                        .insert_one(&w, audits.get(span).unwrap_or_default())
                        .await;
                    let _ = w.answer.send(answer);
                }
            }
        }
    }

    /// Writes one create alone, with `audits` (its own).
    async fn insert_one(&self, w: &Waiting, audits: &[NewAudit]) -> StoreResult<String> {
        self.store
            .insert_record(&w.prepared.model.model, w.prepared.write(&w.actor), audits)
            .await
    }
}

impl Waiting {
    /// What a run of one multi-row insert shares.
    fn key(&self) -> (&str, &str, &str, &str) {
        (
            self.prepared.model.model.table_name.as_str(),
            self.actor.tenant_id.as_str(),
            self.actor.realm_id.as_str(),
            self.actor.user_id.as_str(),
        )
    }
}

/// A group writer's place among the running ones. A writer that ends normally gives it back
/// itself ([`Inner::drain`]); one that panics gives it back here, and starts another writer for
/// the creates that wait.
struct Writing {
    inner: Arc<Inner>,
    ended: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let restart = {
            let mut state = self.inner.lock();
            state.writing -= 1;
            state.take_writer(self.inner.writers)
        };
        if restart && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.inner.clone().drain());
        }
    }
}
