//! The optional Redis second level: compiled models shared by every instance, keyed
//! `meta:compiled:{entity}:{version}` (SPEC §4). Entries are checked against the active version's
//! hash before use, so they never need invalidating; a Redis failure after startup is logged and
//! treated as a miss.

use std::time::Duration;

use metaengine_core::CompiledModel;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A connection to the Redis second level.
#[derive(Clone)]
pub(crate) struct RedisLevel {
    connection: ConnectionManager,
    /// Expiry of the entries, in seconds (at least 1).
    expiry_secs: u64,
}

/// How long one Redis call may take before it counts as a miss.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long connecting may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisLevel {
    /// Connects; an unreachable server or a malformed URL is an error.
    pub(crate) async fn connect(url: &str, expiry: Duration) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECTION_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(1);
        let mut connection = ConnectionManager::new_with_config(client, config).await?;
        // The manager connects lazily on some paths: make sure the server answers now.
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(Self {
            connection,
            expiry_secs: expiry.as_secs().max(1),
        })
    }

    /// The Redis key of one compiled version.
    pub(crate) fn key(entity: &str, version: &str) -> String {
        format!("meta:compiled:{entity}:{version}")
    }

    /// The stored model of `entity`/`version` if its hash is `hash`; `None` on a miss, a stale
    /// or unreadable entry, or a Redis failure (logged).
    pub(crate) async fn get(
        &self,
        entity: &str,
        version: &str,
        hash: &str,
    ) -> Option<CompiledModel> {
        let key = Self::key(entity, version);
        let mut connection = self.connection.clone();
        let text: Option<String> = match connection.get(&key).await {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, key, "Redis GET failed; compiling instead");
                return None;
            }
        };
        let model: CompiledModel = match serde_json::from_str(&text?) {
            Ok(model) => model,
            Err(e) => {
                tracing::warn!(error = %e, key, "unreadable compiled model in Redis; ignoring it");
                return None;
            }
        };
        if model.hash != hash || model.entity != entity || model.version != version {
            tracing::debug!(key, "stale compiled model in Redis; ignoring it");
            return None;
        }
        Some(model)
    }

    /// Stores a compiled model with the cache's expiry; a failure is logged only.
    pub(crate) async fn put(&self, model: &CompiledModel) {
        let key = Self::key(&model.entity, &model.version);
        let text = match serde_json::to_string(model) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, key, "cannot serialize a compiled model for Redis");
                return;
            }
        };
        let mut connection = self.connection.clone();
        if let Err(e) = connection
            .set_ex::<_, _, ()>(&key, text, self.expiry_secs)
            .await
        {
            tracing::warn!(error = %e, key, "Redis SET failed; the model stays in this process only");
        }
    }
}
