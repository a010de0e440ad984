//! Conformance cases for the data tables that activation creates and migrates. They need to look
//! at and write rows of a data table directly, which the [`Store`] trait does not do (the data API
//! comes later): each backend's tests supply a [`RawTables`] with a few dialect-specific
//! statements, and the stories are written once here.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{actor, audit};
use crate::{EventType, NewEntity, NewVersion, Store, StoreError};

/// Direct access to data tables, for tests only.
#[async_trait]
pub trait RawTables: Send + Sync {
    /// Column names of a data table, in order (empty when it does not exist).
    async fn columns(&self, table: &str) -> Vec<String>;
    /// Inserts a row into `ent_invoice` with system columns, `invoice_number` and `total_amount`.
    async fn insert_invoice(&self, number: &str, total: &str);
    /// Sets `notes` of the invoice with that number.
    async fn set_notes(&self, number: &str, notes: &str);
    /// `notes` of the invoice with that number.
    async fn notes(&self, number: &str) -> Option<String>;
    /// `total_amount` of the invoice with that number, as text.
    async fn total(&self, number: &str) -> String;
    /// Rows in `ent_invoice`.
    async fn count(&self) -> i64;
}

/// Generates one `#[tokio::test]` per table case; `$make` yields
/// `(guard, Arc<dyn Store>, Arc<dyn RawTables>)` on a fresh migrated database.
#[macro_export]
macro_rules! table_conformance_tests {
    ($make:expr) => {
        $crate::table_conformance_tests!($make;
            activation_creates_and_migrates_the_table,
            rolling_back_keeps_every_value,
            deleting_an_entity_with_rows_needs_force,
            pruning_drops_only_hidden_columns,
            a_new_required_field_needs_a_default_once_rows_exist,
        );
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (_guard, store, raw) = $make.await;
                $crate::testkit::tables::$case(store, raw).await;
            }
        )*
    };
}

const SYSTEM: [&str; 8] = [
    "tenant_id",
    "realm_id",
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "row_version",
];

fn v1() -> Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "decimal", "precision": 12, "scale": 2, "required": true }
    ]})
}

fn v2() -> Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "decimal", "precision": 12, "scale": 2, "required": true },
        { "name": "notes", "type": "text" },
        { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"],
          "required": true, "default": "draft" }
    ]})
}

fn columns_of(extra: &[&str]) -> Vec<String> {
    SYSTEM.iter().chain(extra).map(|c| c.to_string()).collect()
}

async fn setup(store: &dyn Store, versions: &[(&str, Value)]) {
    store
        .create_entity(
            &NewEntity {
                name: "Invoice".into(),
                description: None,
                created_by: "alice".into(),
            },
            &audit(EventType::EntityCreate, "Invoice"),
        )
        .await
        .unwrap();
    for (label, schema) in versions {
        store
            .create_version(
                &NewVersion {
                    entity_name: "Invoice".into(),
                    version: (*label).into(),
                    schema: schema.clone(),
                    created_by: "alice".into(),
                },
                &audit(EventType::VersionCreate, "Invoice"),
            )
            .await
            .unwrap();
    }
}

async fn activate(store: &dyn Store, version: &str) -> Result<crate::Activation, StoreError> {
    store
        .activate_version("Invoice", version, &|plan| {
            vec![
                audit(EventType::VersionActivate, "Invoice"),
                crate::NewAudit::success(
                    EventType::Migrate,
                    &actor(),
                    "Invoice",
                    Some(json!({ "statements": plan.statements })),
                ),
            ]
        })
        .await
}

pub async fn activation_creates_and_migrates_the_table(
    store: Arc<dyn Store>,
    raw: Arc<dyn RawTables>,
) {
    let s = store.as_ref();
    let v3 = json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "totalAmount", "type": "string", "required": true }
    ]});
    setup(s, &[("v1", v1()), ("v2", v2()), ("v3", v3)]).await;

    let dry = s.plan_activation("Invoice", "v1").await.unwrap();
    assert!(!dry.statements.is_empty());
    assert!(
        raw.columns("ent_invoice").await.is_empty(),
        "a dry run changes nothing"
    );

    let first = activate(s, "v1").await.unwrap();
    assert_eq!(first.plan.table, "ent_invoice");
    assert_eq!(
        raw.columns("ent_invoice").await,
        columns_of(&["invoice_number", "total_amount"])
    );
    raw.insert_invoice("INV-1", "100.50").await;
    raw.insert_invoice("INV-2", "7.25").await;

    let second = activate(s, "v2").await.unwrap();
    assert_eq!(second.plan.shaped_by.as_deref(), Some("v1"));
    assert_eq!(
        raw.columns("ent_invoice").await,
        columns_of(&["invoice_number", "total_amount", "notes", "status"])
    );
    assert_eq!(raw.count().await, 2, "existing rows are intact");
    assert_eq!(raw.total("INV-1").await, "100.50");

    // A type change is refused with a pointer to it, and nothing changes.
    let refused = activate(s, "v3").await.unwrap_err();
    let StoreError::Breaking { errors, .. } = refused else {
        panic!("{refused:?}")
    };
    assert!(
        errors.iter().any(|p| p.pointer == "/fields/1/type"),
        "{errors:?}"
    );
    assert_eq!(
        s.active_version("Invoice").await.unwrap().unwrap().version,
        "v2"
    );
    assert!(
        s.get_version("Invoice", "v3")
            .await
            .unwrap()
            .unwrap()
            .activated_at
            .is_none()
    );
    assert_eq!(
        raw.columns("ent_invoice").await,
        columns_of(&["invoice_number", "total_amount", "notes", "status"])
    );
    let migrations = s
        .query_audit(&crate::AuditQuery {
            event_types: vec![EventType::Migrate],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        migrations.meta.total, 2,
        "one migrate row per applied activation"
    );
    assert!(migrations.data[0].details.as_ref().unwrap()["statements"][0].is_string());
}

pub async fn rolling_back_keeps_every_value(store: Arc<dyn Store>, raw: Arc<dyn RawTables>) {
    let s = store.as_ref();
    setup(s, &[("v1", v1()), ("v2", v2())]).await;
    activate(s, "v1").await.unwrap();
    raw.insert_invoice("INV-1", "10.00").await;
    activate(s, "v2").await.unwrap();
    raw.set_notes("INV-1", "call before paying").await;

    let back = activate(s, "v1").await.unwrap();
    assert_eq!(back.previous.as_deref(), Some("v2"));
    assert_eq!(
        s.hidden_columns("Invoice").await.unwrap(),
        ["notes", "status"]
    );
    raw.insert_invoice("INV-2", "20.00").await;
    assert_eq!(
        raw.notes("INV-1").await.as_deref(),
        Some("call before paying")
    );

    activate(s, "v2").await.unwrap();
    assert!(s.hidden_columns("Invoice").await.unwrap().is_empty());
    assert_eq!(
        raw.notes("INV-1").await.as_deref(),
        Some("call before paying")
    );
    assert_eq!(raw.count().await, 2);
}

pub async fn deleting_an_entity_with_rows_needs_force(
    store: Arc<dyn Store>,
    raw: Arc<dyn RawTables>,
) {
    let s = store.as_ref();
    setup(s, &[("v1", v1())]).await;
    activate(s, "v1").await.unwrap();
    raw.insert_invoice("INV-1", "1.00").await;
    let refused = s
        .delete_entity("Invoice", false, &audit(EventType::EntityDelete, "Invoice"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::HasRows(_))),
        "{refused:?}"
    );
    assert!(s.entity_exists("Invoice").await.unwrap());
    assert_eq!(raw.count().await, 1);

    let dropped = s
        .delete_entity("Invoice", true, &audit(EventType::EntityDelete, "Invoice"))
        .await
        .unwrap();
    assert!(dropped);
    assert!(raw.columns("ent_invoice").await.is_empty());
    let row = s
        .query_audit(&crate::AuditQuery {
            event_types: vec![EventType::EntityDelete],
            ..Default::default()
        })
        .await
        .unwrap()
        .data
        .remove(0);
    assert_eq!(row.details.unwrap()["droppedTable"], "ent_invoice");

    // The name starts afresh.
    setup(s, &[("v1", v1())]).await;
    activate(s, "v1").await.unwrap();
    assert_eq!(raw.count().await, 0);
}

pub async fn pruning_drops_only_hidden_columns(store: Arc<dyn Store>, raw: Arc<dyn RawTables>) {
    let s = store.as_ref();
    setup(s, &[("v1", v1()), ("v2", v2())]).await;
    activate(s, "v2").await.unwrap();
    raw.insert_invoice("INV-1", "3.00").await;
    activate(s, "v1").await.unwrap();
    let pruned = s
        .prune_hidden_columns("Invoice", &audit(EventType::Migrate, "Invoice"))
        .await
        .unwrap();
    assert_eq!(pruned, ["notes", "status"]);
    assert_eq!(
        raw.columns("ent_invoice").await,
        columns_of(&["invoice_number", "total_amount"])
    );
    assert_eq!(raw.total("INV-1").await, "3.00");
    assert!(s.hidden_columns("Invoice").await.unwrap().is_empty());
}

pub async fn a_new_required_field_needs_a_default_once_rows_exist(
    store: Arc<dyn Store>,
    raw: Arc<dyn RawTables>,
) {
    let s = store.as_ref();
    let mut v2 = v1();
    v2["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "customerId", "type": "string", "required": true }));
    setup(s, &[("v1", v1()), ("v2", v2.clone())]).await;
    activate(s, "v1").await.unwrap();
    // Empty table: the new required column is fine.
    activate(s, "v1").await.unwrap();
    let plan = s.plan_activation("Invoice", "v2").await.unwrap();
    assert!(!plan.plan.is_breaking(), "{:?}", plan.plan.breaking);
    raw.insert_invoice("INV-1", "5.00").await;
    let refused = activate(s, "v2").await.unwrap_err();
    let StoreError::Breaking { errors, .. } = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(errors[0].pointer, "/fields/2/required");
}
