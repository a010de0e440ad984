//! What every handler shares: the runtime's services, the token verifier, the limits and the
//! metrics, built once at startup by [`AppState::build`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metaengine_runtime::{
    AccessConfig, AuditWriterConfig, CacheConfig, DataLimits, Services, ServicesConfig,
};
use metaengine_store::Store;

use crate::auth::{KeySource, Verifier, load_or_create_secret};
use crate::config::{JwtKeyConfig, Limits, ServerConfig};
use crate::metrics::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token key cannot be read or used.
    #[error("cannot set up token verification: {0}")]
    Jwt(String),
    /// The model cache cannot start (Redis unreachable).
    #[error("cannot start the compiled-model cache: {0}")]
    Cache(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The shared state of all handlers: the engine's [`Services`] (reached through `Deref`:
/// `state.registry`, `state.data`…) and what only the HTTP server has.
pub struct AppState {
    /// Registry, data service, tenants, cache, policy gate, audit writer and store.
    pub services: Services,
    /// Verifies bearer tokens.
    pub verifier: Verifier,
    /// The HS256 secret when it is local (to print a first token), else `None`.
    pub local_secret: Option<String>,
    /// Whether the secret was created by this start (a first run).
    pub secret_created: bool,
    /// Request limits.
    pub limits: Limits,
    /// Connection limits of the accept loop.
    pub connections: crate::connections::ConnectionLimits,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// One permit per request served at once (`max_concurrency`).
    pub permits: tokio::sync::Semaphore,
    /// Days audit rows are kept (0: forever); [`crate::serve`] purges hourly.
    pub audit_retention_days: u32,
    /// The admin UI's sessions, when the UI is served: the realtime streams accept its cookie.
    pub sessions: std::sync::OnceLock<Arc<dyn crate::extract::SessionAuth>>,
    warm: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// The state as handlers receive it.
pub type SharedState = Arc<AppState>;

impl AppState {
    /// Builds the services over a migrated `store` ([`Services::build`], the cache following
    /// other instances' changes) and the token verifier; compiles every
    /// active entity first when `precompile_on_startup` is set.
    pub async fn build(
        store: Arc<dyn Store>,
        config: &ServerConfig,
    ) -> Result<SharedState, StartError> {
        let (key, local_secret, secret_created) = key_source(config)?;
        let verifier = Verifier::new(&key).map_err(|e| StartError::Jwt(e.to_string()))?;
        let limits = config.limits;
        let services = Services::build(
            store,
            ServicesConfig {
                access: AccessConfig {
                    platform_tenant: config.platform_tenant.clone(),
                    admin_role: config.admin_role.clone(),
                },
                cache: CacheConfig {
                    redis_url: config.redis_url.clone(),
                    ..CacheConfig::default()
                },
                data: DataLimits {
                    default_page_size: limits.default_page_size,
                    max_page_size: limits.max_page_size,
                    max_filters: limits.max_filters,
                    max_batch_operations: limits.batch_max_operations,
                    max_page_bytes: limits.max_page_bytes,
                },
                audit: AuditWriterConfig::default(),
                audit_allows: config.audit_allows,
                follow_changes: true,
                realtime: config.realtime,
            },
        )
        .await
        .map_err(|e| StartError::Cache(e.to_string()))?;
        let state = Arc::new(AppState {
            services,
            verifier,
            local_secret,
            secret_created,
            limits,
            connections: config.connections,
            metrics: Metrics::new(),
            permits: tokio::sync::Semaphore::new(limits.max_concurrency),
            audit_retention_days: config.audit_retention_days,
            sessions: std::sync::OnceLock::new(),
            warm: AtomicBool::new(!config.precompile_on_startup),
        });
        if config.precompile_on_startup {
            match state.cache.precompile_all().await {
                Ok(n) => tracing::info!(entities = n, "compiled the active entities"),
                Err(e) => tracing::warn!(error = %e, "precompiling the active entities failed"),
            }
            state.warm.store(true, Ordering::Release);
        }
        Ok(state)
    }

    /// Whether startup work (precompiling) is done.
    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::Acquire)
    }
}

/// The verification key, the local secret (HS256 from the data directory or configuration) and
/// whether the secret file was created now.
fn key_source(config: &ServerConfig) -> Result<(KeySource, Option<String>, bool), StartError> {
    let read_pem = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map_err(|e| StartError::Jwt(format!("cannot read {}: {e}", path.display())))
    };
    Ok(match &config.jwt {
        JwtKeyConfig::Hs256(Some(secret)) => (
            KeySource::Hs256Secret(secret.expose().to_owned()),
            Some(secret.expose().to_owned()),
            false,
        ),
        JwtKeyConfig::Hs256(None) => {
            let (secret, created) = load_or_create_secret(&config.data_dir).map_err(|e| {
                StartError::Jwt(format!(
                    "cannot read or create the secret in {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            (
                KeySource::Hs256Secret(secret.clone()),
                Some(secret),
                created,
            )
        }
        JwtKeyConfig::Rs256(path) => (KeySource::Rs256PublicPem(read_pem(path)?), None, false),
        JwtKeyConfig::Es256(path) => (KeySource::Es256PublicPem(read_pem(path)?), None, false),
    })
}
