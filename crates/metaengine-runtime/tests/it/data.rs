//! The data API as an application uses it, on both databases: tenant and realm isolation,
//! validation, references, optimistic concurrency, policies, cursors, and the audit trail.

use std::sync::Arc;

use metaengine_runtime::{
    AccessConfig, Actor, AuditWriter, AuditWriterConfig, CacheConfig, DataError, DataLimits,
    DataService, FilterParam, ListRequest, ModelCache, PolicyGate, Registry,
};
use metaengine_store::{AuditQuery, EventType, Store};
use serde_json::{Value, json};

fn platform_admin() -> Actor {
    actor("root", "default", "main", &["admin"])
}

fn actor(user: &str, tenant: &str, realm: &str, roles: &[&str]) -> Actor {
    Actor {
        user_id: user.into(),
        tenant_id: tenant.into(),
        realm_id: realm.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

struct Env {
    data: DataService,
    writer: AuditWriter,
    store: Arc<dyn Store>,
}

async fn env(store: Arc<dyn Store>) -> Env {
    let registry = Registry::new(store.clone(), AccessConfig::default());
    let a = platform_admin();
    registry.create_entity(&a, "Customer", None).await.unwrap();
    registry
        .create_version(
            &a,
            "Customer",
            "v1",
            json!({ "fields": [{ "name": "name", "type": "string", "required": true }],
            "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
        )
        .await
        .unwrap();
    registry.activate(&a, "Customer", "v1").await.unwrap();
    registry.create_entity(&a, "Invoice", None).await.unwrap();
    registry
        .create_version(&a, "Invoice", "v1", json!({
            "fields": [
                { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
                { "name": "customer", "type": "reference", "referenceTo": "Customer" },
                { "name": "totalAmount", "type": "decimal", "precision": 12, "scale": 2, "required": true, "min": 0 },
                { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"], "default": "draft" },
                { "name": "dueDate", "type": "date" }
            ],
            "policies": [
                { "name": "everyone-reads", "effect": "allow", "action": "read" },
                { "name": "users-create", "effect": "allow", "action": "create",
                  "conditions": [{ "field": "user.role", "operator": "in", "value": ["user", "manager"] }] },
                { "name": "owners-update", "effect": "allow", "action": "update",
                  "conditions": [{ "field": "record.createdBy", "operator": "eq", "value": "context.userId" }] },
                { "name": "owners-delete", "effect": "allow", "action": "delete",
                  "conditions": [{ "field": "record.createdBy", "operator": "eq", "value": "context.userId" }] },
                { "name": "no-paid-reads-for-guests", "effect": "deny", "action": "read",
                  "conditions": [{ "field": "user.role", "operator": "eq", "value": "guest" },
                                 { "field": "record.status", "operator": "eq", "value": "paid" }] }
            ]
        }))
        .await
        .unwrap();
    registry.activate(&a, "Invoice", "v1").await.unwrap();
    registry.create_entity(&a, "Draft", None).await.unwrap();
    let cache = ModelCache::new(store.clone(), CacheConfig::default())
        .await
        .unwrap();
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let gate = PolicyGate::new(&AccessConfig::default(), Some(writer.clone()), false);
    let data = DataService::new(
        store.clone(),
        cache,
        gate,
        writer.clone(),
        DataLimits::default(),
        metaengine_runtime::ChangeSignal::default(),
    );
    Env {
        data,
        writer,
        store,
    }
}

fn invoice(number: &str, amount: &str) -> Value {
    json!({ "invoiceNumber": number, "totalAmount": amount, "dueDate": "2026-12-31" })
}

fn list() -> ListRequest {
    ListRequest {
        count: true,
        ..ListRequest::default()
    }
}

fn numbers(page: &metaengine_runtime::ListPage) -> Vec<String> {
    page.records
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(r).unwrap()["invoiceNumber"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn tenants_and_realms_never_see_each_other(store: Arc<dyn Store>) {
    let e = env(store).await;
    let (a1, a2, a1b) = (
        actor("u1", "t1", "eu", &["user"]),
        actor("u2", "t2", "eu", &["user"]),
        actor("u3", "t1", "us", &["user"]),
    );
    let (text, id) = e
        .data
        .create(&a1, "Invoice", &invoice("INV-1", "100.50"))
        .await
        .unwrap();
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (record["status"].as_str(), record["totalAmount"].as_str()),
        (Some("draft"), Some("100.50"))
    );
    e.data
        .create(&a1, "Invoice", &invoice("INV-2", "7"))
        .await
        .unwrap();
    // The same unique value is free in another tenant and in another realm.
    e.data
        .create(&a2, "Invoice", &invoice("INV-1", "1"))
        .await
        .unwrap();
    e.data
        .create(&a1b, "Invoice", &invoice("INV-1", "1"))
        .await
        .unwrap();
    let dup = e
        .data
        .create(&a1, "Invoice", &invoice("INV-1", "2"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            dup,
            DataError::Conflict {
                code: metaengine_core::ErrorCode::UniqueViolation,
                ..
            }
        ),
        "{dup:?}"
    );

    for other in [&a2, &a1b] {
        let missing = e.data.get(other, "Invoice", &id, &[]).await.unwrap_err();
        assert!(matches!(missing, DataError::NotFound(_)));
        assert!(matches!(
            e.data
                .update(other, "Invoice", &id, &json!({ "status": "sent" }), None)
                .await
                .unwrap_err(),
            DataError::NotFound(_)
        ));
        assert!(matches!(
            e.data
                .delete(other, "Invoice", &id, None)
                .await
                .unwrap_err(),
            DataError::NotFound(_)
        ));
        let page = e.data.list(other, "Invoice", &list()).await.unwrap();
        assert_eq!(numbers(&page), ["INV-1"], "only its own copy");
        assert_eq!(e.data.count(other, "Invoice", &[]).await.unwrap(), 1);
    }
    let page = e.data.list(&a1, "Invoice", &list()).await.unwrap();
    assert_eq!(page.meta.total, Some(2));
    for (op, value, expect) in [
        ("eq", "INV-1", 1),
        ("ne", "INV-1", 1),
        ("in", "INV-1,INV-2,INV-9", 2),
        ("nin", "INV-1", 1),
        ("contains", "NV-", 2),
        ("startswith", "INV-2", 1),
        ("isnull", "false", 2),
    ] {
        let n = e
            .data
            .count(
                &a1,
                "Invoice",
                &[FilterParam::new("invoiceNumber", op, value)],
            )
            .await
            .unwrap();
        assert_eq!(n, expect, "{op} {value}");
    }
    let big = e
        .data
        .count(
            &a1,
            "Invoice",
            &[FilterParam::new("totalAmount", "gt", "50")],
        )
        .await
        .unwrap();
    assert_eq!(big, 1);
}

async fn writes_are_validated_all_at_once(store: Arc<dyn Store>) {
    let e = env(store).await;
    let a = actor("u1", "t1", "eu", &["user"]);
    let bad = json!({ "totalAmount": "-1", "status": "lost", "dueDate": "2026-02-30" });
    let DataError::Invalid { errors } = e.data.create(&a, "Invoice", &bad).await.unwrap_err()
    else {
        panic!()
    };
    let mut pointers: Vec<_> = errors.iter().map(|p| p.pointer.as_str()).collect();
    pointers.sort();
    assert_eq!(
        pointers,
        ["/dueDate", "/invoiceNumber", "/status", "/totalAmount"]
    );
    let unknown = e
        .data
        .create(
            &a,
            "Invoice",
            &json!({ "invoiceNumber": "X", "totalAmount": 1, "colour": "red" }),
        )
        .await;
    assert!(matches!(unknown, Err(DataError::BadRequest { .. })));
    let system = e
        .data
        .create(
            &a,
            "Invoice",
            &json!({ "invoiceNumber": "X", "totalAmount": 1, "tenantId": "t2" }),
        )
        .await;
    assert!(matches!(system, Err(DataError::BadRequest { .. })));
    // A reference must name a record of the same tenant.
    let ghost = json!({ "invoiceNumber": "X", "totalAmount": 1, "customer": "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6" });
    let DataError::Invalid { errors } = e.data.create(&a, "Invoice", &ghost).await.unwrap_err()
    else {
        panic!()
    };
    assert_eq!(errors[0].pointer, "/customer");
    let (_, customer) = e
        .data
        .create(&a, "Customer", &json!({ "name": "Acme" }))
        .await
        .unwrap();
    let ok = json!({ "invoiceNumber": "X", "totalAmount": 1, "customer": customer });
    e.data.create(&a, "Invoice", &ok).await.unwrap();
    let other = actor("u2", "t2", "eu", &["user"]);
    let foreign = json!({ "invoiceNumber": "Y", "totalAmount": 1, "customer": customer });
    assert!(matches!(
        e.data.create(&other, "Invoice", &foreign).await,
        Err(DataError::Invalid { .. })
    ));
    assert!(matches!(
        e.data.list(&a, "Draft", &list()).await,
        Err(DataError::Inactive(_))
    ));
    assert!(matches!(
        e.data.list(&a, "Ghost", &list()).await,
        Err(DataError::NotFound(_))
    ));
    let bad_filter = e
        .data
        .list(
            &a,
            "Invoice",
            &ListRequest {
                filters: vec![FilterParam::new("colour", "eq", "x")],
                ..list()
            },
        )
        .await;
    assert!(matches!(bad_filter, Err(DataError::BadRequest { .. })));
    let too_big = e
        .data
        .list(
            &a,
            "Invoice",
            &ListRequest {
                page_size: Some(101),
                ..list()
            },
        )
        .await;
    assert!(matches!(too_big, Err(DataError::BadRequest { .. })));
}

async fn one_of_two_concurrent_updates_wins(store: Arc<dyn Store>) {
    let e = Arc::new(env(store).await);
    let a = actor("u1", "t1", "eu", &["user"]);
    let (_, id) = e
        .data
        .create(&a, "Invoice", &invoice("INV-1", "1"))
        .await
        .unwrap();
    let (_, version) = e.data.get(&a, "Invoice", &id, &[]).await.unwrap();
    let mut tasks = Vec::new();
    for status in ["sent", "paid"] {
        let (e, a, id) = (e.clone(), a.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            e.data
                .update(
                    &a,
                    "Invoice",
                    &id,
                    &json!({ "status": status }),
                    Some(version),
                )
                .await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(DataError::PreconditionFailed { .. })))
    );
    let (_, after) = e.data.get(&a, "Invoice", &id, &[]).await.unwrap();
    assert_eq!(after, version + 1);
    let stale = e
        .data
        .delete(&a, "Invoice", &id, Some(version))
        .await
        .unwrap_err();
    assert!(matches!(stale, DataError::PreconditionFailed { .. }));
    e.data
        .delete(&a, "Invoice", &id, Some(after))
        .await
        .unwrap();
}

async fn policies_guard_every_operation(store: Arc<dyn Store>) {
    let e = env(store).await;
    let (owner, other, guest) = (
        actor("u1", "t1", "eu", &["user"]),
        actor("u2", "t1", "eu", &["user"]),
        actor("g1", "t1", "eu", &["guest"]),
    );
    let (_, id) = e
        .data
        .create(&owner, "Invoice", &invoice("INV-1", "1"))
        .await
        .unwrap();
    let denied = e
        .data
        .create(&guest, "Invoice", &invoice("INV-2", "1"))
        .await
        .unwrap_err();
    assert!(matches!(denied, DataError::Forbidden(_)));
    let refused = e
        .data
        .update(&other, "Invoice", &id, &json!({ "status": "sent" }), None)
        .await
        .unwrap_err();
    assert!(matches!(refused, DataError::Forbidden(_)));
    e.data
        .update(&owner, "Invoice", &id, &json!({ "status": "paid" }), None)
        .await
        .unwrap();
    // A paid invoice is not readable by guests: exactly like a missing one, and left out of lists.
    assert!(matches!(
        e.data.get(&guest, "Invoice", &id, &[]).await.unwrap_err(),
        DataError::NotFound(_)
    ));
    assert!(
        e.data
            .list(&guest, "Invoice", &list())
            .await
            .unwrap()
            .records
            .is_empty()
    );
    assert_eq!(e.data.count(&guest, "Invoice", &[]).await.unwrap(), 0);
    assert_eq!(e.data.count(&other, "Invoice", &[]).await.unwrap(), 1);
    e.writer.flush().await;
    let denials = e
        .store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::PolicyDeny],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(denials.meta.total >= 3, "{}", denials.meta.total);
    let writes = e
        .store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataCreate, EventType::DataUpdate],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(writes.meta.total, 2);
    assert_eq!(
        writes.data[0].details.as_ref().unwrap()["fields"],
        json!(["status"])
    );
}

async fn cursors_walk_every_row_once(store: Arc<dyn Store>) {
    let e = env(store).await;
    let a = actor("u1", "t1", "eu", &["user"]);
    for i in 0..25 {
        e.data
            .create(
                &a,
                "Invoice",
                &invoice(&format!("INV-{i:02}"), &format!("{}", i % 7)),
            )
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut req = ListRequest {
        page_size: Some(10),
        order_by: Some("totalAmount".into()),
        descending: true,
        count: false,
        ..ListRequest::default()
    };
    loop {
        let page = e.data.list(&a, "Invoice", &req).await.unwrap();
        assert!(page.meta.total.is_none());
        seen.extend(numbers(&page));
        match page.meta.next_cursor {
            Some(c) => req.after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 25, "no row twice");
    let bad = e
        .data
        .list(
            &a,
            "Invoice",
            &ListRequest {
                after: Some("garbage!".into()),
                ..list()
            },
        )
        .await;
    assert!(matches!(bad, Err(DataError::BadRequest { .. })));
    let page = e
        .data
        .list(
            &a,
            "Invoice",
            &ListRequest {
                page: Some(3),
                page_size: Some(10),
                ..list()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.records.len(), page.meta.total_pages), (5, Some(3)));
    let json: Value = serde_json::from_str(&page.to_json()).unwrap();
    assert_eq!(json["meta"]["pageSize"], 10);
    assert!(json["meta"]["nextCursor"].is_null());
}

/// Issue 12, items 1 and 5. A row filter's number is bound with its column's type: after a
/// policy `x gt 5` (an integer literal) has been prepared on every connection, `x gt 5.5` must
/// still hide what `get` hides (PostgreSQL once read the double's bytes as an integer). And a
/// caller whose policies let it read nothing gets the same answer from count as from list.
async fn row_filter_values_keep_their_type_across_versions(store: Arc<dyn Store>) {
    let e = env(store).await;
    let a = platform_admin();
    let registry = Registry::new(e.store.clone(), AccessConfig::default());
    registry.create_entity(&a, "Meter", None).await.unwrap();
    let schema = |limit: Value| {
        json!({ "fields": [{ "name": "x", "type": "number" }],
                "policies": [
                    { "name": "all", "effect": "allow", "action": "*" },
                    { "name": "no-big", "effect": "deny", "action": "read",
                      "conditions": [{ "field": "record.x", "operator": "gt", "value": limit },
                                     { "field": "user.role", "operator": "ne", "value": "writer" }] }
                ] })
    };
    registry
        .create_version(&a, "Meter", "v1", schema(json!(5)))
        .await
        .unwrap();
    registry
        .create_version(&a, "Meter", "v2", schema(json!(5.5)))
        .await
        .unwrap();
    registry.activate(&a, "Meter", "v1").await.unwrap();
    let writer = actor("w", "t1", "eu", &["writer"]);
    let reader = actor("r", "t1", "eu", &["reader"]);
    let mut ids = Vec::new();
    for x in [1, 5, 10, 100] {
        let (_, id) = e
            .data
            .create(&writer, "Meter", &json!({ "x": x }))
            .await
            .unwrap();
        ids.push(id);
    }
    let xs = |page: &metaengine_runtime::ListPage| {
        let mut xs: Vec<f64> = page
            .records
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(r).unwrap()["x"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        xs.sort_by(f64::total_cmp);
        xs
    };
    for _ in 0..40 {
        let page = e.data.list(&reader, "Meter", &list()).await.unwrap();
        assert_eq!(xs(&page), [1.0, 5.0]);
        assert_eq!(e.data.count(&reader, "Meter", &[]).await.unwrap(), 2);
    }
    registry.activate(&a, "Meter", "v2").await.unwrap();
    for _ in 0..40 {
        let page = e.data.list(&reader, "Meter", &list()).await.unwrap();
        assert_eq!(xs(&page), [1.0, 5.0]);
        assert_eq!(e.data.count(&reader, "Meter", &[]).await.unwrap(), 2);
    }
    for (id, visible) in ids.iter().zip([true, true, false, false]) {
        assert_eq!(e.data.get(&reader, "Meter", id, &[]).await.is_ok(), visible);
    }

    // Nothing readable: list and count are both forbidden.
    let nobody = actor("n", "t1", "eu", &[]);
    registry.create_entity(&a, "Vault", None).await.unwrap();
    registry
        .create_version(&a, "Vault", "v1", json!({ "fields": [{ "name": "x", "type": "number" }],
            "policies": [{ "name": "admins", "effect": "allow", "action": "read",
                           "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] }] }))
        .await
        .unwrap();
    registry.activate(&a, "Vault", "v1").await.unwrap();
    let listed = e.data.list(&nobody, "Vault", &list()).await.unwrap_err();
    let counted = e.data.count(&nobody, "Vault", &[]).await.unwrap_err();
    assert!(matches!(listed, DataError::Forbidden(_)), "{listed:?}");
    assert!(matches!(counted, DataError::Forbidden(_)), "{counted:?}");
}

/// SPEC §7 batch: in order, all or nothing, each operation checked like its single route, a
/// create may give its id and a later operation refer to it; failures name the operation.
async fn batches_are_all_or_nothing(store: Arc<dyn Store>) {
    use metaengine_runtime::{BatchDone, BatchOp};
    let e = env(store).await;
    let user = actor("u1", "t1", "eu", &["user"]);
    let count = |e: &Env| {
        let user = user.clone();
        let data = e.data.clone();
        async move { data.count(&user, "Invoice", &[]).await.unwrap() }
    };
    let (_, keep) = e
        .data
        .create(&user, "Invoice", &invoice("INV-1", "1"))
        .await
        .unwrap();
    let (_, gone) = e
        .data
        .create(&user, "Invoice", &invoice("INV-2", "2"))
        .await
        .unwrap();
    let customer = uuid::Uuid::now_v7().to_string();
    let create = |entity: &str, record: Value| BatchOp::Create {
        entity: entity.into(),
        record,
    };
    let ops = vec![
        create("Customer", json!({ "id": customer, "name": "Acme" })),
        create(
            "Invoice",
            json!({ "invoiceNumber": "INV-3", "totalAmount": "3", "customer": customer }),
        ),
        BatchOp::Update {
            entity: "Invoice".into(),
            id: keep.clone(),
            if_match: Some(1),
            record: json!({ "status": "sent" }),
        },
        BatchOp::Delete {
            entity: "Invoice".into(),
            id: gone.clone(),
            if_match: None,
        },
    ];
    let done = e.data.batch(&user, &ops).await.unwrap();
    assert_eq!(done.len(), 4);
    let BatchDone::Created(c) = &done[0] else {
        panic!("{done:?}")
    };
    assert_eq!(
        serde_json::from_str::<Value>(c).unwrap()["id"],
        customer.as_str()
    );
    let BatchDone::Updated(u) = &done[2] else {
        panic!("{done:?}")
    };
    assert_eq!(serde_json::from_str::<Value>(u).unwrap()["rowVersion"], 2);
    assert_eq!(done[3], BatchDone::Deleted);
    assert_eq!(count(&e).await, 2);
    assert!(e.data.get(&user, "Invoice", &gone, &[]).await.is_err());

    // A failure anywhere writes nothing, and says which operation and where.
    let in_batch = |err: DataError| match err {
        DataError::InBatch { index, error } => (index, *error),
        other => panic!("{other:?}"),
    };
    let invalid = e
        .data
        .batch(
            &user,
            &[
                create("Invoice", invoice("INV-4", "4")),
                create("Invoice", invoice("INV-5", "-1")),
            ],
        )
        .await
        .unwrap_err();
    let (index, error) = in_batch(invalid);
    assert_eq!(index, 1);
    let problems = DataError::batch_problems(index, &error);
    assert_eq!(problems[0].pointer, "/operations/1/record/totalAmount");
    // A unique value taken by a stored record, a stale row version, a policy, a bad or taken id.
    let taken = e
        .data
        .batch(
            &user,
            &[
                create("Invoice", invoice("INV-6", "6")),
                create("Invoice", invoice("INV-1", "1")),
            ],
        )
        .await
        .unwrap_err();
    let (index, error) = in_batch(taken);
    assert_eq!(
        (index, error.code()),
        (1, metaengine_core::ErrorCode::UniqueViolation)
    );
    let stale = e
        .data
        .batch(
            &user,
            &[
                create("Invoice", invoice("INV-7", "7")),
                BatchOp::Update {
                    entity: "Invoice".into(),
                    id: keep.clone(),
                    if_match: Some(1),
                    record: json!({ "status": "paid" }),
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(
        in_batch(stale),
        (1, DataError::PreconditionFailed { .. })
    ));
    let guest = actor("g1", "t1", "eu", &["guest"]);
    let denied = e
        .data
        .batch(&guest, &[create("Invoice", invoice("INV-8", "8"))])
        .await
        .unwrap_err();
    assert!(matches!(in_batch(denied), (0, DataError::Forbidden(_))));
    let bad_id = e
        .data
        .batch(
            &user,
            &[create("Customer", json!({ "id": "nope", "name": "x" }))],
        )
        .await
        .unwrap_err();
    let (index, error) = in_batch(bad_id);
    assert_eq!(
        DataError::batch_problems(index, &error)[0].pointer,
        "/operations/0/record/id"
    );
    let taken_id = e
        .data
        .batch(
            &user,
            &[create("Customer", json!({ "id": customer, "name": "x" }))],
        )
        .await
        .unwrap_err();
    assert_eq!(
        in_batch(taken_id).1.code(),
        metaengine_core::ErrorCode::UniqueViolation
    );
    assert_eq!(count(&e).await, 2);
    let too_many: Vec<BatchOp> = (0..1001)
        .map(|i| create("Invoice", invoice(&format!("X{i}"), "1")))
        .collect();
    assert!(matches!(
        e.data.batch(&user, &too_many).await.unwrap_err(),
        DataError::BadRequest { .. }
    ));

    // The single route takes a given id too.
    let id = uuid::Uuid::now_v7().to_string();
    let (_, got) = e
        .data
        .create(&user, "Customer", &json!({ "id": id, "name": "B" }))
        .await
        .unwrap();
    assert_eq!(got, id);
    e.writer.flush().await;
    let audits = e
        .store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataCreate],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    // The batch's creates: one row per entity, naming every id and the fields written, with
    // each record's values (SPEC §16).
    let batch_rows: Vec<_> = audits
        .data
        .iter()
        .filter_map(|r| r.details.as_ref().filter(|d| d["batch"] == true))
        .collect();
    assert_eq!(batch_rows.len(), 2, "{batch_rows:?}");
    let customer_row = batch_rows
        .iter()
        .find(|d| d["ids"] == json!([customer]))
        .expect("the Customer create of the batch");
    assert_eq!(customer_row["count"], 1);
    assert_eq!(customer_row["fields"], json!(["name"]));
    assert_eq!(
        customer_row["records"],
        json!([{ "id": customer, "new": { "name": "Acme" } }])
    );
    let invoice_row = batch_rows
        .iter()
        .find(|d| d["ids"] != json!([customer]))
        .expect("the Invoice creates of the batch");
    let records = invoice_row["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{invoice_row}");
    assert_eq!(records[0]["id"], invoice_row["ids"][0]);
    assert_eq!(
        records[0]["new"],
        json!({ "invoiceNumber": "INV-3", "totalAmount": "3", "customer": customer })
    );
}

/// Creates that arrive together are written together (group commit, issue 19) and each is
/// answered as if it had been written alone: a unique value taken by one create of a group
/// fails that create only, and every other one is stored, in its own tenant, with its own
/// `data.create` audit row (not a batch's).
async fn concurrent_creates_are_answered_one_by_one(store: Arc<dyn Store>) {
    let e = Arc::new(env(store).await);
    let users = [
        actor("u1", "t1", "eu", &["user"]),
        actor("u2", "t2", "eu", &["user"]),
    ];
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (e, who) = (e.clone(), users[i % 2].clone());
        // Creates 0 and 2 (both of t1) give the same invoice number.
        let number = if i == 0 || i == 2 {
            "INV-TWICE".to_owned()
        } else {
            format!("INV-{i}")
        };
        tasks.push(tokio::spawn(async move {
            let created = e.data.create(&who, "Invoice", &invoice(&number, "1")).await;
            (who, number, created)
        }));
    }
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (who, number, Ok((_, id))) => stored.push((who, number, id)),
            (_, number, Err(err)) => refused.push((number, err)),
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "INV-TWICE");
    assert_eq!(
        refused[0].1.code(),
        metaengine_core::ErrorCode::UniqueViolation
    );
    assert_eq!(stored.len(), 39);
    for (who, number, id) in &stored {
        let (text, _) = e.data.get(who, "Invoice", id, &[]).await.unwrap();
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(record["invoiceNumber"], json!(number));
        assert_eq!(record["createdBy"], json!(who.user_id));
    }
    for (who, expected) in [(&users[0], 19), (&users[1], 20)] {
        let page = e.data.list(who, "Invoice", &list()).await.unwrap();
        assert_eq!(page.meta.total, Some(expected));
    }
    e.writer.flush().await;
    let audits = e
        .store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataCreate],
            page: metaengine_store::PageRequest {
                page: 1,
                page_size: 100,
            },
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for (who, _, id) in &stored {
        let own: Vec<_> = audits
            .data
            .iter()
            .filter(|r| r.details.as_ref().is_some_and(|d| d["id"] == json!(id)))
            .collect();
        assert_eq!(own.len(), 1, "the audit rows of {id}");
        assert_eq!(own[0].tenant_id, who.tenant_id);
        assert_eq!(own[0].user_id, who.user_id);
    }
    assert!(
        audits
            .data
            .iter()
            .all(|r| r.details.as_ref().is_none_or(|d| d.get("batch").is_none()))
    );
}

/// The creates of the test above do share transactions on PostgreSQL, whose change log
/// records each change's transaction: fewer transactions than creates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_share_transactions_on_postgres() {
    let (db, store) = metaengine_testing::postgres().await;
    let e = Arc::new(env(store).await);
    let user = actor("u1", "t1", "eu", &["user"]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (e, user) = (e.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            e.data
                .create(&user, "Invoice", &invoice(&format!("INV-{i}"), "1"))
                .await
                .map(|(_, id)| id)
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let (changes, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT txid::text) FROM meta.meta_changes \
         WHERE entity = 'Invoice' AND op = 'create'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(changes, 40);
    assert!(
        transactions < 40,
        "{transactions} transactions for 40 creates"
    );
}

crate::on_both_backends!(
    tenants_and_realms_never_see_each_other,
    writes_are_validated_all_at_once,
    one_of_two_concurrent_updates_wins,
    policies_guard_every_operation,
    cursors_walk_every_row_once,
    row_filter_values_keep_their_type_across_versions,
    batches_are_all_or_nothing,
    concurrent_creates_are_answered_one_by_one,
);
