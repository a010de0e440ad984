//! Conformance of the record verbs: every statement of the one query builder, run on the real
//! database, formats values identically, stays inside its tenant and realm, pages with cursors,
//! and refuses stale row versions and duplicate unique values.

use std::sync::Arc;

use metaengine_core::policy::RowFilter;
use metaengine_core::{CompiledModel, EntitySchema, SqlValue, compile};
use metaengine_sql::query::{Filter, FilterOp, FilterValue, ListQuery, Order, Scope};
use serde_json::{Value, json};

use super::audit;
use crate::{AuditQuery, EventType, NewEntity, NewVersion, RecordWrite, Store, StoreError};

/// Generates the record conformance tests; `$make` yields `(guard, Arc<dyn Store>)`.
#[macro_export]
macro_rules! record_conformance_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn records_round_trip_inside_their_scope() {
            let (_guard, store) = $make.await;
            $crate::testkit::records::records_round_trip_inside_their_scope(store).await;
        }
    };
}

fn schema() -> Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "decimal", "precision": 12, "scale": 2 },
        { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"] },
        { "name": "dueDate", "type": "date" },
        { "name": "paidAt", "type": "datetime" },
        { "name": "active", "type": "boolean" },
        { "name": "lines", "type": "integer" },
        { "name": "ratio", "type": "number" },
        { "name": "meta", "type": "json" }
    ]})
}

async fn model(store: &dyn Store) -> CompiledModel {
    let a = audit(EventType::EntityCreate, "Invoice");
    let new = NewEntity {
        name: "Invoice".into(),
        description: None,
        created_by: "alice".into(),
    };
    store.create_entity(&new, &a).await.unwrap();
    let version = NewVersion {
        entity_name: "Invoice".into(),
        version: "v1".into(),
        schema: schema(),
        created_by: "alice".into(),
    };
    store.create_version(&version, &a).await.unwrap();
    store
        .activate_version("Invoice", "v1", &|_| vec![])
        .await
        .unwrap();
    let schema: EntitySchema = serde_json::from_value(schema()).unwrap();
    compile("Invoice", "v1", &schema, "test", "2026-11-26T00:00:00.000Z")
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn invoice(number: &str, amount: &str, status: &str) -> Vec<(String, SqlValue)> {
    vec![
        ("invoiceNumber".into(), text(number)),
        ("totalAmount".into(), text(amount)),
        ("status".into(), text(status)),
        ("dueDate".into(), text("2026-11-26")),
        ("paidAt".into(), text("2026-11-26T10:00:00.123Z")),
        ("active".into(), SqlValue::Bool(true)),
        ("lines".into(), SqlValue::Int(7)),
        ("ratio".into(), SqlValue::Float(0.5)),
        ("meta".into(), text(r#"{"tags":["a","b"],"n":1}"#)),
    ]
}

const T1: Scope<'static> = Scope {
    tenant_id: "t1",
    realm_id: "r1",
};
const T2: Scope<'static> = Scope {
    tenant_id: "t2",
    realm_id: "r1",
};

fn id(n: u32) -> String {
    format!("0190f1a2-3b4c-7d5e-8f60-{n:012}")
}

fn write<'a>(scope: Scope<'a>, id: &'a str, values: &'a [(String, SqlValue)]) -> RecordWrite<'a> {
    RecordWrite {
        scope,
        id,
        actor: "u1",
        values,
    }
}

pub async fn records_round_trip_inside_their_scope(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let m = model(s).await;
    let values = invoice("INV-1", "100.50", "draft");
    let ids: Vec<String> = (0..8).map(id).collect();
    let values = values.as_slice();
    let created = s
        .insert_record(
            &m,
            write(T1, &ids[1], values),
            &[audit(EventType::DataCreate, "Invoice")],
        )
        .await
        .unwrap();
    let record: Value = serde_json::from_str(&created).unwrap();
    assert_eq!(record["id"], id(1));
    assert_eq!(record["invoiceNumber"], "INV-1");
    assert_eq!(
        record["totalAmount"], "100.50",
        "decimals keep their digits, as text"
    );
    assert_eq!(record["dueDate"], "2026-11-26");
    assert_eq!(record["paidAt"], "2026-11-26T10:00:00.123Z");
    assert_eq!(record["active"], true);
    assert_eq!(record["lines"], 7);
    assert_eq!(record["ratio"], 0.5);
    assert_eq!(record["meta"], json!({ "tags": ["a", "b"], "n": 1 }));
    assert_eq!(record["tenantId"], "t1");
    assert_eq!(record["rowVersion"], 1);
    assert_eq!(record["createdBy"], "u1");
    assert!(record["createdAt"].as_str().unwrap().ends_with('Z'));

    // Another tenant neither sees it nor collides with its unique value.
    assert!(s.get_record(&m, T2, &id(1), None).await.unwrap().is_none());
    assert!(!s.record_exists(&m, T2, &id(1)).await.unwrap());
    assert!(s.record_exists(&m, T1, &id(1)).await.unwrap());
    s.insert_record(&m, write(T2, &ids[2], values), &[])
        .await
        .unwrap();
    let duplicate = s.insert_record(&m, write(T1, &ids[3], values), &[]).await;
    assert!(
        matches!(duplicate, Err(StoreError::Unique(_))),
        "{duplicate:?}"
    );

    for (n, number, amount, status) in [
        (4, "INV-4", "20.00", "draft"),
        (5, "INV-5", "300.00", "sent"),
        (6, "INV-6", "5.25", "draft"),
    ] {
        let v = invoice(number, amount, status);
        s.insert_record(&m, write(T1, &ids[n], &v), &[])
            .await
            .unwrap();
    }

    // Filtered, ordered, paged with cursors; counts stay in scope.
    let drafts = [Filter {
        field: "status".into(),
        op: FilterOp::Eq,
        value: FilterValue::One(text("draft")),
    }];
    let order = Order {
        field: "totalAmount".into(),
        descending: true,
    };
    let mut query = ListQuery {
        scope: T1,
        row_filter: &RowFilter::All,
        filters: &drafts,
        order: Some(&order),
        fields: None,
        limit: 2,
        offset: 0,
        after: None,
    };
    let first = s.list_records(&m, &query).await.unwrap();
    let numbers = |records: &[String]| -> Vec<String> {
        records
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(r).unwrap()["invoiceNumber"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(numbers(&first.records), ["INV-1", "INV-4"]);
    let cursor = first.next.expect("a second page");
    query.after = Some(&cursor);
    let second = s.list_records(&m, &query).await.unwrap();
    assert_eq!(numbers(&second.records), ["INV-6"]);
    assert!(second.next.is_none());
    assert_eq!(
        s.count_records(&m, T1, &RowFilter::All, &drafts)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_records(&m, T2, &RowFilter::All, &[]).await.unwrap(),
        1
    );
    assert_eq!(
        s.count_records(&m, T1, &RowFilter::Nothing, &[])
            .await
            .unwrap(),
        0
    );

    // Optimistic concurrency on row_version.
    let change = [("status".to_owned(), text("paid"))];
    let change = change.as_slice();
    let updated = s
        .update_record(
            &m,
            write(T1, &ids[1], change),
            Some(1),
            &[audit(EventType::DataUpdate, "Invoice")],
        )
        .await
        .unwrap()
        .unwrap();
    let updated: Value = serde_json::from_str(&updated).unwrap();
    assert_eq!(
        (updated["status"].clone(), updated["rowVersion"].clone()),
        (json!("paid"), json!(2))
    );
    let stale = s
        .update_record(&m, write(T1, &ids[1], change), Some(1), &[])
        .await
        .unwrap();
    assert!(stale.is_none(), "a stale row version changes nothing");
    assert!(
        s.update_record(&m, write(T2, &ids[1], change), None, &[])
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        s.delete_record(&m, T1, &id(1), Some(1), &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.delete_record(&m, T2, &id(1), None, &[])
            .await
            .unwrap()
            .is_none()
    );
    let deleted = s
        .delete_record(
            &m,
            T1,
            &id(1),
            Some(2),
            &[audit(EventType::DataDelete, "Invoice")],
        )
        .await
        .unwrap();
    assert!(deleted.is_some());
    assert!(s.get_record(&m, T1, &id(1), None).await.unwrap().is_none());

    // Audit rows were written with the writes that happened, not with the refused ones.
    let data = s
        .query_audit(&AuditQuery {
            event_types: vec![
                "data.create".into(),
                "data.update".into(),
                "data.delete".into(),
            ],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(data.meta.total, 3);
}
