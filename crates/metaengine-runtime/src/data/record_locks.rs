//! Last-writer-wins without `If-Match` (issue 12, item 20): an update or delete is conditional on
//! the row version its policy decision was taken on, so two unconditional writes of one record
//! that race make one of them miss. The loser is not the client's fault: it reads the record
//! again, decides again and writes again, one at a time per record within this process (a
//! striped lock, so racing writers queue instead of spinning), a bounded number of times (other
//! processes may still race it).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

/// Lock stripes: records hash onto one; two records share a stripe rarely and only wait briefly.
const STRIPES: usize = 256;

/// Attempts of an unconditional write, the first included, before it answers a conflict.
const ATTEMPTS: usize = 16;

/// How one attempt of a conditional write ended.
pub(crate) enum Attempt<T, E> {
    /// It was written.
    Written(T),
    /// Another writer changed the record between the read and the write; the error is the
    /// answer when no attempt is left (or the client's own `If-Match` is what failed).
    Lost(E),
}

/// The striped per-record write locks of one data service (clones share them).
#[derive(Clone)]
pub(crate) struct RecordLocks {
    stripes: Arc<[Mutex<()>]>,
}

impl RecordLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for the stripe of the record `id` of `entity` in `tenant`.
    pub(crate) async fn lock(&self, tenant: &str, entity: &str, id: &str) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (tenant, entity, id).hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0);
        #[expect(
            clippy::indexing_slicing,
            reason = "`stripe` is a remainder of STRIPES, the length of `stripes`"
        )]
        self.stripes[stripe].lock().await
    }

    /// Runs `attempt` (read, decide, write conditionally on the version read) until it writes.
    /// A client's `If-Match` (`conditional`) gets one attempt: losing is its answer. Otherwise a
    /// lost race is retried, holding the record's stripe from the first loss on so this
    /// process's writers of the record take turns, at most [`ATTEMPTS`] times in all.
    pub(crate) async fn write<T, E, F>(
        &self,
        (tenant, entity, id): (&str, &str, &str),
        conditional: bool,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<Attempt<T, E>, E>>,
    {
        let mut turn = None;
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await? {
                Attempt::Written(done) => return Ok(done),
                Attempt::Lost(e) if conditional || tries >= ATTEMPTS => return Err(e),
                Attempt::Lost(_) => {}
            }
            if turn.is_none() {
                turn = Some(self.lock(tenant, entity, id).await);
            }
        }
    }
}
