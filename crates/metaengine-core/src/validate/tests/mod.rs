//! Unit tests of the validation rules: for each rule a failing case with its exact pointer and a
//! passing boundary case.

mod fields;
mod indexes;
mod policies;
mod schema;

use super::*;
use crate::schema::*;
use serde_json::json;

/// Entities that exist besides the one being validated (`Invoice`).
const EXISTING: &[&str] = &["Customer", "Product"];

fn exists(name: &str) -> bool {
    EXISTING.contains(&name)
}

fn ctx() -> ValidationContext<'static> {
    ValidationContext {
        entity_name: Some("Invoice"),
        entity_exists: &exists,
    }
}

/// Validates a schema whose only field is `field`.
fn with_field(field: Value) -> Result<EntitySchema, Vec<Problem>> {
    validate_schema(&json!({ "fields": [field] }), &ctx())
}

/// The pointers of the problems of `doc` (which must fail).
fn pointers(doc: Value) -> Vec<String> {
    match validate_schema(&doc, &ctx()) {
        Ok(_) => panic!("expected problems for {doc}"),
        Err(problems) => problems.into_iter().map(|p| p.pointer).collect(),
    }
}

/// Asserts that `doc` fails with exactly one problem, at `pointer`; returns its message.
fn fails_at(doc: Value, pointer: &str) -> String {
    match validate_schema(&doc, &ctx()) {
        Ok(_) => panic!("expected a problem at {pointer} for {doc}"),
        Err(problems) => {
            assert_eq!(problems.len(), 1, "{problems:#?}");
            assert_eq!(problems[0].pointer, pointer, "{problems:#?}");
            problems[0].message.clone()
        }
    }
}

/// Asserts that `doc` is valid.
fn passes(doc: Value) -> EntitySchema {
    match validate_schema(&doc, &ctx()) {
        Ok(schema) => schema,
        Err(problems) => panic!("expected {doc} to pass, got {problems:#?}"),
    }
}

/// Asserts that a schema with the single field `field` fails with one problem at
/// `/fields/0/<key>`; returns its message.
fn field_fails_at(field: Value, key: &str) -> String {
    fails_at(json!({ "fields": [field] }), &format!("/fields/0{key}"))
}

fn field_passes(field: Value) -> FieldDef {
    match with_field(field.clone()) {
        Ok(mut schema) => schema.fields.remove(0),
        Err(problems) => panic!("expected {field} to pass, got {problems:#?}"),
    }
}

#[test]
fn pointer_escapes_tokens() {
    assert_eq!(pointer("", "a/b~c"), "/a~1b~0c");
    assert_eq!(pointer("/fields", "0"), "/fields/0");
}

#[test]
fn one_of_lists() {
    assert_eq!(one_of(["a"].iter()), "`a`");
    assert_eq!(one_of(["a", "b", "c"].iter()), "`a`, `b` or `c`");
    assert_eq!(one_of(Vec::<&str>::new().iter()), "");
}

#[test]
fn problem_display() {
    let p = Problem::new("/fields/0/name", "bad");
    assert_eq!(p.to_string(), "at `/fields/0/name`: bad");
}
