//! Expansions (SPEC §13) cost one statement: a list or get with forward and reverse expansions
//! runs exactly one statement on the store, whether the table holds 20, 100 or 1,000 rows; a
//! reverse expansion stops at 100 records, the smallest ids.

use std::sync::Arc;

use metaengine_runtime::{
    AccessConfig, Actor, AuditWriter, AuditWriterConfig, BatchDone, BatchOp, CacheConfig,
    DataLimits, DataService, ListRequest, ModelCache, PolicyGate, Registry,
};
use metaengine_store::Store;
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
    let cache = ModelCache::new(store.clone(), CacheConfig::default())
        .await
        .unwrap();
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let gate = PolicyGate::new(&AccessConfig::default(), Some(writer.clone()), false);
    DataService::new(store, cache, gate, writer, DataLimits::default())
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

crate::on_both_backends!(one_statement_per_list_or_get_with_expansions);
