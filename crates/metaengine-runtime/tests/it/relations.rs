//! Relations (SPEC §13) in the data service, on both backends:
//! - expansions cost one statement: a list or get with forward and reverse expansions runs
//!   exactly one statement on the store, whether the table holds 20, 100 or 1,000 rows; a reverse
//!   expansion stops at 100 records, the smallest ids;
//! - references are enforced by the database: a referenced record cannot be deleted (409
//!   `still_referenced` with the count), an activation that cannot enforce a reference over the
//!   rows already there is refused with their count, and 50 concurrent "delete the customer" /
//!   "create an invoice for it" pairs leave no dangling reference.

use std::sync::Arc;

use metaengine_testing::Rng;

use metaengine_core::ErrorCode;
use metaengine_runtime::{
    AccessConfig, Actor, AuditWriter, AuditWriterConfig, BatchDone, BatchOp, CacheConfig,
    DataLimits, DataService, ListRequest, ModelCache, PolicyGate, Registry, RegistryError,
};
use metaengine_store::{AuditQuery, EventType, Store};
use serde_json::{Value, json};

fn admin() -> Actor {
    Actor {
        user_id: "root".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    }
}

/// Manager ← Customer ← Invoice, and the data service.
async fn env(store: Arc<dyn Store>) -> DataService {
    env_with_registry(store).await.0
}

/// [`env`] with its registry.
async fn env_with_registry(store: Arc<dyn Store>) -> (DataService, Registry) {
    let registry = Registry::new(store.clone(), AccessConfig::default());
    let a = admin();
    let all = json!([{ "name": "all", "effect": "allow", "action": "*" }]);
    for (entity, fields) in [
        ("Manager", json!([{ "name": "name", "type": "string" }])),
        (
            "Customer",
            json!([{ "name": "name", "type": "string" },
                   { "name": "managerId", "type": "reference", "referenceTo": "Manager" }]),
        ),
        (
            "Invoice",
            json!([{ "name": "number", "type": "integer" },
                   { "name": "customerId", "type": "reference", "referenceTo": "Customer" }]),
        ),
    ] {
        registry.create_entity(&a, entity, None).await.unwrap();
        registry
            .create_version(
                &a,
                entity,
                "v1",
                json!({ "fields": fields, "policies": all }),
            )
            .await
            .unwrap();
        registry.activate(&a, entity, "v1").await.unwrap();
    }
    (service(store).await, registry)
}

/// A data service with a cache of its own (it sees every model activated before).
async fn service(store: Arc<dyn Store>) -> DataService {
    let cache = ModelCache::new(store.clone(), CacheConfig::default())
        .await
        .unwrap();
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let gate = PolicyGate::new(&AccessConfig::default(), Some(writer.clone()), false);
    DataService::new(
        store,
        cache,
        gate,
        writer,
        DataLimits::default(),
        metaengine_runtime::ChangeSignal::default(),
    )
}

/// Creates records in one batch; their ids.
async fn create(data: &DataService, entity: &str, records: Vec<Value>) -> Vec<String> {
    let ops: Vec<BatchOp> = records
        .into_iter()
        .map(|record| BatchOp::Create {
            entity: entity.to_owned(),
            record,
        })
        .collect();
    let done = data.batch(&admin(), &ops).await.unwrap();
    done.iter()
        .map(|d| {
            let BatchDone::Created(text) = d else {
                panic!("not a create: {d:?}")
            };
            let record: Value = serde_json::from_str(text).unwrap();
            record["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn one_statement_per_list_or_get_with_expansions(store: Arc<dyn Store>) {
    let data = env(store.clone()).await;
    let a = admin();
    let manager = create(&data, "Manager", vec![json!({ "name": "Mia" })]).await;
    let customers = create(
        &data,
        "Customer",
        (0..2)
            .map(|i| json!({ "name": format!("c{i}"), "managerId": manager[0] }))
            .collect(),
    )
    .await;
    let mut invoices: Vec<String> = Vec::new();
    for size in [20usize, 100, 1000] {
        let more: Vec<Value> = (invoices.len()..size)
            .map(|i| json!({ "number": i, "customerId": customers[i % 2] }))
            .collect();
        invoices.extend(create(&data, "Invoice", more).await);

        let list = ListRequest {
            page_size: Some(100),
            count: false,
            expand: vec![
                "customerId".into(),
                "customerId.managerId".into(),
                "customerId.Invoice_via_customerId".into(),
            ],
            ..ListRequest::default()
        };
        // Warm the model cache, then count.
        data.list(&a, "Invoice", &list).await.unwrap();
        let before = store.statements_run();
        let page = data.list(&a, "Invoice", &list).await.unwrap();
        assert_eq!(
            store.statements_run() - before,
            1,
            "a page of {} invoices with 3 expansions, {size} in the table",
            page.records.len()
        );
        assert_eq!(page.records.len(), size.min(100));
        for text in &page.records {
            let record: Value = serde_json::from_str(text).unwrap();
            let customer = &record["expand"]["customerId"];
            assert_eq!(customer["id"], record["customerId"]);
            assert_eq!(customer["expand"]["managerId"]["name"], "Mia");
            let siblings = customer["expand"]["Invoice_via_customerId"]
                .as_array()
                .unwrap();
            assert_eq!(siblings.len(), (size / 2).min(100));
        }

        let expand = vec!["Invoice_via_customerId".to_owned(), "managerId".to_owned()];
        let before = store.statements_run();
        let (text, _) = data
            .get(&a, "Customer", &customers[0], &expand)
            .await
            .unwrap();
        assert_eq!(store.statements_run() - before, 1, "a get, {size} invoices");
        let record: Value = serde_json::from_str(&text).unwrap();
        let theirs = record["expand"]["Invoice_via_customerId"]
            .as_array()
            .unwrap();
        // The first 100 by id: ids are UUIDv7, so in creation order here.
        let mut expected: Vec<&String> = invoices.iter().step_by(2).collect();
        expected.sort();
        expected.truncate(100);
        let got: Vec<&str> = theirs.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(got, expected, "{size} invoices");
        assert_eq!(record["expand"]["managerId"]["name"], "Mia");
    }
}

async fn references_are_enforced_by_the_database(store: Arc<dyn Store>) {
    let (data, registry) = env_with_registry(store.clone()).await;
    let a = admin();
    let customer = create(&data, "Customer", vec![json!({ "name": "Acme" })]).await;
    let invoices = create(
        &data,
        "Invoice",
        (0..3)
            .map(|i| json!({ "number": i, "customerId": customer[0] }))
            .collect(),
    )
    .await;
    // Deleting a referenced record: 409 still_referenced, with how many refer to it.
    let e = data
        .delete(&a, "Customer", &customer[0], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StillReferenced, "{e:?}");
    assert!(e.to_string().contains("3 record(s)"), "{e}");
    // The same delete inside a batch is refused the same way, and nothing is written.
    let e = data
        .batch(
            &a,
            &[
                BatchOp::Delete {
                    entity: "Invoice".into(),
                    id: invoices[0].clone(),
                    if_match: None,
                },
                BatchOp::Delete {
                    entity: "Customer".into(),
                    id: customer[0].clone(),
                    if_match: None,
                },
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StillReferenced, "{e:?}");
    // The count is of the records referring to it once nothing of the batch was written.
    assert!(e.to_string().contains("3 record(s)"), "{e}");
    assert!(data.get(&a, "Invoice", &invoices[0], &[]).await.is_ok());
    // Once nothing refers to it, it goes.
    for id in &invoices {
        data.delete(&a, "Invoice", id, None).await.unwrap();
    }
    data.delete(&a, "Customer", &customer[0], None)
        .await
        .unwrap();

    // An entity dropped by force leaves its referrers dangling; activating it again cannot
    // enforce the reference until they are fixed, and says how many there are.
    let customer = create(&data, "Customer", vec![json!({ "name": "Bolt" })]).await;
    let invoice = create(
        &data,
        "Invoice",
        vec![json!({ "number": 7, "customerId": customer[0] })],
    )
    .await;
    registry.delete_entity(&a, "Customer", true).await.unwrap();
    registry.create_entity(&a, "Customer", None).await.unwrap();
    registry
        .create_version(
            &a,
            "Customer",
            "v1",
            json!({ "fields": [{ "name": "name", "type": "string" }],
                    "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
        )
        .await
        .unwrap();
    match registry.activate(&a, "Customer", "v1").await {
        Err(RegistryError::Conflict { code, message, .. }) => {
            assert_eq!(code, ErrorCode::BreakingChanges);
            assert!(
                message.contains("1 record(s) of `Invoice` refer through `customerId`"),
                "{message}"
            );
        }
        other => panic!("activation not refused: {other:?}"),
    }
    data.delete(&a, "Invoice", &invoice[0], None).await.unwrap();
    registry.activate(&a, "Customer", "v1").await.unwrap();
    // And the reference is enforced again (a service that has not seen the old Customer).
    let data = service(store).await;
    let customer = create(&data, "Customer", vec![json!({ "name": "Cork" })]).await;
    create(
        &data,
        "Invoice",
        vec![json!({ "number": 8, "customerId": customer[0] })],
    )
    .await;
    let e = data
        .delete(&a, "Customer", &customer[0], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StillReferenced, "{e:?}");
}

/// 50 customers; for each, at the same time, one task deletes it and another creates an invoice
/// for it. Whichever wins, no invoice is left pointing at a customer that is gone.
async fn concurrent_deletes_and_references_leave_nothing_dangling(store: Arc<dyn Store>) {
    let data = Arc::new(env(store).await);
    let a = admin();
    let customers = create(
        &data,
        "Customer",
        (0..50)
            .map(|i| json!({ "name": format!("c{i}") }))
            .collect(),
    )
    .await;
    let mut tasks = Vec::new();
    for (i, id) in customers.iter().enumerate() {
        let (d1, d2, a1, a2) = (data.clone(), data.clone(), a.clone(), a.clone());
        let (id1, id2) = (id.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            d1.delete(&a1, "Customer", &id1, None).await.is_ok()
        }));
        tasks.push(tokio::spawn(async move {
            d2.create(&a2, "Invoice", &json!({ "number": i, "customerId": id2 }))
                .await
                .is_ok()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let deleted = outcomes.iter().step_by(2).filter(|ok| **ok).count();
    let created = outcomes.iter().skip(1).step_by(2).filter(|ok| **ok).count();
    // Each pair: exactly one of the two succeeds (a delete after the invoice exists is refused;
    // an invoice after the delete names a missing customer).
    for pair in outcomes.chunks(2) {
        assert!(pair[0] != pair[1], "pair outcomes {pair:?}");
    }
    let page = data
        .list(
            &a,
            "Invoice",
            &ListRequest {
                page_size: Some(100),
                expand: vec!["customerId".into()],
                ..ListRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.records.len(), created);
    for text in &page.records {
        let record: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            record["expand"]["customerId"]["id"], record["customerId"],
            "dangling: {record}"
        );
    }
    assert_eq!(deleted + created, 50);
}

/// Defines and activates `entity` with `fields` and an allow-all policy.
async fn define(registry: &Registry, entity: &str, fields: Value) {
    let a = admin();
    registry.create_entity(&a, entity, None).await.unwrap();
    registry
        .create_version(
            &a,
            entity,
            "v1",
            json!({ "fields": fields,
                    "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
        )
        .await
        .unwrap();
    registry.activate(&a, entity, "v1").await.unwrap();
}

/// `onDelete`: deleting a customer deletes its invoices and, through them, their lines
/// (`cascade`), clears the reference of its notes (`setNull`), each with an audit row naming the
/// cause; a `restrict` reference anywhere on the way refuses the whole delete.
async fn on_delete_set_null_and_cascade(store: Arc<dyn Store>) {
    let registry = Registry::new(store.clone(), AccessConfig::default());
    let a = admin();
    define(
        &registry,
        "Client",
        json!([{ "name": "name", "type": "string" }]),
    )
    .await;
    define(
        &registry,
        "Bill",
        json!([{ "name": "clientId", "type": "reference", "referenceTo": "Client", "onDelete": "cascade" }]),
    )
    .await;
    define(
        &registry,
        "Line",
        json!([{ "name": "billId", "type": "reference", "referenceTo": "Bill", "onDelete": "cascade" }]),
    )
    .await;
    define(
        &registry,
        "Note",
        json!([{ "name": "clientId", "type": "reference", "referenceTo": "Client", "onDelete": "setNull" }]),
    )
    .await;
    define(
        &registry,
        "Payment",
        json!([{ "name": "billId", "type": "reference", "referenceTo": "Bill" }]),
    )
    .await;
    let data = service(store.clone()).await;
    let client = create(&data, "Client", vec![json!({ "name": "c1" })]).await;
    let bills = create(
        &data,
        "Bill",
        vec![
            json!({ "clientId": client[0] }),
            json!({ "clientId": client[0] }),
        ],
    )
    .await;
    let lines = create(
        &data,
        "Line",
        vec![json!({ "billId": bills[0] }), json!({ "billId": bills[1] })],
    )
    .await;
    let notes = create(&data, "Note", vec![json!({ "clientId": client[0] })]).await;
    data.delete(&a, "Client", &client[0], None).await.unwrap();
    for (entity, id) in [
        ("Bill", &bills[0]),
        ("Bill", &bills[1]),
        ("Line", &lines[0]),
        ("Line", &lines[1]),
    ] {
        let e = data.get(&a, entity, id, &[]).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotFound, "{entity} {id} still there");
    }
    let (note, version) = data.get(&a, "Note", &notes[0], &[]).await.unwrap();
    let note: Value = serde_json::from_str(&note).unwrap();
    assert_eq!(note["clientId"], Value::Null);
    assert_eq!(version, 2);
    let audit = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataDelete, EventType::DataUpdate],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let caused: Vec<(String, String)> = audit
        .data
        .iter()
        .filter(|row| {
            row.details
                .as_ref()
                .is_some_and(|d| d.get("cause").is_some())
        })
        .map(|row| (row.event_type.as_str().to_owned(), row.resource.clone()))
        .collect();
    let mut caused_sorted = caused.clone();
    caused_sorted.sort();
    assert_eq!(
        caused_sorted,
        [
            ("data.delete".to_owned(), "Bill".to_owned()),
            ("data.delete".to_owned(), "Bill".to_owned()),
            ("data.delete".to_owned(), "Line".to_owned()),
            ("data.delete".to_owned(), "Line".to_owned()),
            ("data.update".to_owned(), "Note".to_owned()),
        ]
    );

    // The same rules inside a batch.
    let client = create(&data, "Client", vec![json!({ "name": "cb" })]).await;
    let bill = create(&data, "Bill", vec![json!({ "clientId": client[0] })]).await;
    data.batch(
        &a,
        &[BatchOp::Delete {
            entity: "Client".into(),
            id: client[0].clone(),
            if_match: None,
        }],
    )
    .await
    .unwrap();
    assert!(data.get(&a, "Bill", &bill[0], &[]).await.is_err());

    // A payment (restrict) on a bill the cascade would delete: nothing is deleted or cleared.
    let client = create(&data, "Client", vec![json!({ "name": "c2" })]).await;
    let bill = create(&data, "Bill", vec![json!({ "clientId": client[0] })]).await;
    let note = create(&data, "Note", vec![json!({ "clientId": client[0] })]).await;
    create(&data, "Payment", vec![json!({ "billId": bill[0] })]).await;
    let e = data
        .delete(&a, "Client", &client[0], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StillReferenced, "{e:?}");
    assert!(data.get(&a, "Bill", &bill[0], &[]).await.is_ok());
    let (text, version) = data.get(&a, "Note", &note[0], &[]).await.unwrap();
    assert!(text.contains(&client[0]), "{text}");
    assert_eq!(version, 1);

    // Changing a rule is an additive change: a new version of Note cascades instead.
    registry
        .create_version(
            &a,
            "Note",
            "v2",
            json!({ "fields": [{ "name": "clientId", "type": "reference", "referenceTo": "Client", "onDelete": "cascade" }],
                    "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
        )
        .await
        .unwrap();
    let activation = registry.activate(&a, "Note", "v2").await.unwrap();
    assert!(!activation.plan.plan.is_breaking());
    let data = service(store.clone()).await;
    let client = create(&data, "Client", vec![json!({ "name": "c3" })]).await;
    let note = create(&data, "Note", vec![json!({ "clientId": client[0] })]).await;
    data.delete(&a, "Client", &client[0], None).await.unwrap();
    assert!(data.get(&a, "Note", &note[0], &[]).await.is_err());

    // The rules' own checks: setNull needs an optional field; onDelete a reference.
    for (fields, pointer) in [
        (
            json!([{ "name": "c", "type": "reference", "referenceTo": "Client", "required": true, "onDelete": "setNull" }]),
            "/fields/0/onDelete",
        ),
        (
            json!([{ "name": "c", "type": "string", "onDelete": "cascade" }]),
            "/fields/0/onDelete",
        ),
        (
            json!([{ "name": "c", "type": "reference", "referenceTo": "Client", "onDelete": "explode" }]),
            "/fields/0/onDelete",
        ),
    ] {
        registry.create_entity(&a, "Bad", None).await.ok();
        match registry
            .create_version(&a, "Bad", "v1", json!({ "fields": fields }))
            .await
        {
            Err(RegistryError::Invalid { errors, .. }) => {
                assert!(errors.iter().any(|p| p.pointer == pointer), "{errors:?}");
            }
            other => panic!("{fields}: {other:?}"),
        }
    }
}

/// Random read policies for Owner: allows and denies on the record's team and level and on the
/// caller's role.
fn random_policies(rng: &mut Rng) -> Value {
    let mut policies = Vec::new();
    for n in 0..=rng.below(3) {
        let mut conditions = Vec::new();
        for _ in 0..rng.below(3) {
            conditions.push(match rng.below(3) {
                0 => json!({ "field": "record.team", "operator": "eq", "value": rng.pick(&["a", "b", "c"]) }),
                1 => json!({ "field": "record.level", "operator": rng.pick(&["gt", "lte"]), "value": rng.below(5) }),
                _ => json!({ "field": "user.role", "operator": "eq", "value": rng.pick(&["user", "clerk"]) }),
            });
        }
        policies.push(json!({
            "name": format!("p{n}"),
            "effect": if rng.below(4) == 0 { "deny" } else { "allow" },
            "action": "read",
            "conditions": conditions,
        }));
    }
    json!(policies)
}

/// Isolation, as a property over random read policies: whatever the policies, an expanded Owner
/// (forward from an Item, or reverse Items under an Owner) is exactly what the caller gets
/// directly: `null` where a get of the Owner answers 404, the same record where it answers it.
/// Another tenant holds Owners with the same ids, which never show.
async fn an_expansion_never_shows_what_a_get_would_not(store: Arc<dyn Store>) {
    let registry = Registry::new(store.clone(), AccessConfig::default());
    let a = admin();
    let owner_fields =
        json!([{ "name": "team", "type": "string" }, { "name": "level", "type": "integer" }]);
    define(&registry, "Owner", owner_fields.clone()).await;
    define(
        &registry,
        "Item",
        json!([{ "name": "ownerId", "type": "reference", "referenceTo": "Owner" },
               { "name": "tag", "type": "string" }]),
    )
    .await;
    let data = service(store.clone()).await;
    let mut rng = Rng(0x5EED_0014);
    let owners: Vec<Value> = (0..12u64)
        .map(|i| {
            json!({ "id": format!("01900000-0000-7000-8000-{i:012}"),
                    "team": rng.pick(&["a", "b", "c"]), "level": rng.below(6) })
        })
        .collect();
    let owner_ids = create(&data, "Owner", owners.clone()).await;
    // The same ids in another tenant, with another team.
    let other = Actor {
        tenant_id: "other".into(),
        ..admin()
    };
    let theirs: Vec<BatchOp> = owners
        .iter()
        .map(|o| BatchOp::Create {
            entity: "Owner".into(),
            record: json!({ "id": o["id"], "team": "z", "level": 9 }),
        })
        .collect();
    data.batch(&other, &theirs).await.unwrap();
    let items: Vec<Value> = (0..40u64)
        .map(|i| json!({ "ownerId": owner_ids[(i * 7 % 12) as usize], "tag": format!("t{i}") }))
        .collect();
    create(&data, "Item", items).await;

    let (mut shown, mut hidden) = (0, 0);
    for case in 0..12 {
        let version = format!("v{}", case + 2);
        registry
            .create_version(
                &a,
                "Owner",
                &version,
                json!({ "fields": owner_fields, "policies": random_policies(&mut rng) }),
            )
            .await
            .unwrap();
        registry.activate(&a, "Owner", &version).await.unwrap();
        let data = service(store.clone()).await;
        let caller = Actor {
            user_id: "u".into(),
            roles: vec![(*rng.pick(&["user", "clerk", "guest"])).to_owned()],
            ..admin()
        };
        // What the caller gets directly.
        let mut direct = std::collections::HashMap::new();
        for id in &owner_ids {
            let got = data
                .get(&caller, "Owner", id, &[])
                .await
                .ok()
                .map(|(text, _)| serde_json::from_str::<Value>(&text).unwrap());
            direct.insert(id.clone(), got);
        }
        let page = data
            .list(
                &caller,
                "Item",
                &ListRequest {
                    page_size: Some(100),
                    expand: vec!["ownerId".into()],
                    ..ListRequest::default()
                },
            )
            .await;
        let Ok(page) = page else {
            // Items are readable by everyone (the allow-all policy of `define`).
            panic!("case {case}: items not listed: {page:?}");
        };
        assert_eq!(page.records.len(), 40);
        for text in &page.records {
            let item: Value = serde_json::from_str(text).unwrap();
            let owner = item["ownerId"].as_str().unwrap();
            let expected = direct[owner].clone().unwrap_or(Value::Null);
            if expected.is_null() {
                hidden += 1;
            } else {
                shown += 1;
            }
            assert_eq!(item["expand"]["ownerId"], expected, "case {case}: forward");
            assert_ne!(
                item["expand"]["ownerId"]["team"], "z",
                "case {case}: other tenant"
            );
        }
        // Reverse: under each Owner the caller can read, exactly the Items that refer to it.
        for (id, got) in &direct {
            let Some(_) = got else { continue };
            let (text, _) = data
                .get(&caller, "Owner", id, &["Item_via_ownerId".to_owned()])
                .await
                .unwrap();
            let owner: Value = serde_json::from_str(&text).unwrap();
            let under = owner["expand"]["Item_via_ownerId"].as_array().unwrap();
            let expected = page
                .records
                .iter()
                .filter(|t| t.contains(id.as_str()))
                .count();
            assert_eq!(under.len(), expected, "case {case}: reverse under {id}");
        }
    }
    // The random policies hid some owners and showed others.
    assert!(shown > 40 && hidden > 40, "shown {shown}, hidden {hidden}");
}

/// Two entities that refer to each other (A → B → A): A is activated while B has no table yet,
/// so its reference is enforced once B is activated; then both are, and expansions stop at the
/// depth asked.
async fn a_cycle_of_entities_is_enforced_both_ways(store: Arc<dyn Store>) {
    let registry = Registry::new(store.clone(), AccessConfig::default());
    let a = admin();
    registry.create_entity(&a, "Beta", None).await.unwrap();
    define(
        &registry,
        "Alpha",
        json!([{ "name": "betaId", "type": "reference", "referenceTo": "Beta" }]),
    )
    .await;
    registry
        .create_version(
            &a,
            "Beta",
            "v1",
            json!({ "fields": [{ "name": "alphaId", "type": "reference", "referenceTo": "Alpha" }],
                    "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
        )
        .await
        .unwrap();
    registry.activate(&a, "Beta", "v1").await.unwrap();
    let data = service(store).await;
    let alpha = create(&data, "Alpha", vec![json!({})]).await;
    let beta = create(&data, "Beta", vec![json!({ "alphaId": alpha[0] })]).await;
    data.update(&a, "Alpha", &alpha[0], &json!({ "betaId": beta[0] }), None)
        .await
        .unwrap();
    for (entity, id) in [("Alpha", &alpha[0]), ("Beta", &beta[0])] {
        let e = data.delete(&a, entity, id, None).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::StillReferenced, "{entity}: {e:?}");
    }
    let (text, _) = data
        .get(
            &a,
            "Alpha",
            &alpha[0],
            &["betaId.alphaId.betaId".to_owned()],
        )
        .await
        .unwrap();
    let record: Value = serde_json::from_str(&text).unwrap();
    let third = &record["expand"]["betaId"]["expand"]["alphaId"]["expand"]["betaId"];
    assert_eq!(third["id"], beta[0].as_str());
    assert_eq!(third.get("expand"), None);
}

crate::on_both_backends!(
    a_cycle_of_entities_is_enforced_both_ways,
    an_expansion_never_shows_what_a_get_would_not,
    on_delete_set_null_and_cascade,
    one_statement_per_list_or_get_with_expansions,
    references_are_enforced_by_the_database,
    concurrent_deletes_and_references_leave_nothing_dangling
);
