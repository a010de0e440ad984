use super::*;

#[test]
fn document_must_be_an_object() {
    let msg = fails_at(json!([1]), "");
    assert_eq!(msg, "schema must be an object, found an array");
    fails_at(json!("x"), "");
    fails_at(Value::Null, "");
}

#[test]
fn fields_must_be_present_an_array_and_not_empty() {
    assert_eq!(fails_at(json!({}), "/fields"), "schema is missing `fields`");
    assert_eq!(
        fails_at(json!({"fields": {}}), "/fields"),
        "`fields` must be an array, found an object"
    );
    assert_eq!(
        fails_at(json!({"fields": []}), "/fields"),
        "schema must have at least one field"
    );
    passes(json!({"fields": [{"name": "a", "type": "string"}]}));
}

fn many_fields(n: usize) -> Value {
    let fields: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("f{i}"), "type": "integer"}))
        .collect();
    json!({ "fields": fields })
}

#[test]
fn at_most_200_fields() {
    assert_eq!(passes(many_fields(MAX_FIELDS)).fields.len(), 200);
    assert_eq!(
        fails_at(many_fields(201), "/fields"),
        "schema has 201 fields, more than the limit of 200"
    );
}

#[test]
fn unknown_top_level_keys() {
    let msg = fails_at(
        json!({"fields": [{"name": "a", "type": "string"}], "description": "x"}),
        "/description",
    );
    assert_eq!(
        msg,
        "unknown key `description` in the schema; expected `fields`, `policies` or `indexes`"
    );
    let msg = fails_at(
        json!({"fields": [{"name": "a", "type": "string"}], "Policies": []}),
        "/Policies",
    );
    assert_eq!(
        msg,
        "unknown key `Policies` in the schema (did you mean `policies`?)"
    );
}

#[test]
fn unknown_key_pointer_is_escaped() {
    fails_at(
        json!({"fields": [{"name": "a", "type": "string"}], "a/b": 1}),
        "/a~1b",
    );
}

#[test]
fn duplicate_field_names() {
    let doc = json!({"fields": [
        {"name": "amount", "type": "integer"},
        {"name": "other", "type": "integer"},
        {"name": "amount", "type": "string"}
    ]});
    assert_eq!(
        fails_at(doc, "/fields/2/name"),
        "field name `amount` is used twice (first at `/fields/0`)"
    );
}

#[test]
fn field_names_with_the_same_snake_case() {
    let doc = json!({"fields": [
        {"name": "userId", "type": "string"},
        {"name": "userID", "type": "string"}
    ]});
    assert_eq!(
        fails_at(doc, "/fields/1/name"),
        "field name `userID` gives the column name `user_id`, already used by field `userId` (`/fields/0`)"
    );
    passes(json!({"fields": [
        {"name": "userId", "type": "string"},
        {"name": "userIdx", "type": "string"}
    ]}));
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = json!({
        "fields": [
            {"name": "Amount", "type": "integer"},
            {"name": "status", "type": "strng"},
            {"name": "total", "type": "number", "min": 10, "max": 1}
        ]
    });
    assert_eq!(
        pointers(doc),
        ["/fields/0/name", "/fields/1/type", "/fields/2/max"]
    );
}

#[test]
fn problems_in_every_part_are_reported_together() {
    let doc = json!({
        "extra": true,
        "fields": [{"name": "order", "type": "string"}],
        "policies": [{"name": "p", "effect": "permit", "action": "read"}],
        "indexes": [{"fields": ["missing"]}]
    });
    assert_eq!(
        pointers(doc),
        [
            "/extra",
            "/fields/0/name",
            "/policies/0/effect",
            "/indexes/0/fields/0"
        ]
    );
}

#[test]
fn a_valid_document_becomes_the_typed_schema() {
    let schema = passes(json!({
        "fields": [
            {"name": "title", "type": "string", "required": true, "maxLength": 100},
            {"name": "due", "type": "date", "label": null}
        ],
        "policies": [{"name": "all", "effect": "allow", "action": "*"}],
        "indexes": [{"fields": ["-due", "title"], "unique": false}]
    }));
    let title = schema.field("title").expect("title");
    assert!(title.required);
    assert_eq!(title.max_length, Some(100));
    assert_eq!(
        schema.field("due").map(|f| f.field_type),
        Some(FieldType::Date)
    );
    assert!(schema.field("nope").is_none());
    assert_eq!(schema.policies[0].action, PolicyAction::All);
    assert_eq!(
        schema.indexes[0].columns(),
        [("due", true), ("title", false)]
    );
}

#[test]
fn typed_schema_round_trips_through_json() {
    let schema = passes(json!({
        "fields": [
            {"name": "status", "type": "enum", "enumValues": ["a", "b"], "default": "a"},
            {"name": "amount", "type": "decimal", "precision": 10, "scale": 2, "helpText": "h"}
        ],
        "policies": [{
            "name": "own", "effect": "deny", "action": "update", "priority": 5,
            "conditions": [{"field": "record.createdBy", "operator": "not_in", "value": ["x"]}]
        }]
    }));
    let json = serde_json::to_value(&schema).expect("serializes");
    assert_eq!(json["fields"][1]["helpText"], "h");
    assert_eq!(json["policies"][0]["conditions"][0]["operator"], "not_in");
    let again = validate_schema(&json, &ctx()).expect("still valid");
    assert_eq!(again, schema);
}

#[test]
fn whole_bounds_serialize_as_integers() {
    let schema = passes(json!({"fields": [
        {"name": "a", "type": "integer", "min": 0, "max": 10.0},
        {"name": "b", "type": "number", "min": -0.5, "max": 1e300}
    ]}));
    let json = serde_json::to_value(&schema).expect("serializes");
    assert_eq!(json["fields"][0]["min"].to_string(), "0");
    assert_eq!(json["fields"][0]["max"].to_string(), "10");
    assert_eq!(json["fields"][1]["min"].to_string(), "-0.5");
    assert_eq!(json["fields"][1]["max"].to_string(), "1e+300");
    assert!(json["fields"][0].get("minLength").is_none());
}

#[test]
fn unusable_fields_do_not_cascade_into_policies_and_indexes() {
    let doc = json!({
        "fields": "amount",
        "policies": [{"name": "p", "effect": "allow", "action": "read",
            "conditions": [{"field": "record.amount", "operator": "gt", "value": 0}]}],
        "indexes": [{"fields": ["amount"]}]
    });
    assert_eq!(pointers(doc), ["/fields"]);
}
