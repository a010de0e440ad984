//! Conformance of the record verbs: every statement of the one query builder, run on the real
//! database, formats values identically, stays inside its tenant and realm, pages with cursors,
//! and refuses stale row versions and duplicate unique values.

use std::sync::Arc;

use metaengine_core::policy::RowFilter;
use metaengine_core::{CompiledModel, EntitySchema, SqlValue, compile};
use metaengine_sql::query::{Filter, FilterOp, FilterValue, ListQuery, NewRow, Order, Scope};
use serde_json::{Value, json};

use super::audit;
use crate::store::RecordBatch;
use crate::{AuditQuery, EventType, NewEntity, NewVersion, RecordWrite, Store, StoreError};

/// Generates the record conformance tests; `$make` yields `(guard, Arc<dyn Store>)`. The
/// backend's tests also run [`cut_off_work_leaves_no_trace`] on a store with one connection.
#[macro_export]
macro_rules! record_conformance_tests {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn records_round_trip_inside_their_scope() {
            let (_guard, store) = $make.await;
            $crate::testkit::records::records_round_trip_inside_their_scope(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn records_keep_every_value_exactly() {
            let (_guard, store) = $make.await;
            $crate::testkit::records::records_keep_every_value_exactly(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn record_batches_insert_all_or_nothing_inside_their_scope() {
            let (_guard, store) = $make.await;
            $crate::testkit::records::record_batches_insert_all_or_nothing_inside_their_scope(
                store,
            )
            .await;
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
    assert!(
        s.get_record(&m, T2, &id(1), None, &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !s.record_exists(&m, T2, &id(1), &RowFilter::All)
            .await
            .unwrap()
    );
    assert!(
        s.record_exists(&m, T1, &id(1), &RowFilter::All)
            .await
            .unwrap()
    );
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
        expand: &[],
        related: &[],
    };
    let first = s.list_records(&m, &query, usize::MAX).await.unwrap();
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
    let second = s.list_records(&m, &query, usize::MAX).await.unwrap();
    assert_eq!(numbers(&second.records), ["INV-6"]);
    assert!(second.next.is_none());
    // A byte budget smaller than one record: one record per page, each page ending with a
    // cursor that continues where it stopped, none lost or repeated.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let budgeted = ListQuery {
            limit: 10,
            after: after.as_ref(),
            expand: &[],
            related: &[],
            ..query
        };
        let page = s.list_records(&m, &budgeted, 1).await.unwrap();
        pages.push(numbers(&page.records));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [["INV-1"], ["INV-4"], ["INV-6"]]);
    assert_eq!(
        s.count_records(&m, T1, &RowFilter::All, &drafts, &[])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_records(&m, T2, &RowFilter::All, &[], &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.count_records(&m, T1, &RowFilter::Nothing, &[], &[])
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
    // A write that changes nothing writes no audit row either (on PostgreSQL the write and its
    // audit rows are one statement).
    let update_audit = [audit(EventType::DataUpdate, "Invoice")];
    let stale = s
        .update_record(&m, write(T1, &ids[1], change), Some(1), &update_audit)
        .await
        .unwrap();
    assert!(stale.is_none(), "a stale row version changes nothing");
    assert!(
        s.update_record(&m, write(T2, &ids[1], change), None, &update_audit)
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        s.delete_record(
            &m,
            T1,
            &id(1),
            Some(1),
            &[audit(EventType::DataDelete, "Invoice")]
        )
        .await
        .unwrap()
        .is_none()
    );
    for (event, rows) in [(EventType::DataUpdate, 1), (EventType::DataDelete, 0)] {
        let query = AuditQuery {
            event_types: vec![event],
            ..AuditQuery::default()
        };
        assert_eq!(
            s.query_audit(&query).await.unwrap().meta.total,
            rows,
            "{event:?}"
        );
    }
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
    assert!(
        s.get_record(&m, T1, &id(1), None, &[])
            .await
            .unwrap()
            .is_none()
    );

    // Audit rows were written with the writes that happened, not with the refused ones.
    let data = s
        .query_audit(&AuditQuery {
            event_types: vec![
                EventType::DataCreate,
                EventType::DataUpdate,
                EventType::DataDelete,
            ],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(data.meta.total, 3);
}

fn batch<'a>(scope: Scope<'a>, rows: &'a [NewRow<'a>]) -> RecordBatch<'a> {
    RecordBatch {
        scope,
        actor: "u1",
        rows,
    }
}

/// Every record of `scope`, by `invoiceNumber`.
async fn numbers_in(s: &dyn Store, m: &CompiledModel, scope: Scope<'_>) -> Vec<Value> {
    let order = Order {
        field: "invoiceNumber".into(),
        descending: false,
    };
    let query = ListQuery {
        scope,
        row_filter: &RowFilter::All,
        filters: &[],
        order: Some(&order),
        fields: None,
        limit: 100,
        offset: 0,
        after: None,
        expand: &[],
        related: &[],
    };
    s.list_records(m, &query, usize::MAX)
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

pub async fn record_batches_insert_all_or_nothing_inside_their_scope(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let m = model(s).await;
    let (a, b) = (
        invoice("B-1", "100.50", "draft"),
        invoice("B-2", "7", "sent"),
    );
    let only_number = vec![("invoiceNumber".to_owned(), text("B-3"))];
    let ids: Vec<String> = (100..110).map(id).collect();
    let rows = [
        NewRow {
            id: &ids[0],
            values: &a,
        },
        NewRow {
            id: &ids[1],
            values: &only_number,
        },
        NewRow {
            id: &ids[2],
            values: &b,
        },
    ];
    let created = audit(EventType::DataCreate, "Invoice");
    let n = s
        .insert_records(&m, batch(T1, &rows), std::slice::from_ref(&created))
        .await
        .unwrap();
    assert_eq!(n, 3);
    let records = numbers_in(s, &m, T1).await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["id"], id(100));
    assert_eq!(records[0]["totalAmount"], "100.50");
    assert_eq!(records[0]["paidAt"], "2026-11-26T10:00:00.123Z");
    assert_eq!(records[0]["meta"], json!({ "tags": ["a", "b"], "n": 1 }));
    assert_eq!(records[0]["tenantId"], "t1");
    assert_eq!(records[0]["realmId"], "r1");
    assert_eq!(records[0]["createdBy"], "u1");
    assert_eq!(records[0]["updatedBy"], "u1");
    assert_eq!(records[0]["rowVersion"], 1);
    assert_eq!(records[0]["createdAt"], records[0]["updatedAt"]);
    assert_eq!(records[1]["invoiceNumber"], "B-2");
    assert_eq!(records[2]["invoiceNumber"], "B-3");
    assert_eq!(
        records[2]["totalAmount"],
        Value::Null,
        "an absent field is null"
    );
    assert!(
        s.get_record(&m, T1, &id(101), None, &[])
            .await
            .unwrap()
            .is_some()
    );

    // Another tenant and another realm see none of them, and may use the same unique values.
    let other_realm = Scope {
        tenant_id: "t1",
        realm_id: "r2",
    };
    assert!(numbers_in(s, &m, T2).await.is_empty());
    assert!(numbers_in(s, &m, other_realm).await.is_empty());
    assert!(
        s.get_record(&m, T2, &id(100), None, &[])
            .await
            .unwrap()
            .is_none()
    );
    for (scope, n) in [(T2, 3), (other_realm, 4)] {
        let rows = [NewRow {
            id: &ids[n],
            values: &a,
        }];
        assert_eq!(
            s.insert_records(&m, batch(scope, &rows), std::slice::from_ref(&created))
                .await
                .unwrap(),
            1
        );
        assert_eq!(numbers_in(s, &m, scope).await.len(), 1);
    }
    assert_eq!(numbers_in(s, &m, T1).await.len(), 3);

    // Values holding the bulk format's separators (PostgreSQL's COPY: tab, newline, backslash,
    // `\N`) come back exactly, one record each, in the caller's scope only.
    let awkward = "t2\tr1\n\\N\r\\\tend";
    let tricky = invoice(awkward, "2", "draft");
    let rows = [NewRow {
        id: &ids[7],
        values: &tricky,
    }];
    assert_eq!(
        s.insert_records(&m, batch(T1, &rows), std::slice::from_ref(&created))
            .await
            .unwrap(),
        1
    );
    let stored: Value = serde_json::from_str(
        &s.get_record(&m, T1, &id(107), None, &[])
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["invoiceNumber"], awkward);
    assert_eq!(stored["tenantId"], "t1");
    assert_eq!(numbers_in(s, &m, T1).await.len(), 4);
    assert_eq!(numbers_in(s, &m, T2).await.len(), 1);

    // A duplicate inside the batch, or against a stored record: nothing of the batch is written.
    let c = invoice("B-5", "1", "draft");
    for duplicate in [&c, &a] {
        let rows = [
            NewRow {
                id: &ids[5],
                values: &c,
            },
            NewRow {
                id: &ids[6],
                values: duplicate,
            },
        ];
        let refused = s
            .insert_records(&m, batch(T1, &rows), std::slice::from_ref(&created))
            .await;
        assert!(matches!(refused, Err(StoreError::Unique(_))), "{refused:?}");
        assert!(
            s.get_record(&m, T1, &id(105), None, &[])
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(numbers_in(s, &m, T1).await.len(), 4);
    }

    // More values than one statement may bind (SQLite's limit): several statements, one batch.
    let many: Vec<(String, Vec<(String, SqlValue)>)> = (0..4_000u32)
        .map(|i| {
            let number = format!("M-{i:05}");
            (
                format!("0190f1a2-3b4c-7d5e-8f61-{i:012}"),
                invoice(&number, "1.25", "paid"),
            )
        })
        .collect();
    let rows: Vec<NewRow<'_>> = many
        .iter()
        .map(|(id, values)| NewRow { id, values })
        .collect();
    assert_eq!(
        s.insert_records(&m, batch(T2, &rows), std::slice::from_ref(&created))
            .await
            .unwrap(),
        4_000
    );
    assert_eq!(
        s.count_records(&m, T2, &RowFilter::All, &[], &[])
            .await
            .unwrap(),
        4_001
    );
    assert_eq!(
        s.count_records(&m, T1, &RowFilter::All, &[], &[])
            .await
            .unwrap(),
        4
    );

    // One audit row per batch written; none for the refused ones.
    let data = s
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataCreate],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(data.meta.total, 5);

    // Many audit rows at once (the batched writer's flush): multi-row inserts, every row kept.
    let reads: Vec<crate::NewAudit> = (0..2_500)
        .map(|n| {
            crate::NewAudit::success(
                EventType::DataRead,
                &super::actor(),
                "Invoice",
                Some(json!({ "n": n })),
            )
        })
        .collect();
    s.append_audit(&reads).await.unwrap();
    let page = s
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataRead],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.meta.total, 2_500);
    let row = &page.data[0];
    assert_eq!(row.user_id, "alice");
    assert_eq!(row.resource, "Invoice");
    assert!(row.details.as_ref().is_some_and(|d| d["n"].is_number()));
}

/// The record text the store writes from a row's columns is valid JSON that gives back exactly
/// what was written: text with quotes, backslashes, control characters and non-ASCII, numbers
/// large and small, booleans, nested JSON, `null`s, on a model of 128 keys, in model order.
pub async fn records_keep_every_value_exactly(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let m = model(s).await;
    let scope = Scope {
        tenant_id: "t1",
        realm_id: "r1",
    };
    let awkward = "a \"quoted\" \\ back\\slash, tab\t, newline\n, bell\u{7}, caf\u{e9} \u{1f600} '";
    let meta = json!({ "s": awkward, "n": [1, 2.5, null], "o": { "k": false } });
    let values = vec![
        ("invoiceNumber".to_owned(), text(awkward)),
        ("totalAmount".to_owned(), text("-1234567890.05")),
        ("status".to_owned(), text("paid")),
        ("dueDate".to_owned(), SqlValue::Null),
        ("paidAt".to_owned(), text("0001-01-01T00:00:00.000Z")),
        ("active".to_owned(), SqlValue::Bool(false)),
        ("lines".to_owned(), SqlValue::Int(i64::MIN)),
        ("ratio".to_owned(), SqlValue::Float(0.1)),
        ("meta".to_owned(), text(&meta.to_string())),
    ];
    let awkward_id = id(77);
    let created: Value = serde_json::from_str(
        &s.insert_record(&m, write(scope, &awkward_id, &values), &[])
            .await
            .unwrap(),
    )
    .unwrap();
    let read = s
        .get_record(&m, scope, &awkward_id, None, &[])
        .await
        .unwrap()
        .unwrap();
    let read: Value = serde_json::from_str(&read).unwrap();
    assert_eq!(created, read);
    assert_eq!(read["invoiceNumber"], awkward);
    assert_eq!(read["totalAmount"], "-1234567890.05");
    assert_eq!(read["dueDate"], Value::Null);
    assert_eq!(read["paidAt"], "0001-01-01T00:00:00.000Z");
    assert_eq!(read["active"], false);
    assert_eq!(read["lines"], i64::MIN);
    assert_eq!(read["ratio"], 0.1);
    assert_eq!(read["meta"], meta);
    assert_eq!(read["rowVersion"], 1);
    assert_eq!(read["id"], awkward_id.as_str());

    // 120 fields, 128 keys: every one back, in model order, `null`s included.
    let a = audit(EventType::EntityCreate, "Wide");
    let fields: Vec<Value> = (0..120)
        .map(|i| json!({ "name": format!("f{i}"), "type": if i % 2 == 0 { "integer" } else { "string" } }))
        .collect();
    let doc = json!({ "fields": fields });
    let new = NewEntity {
        name: "Wide".into(),
        description: None,
        created_by: "alice".into(),
    };
    s.create_entity(&new, &a).await.unwrap();
    let version = NewVersion {
        entity_name: "Wide".into(),
        version: "v1".into(),
        schema: doc.clone(),
        created_by: "alice".into(),
    };
    s.create_version(&version, &a).await.unwrap();
    s.activate_version("Wide", "v1", &|_| vec![]).await.unwrap();
    let schema: EntitySchema = serde_json::from_value(doc).unwrap();
    let wide = compile("Wide", "v1", &schema, "test", "2026-11-26T00:00:00.000Z");
    let values: Vec<(String, SqlValue)> = (0..120)
        .filter(|i| i % 3 != 0)
        .map(|i| {
            let value = if i % 2 == 0 {
                SqlValue::Int(i)
            } else {
                text(&format!("v{i}\""))
            };
            (format!("f{i}"), value)
        })
        .collect();
    let wide_id = id(78);
    s.insert_record(&wide, write(scope, &wide_id, &values), &[])
        .await
        .unwrap();
    let stored = s
        .get_record(&wide, scope, &wide_id, None, &[])
        .await
        .unwrap()
        .unwrap();
    let record: serde_json::Map<String, Value> = serde_json::from_str(&stored).unwrap();
    let keys: Vec<&str> = record.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 128);
    assert_eq!(keys.first(), Some(&"id"));
    assert_eq!(keys.get(1), Some(&"f0"));
    assert_eq!(keys.get(120), Some(&"f119"));
    assert_eq!(keys.last(), Some(&"rowVersion"));
    for i in 0..120_i64 {
        let expected = match (i % 3, i % 2) {
            (0, _) => Value::Null,
            (_, 0) => json!(i),
            _ => json!(format!("v{i}\"")),
        };
        assert_eq!(record[&format!("f{i}")], expected, "f{i}");
    }
}

/// What requests cut off midway leave behind (their futures dropped: the client went away, a
/// timeout), on a store with ONE connection, so that every statement reuses the connection the
/// cut one left: nothing. A cut write is whole or absent, and holds no lock once cut (writing
/// its unique number again ends at once, refused only if the cut write had committed); the
/// statements after a cut read their own rows, not the ones a cut list left unread.
pub async fn cut_off_work_leaves_no_trace(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let m = model(s).await;
    let created = audit(EventType::DataCreate, "Invoice");
    let patient = std::time::Duration::from_secs(20);
    // Rows enough for a list to still be arriving when it is cut.
    let values: Vec<_> = (0..60)
        .map(|n| invoice(&format!("A-{n:03}"), "1", "draft"))
        .collect();
    let ids: Vec<String> = (0..60).map(id).collect();
    let rows: Vec<NewRow> = ids
        .iter()
        .zip(&values)
        .map(|(id, values)| NewRow { id, values })
        .collect();
    s.insert_records(&m, batch(T1, &rows), std::slice::from_ref(&created))
        .await
        .unwrap();
    let mut cut_writes_committed = 0;
    // Cut at the first wait for the database, the second, … until the write no longer waits
    // that often.
    for n in 0..30u32 {
        let values = invoice(&format!("C-{n:03}"), "2", "sent");
        let cut_id = id(1000 + n);
        let row = [NewRow {
            id: &cut_id,
            values: &values,
        }];
        cut_after(
            n,
            s.insert_records(&m, batch(T1, &row), std::slice::from_ref(&created)),
        )
        .await;
        cut_after(n, numbers_in(s, &m, T1)).await;

        let again_id = id(2000 + n);
        let again = [NewRow {
            id: &again_id,
            values: &values,
        }];
        let write = s.insert_records(&m, batch(T1, &again), std::slice::from_ref(&created));
        let written = tokio::time::timeout(patient, write)
            .await
            .expect("a cut write holds no lock");
        let committed = s
            .get_record(&m, T1, &cut_id, None, &[])
            .await
            .unwrap()
            .is_some();
        match written {
            Ok(1) => assert!(!committed, "cut at wait {n}: the number was written twice"),
            Err(StoreError::Unique(_)) => {
                assert!(
                    committed,
                    "cut at wait {n}: refused for a write that is absent"
                );
                cut_writes_committed += 1;
            }
            other => panic!("cut at wait {n}: {other:?}"),
        }
        let all = tokio::time::timeout(patient, numbers_in(s, &m, T1))
            .await
            .expect("the connection is usable after a cut");
        let numbers: Vec<&str> = all
            .iter()
            .filter_map(|r| r["invoiceNumber"].as_str())
            .collect();
        let mut expected: Vec<String> = (0..60).map(|k| format!("A-{k:03}")).collect();
        expected.extend((0..=n).map(|k| format!("C-{k:03}")));
        assert_eq!(numbers, expected, "cut at wait {n}");
    }
    // The cuts fell on both sides of the commit: one at the first wait never commits, one at
    // the 30th comes after the write ended.
    assert!(
        (1..30).contains(&cut_writes_committed),
        "{cut_writes_committed} cut writes committed"
    );
}

/// Runs `work` until it has waited `waits` times, and drops it there (`None`) unless it ended
/// first.
async fn cut_after<F: std::future::Future>(waits: u32, work: F) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    let mut waited = 0;
    std::future::poll_fn(|cx| match work.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending if waited == waits => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            waited += 1;
            std::task::Poll::Pending
        }
    })
    .await
}
