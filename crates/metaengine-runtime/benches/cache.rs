//! Cache hit (SPEC §4 numbers: ≤ 1 µs median): the synchronous fast path `get_cached` and the
//! async `active_model` on a warm entry, over a SQLite store in a temporary directory.
#![expect(
    clippy::unwrap_used,
    missing_docs,
    reason = "test code: a failed step is a failed test"
)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use metaengine_runtime::{CacheConfig, ModelCache};
use metaengine_store::{AuditActor, EventType, NewAudit, NewEntity, NewVersion, Store};
use metaengine_store_sqlite::SqliteStore;
use serde_json::json;

async fn warm_cache(dir: &std::path::Path) -> ModelCache {
    let store = SqliteStore::connect(&format!("sqlite://{}/m.db", dir.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let actor = AuditActor {
        user_id: "bench".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
    };
    let audit = |t| NewAudit::success(t, &actor, "Invoice", None);
    store
        .create_entity(
            &NewEntity {
                name: "Invoice".into(),
                description: None,
                created_by: "bench".into(),
            },
            &audit(EventType::EntityCreate),
        )
        .await
        .unwrap();
    store
        .create_version(
            &NewVersion {
                entity_name: "Invoice".into(),
                version: "v1".into(),
                schema: json!({ "fields": [
                    { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
                    { "name": "customerId", "type": "string", "required": true },
                    { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 },
                    { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"] },
                    { "name": "dueDate", "type": "date" }
                ]}),
                created_by: "bench".into(),
            },
            &audit(EventType::VersionCreate),
        )
        .await
        .unwrap();
    store
        .activate_version("Invoice", "v1", &|_plan| vec![])
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let cache = ModelCache::new(store, CacheConfig::default())
        .await
        .unwrap();
    assert_eq!(cache.precompile_all().await.unwrap(), 1);
    cache
}

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = runtime.block_on(warm_cache(dir.path()));

    c.bench_function("cache hit: get_cached", |b| {
        b.iter(|| black_box(cache.get_cached(black_box("Invoice")).unwrap()));
    });
    c.bench_function("cache hit: active_model", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(cache.active_model(black_box("Invoice")).await.unwrap()) });
    });
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
