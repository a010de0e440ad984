//! The compiled-model cache (SPEC §4, §12): every data request asks it for the active model of
//! its entity.
//!
//! Two levels: an in-process moka cache by entity name (time-to-idle TTL, bounded size), and an
//! optional Redis level shared by instances, keyed `meta:compiled:{entity}:{version}` and checked
//! against the active version's schema hash before use. A miss reads the active version from the
//! store, compiles it (a few microseconds) and uses the Redis entry only when it is the same
//! compilation: Redis is shared with whoever can reach it, so nothing read from it is trusted to
//! name tables, columns or policies. What Redis shares is the provenance (`compiledAt`,
//! `compiledBy`): every instance reports the same model.
//!
//! Key decision: coherence comes from invalidation, never from checking the store on a hit (a hit
//! is a lock-free lookup). Activation, deactivation and deletion invalidate the entity here
//! (the registry calls [`ModelCache::invalidate`]) and in every other process through
//! [`Store::model_changes`] (PostgreSQL LISTEN/NOTIFY, SQLite polling), which
//! [`ModelCache::follow_changes`] follows. An invalidation epoch closes the race where a load
//! reads version 1, an invalidation passes, and the load then caches version 1: a load whose
//! epoch moved meanwhile returns its model but does not cache it.

mod l2;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::SecondsFormat;
use metaengine_core::hash::schema_hash;
use metaengine_core::policy::PolicySet;
use metaengine_core::record::RecordValidator;
use metaengine_core::{CompiledModel, compile};

use metaengine_store::{ModelChange, PageRequest, Store, StoreError};

use l2::RedisLevel;

/// Settings of the [`ModelCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Time-to-idle of an entry: refreshed on every access (default 1 hour). Also the expiry of
    /// the Redis entries.
    pub ttl: Duration,
    /// Most models kept in process (default 10 000).
    pub max_entries: u64,
    /// Redis URL of the shared second level (`redis://host:6379`), if any.
    pub redis_url: Option<String>,
    /// Recorded as `compiledBy` in the models this instance compiles (default `metaengine`).
    pub instance_name: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            max_entries: 10_000,
            redis_url: None,
            instance_name: "metaengine".to_owned(),
        }
    }
}

/// Why the cache could not give a model.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No entity of that name.
    #[error("entity `{0}` does not exist")]
    EntityNotFound(String),
    /// The entity exists but no version of it is active.
    #[error("entity `{0}` has no active version; activate one first")]
    NoActiveVersion(String),
    /// The store failed (or holds a schema that does not parse).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis was configured but could not be reached at startup.
    #[error("cannot reach the Redis second-level cache: {0}; check `redis_url` or remove it")]
    Redis(#[source] redis::RedisError),
}

/// What a data request needs of its entity, built once per activation: the compiled model and
/// its policies, indexed for evaluation. Dereferences to the [`CompiledModel`].
#[derive(Debug)]
pub struct ActiveModel {
    /// The compiled model.
    pub model: CompiledModel,
    /// Its policies, ready to evaluate (the admin bypass is the gate's business).
    pub policies: PolicySet,
    /// Its write rules, patterns compiled.
    pub validator: RecordValidator,
}

impl ActiveModel {
    /// Prepares a compiled model for requests.
    pub fn new(model: CompiledModel) -> Self {
        let policies = PolicySet::from_model(&model, None);
        let validator = RecordValidator::new(&model);
        Self {
            model,
            policies,
            validator,
        }
    }
}

impl std::ops::Deref for ActiveModel {
    type Target = CompiledModel;

    fn deref(&self) -> &CompiledModel {
        &self.model
    }
}

/// Counters of the cache since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests served from the in-process level.
    pub hits: u64,
    /// Requests that missed the in-process level.
    pub misses: u64,
    /// Misses served from Redis (the same compilation as the local one).
    pub l2_hits: u64,
    /// Misses served by this instance's own compilation (nothing usable in Redis).
    pub compiles: u64,
    /// Models in the in-process level now.
    pub entries: u64,
}

/// The compiled-model cache. Cheap to clone: clones share one cache.
#[derive(Clone)]
pub struct ModelCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    l1: moka::sync::Cache<String, Arc<ActiveModel>>,
    l2: Option<RedisLevel>,
    instance_name: String,
    /// Bumped (under the lock) by every invalidation; a load caches its model only if the epoch
    /// is the one it started with, checked under the same lock.
    epoch: Mutex<u64>,
    /// One lock per entity being loaded, so concurrent misses compile once.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    l2_hits: AtomicU64,
    compiles: AtomicU64,
}

/// Locks a mutex whose data stays valid even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ModelCache {
    /// A cache over `store`; connects to Redis when `config.redis_url` is set (an unreachable
    /// Redis is an error here, and only a logged miss later).
    pub async fn new(store: Arc<dyn Store>, config: CacheConfig) -> Result<Self, CacheError> {
        let l2 = match &config.redis_url {
            Some(url) => Some(
                RedisLevel::connect(url, config.ttl)
                    .await
                    .map_err(CacheError::Redis)?,
            ),
            None => None,
        };
        let l1 = moka::sync::Cache::builder()
            .max_capacity(config.max_entries)
            .time_to_idle(config.ttl)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                l1,
                l2,
                instance_name: config.instance_name,
                epoch: Mutex::new(0),
                loading: Mutex::new(HashMap::new()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                l2_hits: AtomicU64::new(0),
                compiles: AtomicU64::new(0),
            }),
        })
    }

    /// The in-process model of `entity`, if cached: the synchronous fast path of
    /// [`ModelCache::active_model`] (counts a hit or a miss).
    pub fn get_cached(&self, entity: &str) -> Option<Arc<ActiveModel>> {
        let found = self.inner.l1.get(entity);
        let counter = if found.is_some() {
            &self.inner.hits
        } else {
            &self.inner.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The compiled model of the active version of `entity`: from memory when cached, else
    /// loaded (from Redis when it holds this exact schema, else compiled) and cached.
    pub async fn active_model(&self, entity: &str) -> Result<Arc<ActiveModel>, CacheError> {
        if let Some(model) = self.get_cached(entity) {
            return Ok(model);
        }
        self.load(entity).await
    }

    /// Forgets the in-process model of `entity` (after its activation, deactivation or
    /// deletion). Redis entries are versioned and hash-checked, so they need no invalidation.
    pub fn invalidate(&self, entity: &str) {
        let mut epoch = lock(&self.inner.epoch);
        *epoch += 1;
        self.inner.l1.invalidate(entity);
    }

    /// Forgets every in-process model (manual clear, or changes may have been missed).
    pub fn clear(&self) {
        let mut epoch = lock(&self.inner.epoch);
        *epoch += 1;
        self.inner.l1.invalidate_all();
    }

    /// Loads the model of every entity that has an active version (`precompile_on_startup`);
    /// returns how many were loaded.
    pub async fn precompile_all(&self) -> Result<usize, CacheError> {
        let mut loaded = 0;
        let mut page = 1;
        loop {
            let request = PageRequest::new(page, PageRequest::MAX_SIZE);
            let entities = self.inner.store.list_entities(request).await?;
            if entities.data.is_empty() {
                break;
            }
            for entity in entities.data {
                if entity.active_version.is_none() {
                    continue;
                }
                match self.active_model(&entity.name).await {
                    Ok(_) => loaded += 1,
                    // Deactivated or deleted since the page was read.
                    Err(CacheError::NoActiveVersion(_) | CacheError::EntityNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if u64::from(page) >= entities.meta.total_pages {
                break;
            }
            page += 1;
        }
        Ok(loaded)
    }

    /// Counters since creation, and the number of models in memory.
    pub fn stats(&self) -> CacheStats {
        self.inner.l1.run_pending_tasks();
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            l2_hits: self.inner.l2_hits.load(Ordering::Relaxed),
            compiles: self.inner.compiles.load(Ordering::Relaxed),
            entries: self.inner.l1.entry_count(),
        }
    }

    /// Follows the store's model changes (other processes' activations, deactivations and
    /// deletions): invalidates the named entity, or clears everything on
    /// [`ModelChange::All`], until the store's channel closes or the cache is dropped.
    pub async fn follow_changes(&self) -> Result<tokio::task::JoinHandle<()>, CacheError> {
        let mut changes = self.inner.store.model_changes().await?;
        let cache: Weak<Inner> = Arc::downgrade(&self.inner);
        Ok(tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                let Some(inner) = cache.upgrade() else {
                    return;
                };
                let cache = ModelCache { inner };
                match change {
                    ModelChange::Entity(entity) => {
                        tracing::debug!(entity, "model changed; invalidating");
                        cache.invalidate(&entity);
                    }
                    ModelChange::All => {
                        tracing::debug!("model changes may have been missed; clearing");
                        cache.clear();
                    }
                }
            }
        }))
    }

    /// The miss path: one loader per entity at a time; the others wait and then find the
    /// model in memory.
    async fn load(&self, entity: &str) -> Result<Arc<ActiveModel>, CacheError> {
        let flight = lock(&self.inner.loading)
            .entry(entity.to_owned())
            .or_default()
            .clone();
        let result = {
            let _turn = flight.lock().await;
            match self.inner.l1.get(entity) {
                Some(model) => Ok(model),
                None => self.load_uncached(entity).await,
            }
        };
        let mut loading = lock(&self.inner.loading);
        // Remove the entry when nobody else holds it (the map's clone and ours). Clones are
        // only taken under this lock, so the count cannot grow meanwhile.
        if loading
            .get(entity)
            .is_some_and(|f| Arc::ptr_eq(f, &flight) && Arc::strong_count(&flight) == 2)
        {
            loading.remove(entity);
        }
        result
    }

    /// Reads the active version, then Redis or the compiler; caches the model unless an
    /// invalidation happened meanwhile.
    async fn load_uncached(&self, entity: &str) -> Result<Arc<ActiveModel>, CacheError> {
        let inner = &self.inner;
        let epoch = *lock(&inner.epoch);
        let Some(row) = inner.store.active_version(entity).await? else {
            return Err(if inner.store.entity_exists(entity).await? {
                CacheError::NoActiveVersion(entity.to_owned())
            } else {
                CacheError::EntityNotFound(entity.to_owned())
            });
        };
        let schema = row.parse_schema()?;
        let hash = schema_hash(&schema);
        let compiled_at = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let local = compile(
            entity,
            &row.version,
            &schema,
            &inner.instance_name,
            &compiled_at,
        );
        // Redis is shared and not trusted: an entry is used only when it is exactly what this
        // instance compiles from the stored schema (its provenance aside), so whoever can write
        // to Redis cannot point the data API at another table or drop a policy.
        let shared = match &inner.l2 {
            Some(l2) => l2.get(entity, &row.version, &hash).await.filter(|shared| {
                let same = shared.same_compilation(&local);
                if !same {
                    tracing::warn!(
                        entity,
                        version = row.version,
                        "the compiled model in Redis differs from the schema's; ignoring it"
                    );
                }
                same
            }),
            None => None,
        };
        let model = match shared {
            Some(model) => {
                inner.l2_hits.fetch_add(1, Ordering::Relaxed);
                model
            }
            None => {
                inner.compiles.fetch_add(1, Ordering::Relaxed);
                if let Some(l2) = &inner.l2 {
                    l2.put(&local).await;
                }
                local
            }
        };
        let model = Arc::new(ActiveModel::new(model));
        let current = lock(&inner.epoch);
        if *current == epoch {
            inner.l1.insert(entity.to_owned(), Arc::clone(&model));
        } else {
            tracing::debug!(entity, "invalidated while loading; not caching this model");
        }
        drop(current);
        Ok(model)
    }
}
