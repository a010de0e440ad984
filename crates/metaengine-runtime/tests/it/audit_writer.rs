//! The batched audit writer against real databases: events arrive within the flush interval,
//! concurrent writers lose nothing, and shutdown writes what is queued.

use std::sync::Arc;
use std::time::Duration;

use metaengine_runtime::{AuditWriter, AuditWriterConfig};
use metaengine_store::{AuditActor, AuditQuery, EventType, NewAudit, PageRequest, Store};

fn read_event(i: usize) -> NewAudit {
    let actor = AuditActor {
        user_id: format!("user{}", i % 7),
        tenant_id: "acme".into(),
        realm_id: "eu".into(),
    };
    NewAudit::success(
        EventType::DataRead,
        &actor,
        "Invoice",
        Some(serde_json::json!({ "n": i })),
    )
}

/// Reads recorded: a row merging several reads (`details.count`) counts each of them.
async fn count(store: &dyn Store) -> u64 {
    let mut reads = 0;
    for page in 1.. {
        let rows = store
            .query_audit(&AuditQuery {
                event_types: vec![EventType::DataRead],
                page: PageRequest::new(page, PageRequest::MAX_SIZE),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        for row in &rows.data {
            let details = row.details.as_ref().unwrap();
            reads += details.get("count").and_then(|c| c.as_u64()).unwrap_or(1);
        }
        if u64::from(page) >= rows.meta.total_pages {
            break;
        }
    }
    reads
}

/// Rows of `data.read`.
async fn rows(store: &dyn Store) -> u64 {
    store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataRead],
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .meta
        .total
}

async fn events_arrive_within_the_flush_interval(store: Arc<dyn Store>) {
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    for i in 0..3 {
        writer.record(read_event(i)).await;
    }
    let start = std::time::Instant::now();
    while count(store.as_ref()).await < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "not written within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("written after {:?}", start.elapsed());
    assert_eq!(writer.depth(), 0);
}

async fn concurrent_writers_lose_nothing(store: Arc<dyn Store>) {
    let writer = AuditWriter::spawn(
        store.clone(),
        AuditWriterConfig {
            max_batch: 100,
            capacity: 64,
            ..AuditWriterConfig::default()
        },
    );
    let mut tasks = Vec::new();
    for t in 0..4 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                writer.record(read_event(t * 1000 + i)).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    writer.flush().await;
    assert_eq!(count(store.as_ref()).await, 2000);
    assert_eq!(writer.depth(), 0);
    // Seven users' reads of one entity share rows: at most seven per batch of 100.
    let rows = rows(store.as_ref()).await;
    assert!((7..2000).contains(&rows), "{rows} rows");
}

async fn shutdown_writes_what_is_queued(store: Arc<dyn Store>) {
    let writer = AuditWriter::spawn(
        store.clone(),
        AuditWriterConfig {
            flush_interval: Duration::from_secs(3600),
            ..AuditWriterConfig::default()
        },
    );
    for i in 0..10 {
        writer.record(read_event(i)).await;
    }
    writer.shutdown().await;
    assert_eq!(count(store.as_ref()).await, 10);
}

/// Issue 12 item 12: an event the database refuses (PostgreSQL cannot store a NUL) is lost
/// alone; the other events of its batch, other tenants' included, are written.
async fn one_bad_event_does_not_take_its_batch(store: Arc<dyn Store>) {
    let writer = AuditWriter::spawn(
        store.clone(),
        AuditWriterConfig {
            flush_interval: Duration::from_secs(3600),
            ..AuditWriterConfig::default()
        },
    );
    for i in 0..20 {
        writer.record(read_event(i)).await;
    }
    let bad = AuditActor {
        user_id: "u\u{0}".into(),
        tenant_id: "other".into(),
        realm_id: "eu".into(),
    };
    writer
        .record(NewAudit::success(
            EventType::EntityCreate,
            &bad,
            "Invoice",
            None,
        ))
        .await;
    for i in 20..30 {
        writer.record(read_event(i)).await;
    }
    writer.shutdown().await;
    assert_eq!(count(store.as_ref()).await, 30);
}

crate::on_both_backends!(
    events_arrive_within_the_flush_interval,
    concurrent_writers_lose_nothing,
    shutdown_writes_what_is_queued,
    one_bad_event_does_not_take_its_batch,
);
