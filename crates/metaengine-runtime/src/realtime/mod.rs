//! The realtime change feed (SPEC §14): subscribers get the creates, updates and deletes of the
//! records they may read, in commit order, resumable by event id.
//!
//! How it works:
//! - The database records every change in the change log, in the writing transaction (see
//!   `metaengine_sql::query`'s change capture): the log is the truth, events are read from it.
//! - One **feed** task per process reads the log after its position (in commit order, see the
//!   store's `change_log`), once per change whatever the number of subscribers, and decides each
//!   change against each subscriber of the change's tenant and realm in memory: the
//!   subscriber's read policies and filters as one [`Predicate`], evaluated with the semantics
//!   of the SQL row filter on the record before and after the change (`event.rs`).
//! - The feed wakes when this process wrote ([`ChangeSignal`], told by the data service after
//!   each commit), when another process announces changes (PostgreSQL `NOTIFY`, sent by a feed
//!   woken locally), and every `poll_interval` in any case (a write by a process that died
//!   before announcing, the command line on SQLite).
//! - A subscriber has a bounded buffer. A subscriber that lets it fill is dropped with a
//!   `reset`: it never holds the feed or the writers back.
//! - **Resume**: a subscriber with a `Last-Event-ID` is registered at the feed's position `P`,
//!   then replays its changes after its id up to `P` from the log, then gets live events (all
//!   after `P`): nothing lost, nothing twice. An id older than retention gets `reset` first.
//! - A maintenance tick closes the streams of suspended tenants and of entities whose active
//!   version changed (the client reconnects with its last id and gets the new rules), and
//!   purges changes older than `retention`.

mod event;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use metaengine_core::policy::Predicate;
use metaengine_sql::query::Scope;
use metaengine_store::{Store, Timestamp};
use tokio::sync::{Notify, mpsc};

pub use event::{Delivery, Event};

use crate::actor::Actor;
use crate::cache::{ActiveModel, ModelCache};
use crate::data::{DataError, DataResult, DataService, FilterParam};
use crate::tenants::TenantService;
use event::Change;

/// Changes read from the log at once.
const READ_BATCH: u32 = 500;

/// The shortest time between two rounds of the feed: a bound on the statements the feed adds
/// to a stream of writes (at most 200 rounds per second), for at most this much delay.
const FEED_SPACING: Duration = Duration::from_millis(5);

/// The shortest time between two rounds of the feed while this process has no subscriber: it
/// then only moves its position along the log (see `catch_up`), which need not follow every
/// write (a round per 5 ms cost PostgreSQL a tenth of the CPU of a stream of single creates).
const IDLE_SPACING: Duration = Duration::from_millis(100);

/// How often streams are checked against suspended tenants and changed models.
const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(500);

/// How often old changes are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// The limits of the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeConfig {
    /// Most subscribers at once on this process (`realtime_max_subscribers`); 503 past it.
    pub max_subscribers: usize,
    /// Events a subscriber may have waiting; past it, it gets `reset` and is closed.
    pub buffer: usize,
    /// How long changes are kept for resuming (`realtime_retention`).
    pub retention: Duration,
    /// How often the log is read when nothing woke the feed.
    pub poll_interval: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            max_subscribers: 10_000,
            buffer: 1024,
            retention: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Told after every committed write of this process: wakes its feed at once instead of at the
/// next poll. Cheap to clone and to call (one atomic when the feed is already awake).
#[derive(Debug, Clone, Default)]
pub struct ChangeSignal(Arc<Notify>);

impl ChangeSignal {
    /// Something was written.
    pub fn changed(&self) {
        self.0.notify_one();
    }
}

/// What a subscriber asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The entities.
    pub entities: Vec<String>,
    /// The list's `filter[...]` (only with one entity).
    pub filters: Vec<FilterParam>,
    /// The `Last-Event-ID` header, as sent.
    pub last_event_id: Option<String>,
}

/// One entity as a subscriber sees it.
struct View {
    model: Arc<ActiveModel>,
    visible: Predicate,
    /// The fields the subscriber may not read (SPEC §15), left out of its events' records.
    hidden: Vec<String>,
}

/// A subscriber: what its stream and the feed share.
struct Subscriber {
    id: u64,
    tenant_id: String,
    realm_id: String,
    views: HashMap<String, View>,
    /// Changes up to this id are not its own: a new subscriber's stream starts at the end of the
    /// log when it subscribed, even where the feed has not dispatched that far yet.
    after: i64,
    /// Its buffer filled: it ends with a `reset`.
    overflowed: AtomicBool,
}

/// A subscriber in the hub, with the sending side of its buffer: removing the entry ends the
/// stream (once it has taken what was sent).
struct Entry {
    subscriber: Arc<Subscriber>,
    sender: mpsc::Sender<Delivery>,
}

/// The subscribers by tenant, then realm, and the feed's position.
#[derive(Default)]
struct Hub {
    /// Every change up to this id has been dispatched.
    position: i64,
    scopes: HashMap<String, HashMap<String, Vec<Entry>>>,
}

impl Hub {
    fn add(&mut self, e: Entry) {
        self.scopes
            .entry(e.subscriber.tenant_id.clone())
            .or_default()
            .entry(e.subscriber.realm_id.clone())
            .or_default()
            .push(e);
    }

    /// Removes subscriber `id`; whether it was there.
    fn remove(&mut self, tenant: &str, realm: &str, id: u64) -> bool {
        let Some(realms) = self.scopes.get_mut(tenant) else {
            return false;
        };
        let Some(list) = realms.get_mut(realm) else {
            return false;
        };
        let before = list.len();
        list.retain(|e| e.subscriber.id != id);
        let removed = list.len() < before;
        if list.is_empty() {
            realms.remove(realm);
        }
        if realms.is_empty() {
            self.scopes.remove(tenant);
        }
        removed
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Subscriber>> {
        self.scopes
            .values()
            .flat_map(|r| r.values())
            .flatten()
            .map(|e| &e.subscriber)
    }
}

struct Inner {
    store: Arc<dyn Store>,
    data: DataService,
    cache: ModelCache,
    tenants: TenantService,
    config: RealtimeConfig,
    signal: ChangeSignal,
    hub: Mutex<Hub>,
    count: AtomicUsize,
    next_id: AtomicU64,
    started: tokio::sync::OnceCell<()>,
    /// Tells the feed and maintenance tasks to stop.
    stop: Notify,
    stopped: AtomicBool,
}

/// The realtime feed of one process. Cheap to clone: clones share the feed.
#[derive(Clone)]
pub struct Realtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("config", &self.inner.config)
            .field("subscribers", &self.subscribers())
            .finish_non_exhaustive()
    }
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Realtime {
    /// A feed over `store` (not started: [`Realtime::start`], or the first subscriber, starts
    /// it); `signal` is the one the data service tells after its writes.
    pub fn new(
        store: Arc<dyn Store>,
        data: DataService,
        cache: ModelCache,
        tenants: TenantService,
        config: RealtimeConfig,
        signal: ChangeSignal,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                data,
                cache,
                tenants,
                config,
                signal,
                hub: Mutex::new(Hub::default()),
                count: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                started: tokio::sync::OnceCell::new(),
                stop: Notify::new(),
                stopped: AtomicBool::new(false),
            }),
        }
    }

    /// The subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// The feed's limits.
    pub fn config(&self) -> RealtimeConfig {
        self.inner.config
    }

    /// Starts the feed, the maintenance tick and retention (once; later calls do nothing). The
    /// feed starts at the end of the log.
    pub async fn start(&self) -> DataResult<()> {
        let inner = &self.inner;
        // Concurrent callers wait for the one that starts it.
        inner
            .started
            .get_or_try_init(|| async {
                // The end of the log as far as it is final: a change of a transaction
                // still running below it would otherwise never be dispatched.
                let start = inner.store.settled_changes_end().await?;
                lock(&inner.hub).position = start;
                let wakes = inner.store.watch_changes().await?;
                tokio::spawn(feed(inner.clone(), wakes));
                tokio::spawn(maintenance(inner.clone()));
                Ok::<(), DataError>(())
            })
            .await?;
        Ok(())
    }

    /// Stops the feed and closes every stream.
    pub fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
        let mut hub = lock(&self.inner.hub);
        hub.scopes.clear();
        self.inner.count.store(0, Ordering::Relaxed);
    }

    /// Subscribes `actor` to changes of `req.entities` (SPEC §14). Refused as a list of each
    /// entity would be (404, 409, 403, 400 for a bad filter), and with 503 past
    /// `max_subscribers`.
    pub async fn subscribe(
        &self,
        actor: &Actor,
        req: &SubscribeRequest,
    ) -> DataResult<Subscription> {
        let inner = &self.inner;
        if req.entities.is_empty() {
            return Err(DataError::bad_request(
                "entities",
                "name at least one entity (`entities=Invoice,Customer`)".to_owned(),
            ));
        }
        if !req.filters.is_empty() && req.entities.len() > 1 {
            return Err(DataError::bad_request(
                "filter",
                "filters apply to the stream of one entity (`/api/data/{entity}/events`)"
                    .to_owned(),
            ));
        }
        let mut views = HashMap::with_capacity(req.entities.len());
        for entity in &req.entities {
            let (model, visible, hidden) = inner
                .data
                .visible_changes(actor, entity, &req.filters)
                .await?;
            views.insert(
                model.model.entity.clone(),
                View {
                    model,
                    visible,
                    hidden,
                },
            );
        }
        self.start().await?;
        let resume = match req.last_event_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<i64>().ok()),
        };
        let bounds = inner.store.change_bounds().await?;
        // An id this log still has all the changes after (else: `reset`, then live).
        let resumable = |after: i64| after >= bounds.purged_through && after <= bounds.last;
        let (sender, receiver) = mpsc::channel(inner.config.buffer.max(1));
        let subscriber = Arc::new(Subscriber {
            id: inner.next_id.fetch_add(1, Ordering::Relaxed),
            tenant_id: actor.tenant_id.clone(),
            realm_id: actor.realm_id.clone(),
            views,
            after: match resume {
                Some(Some(after)) if resumable(after) => after,
                _ => bounds.last,
            },
            overflowed: AtomicBool::new(false),
        });
        let position = {
            let mut hub = lock(&inner.hub);
            if inner.count.load(Ordering::Relaxed) >= inner.config.max_subscribers {
                return Err(DataError::Unavailable(format!(
                    "this server already has {} realtime subscribers (`realtime_max_subscribers`); \
                     retry shortly",
                    inner.config.max_subscribers
                )));
            }
            inner.count.fetch_add(1, Ordering::Relaxed);
            hub.add(Entry {
                subscriber: subscriber.clone(),
                sender,
            });
            hub.position
        };
        // What comes before the live events: a replay from the log (nothing when the id is
        // ahead of this feed, whose live events then start after it), or a reset.
        let start = match resume {
            Some(Some(after)) if resumable(after) => Start::Replay {
                after,
                through: position,
            },
            Some(_) => Start::Reset,
            // The feed may have moved past the end of the log this subscriber was given while
            // it registered (its changes were then not dispatched to it): read those from the log.
            None if position > subscriber.after => Start::Replay {
                after: subscriber.after,
                through: position,
            },
            None => Start::Live,
        };
        // The log holds changes the feed has not read, some maybe owed to this subscriber (a
        // resume after them): wake the feed now rather than at its next write or poll (with no
        // subscriber it may have let them wait, see `IDLE_SPACING`).
        if position < bounds.last {
            inner.signal.0.notify_one();
        }
        Ok(Subscription {
            inner: inner.clone(),
            subscriber,
            receiver,
            start,
            replayed: Vec::new().into_iter(),
            ended: false,
        })
    }
}

/// What a subscription sends before its live events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Live,
    Reset,
    /// The changes in `after + 1 ..= through`, read from the log.
    Replay {
        after: i64,
        through: i64,
    },
}

/// One subscriber's stream of [`Delivery`]s; dropping it unsubscribes.
pub struct Subscription {
    inner: Arc<Inner>,
    subscriber: Arc<Subscriber>,
    receiver: mpsc::Receiver<Delivery>,
    start: Start,
    replayed: std::vec::IntoIter<Arc<Event>>,
    ended: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.subscriber.id)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next delivery; `None` once the stream is over (the server shut down, the tenant was
    /// suspended, an entity's active version changed: the client reconnects with its last id).
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(e) = self.replayed.next() {
                return Some(Delivery::Event(e));
            }
            match self.start {
                Start::Live => break,
                Start::Reset => {
                    self.start = Start::Live;
                    return Some(Delivery::Reset);
                }
                Start::Replay { after, through } => match self.replay_page(after, through).await {
                    Ok(next) => self.start = next,
                    Err(e) => {
                        tracing::error!(error = %e, "a realtime replay failed; closing the stream");
                        return None;
                    }
                },
            }
        }
        if self.ended {
            return None;
        }
        match self.receiver.recv().await {
            Some(d) => Some(d),
            None => {
                self.ended = true;
                self.subscriber
                    .overflowed
                    .load(Ordering::Relaxed)
                    .then_some(Delivery::Reset)
            }
        }
    }

    /// Reads one page of the replay; what comes after it.
    async fn replay_page(&mut self, after: i64, through: i64) -> DataResult<Start> {
        let s = &self.subscriber;
        let entities: Vec<String> = s.views.keys().cloned().collect();
        let scope = Scope {
            tenant_id: &s.tenant_id,
            realm_id: &s.realm_id,
        };
        let rows = self
            .inner
            .store
            .changes_of(scope, &entities, after, through, READ_BATCH)
            .await?;
        let last = rows.last().map(|c| c.seq);
        let full = rows.len() == READ_BATCH as usize;
        let events: Vec<Arc<Event>> = rows
            .into_iter()
            .filter_map(|row| {
                let view = s.views.get(&row.entity)?;
                Change::new(row).event_for(&view.visible, &view.hidden)
            })
            .collect();
        self.replayed = events.into_iter();
        Ok(match last {
            Some(last) if full => Start::Replay {
                after: last,
                through,
            },
            _ => Start::Live,
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let s = &self.subscriber;
        if lock(&self.inner.hub).remove(&s.tenant_id, &s.realm_id, s.id) {
            self.inner.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Sends `change` to every subscriber of its scope that may see it; drops those whose buffer
/// is full.
fn dispatch(inner: &Inner, hub: &mut Hub, change: &Change) {
    let row = change.row();
    let Some(list) = hub
        .scopes
        .get(&row.tenant_id)
        .and_then(|r| r.get(&row.realm_id))
    else {
        return;
    };
    let mut dropped = Vec::new();
    for Entry {
        subscriber: s,
        sender,
    } in list
    {
        if row.seq <= s.after {
            continue;
        }
        let Some(view) = s.views.get(&row.entity) else {
            continue;
        };
        let Some(event) = change.event_for(&view.visible, &view.hidden) else {
            continue;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(Delivery::Event(event)) {
            s.overflowed.store(true, Ordering::Relaxed);
            dropped.push(s.id);
        }
    }
    for id in dropped {
        if hub.remove(&row.tenant_id, &row.realm_id, id) {
            inner.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Reads the log after the feed's position and dispatches each change, until the log has no
/// more. With no subscriber on this process, the feed only moves its position to the end of
/// the final changes (`Store::settled_changes_end`: the last id, once the transactions writing
/// the log when it was read have ended), reading no change. Following the log in steps of
/// [`READ_BATCH`] instead cost PostgreSQL a tenth of its CPU under single creates, and a second
/// in six under batches (reading the ids of the changes of a never-vacuumed log visits the heap
/// for each). The position stays one before which every change is final: a subscriber that
/// registers replays the log up to it, and gets what follows from the feed.
async fn catch_up(inner: &Inner) {
    let position = {
        let hub = lock(&inner.hub);
        hub.scopes.is_empty().then_some(hub.position)
    };
    if let Some(position) = position {
        match inner.store.settled_changes_end().await {
            Ok(end) => {
                let mut hub = lock(&inner.hub);
                // A subscriber that came meanwhile is served from where the feed was.
                if hub.scopes.is_empty() && end > position && end > hub.position {
                    hub.position = end;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the change log failed; retrying"),
        }
        return;
    }
    loop {
        let (position, wanted) = {
            let hub = lock(&inner.hub);
            (hub.position, !hub.scopes.is_empty())
        };
        let batch = match inner
            .store
            .changes_after(position, READ_BATCH, wanted)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "reading the change log failed; retrying");
                return;
            }
        };
        if batch.through <= position {
            return;
        }
        let changes: Vec<Change> = batch.rows.into_iter().map(Change::new).collect();
        let mut hub = lock(&inner.hub);
        // A subscriber that came while the records were not read: read them again.
        if wanted || hub.scopes.is_empty() {
            for change in &changes {
                dispatch(inner, &mut hub, change);
            }
            hub.position = batch.through;
        }
    }
}

/// The feed task: wakes on this process's writes, other processes' announcements and the poll
/// interval; reads and dispatches.
async fn feed(inner: Arc<Inner>, mut wakes: mpsc::Receiver<()>) {
    let mut listening = true;
    // When a round may run with no subscriber on this process.
    let mut idle_round = tokio::time::Instant::now();
    loop {
        let local = tokio::select! {
            () = inner.signal.0.notified() => true,
            woke = wakes.recv(), if listening => {
                listening = woke.is_some();
                false
            }
            () = tokio::time::sleep(inner.config.poll_interval) => false,
            () = inner.stop.notified() => return,
        };
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        let started = tokio::time::Instant::now();
        if local {
            // Wake the feeds of other processes (one announcement for all the writes that
            // woke this one).
            if let Err(e) = inner.store.announce_changes().await {
                tracing::warn!(error = %e, "announcing changes failed");
            }
        }
        let idle = lock(&inner.hub).scopes.is_empty();
        if !idle || started >= idle_round {
            catch_up(&inner).await;
            idle_round = started + IDLE_SPACING;
        }
        // Under a stream of writes, one round (an announcement and a read) per
        // `FEED_SPACING` at most: the writes meanwhile wait for the next round together.
        tokio::time::sleep_until(started + FEED_SPACING).await;
    }
}

/// Whether a subscriber's entities still have the active versions it was given.
async fn views_current(cache: &ModelCache, s: &Subscriber) -> bool {
    for (entity, view) in &s.views {
        match cache.active_model(entity).await {
            Ok(now)
                if now.model.version == view.model.model.version
                    && now.model.hash == view.model.model.hash => {}
            _ => return false,
        }
    }
    true
}

/// Closes the streams of suspended tenants and of changed entities; purges old changes.
async fn maintenance(inner: Arc<Inner>) {
    let mut last_purge: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
            () = inner.stop.notified() => return,
        }
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        let subscribers: Vec<Arc<Subscriber>> = lock(&inner.hub).all().cloned().collect();
        let mut tenants: HashMap<&str, bool> = HashMap::new();
        let mut closing = Vec::new();
        for s in &subscribers {
            let active = match tenants.get(s.tenant_id.as_str()) {
                Some(active) => *active,
                None => {
                    let active = inner.tenants.check_active(&s.tenant_id).await.is_ok();
                    tenants.insert(&s.tenant_id, active);
                    active
                }
            };
            if !active || !views_current(&inner.cache, s).await {
                closing.push(s.clone());
            }
        }
        if !closing.is_empty() {
            let mut hub = lock(&inner.hub);
            for s in closing {
                // Removing its sender from the hub ends its stream once it has what it was
                // sent.
                if hub.remove(&s.tenant_id, &s.realm_id, s.id) {
                    inner.count.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_INTERVAL) {
            last_purge = Some(tokio::time::Instant::now());
            let retention =
                chrono::Duration::from_std(inner.config.retention).unwrap_or(chrono::Duration::MAX);
            let before = Timestamp::from(
                Timestamp::now()
                    .0
                    .checked_sub_signed(retention)
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            );
            match inner.store.purge_changes(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(changes = n, "purged realtime changes past retention"),
                Err(e) => tracing::warn!(error = %e, "purging realtime changes failed"),
            }
        }
    }
}
