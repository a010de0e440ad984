//! The audit hash chain (SPEC §16) on a real database: appends from many writers at once,
//! retention's checkpoints, and rows changed, deleted or inserted by hand with SQL.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::json;

use crate::chain::{self, Content};
use crate::{
    AuditActor, AuditQuery, AuditRow, EventType, NewAudit, NewEntity, PageRequest, Store, Timestamp,
};

/// Runs one SQL statement on the store's database, as a person with database access would.
pub type Exec = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn actor(tenant: &str) -> AuditActor {
    AuditActor {
        user_id: "alice".into(),
        tenant_id: tenant.into(),
        realm_id: "main".into(),
    }
}

fn event(tenant: &str, n: usize) -> NewAudit {
    NewAudit::success(
        EventType::DataRead,
        &actor(tenant),
        "Invoice",
        Some(json!({ "n": n, "amount": 12.5, "nested": { "b": 1.0, "a": [true, null] } })),
    )
}

/// Every row of a tenant, in chain order.
/// Creates the entity `name` as alice of `tenant`: a write whose audit row is sealed in its
/// transaction and waits for the chainer.
async fn create_entity(store: &dyn Store, tenant: &str, name: &str) {
    let new = NewEntity {
        name: name.into(),
        description: None,
        created_by: "alice".into(),
    };
    let audit = NewAudit::success(EventType::EntityCreate, &actor(tenant), name, None);
    store.create_entity(&new, &audit).await.unwrap();
}

async fn chain_of(store: &dyn Store, tenant: &str) -> Vec<AuditRow> {
    let mut rows = store
        .query_audit(&AuditQuery {
            tenant_id: Some(tenant.into()),
            page: PageRequest::new(1, 1_000),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data;
    rows.sort_by_key(|r| r.seq);
    rows
}

/// Eight writers append to two tenants at once, through the batched path and through metadata
/// changes in their own transactions (sealed, then chained by a chainer running meanwhile):
/// every chain holds, with every row in it; a purge deletes the old rows and leaves one
/// checkpoint per tenant from which the rest still verifies.
pub async fn audit_chain_holds_under_concurrency_and_purge(store: Arc<dyn Store>) {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chainer = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut chained = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                chained += store.chain_audit().await.unwrap();
                tokio::task::yield_now().await;
            }
            chained
        })
    };
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let tenant = if (writer + i) % 2 == 0 {
                    "acme"
                } else {
                    "globex"
                };
                let batch: Vec<NewAudit> = (0..3).map(|k| event(tenant, i * 3 + k)).collect();
                store.append_audit(&batch).await.unwrap();
                if i % 5 == 0 {
                    let name = format!("E{writer}x{i}");
                    create_entity(store.as_ref(), tenant, &name).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let chained_meanwhile = chainer.await.unwrap();
    assert!(chained_meanwhile <= 8 * 2, "{chained_meanwhile}");
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.rows, 8 * 10 * 3 + 8 * 2);
    assert_eq!(
        store.chain_audit().await.unwrap(),
        0,
        "verify chained the rest"
    );
    assert_eq!(report.tenants, 2);
    for tenant in ["acme", "globex"] {
        let rows = chain_of(store.as_ref(), tenant).await;
        let seqs: Vec<i64> = rows.iter().filter_map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>());
        // The stored hash is the one the chain's definition gives, from the row as read back.
        for pair in rows.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
            let content = chain::content(&Content::from(&pair[1]));
            let prev = pair[1].prev_hash.as_deref().unwrap();
            assert_eq!(
                pair[1].hash.as_deref(),
                Some(chain::link(prev, &content).as_str())
            );
        }
        assert_eq!(rows[0].prev_hash.as_deref(), Some(chain::GENESIS));
    }

    let purged = store
        .purge_audit(Timestamp::from(
            chrono::Utc::now() + chrono::Duration::seconds(1),
        ))
        .await
        .unwrap();
    assert_eq!(purged.tenants, 2);
    assert_eq!(purged.rows, 8 * 10 * 3 + 8 * 2);
    for tenant in ["acme", "globex"] {
        let rows = chain_of(store.as_ref(), tenant).await;
        assert_eq!(rows.len(), 1, "one checkpoint row");
        assert_eq!(rows[0].event_type, "audit.purge");
        let details = rows[0].details.clone().unwrap();
        assert_eq!(details["throughSeq"], json!(rows[0].seq.unwrap() - 1));
        assert_eq!(details["throughHash"], json!(rows[0].prev_hash));
    }
    store.append_audit(&[event("acme", 99)]).await.unwrap();
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!(report.rows, 3);
    // Nothing older than the cut-off: a second purge changes nothing.
    let again = store
        .purge_audit(Timestamp::from(
            chrono::Utc::now() - chrono::Duration::days(1),
        ))
        .await
        .unwrap();
    assert_eq!(again.rows, 0);
}

/// Rows changed, deleted or inserted by hand with SQL in the audit table `table`: `verify`
/// names the first broken row of the tenant and why; the other tenants still verify.
pub async fn audit_tampering_is_found(store: Arc<dyn Store>, exec: Exec, table: &str) {
    let s = store.as_ref();
    let tenants = [
        "changed", "deleted", "first", "last", "inserted", "forged", "sealed", "intact",
    ];
    for tenant in tenants {
        let batch: Vec<NewAudit> = (0..5).map(|n| event(tenant, n)).collect();
        s.append_audit(&batch).await.unwrap();
    }
    // A row a transaction wrote sealed and no chainer has reached: not a broken chain.
    create_entity(s, "intact", "Sealed").await;
    let pending = chain_of(s, "intact").await;
    assert_eq!(pending.len(), 6);
    assert!(
        pending.iter().any(|r| r.seq.is_none() && r.seal.is_some()),
        "{pending:?}"
    );
    let report = s.verify_audit(None).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!((report.tenants, report.rows), (8, 41));
    let chained = chain_of(s, "intact").await;
    assert_eq!(chained[5].event_type, "meta.entity.create");
    assert_eq!(
        (chained[5].seq, chained[5].seal.as_deref()),
        (Some(6), None)
    );
    let rows = |tenant: &'static str| chain_of(s, tenant);
    let event_id = |rows: &[AuditRow], i: usize| rows[i].event_id.clone();

    let changed = rows("changed").await;
    exec(format!(
        "UPDATE {table} SET details = NULL WHERE event_id = '{}'",
        event_id(&changed, 2)
    ))
    .await;
    let deleted = rows("deleted").await;
    exec(format!(
        "DELETE FROM {table} WHERE event_id = '{}'",
        event_id(&deleted, 2)
    ))
    .await;
    let first = rows("first").await;
    exec(format!(
        "DELETE FROM {table} WHERE event_id = '{}'",
        event_id(&first, 0)
    ))
    .await;
    let last = rows("last").await;
    exec(format!(
        "DELETE FROM {table} WHERE event_id = '{}'",
        event_id(&last, 4)
    ))
    .await;
    // A row inserted with the seed's columns only, as someone unaware of the chain would.
    exec(format!(
        "INSERT INTO {table} (id, event_id, event_type, timestamp, user_id, tenant_id, realm_id, \
         action, resource, result) VALUES ('0190a0a0-0000-7000-8000-000000000001', 'by-hand', \
         'data.read', '2026-12-01T00:00:00.000Z', 'mallory', 'inserted', 'main', 'read', \
         'Invoice', 'success')"
    ))
    .await;
    // A row inserted with a made-up seal, as someone who knows rows wait sealed to be chained
    // would: without the key (not in the database) the seal does not vouch for it, so no
    // chainer takes it in and `verify` reports it.
    exec(format!(
        "INSERT INTO {table} (id, event_id, event_type, timestamp, user_id, tenant_id, realm_id, \
         action, resource, result, seal) VALUES ('0190a0a0-0000-7000-8000-000000000002', \
         'made-up-seal', 'data.read', '2026-12-01T00:00:00.000Z', 'mallory', 'sealed', 'main', \
         'read', 'Invoice', 'success', '{}')",
        "ab".repeat(32)
    ))
    .await;
    assert_eq!(s.chain_audit().await.unwrap(), 0);
    // A row appended after the chain's end with a correct hash, as someone who knows the chain
    // would (the head, which records the end, was not moved).
    let forged = rows("forged").await;
    let tail = &forged[4];
    let mut row = tail.clone();
    row.id = crate::Id::new_v7();
    row.event_id = "forged".into();
    let hash = chain::link(
        tail.hash.as_deref().unwrap(),
        &chain::content(&Content::from(&row)),
    );
    exec(format!(
        "INSERT INTO {table} (id, event_id, event_type, timestamp, user_id, tenant_id, realm_id, \
         action, resource, result, seq, prev_hash, hash) VALUES ('{}', 'forged', '{}', '{}', \
         '{}', 'forged', '{}', '{}', '{}', '{}', 6, '{}', '{hash}')",
        row.id,
        row.event_type,
        row.timestamp,
        row.user_id,
        row.realm_id,
        row.action,
        row.resource,
        row.result,
        tail.hash.as_deref().unwrap(),
    ))
    .await;
    // The forged row has details NULL while its hash covers the original details: fix that by
    // writing the same details back (the hash covers what the row says).
    exec(format!(
        "UPDATE {table} SET details = (SELECT details FROM {table} WHERE event_id = '{}') \
         WHERE event_id = 'forged'",
        tail.event_id
    ))
    .await;

    let expect = [
        (
            "changed",
            Some(event_id(&changed, 2)),
            "content does not match",
        ),
        (
            "deleted",
            Some(event_id(&deleted, 3)),
            "before it in the chain is missing",
        ),
        (
            "first",
            Some(event_id(&first, 1)),
            "neither starts the chain",
        ),
        (
            "last",
            Some(event_id(&last, 3)),
            "after it in the chain are missing",
        ),
        (
            "inserted",
            Some("by-hand".to_owned()),
            "no place in the chain",
        ),
        ("forged", Some("forged".to_owned()), "past the end"),
        (
            "sealed",
            Some("made-up-seal".to_owned()),
            "no place in the chain",
        ),
    ];
    for (tenant, event, reason) in expect {
        let report = s.verify_audit(Some(tenant)).await.unwrap();
        assert!(!report.verified, "{tenant}: {report:?}");
        let broken = report.first_broken.unwrap();
        assert_eq!(broken.tenant_id, tenant);
        assert_eq!(broken.event_id, event, "{tenant}: {}", broken.reason);
        assert!(
            broken.reason.contains(reason),
            "{tenant}: {}",
            broken.reason
        );
    }
    let intact = s.verify_audit(Some("intact")).await.unwrap();
    assert!(intact.verified, "{intact:?}");
    assert_eq!((intact.tenants, intact.rows), (1, 6));
    let all = s.verify_audit(None).await.unwrap();
    assert!(!all.verified);

    // A row changed by hand after its write, before the chainer's quick pass reached it: the
    // pass appends it with the content that was written (and sealed), so `verify` finds the
    // change.
    create_entity(s, "early", "Early").await;
    exec(format!(
        "UPDATE {table} SET resource = 'Changed' WHERE tenant_id = 'early'"
    ))
    .await;
    assert_eq!(s.chain_written_audit().await.unwrap(), 1);
    let early = s.verify_audit(Some("early")).await.unwrap();
    let broken = early.first_broken.unwrap();
    assert!(
        broken.reason.contains("content does not match"),
        "{}",
        broken.reason
    );
}

/// A database migrated up to the migration before the chain, holding audit rows of two
/// tenants (inserted here with SQL in the seed's shape): `migrate` adds the chain and chains
/// those rows in time order, and the chains verify. `store` has not been migrated further.
pub async fn rows_before_the_chain_are_chained(store: Arc<dyn Store>, exec: Exec, table: &str) {
    for (i, tenant) in ["b", "a", "b", "a", "b"].into_iter().enumerate() {
        exec(format!(
            "INSERT INTO {table} (id, event_id, event_type, timestamp, user_id, tenant_id, \
             realm_id, action, resource, details, result) VALUES \
             ('0190a0a0-0000-7000-8000-00000000000{i}', 'old-{i}', 'meta.entity.create', \
             '2026-11-0{}T10:00:00.000Z', 'alice', '{tenant}', 'main', 'create', 'E{i}', \
             '{{\"z\": 1.0, \"a\": [1, \"x\"]}}', 'success')",
            9 - i
        ))
        .await;
    }
    // The chain's migration and the three after it.
    assert_eq!(store.migrate().await.unwrap(), 4);
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!((report.tenants, report.rows), (2, 5));
    // Oldest first: old-4 (Nov 5) is b's first row, old-0 (Nov 9) its last.
    let b = chain_of(store.as_ref(), "b").await;
    let order: Vec<&str> = b.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(order, ["old-4", "old-2", "old-0"]);
    // New rows continue the chains.
    store
        .append_audit(&[event("a", 1), event("c", 2)])
        .await
        .unwrap();
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.verified, "{report:?}");
    assert_eq!((report.tenants, report.rows), (3, 7));
    // A second `migrate` chains nothing more: a row inserted by hand stays outside the chain.
    exec(format!(
        "INSERT INTO {table} (id, event_id, event_type, timestamp, user_id, tenant_id, realm_id, \
         action, resource, result) VALUES ('0190a0a0-0000-7000-8000-0000000000ff', 'late', \
         'data.read', '2026-12-01T00:00:00.000Z', 'mallory', 'a', 'main', 'read', 'Invoice', \
         'success')"
    ))
    .await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    let report = store.verify_audit(Some("a")).await.unwrap();
    assert_eq!(
        report.first_broken.map(|b| b.event_id),
        Some(Some("late".to_owned()))
    );
}

/// Two stores on one database: `writer` seals with one key, `same` has that key too, `other`
/// has another. `other` does not chain what `writer` sealed and reports it as inserted by hand
/// (instances must share the audit key); `same` chains it and the chain verifies. The chainer's
/// quick pass (`chain_written_audit`) chains the rows its own store sealed, once; a row another
/// store sealed waits for a full pass.
pub async fn sealed_rows_need_the_writers_key(
    writer: Arc<dyn Store>,
    same: Arc<dyn Store>,
    other: Arc<dyn Store>,
) {
    create_entity(writer.as_ref(), "acme", "Keyed").await;
    assert_eq!(other.chain_audit().await.unwrap(), 0);
    let report = other.verify_audit(Some("acme")).await.unwrap();
    let broken = report.first_broken.unwrap();
    assert!(
        broken.reason.contains("no place in the chain"),
        "{broken:?}"
    );
    assert_eq!(same.chain_audit().await.unwrap(), 1);
    for store in [&writer, &same, &other] {
        let report = store.verify_audit(Some("acme")).await.unwrap();
        assert!(report.verified, "{report:?}");
        assert_eq!(report.rows, 1);
    }

    for (store, name) in [(&writer, "Mine"), (&same, "Theirs")] {
        create_entity(store.as_ref(), "acme", name).await;
    }
    // `writer`'s quick pass: its own new row ("Keyed" is chained already), not `same`'s.
    assert_eq!(writer.chain_written_audit().await.unwrap(), 1);
    assert_eq!(writer.chain_written_audit().await.unwrap(), 0);
    let unchained = |rows: Vec<AuditRow>| {
        rows.into_iter()
            .filter(|r| r.seq.is_none())
            .map(|r| r.resource)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        unchained(chain_of(writer.as_ref(), "acme").await),
        ["Theirs"]
    );
    assert_eq!(
        writer
            .chain_audit_older_than(std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        0,
        "the background full pass leaves a row sealed just now to the quick pass"
    );
    assert_eq!(writer.chain_audit().await.unwrap(), 1, "the full pass");
    assert_eq!(
        same.chain_written_audit().await.unwrap(),
        0,
        "chained already"
    );
    let report = other.verify_audit(Some("acme")).await.unwrap();
    assert_eq!(report.rows, 3);
    assert!(report.verified, "{report:?}");
}
