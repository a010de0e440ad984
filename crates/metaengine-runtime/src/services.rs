//! The composition root: every service of the engine over one store, wired once, so that the
//! HTTP server and the command line run the same registry, cache, policy gate, audit writer,
//! data service and tenants, configured the same way.

use std::sync::Arc;

use metaengine_store::Store;

use crate::actor::AccessConfig;
use crate::audit_writer::{AuditWriter, AuditWriterConfig};
use crate::cache::{CacheConfig, CacheError, ModelCache};
use crate::data::{DataLimits, DataService};
use crate::gate::PolicyGate;
use crate::realtime::{ChangeSignal, Realtime, RealtimeConfig};
use crate::registry::Registry;
use crate::tenants::TenantService;

/// How the services are set up.
#[derive(Debug, Clone, Default)]
pub struct ServicesConfig {
    /// Platform tenant and admin role.
    pub access: AccessConfig,
    /// The compiled-model cache (Redis L2 when configured).
    pub cache: CacheConfig,
    /// Limits of the data API.
    pub data: DataLimits,
    /// The batched audit writer.
    pub audit: AuditWriterConfig,
    /// Whether allowed data requests are audited (`policy.allow`), not only denials.
    pub audit_allows: bool,
    /// The realtime feed's limits.
    pub realtime: RealtimeConfig,
    /// Whether the cache follows other processes' activations (a long-running server does; a
    /// command that runs once does not need to).
    pub follow_changes: bool,
}

/// Every service over one store. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Entities, versions, activation, audit queries (keeps `cache` coherent).
    pub registry: Registry,
    /// The generic data API.
    pub data: DataService,
    /// Tenants and their status.
    pub tenants: TenantService,
    /// The compiled-model cache.
    pub cache: ModelCache,
    /// The policy gate (the data service holds a clone).
    pub gate: PolicyGate,
    /// The batched audit writer: [`Services::shutdown`] flushes it.
    pub audit: AuditWriter,
    /// The realtime change feed (started by its first subscriber or by the server).
    pub realtime: Realtime,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Wires the services over a migrated `store`. Fails only when the cache cannot start
    /// (Redis configured and unreachable).
    pub async fn build(store: Arc<dyn Store>, config: ServicesConfig) -> Result<Self, CacheError> {
        let cache = ModelCache::new(store.clone(), config.cache).await?;
        if config.follow_changes {
            cache.follow_changes().await?;
        }
        let audit = AuditWriter::spawn(store.clone(), config.audit);
        let gate = PolicyGate::new(&config.access, Some(audit.clone()), config.audit_allows);
        let signal = ChangeSignal::default();
        let data = DataService::new(
            store.clone(),
            cache.clone(),
            gate.clone(),
            audit.clone(),
            config.data,
            signal.clone(),
        );
        let registry =
            Registry::new(store.clone(), config.access.clone()).with_cache(cache.clone());
        let tenants = TenantService::new(store.clone(), config.access);
        let realtime = Realtime::new(
            store.clone(),
            data.clone(),
            cache.clone(),
            tenants.clone(),
            config.realtime,
            signal,
        );
        Ok(Self {
            realtime,
            store,
            registry,
            data,
            tenants,
            cache,
            gate,
            audit,
        })
    }

    /// Closes the realtime streams, writes the audit events still buffered, stops the writer
    /// and chains the audit rows still sealed (a command line's own): first those this process
    /// wrote, without reading them back (an import's rows hold every record's values: reading
    /// a million of them back took a third of the import's time), then any others.
    pub async fn shutdown(&self) {
        self.realtime.shutdown();
        self.audit.shutdown().await;
        if let Err(e) = self.store.chain_written_audit().await {
            tracing::warn!(error = %e, "cannot chain this process's audit rows by their ids");
        }
        if let Err(e) = self.store.chain_audit().await {
            tracing::warn!(error = %e, "cannot chain the last audit rows; the next chainer will");
        }
    }
}
