//! `PolicySet::can` allocates nothing on the allow path (SPEC §6 numbers).
//!
//! A counting global allocator wraps the system one. Implementing `GlobalAlloc` needs `unsafe`,
//! which the workspace denies (`unsafe_code = "deny"`, not "forbid", for exactly this file): the
//! impl only forwards to `System` and counts, so the allowance is local and small.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step is a failed test"
)]

use metaengine_core::Condition;
use metaengine_core::compile::compile_condition;
use metaengine_core::policy::{Action, DecisionReason, PolicySet, RequestContext};
use serde_json::{Map, Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

#[expect(
    unsafe_code,
    reason = "a counting allocator: the one way to see allocations"
)]
// SAFETY: every call is forwarded unchanged to `System`; the counter is a thread-local `Cell`
// with a const initializer, so counting itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// 5 policies × 3 conditions, as in `benches/policy.rs`.
fn policy_set() -> PolicySet {
    let policies: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "name": format!("policy{i}"),
                "effect": if i < 2 { "deny" } else { "allow" },
                "action": if i % 2 == 0 { "read" } else { "*" },
                "priority": i,
                "conditions": [
                    { "field": "user.role", "operator": "in", "value": ["manager", format!("role{i}")] },
                    { "field": "context.tenantId", "operator": "eq", "value": if i < 2 { "other" } else { "t1" } },
                    { "field": "record.amount", "operator": "lte", "value": 1000 + i },
                ],
            })
        })
        .collect();
    let compiled = policies
        .iter()
        .map(|p| {
            let conds: Vec<Condition> = serde_json::from_value(p["conditions"].clone()).unwrap();
            let mut c = serde_json::from_value::<metaengine_core::compile::CompiledPolicy>(json!({
                "name": p["name"], "effect": p["effect"], "action": p["action"],
                "priority": p["priority"], "conditions": [],
            }))
            .unwrap();
            c.conditions = conds.iter().map(compile_condition).collect();
            c
        })
        .collect::<Vec<_>>();
    PolicySet::new("Invoice", &compiled, Some("admin".to_owned()))
}

#[test]
fn can_allocates_nothing_on_the_allow_path() {
    let set = policy_set();
    assert!(allocations() > 0, "the counting allocator counts");
    let roles = vec!["user".to_owned(), "manager".to_owned()];
    let ctx = RequestContext {
        user_id: "u1",
        tenant_id: "t1",
        realm_id: "r1",
        roles: &roles,
    };
    let record: Map<String, Value> = serde_json::from_value(json!({
        "amount": 500, "createdBy": "u1", "status": "sent",
    }))
    .unwrap();
    // Warm-up (thread-locals, lazy statics).
    let d = set.can(Action::Read, &ctx, Some(&record));
    assert_eq!(d.reason, DecisionReason::Allowed { policy: "policy4" });

    let before = allocations();
    let mut allowed = 0;
    for _ in 0..1000 {
        let d = set.can(Action::Read, &ctx, Some(&record));
        allowed += usize::from(std::hint::black_box(d).allowed);
    }
    let after = allocations();
    assert_eq!(allowed, 1000);
    assert_eq!(after - before, 0, "`can` allocated on the allow path");
}
