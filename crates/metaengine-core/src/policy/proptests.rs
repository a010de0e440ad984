//! Property: for any policies, request and record, the row filter of `read` lets the record in
//! exactly when `can(Read, ctx, Some(record))` allows, whatever the conditions' comparisons
//! (plain JSON, or decimals, dates, timestamps and uuids by value).

use super::*;
use crate::compile::{CompiledCondition, ConditionValue, ValuePath};
use crate::record::Comparison;
use crate::schema::{Effect, Operator, PolicyAction};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FIELDS: &[&str] = &["status", "amount", "owner", "tags"];

fn path() -> impl Strategy<Value = ValuePath> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(|f| ValuePath::Record(f.to_owned())),
        1 => Just(ValuePath::UserId),
        1 => Just(ValuePath::UserRole),
        1 => Just(ValuePath::UserRoles),
        1 => Just(ValuePath::ContextTenantId),
        1 => Just(ValuePath::ContextUserId),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(&["a", "b", "u1", "t1", "admin", "user", "ab"][..])
            .prop_map(|s| json!(s)),
        prop::sample::select(
            &[
                "1.50",
                "1.5",
                "10",
                "2026-01-31",
                "2026-01-01T00:30:00+01:00",
                "2025-12-31T23:30:00.000Z",
                "0192F3A4-5B6C-7D8E-9F00-112233445566",
                "0192f3a4-5b6c-7d8e-9f00-112233445566"
            ][..]
        )
        .prop_map(|s| json!(s)),
        prop::sample::select(&[0.5, 1.5, 10.0][..]).prop_map(|n| json!(n)),
        (0i64..4).prop_map(|n| json!(n)),
        Just(Value::Null),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        2 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
    ]
}

fn operator() -> impl Strategy<Value = Operator> {
    prop::sample::select(
        &[
            Operator::Eq,
            Operator::Ne,
            Operator::In,
            Operator::NotIn,
            Operator::Gt,
            Operator::Gte,
            Operator::Lt,
            Operator::Lte,
            Operator::Contains,
            Operator::Exists,
        ][..],
    )
}

fn condition() -> impl Strategy<Value = CompiledCondition> {
    let value = prop_oneof![
        3 => literal().prop_map(ConditionValue::Literal),
        2 => path().prop_map(ConditionValue::Path),
        1 => Just(ConditionValue::None),
    ];
    let comparison = prop::sample::select(
        &[
            Comparison::Json,
            Comparison::Json,
            Comparison::Decimal,
            Comparison::Date,
            Comparison::Datetime,
            Comparison::Uuid,
        ][..],
    );
    (path(), operator(), value, comparison).prop_map(|(subject, operator, value, comparison)| {
        CompiledCondition {
            subject,
            operator,
            value,
            comparison,
        }
    })
}

fn policy() -> impl Strategy<Value = CompiledPolicy> {
    let action =
        prop::sample::select(&[PolicyAction::Read, PolicyAction::All, PolicyAction::Update][..]);
    (
        any::<bool>(),
        action,
        -2i32..3,
        prop::collection::vec(condition(), 0..4),
    )
        .prop_map(|(deny, action, priority, conditions)| CompiledPolicy {
            name: "p".to_owned(),
            effect: if deny { Effect::Deny } else { Effect::Allow },
            action,
            priority,
            conditions,
            fields: None,
        })
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(prop::option::of(literal()), FIELDS.len()).prop_map(|values| {
        FIELDS
            .iter()
            .zip(values)
            .filter_map(|(f, v)| v.map(|v| ((*f).to_owned(), v)))
            .collect()
    })
}

fn user_roles() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(&["admin", "user", "a", "guest"][..]).prop_map(str::to_owned),
        0..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn row_filter_agrees_with_can(
        policies in prop::collection::vec(policy(), 0..5),
        roles in user_roles(),
        user in prop::sample::select(&["u1", "a"][..]),
        admin in any::<bool>(),
        rec in record(),
    ) {
        let set = PolicySet::new("E", &policies, admin.then(|| "admin".to_owned()));
        let ctx = RequestContext { user_id: user, tenant_id: "t1", realm_id: "r1", roles: &roles };
        let filter = set.row_filter(Action::Read, &ctx);
        let visible = match &filter {
            RowFilter::All => true,
            RowFilter::Nothing => false,
            RowFilter::Where(p) => eval_predicate(p, &rec),
        };
        let decision = set.can(Action::Read, &ctx, Some(&rec));
        prop_assert_eq!(visible, decision.allowed, "filter {:?} decision {:?}", filter, decision);
    }
}
