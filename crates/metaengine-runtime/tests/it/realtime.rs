//! The realtime feed in the runtime, on both backends: a subscriber that does not keep up is
//! dropped with a `reset` and never holds the writers back; the feed reads the log once per
//! change, however many subscribers there are.

use std::sync::Arc;
use std::time::Duration;

use metaengine_runtime::{
    Actor, Delivery, RealtimeConfig, Services, ServicesConfig, SubscribeRequest,
};
use metaengine_store::Store;
use serde_json::json;

fn admin() -> Actor {
    Actor {
        user_id: "root".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    }
}

async fn services(store: Arc<dyn Store>, buffer: usize) -> Services {
    let services = Services::build(
        store,
        ServicesConfig {
            realtime: RealtimeConfig {
                buffer,
                ..RealtimeConfig::default()
            },
            ..ServicesConfig::default()
        },
    )
    .await
    .unwrap();
    let a = admin();
    let r = &services.registry;
    r.create_entity(&a, "Doc", None).await.unwrap();
    r.create_version(
        &a,
        "Doc",
        "v1",
        json!({ "fields": [{ "name": "n", "type": "integer" }],
                "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
    )
    .await
    .unwrap();
    r.activate(&a, "Doc", "v1").await.unwrap();
    services
}

fn docs() -> SubscribeRequest {
    SubscribeRequest {
        entities: vec!["Doc".into()],
        ..SubscribeRequest::default()
    }
}

async fn a_slow_subscriber_gets_reset_and_the_writers_go_on(store: Arc<dyn Store>) {
    let s = services(store, 4).await;
    let a = admin();
    let mut slow = s.realtime.subscribe(&a, &docs()).await.unwrap();
    let mut fast = s.realtime.subscribe(&a, &docs()).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(Delivery::Event(_)) = fast.next().await {
            n += 1;
            if n == 20 {
                break;
            }
        }
        n
    });
    for n in 0..20 {
        s.data.create(&a, "Doc", &json!({ "n": n })).await.unwrap();
        // Give the feed a turn, as separate requests would.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .unwrap()
            .unwrap(),
        20,
        "a subscriber that keeps up gets every event"
    );
    // The slow one: what fitted in its buffer, then a reset, then the end.
    let mut got = Vec::new();
    while let Some(d) = tokio::time::timeout(Duration::from_secs(5), slow.next())
        .await
        .unwrap()
    {
        got.push(d);
    }
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got[..4].iter().all(|d| matches!(d, Delivery::Event(_))));
    assert_eq!(got[4], Delivery::Reset);
    assert_eq!(s.realtime.subscribers(), 0);
}

async fn the_log_is_read_once_per_change_not_per_subscriber(store: Arc<dyn Store>) {
    let s = services(store.clone(), 1024).await;
    let a = admin();
    let mut subs = Vec::new();
    for _ in 0..50 {
        subs.push(s.realtime.subscribe(&a, &docs()).await.unwrap());
    }
    // Let the feed settle, then count the statements of ten writes and their delivery.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = store.statements_run();
    for n in 0..10 {
        s.data.create(&a, "Doc", &json!({ "n": n })).await.unwrap();
    }
    for sub in &mut subs {
        for _ in 0..10 {
            let d = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .unwrap();
            assert!(matches!(d, Some(Delivery::Event(_))));
        }
    }
    let statements = store.statements_run() - before;
    // Ten writes; the feed's reads and announcements are a handful per wake-up, and nothing
    // per subscriber (50 subscribers × 10 events would be 500).
    assert!(statements < 60, "{statements} statements");
}

crate::on_both_backends!(
    a_slow_subscriber_gets_reset_and_the_writers_go_on,
    the_log_is_read_once_per_change_not_per_subscriber,
);

/// A change of a transaction still running when the feed starts (its id below the log's end)
/// reaches a subscriber resuming from before it: the feed starts where the log is final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_starts_where_the_log_is_final() {
    use sqlx::Connection as _;
    let (db, store) = metaengine_testing::postgres().await;
    let s = services(store, 1024).await;
    let a = admin();
    s.data.create(&a, "Doc", &json!({ "n": 0 })).await.unwrap();
    let first = s.store.change_bounds().await.unwrap().last;
    // A writer that took its id and has not committed yet…
    let mut open = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let mut tx = open.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO core.ent_doc (tenant_id, realm_id, id, created_at, updated_at, created_by, \
         updated_by, n) VALUES ('default', 'main', gen_random_uuid(), now(), now(), 'x', 'x', 1)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    // …and one after it that has.
    s.data.create(&a, "Doc", &json!({ "n": 2 })).await.unwrap();
    let resume = SubscribeRequest {
        last_event_id: Some(first.to_string()),
        ..docs()
    };
    // The subscriber resumes and reads at once, while that writer is still running.
    let realtime = s.realtime.clone();
    let reading = tokio::spawn(async move {
        let mut sub = realtime.subscribe(&admin(), &resume).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
                Ok(Some(Delivery::Event(e))) => got.push(e.id),
                _ => break,
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    let got = reading.await.unwrap();
    assert_eq!(got, [first + 1, first + 2], "both changes, in order");
}
