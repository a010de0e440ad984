//! The backend conformance suite: one story per function, written once against the [`Store`]
//! trait and run by every backend crate on a fresh database per test with
//! [`conformance_tests!`](crate::conformance_tests).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "a test suite: a failed step is a failed test"
)]

use std::sync::Arc;

use serde_json::json;

pub mod chain;
pub mod records;
pub mod tables;

pub use chain::audit_chain_holds_under_concurrency_and_purge;

use crate::{
    AuditActor, AuditQuery, AuditResult, EventType, NewAudit, NewEntity, NewTenant, NewVersion,
    PageRequest, Store, StoreError, Timestamp,
};

/// Generates one `#[tokio::test]` per conformance case. `$make` is an async expression that
/// yields `(guard, Arc<dyn Store>)` on a fresh, migrated database; the guard lives until the
/// case ends (for PostgreSQL it drops the test database).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_guard, store) = $make.await;
                $crate::testkit::$case(store).await;
            }
        )*
    };
    ($make:expr) => {
        $crate::conformance_tests!($make;
            migrations_are_idempotent_and_seed_the_default_tenant,
            entities_round_trip_with_their_audit,
            duplicate_entity_is_refused_and_changes_nothing,
            versions_follow_their_lifecycle,
            activated_versions_are_immutable,
            stale_schema_updates_are_refused,
            deleting_an_entity_removes_its_versions,
            concurrent_activations_leave_one_active_version,
            audit_queries_filter_order_and_page,
            tenants_round_trip,
            audit_chain_holds_under_concurrency_and_purge,
        );
    };
}

pub fn actor() -> AuditActor {
    AuditActor {
        user_id: "alice".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
    }
}

fn audit(t: EventType, resource: &str) -> NewAudit {
    NewAudit::success(t, &actor(), resource, Some(json!({ "test": true })))
}

pub fn invoice_schema() -> serde_json::Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 }
    ]})
}

async fn entity(store: &dyn Store, name: &str) {
    store
        .create_entity(
            &NewEntity {
                name: name.into(),
                description: Some("test".into()),
                created_by: "alice".into(),
            },
            &audit(EventType::EntityCreate, name),
        )
        .await
        .unwrap();
}

async fn version(store: &dyn Store, entity: &str, version: &str) {
    store
        .create_version(
            &NewVersion {
                entity_name: entity.into(),
                version: version.into(),
                schema: invoice_schema(),
                created_by: "alice".into(),
            },
            &audit(EventType::VersionCreate, entity),
        )
        .await
        .unwrap();
}

async fn audit_count(store: &dyn Store, resource: &str) -> u64 {
    store
        .query_audit(&AuditQuery {
            resource: Some(resource.into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .meta
        .total
}

pub async fn migrations_are_idempotent_and_seed_the_default_tenant(store: Arc<dyn Store>) {
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "second migrate must be a no-op"
    );
    assert!(store.is_ready().await.unwrap());
    let tenant = store.get_tenant("default").await.unwrap().unwrap();
    assert_eq!(tenant.status, crate::TenantStatus::Active);
}

pub async fn entities_round_trip_with_their_audit(store: Arc<dyn Store>) {
    let s = store.as_ref();
    for name in ["Invoice", "Order", "Customer"] {
        entity(s, name).await;
    }
    let got = s.get_entity("Invoice").await.unwrap().unwrap();
    assert_eq!(got.name, "Invoice");
    assert_eq!(got.description.as_deref(), Some("test"));
    assert_eq!(got.created_by, "alice");
    assert_eq!(got.active_version, None);
    assert_eq!(got.id.0.get_version_num(), 7);

    let page = s.list_entities(PageRequest::new(1, 2)).await.unwrap();
    let names: Vec<_> = page.data.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Customer", "Invoice"]);
    assert_eq!((page.meta.total, page.meta.total_pages), (3, 2));
    let page2 = s.list_entities(PageRequest::new(2, 2)).await.unwrap();
    assert_eq!(page2.data.len(), 1);

    let updated = s
        .update_entity("Invoice", None, &audit(EventType::EntityUpdate, "Invoice"))
        .await
        .unwrap();
    assert_eq!(updated.description, None);
    assert!(updated.updated_at >= got.updated_at);

    s.delete_entity("Order", false, &audit(EventType::EntityDelete, "Order"))
        .await
        .unwrap();
    assert!(s.get_entity("Order").await.unwrap().is_none());
    assert!(!s.entity_exists("Order").await.unwrap());
    assert!(matches!(
        s.delete_entity("Order", false, &audit(EventType::EntityDelete, "Order"))
            .await,
        Err(StoreError::EntityNotFound(_))
    ));
    assert_eq!(audit_count(s, "Invoice").await, 2);
    assert_eq!(
        audit_count(s, "Order").await,
        2,
        "create and delete, not the failed delete"
    );
}

pub async fn duplicate_entity_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let s = store.as_ref();
    entity(s, "Invoice").await;
    let before = s.get_entity("Invoice").await.unwrap().unwrap();
    let err = s
        .create_entity(
            &NewEntity {
                name: "Invoice".into(),
                description: Some("other".into()),
                created_by: "bob".into(),
            },
            &audit(EventType::EntityCreate, "Invoice"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::EntityExists(ref n) if n == "Invoice"),
        "{err:?}"
    );
    assert_eq!(s.get_entity("Invoice").await.unwrap().unwrap(), before);
    assert_eq!(
        audit_count(s, "Invoice").await,
        1,
        "the refused create wrote nothing"
    );
}

pub async fn versions_follow_their_lifecycle(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let missing = s
        .create_version(
            &NewVersion {
                entity_name: "Ghost".into(),
                version: "v1".into(),
                schema: invoice_schema(),
                created_by: "alice".into(),
            },
            &audit(EventType::VersionCreate, "Ghost"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::EntityNotFound(_))));

    entity(s, "Invoice").await;
    version(s, "Invoice", "v1").await;
    let dup = s
        .create_version(
            &NewVersion {
                entity_name: "Invoice".into(),
                version: "v1".into(),
                schema: json!({}),
                created_by: "alice".into(),
            },
            &audit(EventType::VersionCreate, "Invoice"),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::VersionExists { .. })));
    version(s, "Invoice", "v2").await;

    let v1 = s.get_version("Invoice", "v1").await.unwrap().unwrap();
    assert_eq!(v1.schema, invoice_schema());
    assert!(!v1.is_active);
    assert!(s.active_version("Invoice").await.unwrap().is_none());

    let first = s
        .activate_version("Invoice", "v1", &|_| {
            vec![audit(EventType::VersionActivate, "Invoice")]
        })
        .await
        .unwrap();
    assert_eq!(first.previous, None);
    assert!(first.version.is_active);
    assert!(first.version.activated_at.is_some());

    let second = s
        .activate_version("Invoice", "v2", &|_| {
            vec![audit(EventType::VersionActivate, "Invoice")]
        })
        .await
        .unwrap();
    assert_eq!(second.previous.as_deref(), Some("v1"));
    let active = s.active_version("Invoice").await.unwrap().unwrap();
    assert_eq!(active.version, "v2");
    assert!(
        !s.get_version("Invoice", "v1")
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    let owner = s.get_entity("Invoice").await.unwrap().unwrap();
    assert_eq!(owner.active_version.as_deref(), Some("v2"));

    let refused = s
        .delete_version("Invoice", "v2", &audit(EventType::VersionDelete, "Invoice"))
        .await;
    assert!(matches!(refused, Err(StoreError::VersionActive { .. })));

    let not_active = s
        .deactivate_version(
            "Invoice",
            "v1",
            &audit(EventType::VersionDeactivate, "Invoice"),
        )
        .await;
    assert!(matches!(
        not_active,
        Err(StoreError::VersionNotActive { .. })
    ));
    s.deactivate_version(
        "Invoice",
        "v2",
        &audit(EventType::VersionDeactivate, "Invoice"),
    )
    .await
    .unwrap();
    assert!(s.active_version("Invoice").await.unwrap().is_none());
    assert_eq!(
        s.get_entity("Invoice")
            .await
            .unwrap()
            .unwrap()
            .active_version,
        None
    );

    s.delete_version("Invoice", "v1", &audit(EventType::VersionDelete, "Invoice"))
        .await
        .unwrap();
    let left: Vec<_> = s
        .list_versions("Invoice")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(left, ["v2"]);
}

pub async fn activated_versions_are_immutable(store: Arc<dyn Store>) {
    let s = store.as_ref();
    entity(s, "Invoice").await;
    version(s, "Invoice", "v1").await;
    let changed = json!({ "fields": [{ "name": "note", "type": "text" }] });
    let edited = s
        .update_version_schema(
            "Invoice",
            "v1",
            &invoice_schema(),
            &changed,
            &audit(EventType::VersionUpdate, "Invoice"),
        )
        .await
        .unwrap();
    assert_eq!(edited.schema, changed);

    s.activate_version("Invoice", "v1", &|_| {
        vec![audit(EventType::VersionActivate, "Invoice")]
    })
    .await
    .unwrap();
    s.deactivate_version(
        "Invoice",
        "v1",
        &audit(EventType::VersionDeactivate, "Invoice"),
    )
    .await
    .unwrap();
    // Deactivated, but it has been active: still immutable.
    let refused = s
        .update_version_schema(
            "Invoice",
            "v1",
            &changed,
            &invoice_schema(),
            &audit(EventType::VersionUpdate, "Invoice"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::VersionImmutable { .. })),
        "{refused:?}"
    );
    assert_eq!(
        s.get_version("Invoice", "v1")
            .await
            .unwrap()
            .unwrap()
            .schema,
        changed
    );
}

pub async fn stale_schema_updates_are_refused(store: Arc<dyn Store>) {
    let s = store.as_ref();
    entity(s, "Invoice").await;
    version(s, "Invoice", "v1").await;
    let stale = json!({ "fields": [] });
    let refused = s
        .update_version_schema(
            "Invoice",
            "v1",
            &stale,
            &json!({ "fields": [{ "name": "x", "type": "text" }] }),
            &audit(EventType::VersionUpdate, "Invoice"),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Concurrent(_))));
    assert_eq!(
        s.get_version("Invoice", "v1")
            .await
            .unwrap()
            .unwrap()
            .schema,
        invoice_schema()
    );
    let missing = s
        .update_version_schema(
            "Invoice",
            "v9",
            &stale,
            &stale,
            &audit(EventType::VersionUpdate, "Invoice"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::VersionNotFound { .. })));
}

pub async fn deleting_an_entity_removes_its_versions(store: Arc<dyn Store>) {
    let s = store.as_ref();
    entity(s, "Invoice").await;
    version(s, "Invoice", "v1").await;
    s.activate_version("Invoice", "v1", &|_| {
        vec![audit(EventType::VersionActivate, "Invoice")]
    })
    .await
    .unwrap();
    s.delete_entity("Invoice", false, &audit(EventType::EntityDelete, "Invoice"))
        .await
        .unwrap();
    assert!(s.list_versions("Invoice").await.unwrap().is_empty());
    // The name is free again, with no leftover versions.
    entity(s, "Invoice").await;
    version(s, "Invoice", "v1").await;
}

pub async fn concurrent_activations_leave_one_active_version(store: Arc<dyn Store>) {
    entity(store.as_ref(), "Invoice").await;
    for i in 1..=20 {
        version(store.as_ref(), "Invoice", &format!("v{i}")).await;
    }
    let mut tasks = Vec::new();
    for i in 1..=20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let label = format!("v{i}");
            store
                .activate_version("Invoice", &label, &|_| {
                    vec![audit(EventType::VersionActivate, "Invoice")]
                })
                .await
                .map(|_| label)
        }));
    }
    let mut succeeded = Vec::new();
    for task in tasks {
        if let Ok(label) = task.await.unwrap() {
            succeeded.push(label);
        }
    }
    assert!(!succeeded.is_empty());
    let versions = store.list_versions("Invoice").await.unwrap();
    let active: Vec<_> = versions.iter().filter(|v| v.is_active).collect();
    assert_eq!(active.len(), 1, "exactly one active version");
    let owner = store.get_entity("Invoice").await.unwrap().unwrap();
    assert_eq!(
        owner.active_version.as_deref(),
        Some(active[0].version.as_str())
    );
    assert!(succeeded.contains(&active[0].version));
    let audits = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::VersionActivate],
            resource: Some("Invoice".into()),
            result: Some(AuditResult::Success),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audits.meta.total, succeeded.len() as u64);
}

pub async fn audit_queries_filter_order_and_page(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let bob = AuditActor {
        user_id: "bob".into(),
        tenant_id: "acme".into(),
        realm_id: "eu".into(),
    };
    let start = Timestamp::now();
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(NewAudit::success(
            EventType::EntityCreate,
            &actor(),
            &format!("E{i}"),
            None,
        ));
    }
    events.push(
        NewAudit::success(
            EventType::PolicyDeny,
            &bob,
            "Invoice",
            Some(json!({"policy": "p"})),
        )
        .into_failure("denied".into()),
    );
    for e in &events {
        s.append_audit(std::slice::from_ref(e)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    let all = s.query_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.meta.total, 6);
    assert_eq!(all.data[0].event_type, "policy.deny", "newest first");
    assert!(
        all.data
            .windows(2)
            .all(|w| w[0].timestamp >= w[1].timestamp)
    );

    let denied = s
        .query_audit(&AuditQuery {
            event_types: vec![EventType::PolicyDeny, EventType::PolicyAllow],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.meta.total, 1);
    let row = &denied.data[0];
    assert_eq!(
        (
            row.user_id.as_str(),
            row.tenant_id.as_str(),
            row.realm_id.as_str()
        ),
        ("bob", "acme", "eu")
    );
    assert_eq!(row.result, "failure");
    assert_eq!(row.action, "deny");
    assert_eq!(row.error_message.as_deref(), Some("denied"));
    assert_eq!(row.details, Some(json!({"policy": "p"})));

    for (q, n) in [
        (
            AuditQuery {
                user_id: Some("alice".into()),
                ..Default::default()
            },
            5,
        ),
        (
            AuditQuery {
                tenant_id: Some("acme".into()),
                ..Default::default()
            },
            1,
        ),
        (
            AuditQuery {
                resource: Some("E3".into()),
                ..Default::default()
            },
            1,
        ),
        (
            AuditQuery {
                result: Some(AuditResult::Success),
                ..Default::default()
            },
            5,
        ),
        (
            AuditQuery {
                from: Some(start),
                ..Default::default()
            },
            6,
        ),
        (
            AuditQuery {
                to: Some(start),
                ..Default::default()
            },
            0,
        ),
    ] {
        assert_eq!(s.query_audit(&q).await.unwrap().meta.total, n, "{q:?}");
    }

    let page = s
        .query_audit(&AuditQuery {
            page: PageRequest::new(2, 4),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.data.len(), 2);
    assert_eq!(page.meta.total_pages, 2);

    let purged = s
        .purge_audit(Timestamp::from(
            chrono::Utc::now() + chrono::Duration::seconds(1),
        ))
        .await
        .unwrap();
    assert_eq!((purged.tenants, purged.rows), (2, 6));
}

pub async fn tenants_round_trip(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let t = s
        .create_tenant(
            &NewTenant {
                id: "acme".into(),
                name: "Acme".into(),
            },
            &audit(EventType::TenantCreate, "acme"),
        )
        .await
        .unwrap();
    assert_eq!(t.status, crate::TenantStatus::Active);
    let dup = s
        .create_tenant(
            &NewTenant {
                id: "acme".into(),
                name: "Other".into(),
            },
            &audit(EventType::TenantCreate, "acme"),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::TenantExists(_))));
    let suspended = s
        .update_tenant(
            "acme",
            None,
            Some(crate::TenantStatus::Suspended),
            &audit(EventType::TenantUpdate, "acme"),
        )
        .await
        .unwrap();
    assert_eq!(
        (suspended.name.as_str(), suspended.status),
        ("Acme", crate::TenantStatus::Suspended)
    );
    let ids: Vec<_> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["acme", "default"]);
    let missing = s
        .update_tenant(
            "nope",
            Some("x"),
            None,
            &audit(EventType::TenantUpdate, "nope"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::TenantNotFound(_))));
}
