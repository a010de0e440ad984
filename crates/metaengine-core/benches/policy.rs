//! Benchmark of [`PolicySet::can`] (SPEC §6 numbers: ≤ 1 µs median for 5 policies × 3 conditions),
//! side by side with the same rules in Cedar (`cedar-policy`) on the same request. After the
//! criterion runs it prints both medians of its own timing loop and their ratio.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet as CedarSet,
    Request,
};
use criterion::{Criterion, black_box};
use metaengine_core::compile::{CompiledPolicy, compile_condition};
use metaengine_core::policy::{Action, PolicySet, RequestContext};
use metaengine_core::{Condition, Effect, PolicyAction};
use serde_json::{Map, Value, json};
use std::str::FromStr;
use std::time::Instant;

/// Policy `i`: deny for 0 and 1, allow otherwise; `read` for even `i`, `*` for odd; conditions
/// `user.role in ["manager", "role<i>"]`, `context.tenantId eq <t>`, `record.amount lte 1000+i`.
/// The denies name another tenant, so the request below is allowed (by `policy4`).
fn tenant(i: usize) -> &'static str {
    if i < 2 { "other" } else { "t1" }
}

fn ours() -> PolicySet {
    let policies: Vec<CompiledPolicy> = (0..5)
        .map(|i| {
            let conds: Vec<Condition> = serde_json::from_value(json!([
                { "field": "user.role", "operator": "in", "value": ["manager", format!("role{i}")] },
                { "field": "context.tenantId", "operator": "eq", "value": tenant(i) },
                { "field": "record.amount", "operator": "lte", "value": 1000 + i },
            ]))
            .unwrap();
            CompiledPolicy {
                name: format!("policy{i}"),
                effect: if i < 2 { Effect::Deny } else { Effect::Allow },
                action: if i % 2 == 0 { PolicyAction::Read } else { PolicyAction::All },
                priority: i as i32,
                conditions: conds.iter().map(compile_condition).collect(),
                fields: None,
            }
        })
        .collect();
    PolicySet::new("Invoice", &policies, Some("admin".to_owned()))
}

fn cedar_policies() -> CedarSet {
    let text: String = (0..5)
        .map(|i| {
            let effect = if i < 2 { "forbid" } else { "permit" };
            let action = if i % 2 == 0 {
                r#"action == Action::"read""#
            } else {
                "action"
            };
            format!(
                "@id(\"policy{i}\")\n{effect}(principal, {action}, resource) when {{ \
                 principal.roles.containsAny([\"manager\", \"role{i}\"]) && \
                 context.tenantId == \"{t}\" && resource.amount <= {a} }};\n",
                t = tenant(i),
                a = 1000 + i,
            )
        })
        .collect();
    CedarSet::from_str(&text).unwrap()
}

struct CedarCase {
    authorizer: Authorizer,
    policies: CedarSet,
    entities: Entities,
    request: Request,
}

fn cedar() -> CedarCase {
    let entities = Entities::from_json_value(
        json!([
            { "uid": { "type": "User", "id": "u1" },
              "attrs": { "roles": ["user", "manager"] }, "parents": [] },
            { "uid": { "type": "Invoice", "id": "i1" },
              "attrs": { "amount": 500, "createdBy": "u1", "status": "sent" }, "parents": [] },
        ]),
        None,
    )
    .unwrap();
    let context =
        Context::from_json_value(json!({ "tenantId": "t1", "realmId": "r1" }), None).unwrap();
    let request = Request::new(
        EntityUid::from_str(r#"User::"u1""#).unwrap(),
        EntityUid::from_str(r#"Action::"read""#).unwrap(),
        EntityUid::from_str(r#"Invoice::"i1""#).unwrap(),
        context,
        None,
    )
    .unwrap();
    CedarCase {
        authorizer: Authorizer::new(),
        policies: cedar_policies(),
        entities,
        request,
    }
}

/// Median nanoseconds per call of `f`, over 31 samples of `n` calls.
fn median_ns(n: u32, mut f: impl FnMut() -> bool) -> f64 {
    let mut samples: Vec<f64> = (0..31)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let set = ours();
    let roles = vec!["user".to_owned(), "manager".to_owned()];
    let ctx = RequestContext {
        user_id: "u1",
        tenant_id: "t1",
        realm_id: "r1",
        roles: &roles,
    };
    let record: Map<String, Value> =
        serde_json::from_value(json!({ "amount": 500, "createdBy": "u1", "status": "sent" }))
            .unwrap();
    let case = cedar();
    // Both allow the same request, by the same policy.
    assert!(set.can(Action::Read, &ctx, Some(&record)).allowed);
    let response = case
        .authorizer
        .is_authorized(&case.request, &case.policies, &case.entities);
    assert_eq!(response.decision(), CedarDecision::Allow);
    assert!(
        response
            .diagnostics()
            .reason()
            .any(|id| id.to_string() == "policy4")
    );

    let mut c = Criterion::default().configure_from_args();
    c.bench_function("policy/can (5 policies x 3 conditions, allowed)", |b| {
        b.iter(|| black_box(set.can(Action::Read, black_box(&ctx), Some(black_box(&record)))))
    });
    c.bench_function("policy/cedar is_authorized (same rules)", |b| {
        b.iter(|| {
            black_box(case.authorizer.is_authorized(
                black_box(&case.request),
                &case.policies,
                &case.entities,
            ))
        })
    });
    c.final_summary();

    let ours_ns = median_ns(100_000, || {
        set.can(Action::Read, &ctx, Some(&record)).allowed
    });
    let cedar_ns = median_ns(2_000, || {
        case.authorizer
            .is_authorized(&case.request, &case.policies, &case.entities)
            .decision()
            == CedarDecision::Allow
    });
    println!(
        "policy gate median: ours {ours_ns:.1} ns, cedar {cedar_ns:.1} ns, ratio {:.1}x",
        cedar_ns / ours_ns
    );
}
