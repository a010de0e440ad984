use super::*;
use crate::validate::{ValidationContext, validate_schema};
use serde_json::json;

pub(super) fn model() -> CompiledModel {
    let doc = json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "pattern": "^INV-",
          "maxLength": 12 },
        { "name": "status", "type": "enum", "required": true, "default": "draft",
          "enumValues": ["draft", "sent", "paid"] },
        { "name": "totalAmount", "type": "decimal", "required": true, "precision": 8, "scale": 2,
          "min": 0, "max": 100000.5 },
        { "name": "quantity", "type": "integer", "min": 1, "max": 100 },
        { "name": "rate", "type": "number", "min": 0.5, "max": 2.5 },
        { "name": "notes", "type": "text", "minLength": 2, "maxLength": 5 },
        { "name": "paid", "type": "boolean" },
        { "name": "dueDate", "type": "date" },
        { "name": "sentAt", "type": "datetime" },
        { "name": "customer", "type": "reference", "referenceTo": "Customer" },
        { "name": "meta", "type": "json" },
        { "name": "secret", "type": "string", "sensitive": true, "maxLength": 3 },
        { "name": "priority", "type": "integer", "default": 3 },
        { "name": "whole", "type": "decimal", "precision": 5, "scale": 0 }
    ]});
    let exists = |_: &str| true;
    let ctx = ValidationContext {
        entity_name: Some("Invoice"),
        entity_exists: &exists,
    };
    let schema = validate_schema(&doc, &ctx).unwrap_or_else(|p| panic!("{p:?}"));
    crate::compile(
        "Invoice",
        "v1",
        &schema,
        "admin",
        "2026-01-01T00:00:00.000Z",
    )
}

pub(super) fn v() -> RecordValidator {
    RecordValidator::new(&model())
}

fn base() -> Value {
    json!({ "invoiceNumber": "INV-1", "totalAmount": "10.50" })
}

/// `base()` with `key` set to `value`, run through create.
fn create_with(key: &str, value: Value) -> Result<Vec<(String, SqlValue)>, WriteRejected> {
    let mut input = base();
    input.as_object_mut().unwrap().insert(key.to_owned(), value);
    v().prepare_create(&input)
}

pub(super) fn get(values: &[(String, SqlValue)], name: &str) -> Option<SqlValue> {
    values
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// The single value of `key` after a create, or panics.
pub(super) fn ok(key: &str, value: Value) -> SqlValue {
    let values = create_with(key, value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"));
    get(&values, key).unwrap()
}

/// The single message of a refused create.
pub(super) fn invalid(key: &str, value: Value) -> String {
    match create_with(key, value.clone()) {
        Err(WriteRejected::Invalid(p)) if p.len() == 1 => {
            assert_eq!(p[0].pointer, format!("/{key}"));
            p[0].message.clone()
        }
        other => panic!("{value}: expected one problem, got {other:?}"),
    }
}

pub(super) fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

#[test]
fn create_applies_defaults_and_omits_absent_optionals() {
    let values = v().prepare_create(&base()).unwrap();
    let names: Vec<&str> = changed_fields(&values);
    assert_eq!(
        names,
        ["invoiceNumber", "status", "totalAmount", "priority"]
    );
    assert_eq!(get(&values, "status"), Some(text("draft")));
    assert_eq!(get(&values, "priority"), Some(SqlValue::Int(3)));
    assert_eq!(get(&values, "totalAmount"), Some(text("10.50")));
    // A given value wins over the default; null on a required field with a default gets it.
    assert_eq!(ok("status", json!("paid")), text("paid"));
    assert_eq!(ok("status", Value::Null), text("draft"));
    // null on an optional field is listed as NULL.
    assert_eq!(ok("notes", Value::Null), SqlValue::Null);
}

#[test]
fn create_requires_required_fields() {
    let err = v().prepare_create(&json!({})).unwrap_err();
    let WriteRejected::Invalid(problems) = err else {
        panic!("{err:?}")
    };
    let got: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.pointer.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("/invoiceNumber", "`invoiceNumber` is required"),
            ("/totalAmount", "`totalAmount` is required"),
        ]
    );
    let msg = invalid("invoiceNumber", Value::Null);
    assert_eq!(msg, "`invoiceNumber` is required");
}

#[test]
fn all_errors_at_once() {
    let input = json!({
        "invoiceNumber": "X-1",
        "status": "void",
        "totalAmount": -1,
        "dueDate": "2026-02-30",
        "paid": true
    });
    let err = v().prepare_create(&input).unwrap_err();
    assert!(matches!(err, WriteRejected::Invalid(_)), "{err:?}");
    let got: Vec<(&str, &str)> = err
        .problems()
        .iter()
        .map(|p| (p.pointer.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("/invoiceNumber", "`invoiceNumber` must match `^INV-`"),
            ("/status", "`status` must be one of `draft`, `sent`, `paid`"),
            ("/totalAmount", "`totalAmount` must be at least 0"),
            (
                "/dueDate",
                "`dueDate` must be a date (YYYY-MM-DD), found the string `2026-02-30`"
            ),
        ]
    );
}

#[test]
fn unknown_and_system_fields_are_bad_requests() {
    let input =
        json!({ "invoiceNumber": "oops", "rowVersion": 3, "id": "x", "foo": 1, "tenantId": "t" });
    for result in [v().prepare_create(&input), v().prepare_update(&input)] {
        let err = result.unwrap_err();
        let WriteRejected::BadRequest(problems) = err else {
            panic!()
        };
        let got: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.pointer.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("/rowVersion", "system field `rowVersion` cannot be written"),
                ("/id", "system field `id` cannot be written"),
                ("/foo", "unknown field `foo`"),
                ("/tenantId", "system field `tenantId` cannot be written"),
            ]
        );
    }
    for body in [json!([1]), json!("x"), Value::Null] {
        let err = v().prepare_create(&body).unwrap_err();
        assert!(matches!(&err, WriteRejected::BadRequest(p) if p[0].pointer.is_empty()));
        assert!(
            err.problems()[0]
                .message
                .starts_with("record must be an object")
        );
    }
    // Pointers are escaped (RFC 6901).
    let err = v().prepare_update(&json!({ "a/b~": 1 })).unwrap_err();
    assert_eq!(err.problems()[0].pointer, "/a~1b~0");
}

#[test]
fn update_is_partial() {
    let values = v()
        .prepare_update(&json!({ "notes": null, "quantity": 5 }))
        .unwrap();
    assert_eq!(
        values,
        [
            ("notes".to_owned(), SqlValue::Null),
            ("quantity".to_owned(), SqlValue::Int(5))
        ]
    );
    // No default and no required check for absent fields.
    assert_eq!(v().prepare_update(&json!({})).unwrap(), []);
    let err = v()
        .prepare_update(&json!({ "status": null, "invoiceNumber": null, "quantity": 0 }))
        .unwrap_err();
    let got: Vec<&str> = err.problems().iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        got,
        [
            "`status` is required",
            "`invoiceNumber` is required",
            "`quantity` must be at least 1"
        ]
    );
}

#[test]
fn free_functions_match_the_validator() {
    let model = model();
    assert_eq!(
        prepare_create(&model, &base()),
        RecordValidator::new(&model).prepare_create(&base())
    );
    let patch = json!({ "quantity": 7 });
    assert_eq!(
        prepare_update(&model, &patch).unwrap(),
        [("quantity".to_owned(), SqlValue::Int(7))]
    );
}

#[test]
fn error_display() {
    let err = v().prepare_update(&json!({ "quantity": 0 })).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid record: at `/quantity`: `quantity` must be at least 1"
    );
}

#[test]
fn redaction_and_changes() {
    let model = model();
    let record = json!({ "id": "x", "secret": "abc", "notes": "hi" });
    let redacted = redact(&model, record.as_object().unwrap());
    assert_eq!(Value::Object(redacted), json!({ "id": "x", "notes": "hi" }));
    let before = json!({ "notes": "hi", "secret": "a", "rowVersion": 1 });
    let after = json!({ "notes": "ho", "secret": "a", "quantity": 2, "rowVersion": 2 });
    assert_eq!(
        changed_between(
            &model,
            before.as_object().unwrap(),
            after.as_object().unwrap()
        ),
        ["quantity", "notes"]
    );
}

#[test]
fn changes_of_one_write_and_of_many_creates() {
    let model = model();
    let before = json!({ "notes": "hi", "secret": "a", "quantity": 1 });
    let after = json!({ "notes": "ho", "secret": "b", "quantity": 1 });
    // Unchanged and unknown fields are left out; a sensitive field is named only.
    assert_eq!(
        changes(
            &model,
            ["notes", "secret", "quantity", "nope"],
            before.as_object(),
            after.as_object()
        ),
        json!([{ "field": "notes", "old": "hi", "new": "ho" }, { "field": "secret" }])
    );
    // A create inside a many-record row: the values its body gives (not the null ones, nor
    // names that are not fields), a sensitive one named only.
    assert_eq!(
        created_record(
            &model,
            "r1",
            json!({ "notes": "n", "secret": "s", "quantity": null })
        ),
        json!({ "id": "r1", "new": { "notes": "n" }, "sensitive": ["secret"] })
    );
    assert_eq!(
        created_record(&model, "r2", json!({ "quantity": 2, "nope": 1 })),
        json!({ "id": "r2", "new": { "quantity": 2 } })
    );
}

#[test]
fn a_nul_character_is_refused_in_strings_and_json() {
    for input in [
        json!({ "invoiceNumber": "INV-\u{0}1", "totalAmount": "1.00", "status": "draft" }),
        json!({ "invoiceNumber": "INV-1", "totalAmount": "1.00", "status": "draft", "meta": { "k\u{0}": 1 } }),
    ] {
        let err = v().prepare_create(&input).unwrap_err();
        let nul = err.problems().iter().find(|p| p.message.contains("NUL"));
        assert!(nul.is_some(), "{err:?}");
    }
}
