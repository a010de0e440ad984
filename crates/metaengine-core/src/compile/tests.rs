use super::*;
use crate::record::Comparison;
use crate::schema::{Effect, Operator, PolicyAction};
use serde_json::json;

fn invoice() -> EntitySchema {
    let doc = include_str!("../../tests/schemas/passing/invoice.json");
    serde_json::from_str(doc).unwrap_or_else(|e| panic!("invoice.json: {e}"))
}

fn compiled() -> CompiledModel {
    compile(
        "Invoice",
        "v1",
        &invoice(),
        "admin",
        "2024-01-01T00:00:00.000Z",
    )
}

#[test]
fn compile_is_deterministic() {
    let a = compiled();
    let b = compiled();
    assert_eq!(a, b);
    let ja = serde_json::to_string(&a).unwrap_or_default();
    let jb = serde_json::to_string(&b).unwrap_or_default();
    assert_eq!(ja, jb);
    assert_eq!(a.hash, crate::hash::schema_hash(&invoice()));
    assert_eq!(a.table_name, "ent_invoice");
}

#[test]
fn select_as_and_select_list() {
    let model = compiled();
    let field = model
        .field("totalAmount")
        .unwrap_or_else(|| panic!("no field"));
    assert_eq!(field.column_name, "total_amount");
    assert_eq!(field.select_as, r#""total_amount" AS "totalAmount""#);
    assert_eq!(field.validator.precision, Some(18));
    assert_eq!(field.validator.scale, Some(2));
    assert_eq!(field.validator.min, Some(0.0));
    assert!(model.field("nope").is_none());
    assert_eq!(
        model.select_list,
        r#""tenant_id" AS "tenantId", "realm_id" AS "realmId", "id" AS "id", "created_at" AS "createdAt", "updated_at" AS "updatedAt", "created_by" AS "createdBy", "updated_by" AS "updatedBy", "row_version" AS "rowVersion", "invoice_number" AS "invoiceNumber", "customer_id" AS "customerId", "total_amount" AS "totalAmount", "status" AS "status", "due_date" AS "dueDate""#
    );
}

#[test]
fn json_is_camel_case() {
    let value = serde_json::to_value(compiled()).unwrap_or_default();
    for key in ["tableName", "compiledAt", "compiledBy", "selectList"] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        value["fields"][0]["selectAs"],
        json!(r#""invoice_number" AS "invoiceNumber""#)
    );
    assert_eq!(value["fields"][0]["type"], json!("string"));
    let back: CompiledModel = serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, compiled());
}

#[test]
fn conditions_are_parsed() {
    let model = compiled();
    let own = model.policies.iter().find(|p| p.name == "own records");
    let own = own.unwrap_or_else(|| panic!("no policy"));
    assert_eq!(
        own.conditions,
        vec![CompiledCondition {
            subject: ValuePath::Record("createdBy".into()),
            operator: Operator::Eq,
            value: ConditionValue::Path(ValuePath::ContextUserId),
            comparison: Comparison::Json,
        }]
    );
    let admin = model.policies.iter().find(|p| p.name == "admin only");
    let admin = admin.unwrap_or_else(|| panic!("no policy"));
    assert_eq!(admin.conditions[0].subject, ValuePath::UserRole);
    assert_eq!(
        admin.conditions[0].value,
        ConditionValue::Literal(json!("admin"))
    );
    assert_eq!(admin.action, PolicyAction::All);
    assert_eq!(admin.effect, Effect::Allow);
}

#[test]
fn condition_values() {
    let cond = |value: Option<serde_json::Value>| {
        compile_condition(&Condition {
            field: "user.roles".into(),
            operator: Operator::Contains,
            value,
        })
        .value
    };
    assert_eq!(cond(None), ConditionValue::None);
    assert_eq!(
        cond(Some(json!(["a", "b"]))),
        ConditionValue::Literal(json!(["a", "b"]))
    );
    assert_eq!(cond(Some(json!(3))), ConditionValue::Literal(json!(3)));
    assert_eq!(
        cond(Some(json!("user.id"))),
        ConditionValue::Path(ValuePath::UserId)
    );
    assert_eq!(
        cond(Some(json!("context.tenantId"))),
        ConditionValue::Path(ValuePath::ContextTenantId)
    );
    assert_eq!(
        cond(Some(json!("user.nope"))),
        ConditionValue::Path(ValuePath::Unknown("user.nope".into()))
    );
    for path in [
        "user.id",
        "user.role",
        "user.roles",
        "context.userId",
        "context.realmId",
        "context.roles",
        "record.status",
    ] {
        assert_eq!(ValuePath::parse(path).to_string(), path);
    }
    let json =
        serde_json::to_value(ConditionValue::Path(ValuePath::ContextUserId)).unwrap_or_default();
    assert_eq!(json, json!({ "kind": "path", "value": "context.userId" }));
}

#[test]
fn policies_sorted_by_priority_stable() {
    let mut schema = invoice();
    schema.policies[1].priority = 10;
    let model = compile("Invoice", "v1", &schema, "a", "t");
    let names: Vec<&str> = model.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["admin only", "everyone may read", "own records"]);
}

fn cols(index: &CompiledIndex) -> Vec<String> {
    index
        .columns
        .iter()
        .map(|(c, d)| if *d { format!("-{c}") } else { c.clone() })
        .collect()
}

#[test]
fn invoice_indexes() {
    let model = compiled();
    let got: Vec<(String, Vec<String>, bool)> = model
        .indexes
        .iter()
        .map(|i| (i.name.clone(), cols(i), i.unique))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            (
                "ent_invoice_invoice_number_key".to_string(),
                s(&["tenant_id", "realm_id", "invoice_number"]),
                true
            ),
            (
                "ent_invoice_created_at_id_idx".to_string(),
                s(&["tenant_id", "realm_id", "created_at", "id"]),
                false
            ),
        ]
    );
}

#[test]
fn field_reference_and_schema_indexes() {
    let schema: EntitySchema = serde_json::from_value(json!({
        "fields": [
            { "name": "status", "type": "string", "indexed": true },
            { "name": "dueDate", "type": "date" },
            { "name": "owner", "type": "reference", "referenceTo": "User", "indexed": true }
        ],
        "indexes": [
            { "fields": ["status", "-dueDate"] },
            { "fields": ["status"] },
            { "fields": ["status", "dueDate"], "unique": true },
            { "fields": ["-createdAt"], "name": "recent" }
        ]
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let model = compile("Task", "v1", &schema, "a", "t");
    let got: Vec<(&str, Vec<String>)> = model
        .indexes
        .iter()
        .map(|i| (i.name.as_str(), cols(i)))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            (
                "ent_task_status_id_idx",
                s(&["tenant_id", "realm_id", "status", "id"])
            ),
            (
                "ent_task_owner_id_idx",
                s(&["tenant_id", "realm_id", "owner", "id"])
            ),
            (
                "ent_task_status_due_date_desc_id_desc_idx",
                s(&["tenant_id", "realm_id", "status", "-due_date", "-id"])
            ),
            (
                "ent_task_status_due_date_key",
                s(&["tenant_id", "realm_id", "status", "due_date"])
            ),
            (
                "ent_task_recent",
                s(&["tenant_id", "realm_id", "-created_at", "-id"])
            ),
            (
                "ent_task_created_at_id_idx",
                s(&["tenant_id", "realm_id", "created_at", "id"])
            ),
        ]
    );
}

#[test]
fn long_index_names_are_hashed() {
    let long_a = "a".repeat(40);
    let a = index_name(&format!("ent_{long_a}_x_idx"));
    let b = index_name(&format!("ent_{long_a}_y_idx"));
    assert!(a.len() <= 63 && b.len() <= 63);
    assert_ne!(a, b);
    assert_eq!(a, index_name(&format!("ent_{long_a}_x_idx")));
    assert_eq!(index_name("ent_t_a_idx"), "ent_t_a_idx");

    let field = format!("f{}", "x".repeat(50));
    let schema: EntitySchema = serde_json::from_value(json!({
        "fields": [
            { "name": format!("{field}A"), "type": "string", "indexed": true, "unique": true },
            { "name": format!("{field}B"), "type": "string", "indexed": true }
        ]
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let model = compile("LongEntityName", "v1", &schema, "a", "t");
    let names: Vec<&str> = model.indexes.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names.len(), 4);
    for (i, name) in names.iter().enumerate() {
        assert!(name.len() <= 63, "{name}");
        assert!(!names[i + 1..].contains(name), "duplicate {name}");
    }
}

#[test]
fn colliding_names_get_a_hash() {
    let schema: EntitySchema = serde_json::from_value(json!({
        "fields": [
            { "name": "aB", "type": "string" },
            { "name": "c", "type": "string" },
            { "name": "a", "type": "string" },
            { "name": "bC", "type": "string" }
        ],
        "indexes": [{ "fields": ["aB", "c"] }, { "fields": ["a", "bC"] }]
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let model = compile("T", "v1", &schema, "a", "t");
    assert_eq!(model.indexes[0].name, "ent_t_a_b_c_id_idx");
    assert_ne!(model.indexes[1].name, model.indexes[0].name);
    assert!(model.indexes[1].name.starts_with("ent_t_a_b_c_id_idx_"));
}
