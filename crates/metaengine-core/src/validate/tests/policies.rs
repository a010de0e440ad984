use super::*;

/// A schema with the fields `amount` and `ownerId` and the one policy `policy`.
fn with_policy(policy: Value) -> Value {
    json!({
        "fields": [{"name": "amount", "type": "number"}, {"name": "ownerId", "type": "string"}],
        "policies": [policy]
    })
}

fn policy_fails_at(policy: Value, pointer: &str) -> String {
    fails_at(with_policy(policy), &format!("/policies/0{pointer}"))
}

fn policy_passes(policy: Value) -> PolicyDef {
    passes(with_policy(policy)).policies.remove(0)
}

/// A policy with one condition.
fn cond(condition: Value) -> Value {
    json!({"name": "p", "effect": "allow", "action": "read", "conditions": [condition]})
}

fn cond_fails_at(condition: Value, key: &str) -> String {
    policy_fails_at(cond(condition), &format!("/conditions/0/{key}"))
}

fn cond_passes(condition: Value) {
    policy_passes(cond(condition));
}

#[test]
fn policies_must_be_an_array_of_objects() {
    let doc = json!({"fields": [{"name": "a", "type": "string"}], "policies": {}});
    assert_eq!(
        fails_at(doc, "/policies"),
        "`policies` must be an array, found an object"
    );
    let doc = json!({"fields": [{"name": "a", "type": "string"}], "policies": null});
    fails_at(doc, "/policies");
    let doc = json!({"fields": [{"name": "a", "type": "string"}], "policies": [1]});
    assert_eq!(
        fails_at(doc, "/policies/0"),
        "policy must be an object, found the number `1`"
    );
    passes(json!({"fields": [{"name": "a", "type": "string"}], "policies": []}));
}

#[test]
fn at_most_50_policies() {
    let policies = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"name": format!("p{i}"), "effect": "allow", "action": "read"}))
            .collect()
    };
    let doc = |n| json!({"fields": [{"name": "a", "type": "string"}], "policies": policies(n)});
    assert_eq!(passes(doc(MAX_POLICIES)).policies.len(), 50);
    assert_eq!(
        fails_at(doc(51), "/policies"),
        "schema has 51 policies, more than the limit of 50"
    );
}

#[test]
fn policy_name_required_non_empty_unique() {
    assert_eq!(
        policy_fails_at(json!({"effect": "allow", "action": "read"}), "/name"),
        "policy is missing `name`"
    );
    assert_eq!(
        policy_fails_at(
            json!({"name": "  ", "effect": "allow", "action": "read"}),
            "/name"
        ),
        "policy name must not be empty"
    );
    let doc = json!({
        "fields": [{"name": "a", "type": "string"}],
        "policies": [
            {"name": "same", "effect": "allow", "action": "read"},
            {"name": "same", "effect": "deny", "action": "delete"}
        ]
    });
    assert_eq!(
        fails_at(doc, "/policies/1/name"),
        "policy name `same` is used twice (first at `/policies/0`)"
    );
    policy_passes(json!({"name": "x", "effect": "allow", "action": "read"}));
}

#[test]
fn effect_and_action_are_known() {
    assert_eq!(
        policy_fails_at(
            json!({"name": "p", "effect": "permit", "action": "read"}),
            "/effect"
        ),
        "unknown effect `permit`; expected `allow` or `deny`"
    );
    assert_eq!(
        policy_fails_at(json!({"name": "p", "action": "read"}), "/effect"),
        "policy is missing `effect`"
    );
    assert_eq!(
        policy_fails_at(
            json!({"name": "p", "effect": "allow", "action": "list"}),
            "/action"
        ),
        "unknown action `list`; expected `create`, `read`, `update`, `delete` or `*`"
    );
    policy_fails_at(json!({"name": "p", "effect": "allow"}), "/action");
    for action in ["create", "read", "update", "delete", "*"] {
        policy_passes(json!({"name": "p", "effect": "deny", "action": action}));
    }
}

#[test]
fn resource_must_be_this_entity() {
    assert_eq!(
        policy_fails_at(
            json!({"name": "p", "effect": "allow", "action": "read", "resource": "Order"}),
            "/resource"
        ),
        "policy resource `Order` must be this entity, `Invoice`"
    );
    let p = policy_passes(
        json!({"name": "p", "effect": "allow", "action": "read", "resource": "Invoice"}),
    );
    assert_eq!(p.resource.as_deref(), Some("Invoice"));
}

#[test]
fn priority_is_a_32_bit_integer() {
    assert_eq!(
        policy_fails_at(
            json!({"name": "p", "effect": "allow", "action": "read", "priority": 1.5}),
            "/priority"
        ),
        "`priority` must be a whole number between -2147483648 and 2147483647, found the number `1.5`"
    );
    policy_fails_at(
        json!({"name": "p", "effect": "allow", "action": "read", "priority": 2_147_483_648_i64}),
        "/priority",
    );
    policy_fails_at(
        json!({"name": "p", "effect": "allow", "action": "read", "priority": "1"}),
        "/priority",
    );
    let p = policy_passes(
        json!({"name": "p", "effect": "allow", "action": "read", "priority": -2_147_483_648_i64}),
    );
    assert_eq!(p.priority, i32::MIN);
}

#[test]
fn unknown_policy_and_condition_keys() {
    assert_eq!(
        policy_fails_at(
            json!({"name": "p", "effect": "allow", "action": "read", "when": 1}),
            "/when"
        ),
        "unknown key `when` in a policy; expected `name`, `effect`, `action`, `resource`, `priority`, `conditions`, `fields` or `description`"
    );
    assert_eq!(
        cond_fails_at(
            json!({"field": "user.id", "operator": "eq", "value": "u", "op": 1}),
            "op"
        ),
        "unknown key `op` in a condition; expected `field`, `operator` or `value`"
    );
}

#[test]
fn conditions_must_be_an_array_of_objects() {
    policy_fails_at(
        json!({"name": "p", "effect": "allow", "action": "read", "conditions": {}}),
        "/conditions",
    );
    policy_fails_at(
        json!({"name": "p", "effect": "allow", "action": "read", "conditions": ["x"]}),
        "/conditions/0",
    );
}

#[test]
fn operator_is_known() {
    assert_eq!(
        cond_fails_at(
            json!({"field": "user.id", "operator": "like", "value": "x"}),
            "operator"
        ),
        "unknown operator `like`; expected `eq`, `ne`, `in`, `not_in`, `gt`, `gte`, `lt`, `lte`, `contains` or `exists`"
    );
    cond_fails_at(
        json!({"field": "user.id", "operator": "notIn", "value": []}),
        "operator",
    );
    cond_fails_at(json!({"field": "user.id", "value": "x"}), "operator");
}

#[test]
fn condition_field_paths() {
    for ok in [
        "user.id",
        "user.role",
        "user.roles",
        "context.userId",
        "context.tenantId",
        "context.realmId",
        "context.roles",
        "record.amount",
        "record.ownerId",
        "record.createdBy",
        "record.id",
        "record.rowVersion",
    ] {
        cond_passes(json!({"field": ok, "operator": "exists"}));
    }
    assert_eq!(
        cond_fails_at(
            json!({"field": "user.email", "operator": "exists"}),
            "field"
        ),
        "unknown condition path `user.email`; expected `user.id`, `user.role`, `user.roles`, `context.userId`, `context.tenantId`, `context.realmId`, `context.roles` or `record.<field>`"
    );
    assert_eq!(
        cond_fails_at(
            json!({"field": "record.total", "operator": "exists"}),
            "field"
        ),
        "condition path `record.total` names `total`, which is neither a field of this entity nor a system field"
    );
    cond_fails_at(
        json!({"field": "record.created_by", "operator": "exists"}),
        "field",
    );
    cond_fails_at(json!({"field": "amount", "operator": "exists"}), "field");
    cond_fails_at(json!({"operator": "exists"}), "field");
}

#[test]
fn path_values_must_be_known() {
    cond_passes(json!({"field": "record.ownerId", "operator": "eq", "value": "context.userId"}));
    cond_passes(json!({"field": "record.createdBy", "operator": "ne", "value": "user.id"}));
    cond_passes(json!({"field": "record.amount", "operator": "lte", "value": "record.amount"}));
    // any other string is a literal
    cond_passes(json!({"field": "user.role", "operator": "eq", "value": "users.admin"}));
    assert_eq!(
        cond_fails_at(
            json!({"field": "record.ownerId", "operator": "eq", "value": "context.user"}),
            "value"
        ),
        "unknown condition path `context.user`; expected `user.id`, `user.role`, `user.roles`, `context.userId`, `context.tenantId`, `context.realmId`, `context.roles` or `record.<field>`"
    );
    cond_fails_at(
        json!({"field": "record.ownerId", "operator": "eq", "value": "record.owner"}),
        "value",
    );
}

#[test]
fn operator_value_shapes() {
    assert_eq!(
        cond_fails_at(
            json!({"field": "user.role", "operator": "in", "value": "admin"}),
            "value"
        ),
        "operator `in` needs an array `value`, found the string `admin`"
    );
    assert_eq!(
        cond_fails_at(json!({"field": "user.role", "operator": "not_in"}), "value"),
        "operator `not_in` needs an array `value`, found no value"
    );
    cond_passes(json!({"field": "user.role", "operator": "in", "value": ["admin", "manager"]}));
    cond_passes(json!({"field": "user.role", "operator": "not_in", "value": []}));

    assert_eq!(
        cond_fails_at(
            json!({"field": "record.ownerId", "operator": "exists", "value": "yes"}),
            "value"
        ),
        "operator `exists` takes no `value` or a boolean, found the string `yes`"
    );
    cond_passes(json!({"field": "record.ownerId", "operator": "exists", "value": false}));
    cond_passes(json!({"field": "record.ownerId", "operator": "exists", "value": null}));

    assert_eq!(
        cond_fails_at(json!({"field": "record.amount", "operator": "gt"}), "value"),
        "operator `gt` needs a `value`"
    );
    cond_fails_at(
        json!({"field": "record.amount", "operator": "eq", "value": null}),
        "value",
    );
    cond_passes(json!({"field": "record.amount", "operator": "gte", "value": 0}));
    cond_passes(json!({"field": "user.roles", "operator": "contains", "value": "admin"}));
}

#[test]
fn record_conditions_on_typed_fields_take_values_of_their_type() {
    let doc = |condition: Value| {
        json!({
            "fields": [{"name": "total", "type": "decimal"}, {"name": "due", "type": "date"},
                       {"name": "at", "type": "datetime"}, {"name": "ref", "type": "reference",
                       "referenceTo": "Invoice"}, {"name": "meta", "type": "json"},
                       {"name": "owner", "type": "string"}, {"name": "cap", "type": "decimal"}],
            "policies": [cond(condition)]
        })
    };
    let at = "/policies/0/conditions/0/value";
    // Decimals: a number or a numeric string, another decimal field.
    passes(doc(
        json!({"field": "record.total", "operator": "gt", "value": 5}),
    ));
    passes(doc(
        json!({"field": "record.total", "operator": "lte", "value": "1000.50"}),
    ));
    passes(doc(
        json!({"field": "record.total", "operator": "in", "value": ["1", 2.5]}),
    ));
    passes(doc(
        json!({"field": "record.total", "operator": "lt", "value": "record.cap"}),
    ));
    let m = fails_at(
        doc(json!({"field": "record.total", "operator": "gt", "value": "lots"})),
        at,
    );
    assert!(m.contains("needs a decimal"), "{m}");
    // More digits than a JSON number carries exactly: as a string only.
    let m = fails_at(
        doc(
            json!({"field": "record.total", "operator": "lt", "value": 12_345_678_901_234_567_u64}),
        ),
        at,
    );
    assert!(m.contains("at most 15 significant digits"), "{m}");
    passes(doc(
        json!({"field": "record.total", "operator": "lt", "value": "12345678901234567"}),
    ));
    // Dates, timestamps (any RFC 3339 offset) and uuids, each only with its own kind.
    passes(doc(
        json!({"field": "record.due", "operator": "lt", "value": "2027-01-01"}),
    ));
    passes(doc(
        json!({"field": "record.createdAt", "operator": "gt", "value": "2026-01-01T00:00:00+01:00"}),
    ));
    passes(doc(
        json!({"field": "record.at", "operator": "gte", "value": "record.createdAt"}),
    ));
    passes(doc(
        json!({"field": "record.ref", "operator": "eq", "value": "record.id"}),
    ));
    passes(doc(
        json!({"field": "record.ref", "operator": "eq", "value": "context.userId"}),
    ));
    fails_at(
        doc(json!({"field": "record.due", "operator": "lt", "value": "2027-02-30"})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.at", "operator": "lt", "value": "2027-01-01"})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.ref", "operator": "eq", "value": "not-a-uuid"})),
        at,
    );
    let m = fails_at(
        doc(json!({"field": "record.due", "operator": "lt", "value": "record.at"})),
        at,
    );
    assert!(m.contains("never compare"), "{m}");
    fails_at(
        doc(json!({"field": "record.total", "operator": "eq", "value": "context.userId"})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.due", "operator": "contains", "value": "2026"})),
        at,
    );
    // JSON fields: `exists` only, on either side.
    let m = fails_at(
        doc(json!({"field": "record.meta", "operator": "eq", "value": {"a": 1}})),
        "/policies/0/conditions/0/field",
    );
    assert!(
        m.contains("`meta` (a `json` field) support only `exists`"),
        "{m}"
    );
    fails_at(
        doc(json!({"field": "record.owner", "operator": "eq", "value": "record.meta"})),
        at,
    );
    passes(doc(json!({"field": "record.meta", "operator": "exists"})));
    passes(doc(
        json!({"field": "record.owner", "operator": "eq", "value": "context.userId"}),
    ));
}

#[test]
fn a_literal_must_have_the_json_type_of_its_field() {
    let doc = |condition: Value| {
        json!({
            "fields": [{"name": "n", "type": "integer"}, {"name": "b", "type": "boolean"},
                       {"name": "s", "type": "string"}, {"name": "x", "type": "number"}],
            "policies": [cond(condition)]
        })
    };
    let at = "/policies/0/conditions/0/value";
    let m = fails_at(
        doc(json!({"field": "record.b", "operator": "eq", "value": "true"})),
        at,
    );
    assert_eq!(
        m,
        "a condition on `b` needs `true` or `false` here, found the string `true`"
    );
    fails_at(
        doc(json!({"field": "record.n", "operator": "eq", "value": "5"})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.n", "operator": "gt", "value": 5.5})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.s", "operator": "eq", "value": 10})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.n", "operator": "in", "value": [1, "2"]})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.b", "operator": "gt", "value": true})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.n", "operator": "contains", "value": 1})),
        at,
    );
    fails_at(
        doc(json!({"field": "record.n", "operator": "eq", "value": "context.userId"})),
        at,
    );
    fails_at(
        doc(json!({"field": "user.id", "operator": "eq", "value": "record.n"})),
        at,
    );
    passes(doc(
        json!({"field": "record.x", "operator": "gt", "value": 5}),
    ));
    passes(doc(
        json!({"field": "record.n", "operator": "in", "value": [1, 2, null]}),
    ));
    passes(doc(
        json!({"field": "record.rowVersion", "operator": "lt", "value": 3}),
    ));
    passes(doc(
        json!({"field": "record.s", "operator": "eq", "value": "user.role"}),
    ));
}

#[test]
fn a_record_field_as_the_value() {
    let doc = |condition: Value| {
        json!({
            "fields": [{"name": "n", "type": "integer"}, {"name": "x", "type": "number"},
                       {"name": "s", "type": "string"}],
            "policies": [cond(condition)]
        })
    };
    let at = "/policies/0/conditions/0/value";
    passes(doc(
        json!({"field": "record.n", "operator": "lt", "value": "record.x"}),
    ));
    passes(doc(
        json!({"field": "record.s", "operator": "ne", "value": "record.createdBy"}),
    ));
    let m = fails_at(
        doc(json!({"field": "record.n", "operator": "eq", "value": "record.s"})),
        at,
    );
    assert!(m.contains("never compare"), "{m}");
    let m = fails_at(
        doc(json!({"field": "record.s", "operator": "contains", "value": "record.createdBy"})),
        at,
    );
    assert!(m.contains("works only with"), "{m}");
}

#[test]
fn conditions_per_policy_are_limited() {
    let conditions: Vec<Value> = (0..51)
        .map(|i| json!({"field": "record.amount", "operator": "ne", "value": i}))
        .collect();
    let m = policy_fails_at(
        json!({"name": "p", "effect": "allow", "action": "read", "conditions": conditions}),
        "/conditions",
    );
    assert_eq!(m, "policy has 51 conditions, more than the limit of 50");
}

#[test]
fn without_an_entity_name_a_policy_resource_is_not_checked() {
    let doc = json!({
        "fields": [{"name": "a", "type": "string"}],
        "policies": [{"name": "p", "effect": "allow", "action": "read", "resource": "Invoice"}]
    });
    let ctx = ValidationContext {
        entity_name: None,
        entity_exists: &|_| false,
    };
    assert!(crate::validate_schema(&doc, &ctx).is_ok());
    let named = ValidationContext {
        entity_name: Some("Order"),
        entity_exists: &|_| false,
    };
    let problems = crate::validate_schema(&doc, &named).unwrap_err();
    assert_eq!(problems[0].pointer, "/policies/0/resource");
}

#[test]
fn policy_fields_name_schema_fields_on_caller_conditions() {
    let p = policy_passes(json!({"name": "p", "effect": "allow", "action": "read",
        "fields": ["amount"], "conditions": [{"field": "user.role", "operator": "eq", "value": "hr"}]}));
    assert_eq!(p.fields, Some(vec!["amount".to_owned()]));
    let base =
        |fields: Value| json!({"name": "p", "effect": "deny", "action": "read", "fields": fields});
    assert!(policy_fails_at(base(json!([])), "/fields").contains("non-empty array"));
    assert!(policy_fails_at(base(json!("amount")), "/fields").contains("non-empty array"));
    assert_eq!(
        policy_fails_at(base(json!(["nope"])), "/fields/0"),
        "unknown field `nope`"
    );
    assert!(policy_fails_at(base(json!(["id"])), "/fields/0").contains("always visible"));
    assert!(policy_fails_at(base(json!(["amount", "amount"])), "/fields/1").contains("twice"));
    assert!(policy_fails_at(base(json!([3])), "/fields/0").contains("must be a string"));
    let delete = json!({"name": "p", "effect": "allow", "action": "delete", "fields": ["amount"]});
    assert!(policy_fails_at(delete, "/fields").contains("delete"));
    // Field access is decided per caller: no condition on the record.
    let on_record = json!({"name": "p", "effect": "allow", "action": "read", "fields": ["amount"],
        "conditions": [{"field": "user.id", "operator": "eq", "value": "record.ownerId"}]});
    assert!(policy_fails_at(on_record, "/conditions/0").contains("per caller"));
}
