use super::*;
use crate::compile::compile_condition;
use crate::record::Comparison;
use crate::schema::{Condition, Operator};
use serde_json::{Map, Value, json};

fn policy(name: &str, effect: &str, action: &str, priority: i32, conds: Value) -> CompiledPolicy {
    let conditions: Vec<Condition> = serde_json::from_value(conds).unwrap();
    CompiledPolicy {
        name: name.to_owned(),
        effect: serde_json::from_value(json!(effect)).unwrap(),
        action: serde_json::from_value(json!(action)).unwrap(),
        priority,
        conditions: conditions.iter().map(compile_condition).collect(),
        fields: None,
    }
}

fn roles(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| (*s).to_owned()).collect()
}

fn ctx<'a>(roles: &'a [String]) -> RequestContext<'a> {
    RequestContext {
        user_id: "u1",
        tenant_id: "t1",
        realm_id: "r1",
        roles,
    }
}

fn record(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// The seed's three policies (examples/invoice-v1.json).
fn seed() -> PolicySet {
    let policies = vec![
        policy("everyone-reads", "allow", "read", 0, json!([])),
        policy(
            "admins-do-anything",
            "allow",
            "*",
            0,
            json!([{ "field": "user.role", "operator": "eq", "value": "admin" }]),
        ),
        policy(
            "owners-update",
            "allow",
            "update",
            0,
            json!([{ "field": "record.createdBy", "operator": "eq", "value": "context.userId" }]),
        ),
    ];
    PolicySet::new("Invoice", &policies, None)
}

#[test]
fn seed_policies() {
    let set = seed();
    let user = roles(&["user"]);
    let admin = roles(&["user", "admin"]);
    let mine = record(json!({ "createdBy": "u1" }));
    let theirs = record(json!({ "createdBy": "u2" }));

    let d = set.can(Action::Read, &ctx(&user), None);
    assert_eq!(
        d.reason,
        DecisionReason::Allowed {
            policy: "everyone-reads"
        }
    );
    assert!(set.can(Action::Update, &ctx(&user), Some(&mine)).allowed);
    let d = set.can(Action::Update, &ctx(&user), Some(&theirs));
    assert_eq!(d.reason, DecisionReason::NoMatchingAllow);
    let d = set.can(Action::Delete, &ctx(&admin), None);
    assert_eq!(
        d.reason,
        DecisionReason::Allowed {
            policy: "admins-do-anything"
        }
    );
    assert!(!set.can(Action::Delete, &ctx(&user), None).allowed);
    assert!(!set.can(Action::Create, &ctx(&user), None).allowed);
}

#[test]
fn seed_guest_is_denied_with_an_explanation() {
    let set = seed();
    let guest = roles(&["guest"]);
    let d = set.can(Action::Delete, &ctx(&guest), None);
    assert!(!d.allowed);
    assert_eq!(d.reason, DecisionReason::NoMatchingAllow);
    let err = enforce(&d).unwrap_err();
    assert_eq!(err.to_string(), "no policy allows `delete` on `Invoice`");

    let mut policies = seed().policies;
    policies.push(policy(
        "no-guests",
        "deny",
        "*",
        0,
        json!([{ "field": "user.role", "operator": "eq", "value": "guest" }]),
    ));
    let set = PolicySet::new("Invoice", &policies, None);
    let d = set.can(Action::Read, &ctx(&guest), None);
    assert_eq!(
        d.reason,
        DecisionReason::Denied {
            policy: "no-guests"
        }
    );
    assert_eq!(
        enforce(&d).unwrap_err().to_string(),
        "policy `no-guests` denies `read` on `Invoice`"
    );
}

#[test]
fn deny_beats_allow_whatever_the_priority() {
    let policies = vec![
        policy("allow-high", "allow", "read", 100, json!([])),
        policy("deny-low", "deny", "read", -5, json!([])),
    ];
    let set = PolicySet::new("Invoice", &policies, None);
    let r = roles(&["user"]);
    let d = set.can(Action::Read, &ctx(&r), None);
    assert!(!d.allowed);
    assert_eq!(d.reason, DecisionReason::Denied { policy: "deny-low" });
}

#[test]
fn priority_orders_the_explanation() {
    let policies = vec![
        policy("allow-low", "allow", "read", 1, json!([])),
        policy("deny-low", "deny", "*", 1, json!([])),
        policy("allow-high", "allow", "*", 9, json!([])),
        policy("deny-high", "deny", "read", 9, json!([])),
    ];
    let set = PolicySet::new("Invoice", &policies, None);
    let r = roles(&[]);
    let d = set.can(Action::Read, &ctx(&r), None);
    assert_eq!(
        d.reason,
        DecisionReason::Denied {
            policy: "deny-high"
        }
    );
    let allows = vec![policies[0].clone(), policies[2].clone()];
    let set = PolicySet::new("Invoice", &allows, None);
    let d = set.can(Action::Read, &ctx(&r), None);
    assert_eq!(
        d.reason,
        DecisionReason::Allowed {
            policy: "allow-high"
        }
    );
    let names: Vec<&str> = set
        .applicable(Action::Read)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["allow-high", "allow-low"]);
}

#[test]
fn fail_secure_on_type_mismatch_and_unknown_paths() {
    let r = roles(&["user"]);
    let rec = record(json!({ "amount": 10 }));
    let allow = policy("allow", "allow", "read", 0, json!([]));
    let bad_deny = policy(
        "bad-deny",
        "deny",
        "read",
        0,
        json!([{ "field": "record.amount", "operator": "gt", "value": "ten" }]),
    );
    let set = PolicySet::new("Invoice", &[allow.clone(), bad_deny], None);
    let d = set.can(Action::Read, &ctx(&r), Some(&rec));
    assert!(!d.allowed);
    assert!(matches!(
        d.reason,
        DecisionReason::EvaluationError {
            policy: "bad-deny",
            ..
        }
    ));
    let msg = enforce(&d).unwrap_err().to_string();
    assert!(msg.starts_with("policy `bad-deny` could not be evaluated for `read` on `Invoice`"));

    let unknown = policy(
        "unknown",
        "allow",
        "read",
        0,
        json!([{ "field": "session.ip", "operator": "eq", "value": "x" }]),
    );
    let set = PolicySet::new("Invoice", &[unknown], None);
    let d = set.can(Action::Read, &ctx(&r), None);
    assert!(matches!(
        d.reason,
        DecisionReason::EvaluationError {
            policy: "unknown",
            ..
        }
    ));

    // A record condition without a record (a get decided before loading) is an error too.
    let set = seed();
    let d = set.can(Action::Update, &ctx(&r), None);
    assert!(matches!(
        d.reason,
        DecisionReason::EvaluationError {
            policy: "owners-update",
            ..
        }
    ));
}

#[test]
fn admin_bypass_and_entity_without_policies() {
    let admin = roles(&["root"]);
    let user = roles(&["user"]);
    let set = PolicySet::new("Invoice", &[], Some("root".to_owned()));
    let d = set.can(Action::Delete, &ctx(&admin), None);
    assert_eq!(d.reason, DecisionReason::AdminBypass);
    assert!(d.allowed);
    assert_eq!(set.row_filter(Action::Read, &ctx(&admin)), RowFilter::All);
    let d = set.can(Action::Read, &ctx(&user), None);
    assert_eq!(d.reason, DecisionReason::NoMatchingAllow);
    assert_eq!(
        set.row_filter(Action::Read, &ctx(&user)),
        RowFilter::Nothing
    );
    let deny_all = policy("deny-all", "deny", "*", 0, json!([]));
    let set = PolicySet::new("Invoice", &[deny_all], Some("root".to_owned()));
    assert!(set.can(Action::Read, &ctx(&admin), None).allowed);
}

/// `subject op value` on a record `{ "x": x }` for a user with `roles`.
fn check(subject: &str, op: &str, value: Value, x: Value, user_roles: &[&str]) -> bool {
    let mut cond = json!({ "field": subject, "operator": op });
    if !value.is_null() {
        cond["value"] = value;
    }
    let p = policy("p", "allow", "read", 0, json!([cond]));
    let set = PolicySet::new("E", &[p], None);
    let r = roles(user_roles);
    let rec = record(json!({ "x": x, "n": null, "tags": ["a", "b"] }));
    let d = set.can(Action::Read, &ctx(&r), Some(&rec));
    // The row filter agrees on this record.
    let visible = match set.row_filter(Action::Read, &ctx(&r)) {
        RowFilter::All => true,
        RowFilter::Nothing => false,
        RowFilter::Where(p) => eval_predicate(&p, &rec),
    };
    assert_eq!(visible, d.allowed, "{subject} {op} on {x}");
    d.allowed
}

#[test]
fn each_operator_true_and_false() {
    let n: &[&str] = &[];
    assert!(check("record.x", "eq", json!("a"), json!("a"), n));
    assert!(!check("record.x", "eq", json!("a"), json!("b"), n));
    assert!(check("record.x", "eq", json!(2), json!(2.0), n));
    assert!(check("record.x", "ne", json!("a"), json!("b"), n));
    assert!(!check("record.x", "ne", json!("a"), json!("a"), n));
    assert!(
        !check("record.n", "ne", json!("a"), json!("a"), n),
        "ne against null is false"
    );
    assert!(check("record.x", "in", json!(["a", "b"]), json!("b"), n));
    assert!(!check("record.x", "in", json!(["a", "b"]), json!("c"), n));
    assert!(check("record.x", "not_in", json!(["a"]), json!("c"), n));
    assert!(!check("record.x", "not_in", json!(["a"]), json!("a"), n));
    assert!(
        !check("record.x", "in", json!("a"), json!("a"), n),
        "in needs an array"
    );
    assert!(check("record.x", "gt", json!(1), json!(2), n));
    assert!(!check("record.x", "gt", json!(2), json!(2), n));
    assert!(check("record.x", "gte", json!(2), json!(2), n));
    assert!(!check("record.x", "gte", json!(3), json!(2), n));
    assert!(check(
        "record.x",
        "lt",
        json!("2024-02-01"),
        json!("2024-01-31"),
        n
    ));
    assert!(!check(
        "record.x",
        "lt",
        json!("2024-01-01"),
        json!("2024-01-31"),
        n
    ));
    assert!(check("record.x", "lte", json!(2), json!(2), n));
    assert!(!check("record.x", "lte", json!(1), json!(2), n));
    assert!(
        !check("record.x", "gt", json!(1), json!("2"), n),
        "mixed types deny"
    );
    assert!(check("record.x", "contains", json!("bc"), json!("abcd"), n));
    assert!(!check(
        "record.x",
        "contains",
        json!("BC"),
        json!("abcd"),
        n
    ));
    assert!(check("record.tags", "contains", json!("a"), json!(0), n));
    assert!(!check("record.tags", "contains", json!("z"), json!(0), n));
    assert!(check("record.x", "exists", Value::Null, json!(1), n));
    assert!(!check("record.n", "exists", Value::Null, json!(1), n));
    assert!(!check("record.missing", "exists", json!(true), json!(1), n));
    assert!(check("record.missing", "exists", json!(false), json!(1), n));
    assert!(check("context.tenantId", "eq", json!("t1"), json!(0), n));
    assert!(check(
        "record.x",
        "eq",
        json!("context.userId"),
        json!("u1"),
        n
    ));
    assert!(check("user.id", "lt", json!("record.x"), json!("u2"), n));
    assert!(!check("user.id", "gt", json!("record.x"), json!("u2"), n));
}

#[test]
fn user_role_is_any_one_role() {
    let both: &[&str] = &["manager", "user"];
    assert!(check("user.role", "eq", json!("user"), json!(0), both));
    assert!(!check("user.role", "eq", json!("admin"), json!(0), both));
    assert!(check(
        "user.role",
        "in",
        json!(["admin", "manager"]),
        json!(0),
        both
    ));
    assert!(!check(
        "user.role",
        "in",
        json!(["admin", "guest"]),
        json!(0),
        both
    ));
    assert!(check("user.role", "ne", json!("admin"), json!(0), both));
    assert!(
        !check("user.role", "ne", json!("user"), json!(0), both),
        "no role may equal"
    );
    assert!(check(
        "user.role",
        "not_in",
        json!(["guest"]),
        json!(0),
        both
    ));
    assert!(!check(
        "user.role",
        "not_in",
        json!(["guest", "user"]),
        json!(0),
        both
    ));
    assert!(check(
        "user.roles",
        "contains",
        json!("manager"),
        json!(0),
        both
    ));
    assert!(!check(
        "user.roles",
        "contains",
        json!("admin"),
        json!(0),
        both
    ));
    assert!(check(
        "user.roles",
        "eq",
        json!(["manager", "user"]),
        json!(0),
        both
    ));
    assert!(!check("user.roles", "eq", json!(["user"]), json!(0), both));
    assert!(check(
        "record.x",
        "eq",
        json!("user.role"),
        json!("user"),
        both
    ));
    assert!(!check(
        "record.x",
        "ne",
        json!("user.role"),
        json!("user"),
        both
    ));
    assert!(check(
        "user.role",
        "eq",
        json!("record.x"),
        json!("manager"),
        both
    ));
}

#[test]
fn row_filter_shapes() {
    let r = roles(&["user"]);
    let set = seed();
    assert_eq!(set.row_filter(Action::Read, &ctx(&r)), RowFilter::All);
    let update = set.row_filter(Action::Update, &ctx(&r));
    let expected = Predicate::Compare {
        field: "createdBy".to_owned(),
        op: CompareOp::Eq,
        value: json!("u1"),
        comparison: Comparison::Json,
    };
    assert_eq!(update, RowFilter::Where(expected.clone()));
    let mut policies = seed().policies;
    policies.push(policy(
        "no-paid",
        "deny",
        "update",
        0,
        json!([{ "field": "record.status", "operator": "eq", "value": "paid" },
               { "field": "context.tenantId", "operator": "eq", "value": "t1" }]),
    ));
    let set = PolicySet::new("Invoice", &policies, None);
    let status = Predicate::Compare {
        field: "status".to_owned(),
        op: CompareOp::Eq,
        value: json!("paid"),
        comparison: Comparison::Json,
    };
    assert_eq!(
        set.row_filter(Action::Update, &ctx(&r)),
        RowFilter::Where(Predicate::And(vec![
            expected,
            Predicate::Not(Box::new(status))
        ]))
    );
    let _ = Operator::Eq;
}

#[test]
fn a_record_field_compared_with_another_decides_get_and_list_alike() {
    let set = PolicySet::new(
        "Item",
        &[policy(
            "within-budget",
            "allow",
            "read",
            0,
            json!([{ "field": "record.spent", "operator": "lte", "value": "record.budget" }]),
        )],
        None,
    );
    let r = roles(&[]);
    let filter = set.row_filter(Action::Read, &ctx(&r));
    let RowFilter::Where(p) = &filter else {
        panic!("{filter:?}")
    };
    for (rec, visible) in [
        (json!({"spent": 5, "budget": 10}), true),
        (json!({"spent": 10.5, "budget": 10}), false),
        (json!({"spent": 5, "budget": null}), false),
        (json!({"spent": 5}), false),
    ] {
        let rec = record(rec);
        assert_eq!(set.can(Action::Read, &ctx(&r), Some(&rec)).allowed, visible);
        assert_eq!(eval_predicate(p, &rec), visible, "{rec:?}");
    }
}

/// A policy with `fields`, on the caller's role.
fn field_policy(
    name: &str,
    effect: &str,
    action: &str,
    role: &str,
    fields: &[&str],
) -> CompiledPolicy {
    let mut p = policy(
        name,
        effect,
        action,
        0,
        json!([{ "field": "user.role", "operator": "eq", "value": role }]),
    );
    p.fields = Some(fields.iter().map(|f| (*f).to_owned()).collect());
    p
}

fn staff_set() -> PolicySet {
    let mut set = PolicySet::new(
        "Employee",
        &[
            field_policy("staff-read", "allow", "read", "staff", &["name", "level"]),
            policy(
                "all-read",
                "allow",
                "read",
                0,
                json!([{ "field": "user.role", "operator": "eq", "value": "hr" }]),
            ),
            policy(
                "own-rows",
                "allow",
                "read",
                0,
                json!([
                    { "field": "user.role", "operator": "eq", "value": "temp" },
                    { "field": "record.ownerId", "operator": "eq", "value": "user.id" }
                ]),
            ),
            field_policy("no-salary", "deny", "read", "temp", &["salary"]),
        ],
        Some("admin".into()),
    );
    set.fields = ["name", "level", "salary"].map(str::to_owned).to_vec();
    set
}

#[test]
fn fields_are_those_granted_minus_those_withheld() {
    let set = staff_set();
    let staff = roles(&["staff"]);
    let access = set.field_access(Action::Read, &ctx(&staff));
    assert_eq!(access.hidden().collect::<Vec<_>>(), ["salary"]);
    assert!(access.allows("name") && access.allows("createdAt") && !access.allows("salary"));
    let verdicts = set.field_verdicts(Action::Read, &ctx(&staff));
    assert_eq!(verdicts[0].granted_by, Some("staff-read"));
    assert_eq!(verdicts[2].granted_by, None);
    // Without `fields`, an allow grants every field; the admin role and callers of entities
    // without field rules get them all without evaluation.
    let hr = roles(&["hr"]);
    assert_eq!(set.field_access(Action::Read, &ctx(&hr)), FieldAccess::All);
    let admin = roles(&["admin"]);
    assert_eq!(
        set.field_access(Action::Read, &ctx(&admin)),
        FieldAccess::All
    );
    // A record condition decides rows, not fields: the temp's own-rows allow grants all, the
    // deny with fields withholds the salary, and names who did.
    let temp = roles(&["temp"]);
    let verdicts = set.field_verdicts(Action::Read, &ctx(&temp));
    assert_eq!(verdicts[2].granted_by, Some("own-rows"));
    assert_eq!(verdicts[2].withheld_by, Some("no-salary"));
    assert!(!verdicts[2].allowed && verdicts[0].allowed);
    // Both roles: the union of the grants.
    let both = roles(&["staff", "hr"]);
    assert_eq!(
        set.field_access(Action::Read, &ctx(&both)),
        FieldAccess::All
    );
}

#[test]
fn a_deny_with_fields_leaves_the_action_and_the_rows_to_the_allows() {
    let set = staff_set();
    let temp = roles(&["temp"]);
    let own = record(json!({ "ownerId": "u1" }));
    let other = record(json!({ "ownerId": "u2" }));
    assert!(set.can(Action::Read, &ctx(&temp), Some(&own)).allowed);
    assert!(!set.can(Action::Read, &ctx(&temp), Some(&other)).allowed);
    // The row filter is the allow's record condition, with no trace of the field deny.
    let filter = set.row_filter(Action::Read, &ctx(&temp));
    assert!(matches!(filter, RowFilter::Where(_)), "{filter:?}");
    assert!(eval_predicate(&set_predicate(&filter), &own));
    assert!(!eval_predicate(&set_predicate(&filter), &other));
}

fn set_predicate(filter: &RowFilter) -> Predicate {
    match filter {
        RowFilter::All => Predicate::True,
        RowFilter::Nothing => Predicate::False,
        RowFilter::Where(p) => p.clone(),
    }
}
