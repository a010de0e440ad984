//! The compiled-model cache (SPEC §4, §12) against real databases and a real Redis: hits and
//! misses, invalidation, errors, warming, the Redis second level, and instances following each
//! other's activations. PostgreSQL and Redis must be up: these tests fail when they are not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metaengine_core::hash::schema_hash;
use metaengine_runtime::cache::CacheStats;
use metaengine_runtime::{CacheConfig, CacheError, ModelCache};

use metaengine_store::{AuditActor, EventType, NewAudit, NewEntity, NewVersion, Store};
use serde_json::{Value, json};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn audit(t: EventType, resource: &str) -> NewAudit {
    let actor = AuditActor {
        user_id: "alice".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
    };
    NewAudit::success(t, &actor, resource, None)
}

/// A fresh entity name, so tests sharing Redis never see each other's keys.
fn unique(base: &str) -> String {
    format!("{base}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn schema_v1() -> Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 }
    ]})
}

fn schema_v2() -> Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 },
        { "name": "dueDate", "type": "date" }
    ]})
}

async fn create_entity(store: &dyn Store, name: &str) {
    store
        .create_entity(
            &NewEntity {
                name: name.into(),
                description: None,
                created_by: "alice".into(),
            },
            &audit(EventType::EntityCreate, name),
        )
        .await
        .unwrap();
}

async fn create_version(store: &dyn Store, entity: &str, version: &str, schema: Value) {
    store
        .create_version(
            &NewVersion {
                entity_name: entity.into(),
                version: version.into(),
                schema,
                created_by: "alice".into(),
            },
            &audit(EventType::VersionCreate, entity),
        )
        .await
        .unwrap();
}

async fn activate(store: &dyn Store, entity: &str, version: &str) {
    store
        .activate_version(entity, version, &|_plan| vec![])
        .await
        .unwrap();
}

/// An entity with v1 (active) and v2 (not yet active).
async fn invoice(store: &dyn Store) -> String {
    let name = unique("Invoice");
    create_entity(store, &name).await;
    create_version(store, &name, "v1", schema_v1()).await;
    create_version(store, &name, "v2", schema_v2()).await;
    activate(store, &name, "v1").await;
    name
}

/// The hash of the entity's active version, as stored.
async fn active_hash(store: &dyn Store, entity: &str) -> (String, String) {
    let row = store.active_version(entity).await.unwrap().unwrap();
    let hash = schema_hash(&row.parse_schema().unwrap());
    (row.version, hash)
}

async fn cache(store: &Arc<dyn Store>) -> ModelCache {
    ModelCache::new(Arc::clone(store), CacheConfig::default())
        .await
        .unwrap()
}

async fn redis_cache(store: &Arc<dyn Store>) -> ModelCache {
    let config = CacheConfig {
        redis_url: Some(REDIS_URL.into()),
        ..CacheConfig::default()
    };
    ModelCache::new(Arc::clone(store), config).await.unwrap()
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis is not reachable at {REDIS_URL} ({e}); start it"))
}

async fn delete_keys(entity: &str) {
    let mut conn = redis().await;
    for version in ["v1", "v2"] {
        let _: i64 = redis::cmd("DEL")
            .arg(format!("meta:compiled:{entity}:{version}"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

// ---- stories, run on both backends ----

async fn a_hit_returns_the_same_model(store: Arc<dyn Store>) {
    let name = invoice(store.as_ref()).await;
    let cache = cache(&store).await;
    let first = cache.active_model(&name).await.unwrap();
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 0,
            misses: 1,
            l2_hits: 0,
            compiles: 1,
            entries: 1
        }
    );
    let second = cache.active_model(&name).await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "a hit is the cached Arc");
    let third = cache.get_cached(&name).unwrap();
    assert!(Arc::ptr_eq(&first, &third));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.compiles), (2, 1, 1));
    assert_eq!(first.entity, name);
    assert_eq!(first.compiled_by, "metaengine");
    assert!(
        chrono::DateTime::parse_from_rfc3339(&first.compiled_at).is_ok(),
        "{}",
        first.compiled_at
    );
    assert!(cache.get_cached("Nobody").is_none());
    assert_eq!(cache.stats().misses, 2);
}

async fn concurrent_misses_compile_once(store: Arc<dyn Store>) {
    let name = invoice(store.as_ref()).await;
    let cache = cache(&store).await;
    let loads: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            let name = name.clone();
            tokio::spawn(async move { cache.active_model(&name).await.unwrap() })
        })
        .collect();
    let mut models = Vec::new();
    for load in loads {
        models.push(load.await.unwrap());
    }
    assert!(models.iter().all(|m| Arc::ptr_eq(m, &models[0])));
    assert_eq!(cache.stats().compiles, 1);
}

async fn an_activation_is_served_after_invalidation(store: Arc<dyn Store>) {
    let name = invoice(store.as_ref()).await;
    let cache = cache(&store).await;
    let v1 = cache.active_model(&name).await.unwrap();
    assert_eq!(
        (v1.version.clone(), v1.hash.clone()),
        active_hash(store.as_ref(), &name).await
    );

    activate(store.as_ref(), &name, "v2").await;
    cache.invalidate(&name);
    let v2 = cache.active_model(&name).await.unwrap();
    let (version, hash) = active_hash(store.as_ref(), &name).await;
    assert_eq!(version, "v2");
    assert_eq!(v2.version, "v2");
    assert_eq!(v2.hash, hash);
    assert_ne!(v2.hash, v1.hash);
    assert!(v2.field("dueDate").is_some());

    // Deactivation: after invalidation there is nothing to serve.
    store
        .deactivate_version(&name, "v2", &audit(EventType::VersionDeactivate, &name))
        .await
        .unwrap();
    cache.invalidate(&name);
    assert!(matches!(
        cache.active_model(&name).await,
        Err(CacheError::NoActiveVersion(n)) if n == name
    ));

    // A manual clear empties the in-process level.
    activate(store.as_ref(), &name, "v2").await;
    cache.active_model(&name).await.unwrap();
    assert_eq!(cache.stats().entries, 1);
    cache.clear();
    assert_eq!(cache.stats().entries, 0);
    assert!(cache.get_cached(&name).is_none());
}

async fn missing_models_are_explained(store: Arc<dyn Store>) {
    let cache = cache(&store).await;
    let name = unique("Draft");
    create_entity(store.as_ref(), &name).await;
    create_version(store.as_ref(), &name, "v1", schema_v1()).await;
    let err = cache.active_model(&name).await.unwrap_err();
    assert!(
        matches!(&err, CacheError::NoActiveVersion(n) if *n == name),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("entity `{name}` has no active version; activate one first")
    );

    let err = cache.active_model("Ghost").await.unwrap_err();
    assert!(
        matches!(&err, CacheError::EntityNotFound(n) if n == "Ghost"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "entity `Ghost` does not exist");
    assert_eq!(cache.stats().entries, 0);
}

async fn precompile_warms_every_active_entity(store: Arc<dyn Store>) {
    let mut active = Vec::new();
    for _ in 0..3 {
        active.push(invoice(store.as_ref()).await);
    }
    let inactive = unique("Draft");
    create_entity(store.as_ref(), &inactive).await;
    create_version(store.as_ref(), &inactive, "v1", schema_v1()).await;

    let cache = cache(&store).await;
    assert_eq!(cache.precompile_all().await.unwrap(), 3);
    for name in &active {
        let model = cache.get_cached(name).unwrap();
        assert_eq!(model.hash, active_hash(store.as_ref(), name).await.1);
    }
    assert!(cache.get_cached(&inactive).is_none());
    assert_eq!(cache.stats().entries, 3);
    assert_eq!(cache.stats().compiles, 3);
}

async fn redis_shares_models_between_instances(store: Arc<dyn Store>) {
    let name = invoice(store.as_ref()).await;
    let first = redis_cache(&store).await;
    let compiled = first.active_model(&name).await.unwrap();
    assert_eq!((first.stats().compiles, first.stats().l2_hits), (1, 0));

    let second = redis_cache(&store).await;
    let shared = second.active_model(&name).await.unwrap();
    assert_eq!(
        (second.stats().compiles, second.stats().l2_hits),
        (0, 1),
        "the second instance found the model in Redis"
    );
    assert_eq!(
        shared.model, compiled.model,
        "the same model, compiled_at included"
    );

    let mut conn = redis().await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("meta:compiled:{name}:v1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 3500 && ttl <= 3600, "expiry is the cache TTL: {ttl}");
    delete_keys(&name).await;
}

async fn a_stale_redis_entry_is_ignored_and_overwritten(store: Arc<dyn Store>) {
    let name = invoice(store.as_ref()).await;
    let writer = redis_cache(&store).await;
    let mut planted = writer.active_model(&name).await.unwrap().model.clone();
    planted.hash = "0".repeat(64);
    planted.compiled_by = "tampered".into();
    let key = format!("meta:compiled:{name}:v1");
    let mut conn = redis().await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(serde_json::to_string(&planted).unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();

    let reader = redis_cache(&store).await;
    let model = reader.active_model(&name).await.unwrap();
    assert_eq!(model.hash, active_hash(store.as_ref(), &name).await.1);
    assert_eq!(model.compiled_by, "metaengine");
    assert_eq!((reader.stats().compiles, reader.stats().l2_hits), (1, 0));

    let stored: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let stored: metaengine_core::CompiledModel = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored.hash, model.hash, "the stale entry was overwritten");

    // Garbage in Redis is a miss too.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let third = redis_cache(&store).await;
    assert_eq!(third.active_model(&name).await.unwrap().hash, model.hash);
    assert_eq!(third.stats().compiles, 1);
    delete_keys(&name).await;
}

/// An allow-everything policy list, compiled (planted in Redis by the tampering test).
fn writer_policies() -> Vec<metaengine_core::compile::CompiledPolicy> {
    let schema: metaengine_core::EntitySchema = serde_json::from_value(json!({
        "fields": [{ "name": "x", "type": "string" }],
        "policies": [{ "name": "all", "effect": "allow", "action": "read", "resource": "X" }]
    }))
    .unwrap();
    metaengine_core::compile("X", "v1", &schema, "t", "t").policies
}

/// Issue 12 item 21: an entry with the right hash, entity and version but another table, column
/// or policy list is not trusted; the local compilation is served and written back.
async fn a_tampered_redis_entry_cannot_redirect_tables_or_drop_policies(store: Arc<dyn Store>) {
    let name = invoice(store.as_ref()).await;
    let writer = redis_cache(&store).await;
    let honest = writer.active_model(&name).await.unwrap().model.clone();
    let key = format!("meta:compiled:{name}:v1");
    let mut conn = redis().await;
    let mut tampered_table = honest.clone();
    tampered_table.table_name = "meta_audit".into();
    let mut tampered_column = honest.clone();
    tampered_column.fields[0].column_name = "tenant_id".into();
    let mut weaker = honest.clone();
    weaker.fields[1].validator.min = None;
    let mut with_policy = honest.clone();
    with_policy.policies = writer_policies();
    for planted in [tampered_table, tampered_column, weaker, with_policy] {
        assert_eq!(planted.hash, honest.hash, "the hash alone does not tell");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(serde_json::to_string(&planted).unwrap())
            .query_async(&mut conn)
            .await
            .unwrap();
        let reader = redis_cache(&store).await;
        let served = reader.active_model(&name).await.unwrap();
        assert!(
            served.model.same_compilation(&honest),
            "served the schema's model"
        );
        assert_eq!((reader.stats().compiles, reader.stats().l2_hits), (1, 0));
        let stored: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let stored: metaengine_core::CompiledModel = serde_json::from_str(&stored).unwrap();
        assert!(
            stored.same_compilation(&honest),
            "the tampered entry was overwritten"
        );
    }
    delete_keys(&name).await;
}

/// Polls `cache` every 20 ms for up to 1 s until it serves `version`; returns the delay.
async fn served_within_a_second(
    cache: &ModelCache,
    entity: &str,
    version: Option<&str>,
) -> Duration {
    let start = Instant::now();
    loop {
        let served = match cache.active_model(entity).await {
            Ok(model) => Some(model.version.clone()),
            Err(CacheError::NoActiveVersion(_)) => None,
            Err(e) => panic!("{e}"),
        };
        if served.as_deref() == version {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still serving {served:?} instead of {version:?} after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances over one database, each following changes: what one activates, the other
/// serves within a second.
async fn instances_follow_each_other(a: Arc<dyn Store>, b: Arc<dyn Store>, label: &str) {
    let name = invoice(a.as_ref()).await;
    let cache_a = cache(&a).await;
    let cache_b = cache(&b).await;
    let _follow_a = cache_a.follow_changes().await.unwrap();
    let _follow_b = cache_b.follow_changes().await.unwrap();
    assert_eq!(cache_a.active_model(&name).await.unwrap().version, "v1");
    assert_eq!(cache_b.active_model(&name).await.unwrap().version, "v1");

    activate(a.as_ref(), &name, "v2").await;
    let delay = served_within_a_second(&cache_b, &name, Some("v2")).await;
    println!("{label}: activation on A served by B after {delay:?}");
    let model = cache_b.active_model(&name).await.unwrap();
    assert_eq!(model.hash, active_hash(b.as_ref(), &name).await.1);

    a.deactivate_version(&name, "v2", &audit(EventType::VersionDeactivate, &name))
        .await
        .unwrap();
    let delay = served_within_a_second(&cache_b, &name, None).await;
    println!("{label}: deactivation on A seen by B after {delay:?}");
}

mod sqlite {
    use super::*;

    metaengine_testing::backend_tests!(sqlite; a_hit_returns_the_same_model, concurrent_misses_compile_once, an_activation_is_served_after_invalidation, missing_models_are_explained, precompile_warms_every_active_entity, redis_shares_models_between_instances, a_stale_redis_entry_is_ignored_and_overwritten, a_tampered_redis_entry_cannot_redirect_tables_or_drop_policies);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processes_on_one_file_follow_each_other() {
        let (db, a) = metaengine_testing::sqlite().await;
        let b = db.open_another().await;
        instances_follow_each_other(a, b, "sqlite").await;
    }
}

mod postgres {
    use super::*;

    metaengine_testing::backend_tests!(postgres; a_hit_returns_the_same_model, concurrent_misses_compile_once, an_activation_is_served_after_invalidation, missing_models_are_explained, precompile_warms_every_active_entity, redis_shares_models_between_instances, a_stale_redis_entry_is_ignored_and_overwritten, a_tampered_redis_entry_cannot_redirect_tables_or_drop_policies);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_on_one_database_follow_each_other() {
        let (db, a) = metaengine_testing::postgres().await;
        let b = db.open_another().await;
        instances_follow_each_other(a, b, "postgres").await;
    }
}

#[tokio::test]
async fn an_unreachable_redis_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let store = metaengine_store_sqlite::SqliteStore::connect(&format!(
        "sqlite://{}/m.db",
        dir.path().display()
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let config = CacheConfig {
        // Nothing listens on port 1.
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..CacheConfig::default()
    };
    let err = ModelCache::new(Arc::new(store), config)
        .await
        .err()
        .expect("startup must fail");
    assert!(matches!(err, CacheError::Redis(_)), "{err:?}");
}
