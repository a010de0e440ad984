//! The policy gate (SPEC §6): compiled allow/deny policies, explained decisions and row-level
//! filtering.
//!
//! A [`PolicySet`] is built once per compiled model: it keeps the policies of each action (those
//! naming it and those naming `*`), by priority descending. [`PolicySet::can`] decides one request
//! without parsing and, on the allow path, without allocating: the request is borrowed
//! ([`RequestContext`]), the record is read through [`RecordView`], and the [`Decision`] borrows
//! the deciding policy's name from the set.
//!
//! Decision rules, in three-valued logic (a condition that cannot be evaluated — values of
//! incompatible types, an unknown path, a `record.*` path without a record — is an *error*):
//! 1. the configured admin role bypasses every policy ([`DecisionReason::AdminBypass`]);
//! 2. a deny policy whose conditions all hold denies ([`DecisionReason::Denied`], the
//!    highest-priority one) — deny wins over allow whatever the priorities;
//! 3. a deny policy whose conditions cannot be evaluated denies too (fail secure,
//!    [`DecisionReason::EvaluationError`]);
//! 4. an allow policy whose conditions all hold allows ([`DecisionReason::Allowed`], the
//!    highest-priority one); an allow policy that cannot be evaluated allows nothing;
//! 5. otherwise deny: [`DecisionReason::EvaluationError`] when an allow policy failed, else
//!    [`DecisionReason::NoMatchingAllow`]. An entity without policies denies everything.
//!
//! These rules are exactly SQL's `WHERE (allow₁ OR allow₂ …) AND NOT (deny₁ OR …)` with an error
//! as `NULL`, which is how [`PolicySet::row_filter`] turns `record.*` conditions into a
//! [`Predicate`] for list and count. See `eval.rs` for the semantics of each operator; in short a
//! missing or null record field makes every operator but `exists` false (so `ne` against null is
//! false, in memory and in SQL alike).

mod eval;
mod fields;
mod filter;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use fields::{FieldAccess, FieldVerdict};
pub use filter::{CompareOp, Predicate, RowFilter, eval_predicate, filter_predicate};

use crate::compile::{CompiledModel, CompiledPolicy};
use crate::schema::{Effect, PolicyAction};
use eval::{Tri, eval_condition};
use serde_json::Value;
use std::fmt;

/// Who asks, borrowed for the time of one decision so that evaluating allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The user's id (`user.id`, `context.userId`).
    pub user_id: &'a str,
    /// The tenant (`context.tenantId`).
    pub tenant_id: &'a str,
    /// The realm (`context.realmId`).
    pub realm_id: &'a str,
    /// The user's roles (`user.roles`, `context.roles`; `user.role` is any one of them).
    pub roles: &'a [String],
}

/// A record as the policies see it: fields by camelCase name, system fields (`createdBy`…)
/// included.
pub trait RecordView {
    /// The value of `field`, if the record has it.
    fn get(&self, field: &str) -> Option<&Value>;
}

impl RecordView for serde_json::Map<String, Value> {
    fn get(&self, field: &str) -> Option<&Value> {
        serde_json::Map::get(self, field)
    }
}

/// A data action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create a record.
    Create,
    /// Read records (get, list, count).
    Read,
    /// Update a record.
    Update,
    /// Delete a record.
    Delete,
}

impl Action {
    /// Every action, in index order.
    pub const ALL: [Action; 4] = [Action::Create, Action::Read, Action::Update, Action::Delete];

    /// The action's name as policies write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn matches(self, action: PolicyAction) -> bool {
        matches!(
            (self, action),
            (_, PolicyAction::All)
                | (Action::Create, PolicyAction::Create)
                | (Action::Read, PolicyAction::Read)
                | (Action::Update, PolicyAction::Update)
                | (Action::Delete, PolicyAction::Delete)
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`PolicySet::can`], with what decided it. Borrows names from the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// What decided.
    pub reason: DecisionReason<'p>,
    /// The action asked for.
    pub action: Action,
    /// The entity asked about.
    pub resource: &'p str,
}

/// What decided a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionReason<'p> {
    /// The named allow policy matched (and no deny did).
    Allowed {
        /// The policy's name.
        policy: &'p str,
    },
    /// The named deny policy matched.
    Denied {
        /// The policy's name.
        policy: &'p str,
    },
    /// No allow policy matched.
    NoMatchingAllow,
    /// The user has the configured admin role.
    AdminBypass,
    /// The named policy could not be evaluated, which denies (fail secure).
    EvaluationError {
        /// The policy's name.
        policy: &'p str,
        /// Why it could not be evaluated.
        reason: &'static str,
    },
}

/// A denied decision as an error (see [`enforce`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyDenied {
    /// An explicit deny matched.
    #[error("policy `{policy}` denies `{action}` on `{resource}`")]
    Denied {
        /// The deny policy.
        policy: String,
        /// The action.
        action: Action,
        /// The entity.
        resource: String,
    },
    /// No allow policy matched.
    #[error("no policy allows `{action}` on `{resource}`")]
    NoMatchingAllow {
        /// The action.
        action: Action,
        /// The entity.
        resource: String,
    },
    /// A policy could not be evaluated.
    #[error("policy `{policy}` could not be evaluated for `{action}` on `{resource}`: {reason}")]
    EvaluationError {
        /// The policy.
        policy: String,
        /// Why.
        reason: &'static str,
        /// The action.
        action: Action,
        /// The entity.
        resource: String,
    },
}

/// Turns a denied decision into a [`PolicyDenied`] error.
pub fn enforce(decision: &Decision<'_>) -> Result<(), PolicyDenied> {
    let (action, resource) = (decision.action, decision.resource.to_owned());
    match decision.reason {
        _ if decision.allowed => Ok(()),
        DecisionReason::Denied { policy } => Err(PolicyDenied::Denied {
            policy: policy.to_owned(),
            action,
            resource,
        }),
        DecisionReason::EvaluationError { policy, reason } => Err(PolicyDenied::EvaluationError {
            policy: policy.to_owned(),
            reason,
            action,
            resource,
        }),
        DecisionReason::NoMatchingAllow
        | DecisionReason::Allowed { .. }
        | DecisionReason::AdminBypass => Err(PolicyDenied::NoMatchingAllow { action, resource }),
    }
}

/// The policies of one entity, indexed per action and ready to evaluate.
#[derive(Debug, Clone)]
pub struct PolicySet {
    entity: String,
    policies: Vec<CompiledPolicy>,
    /// Per [`Action`] (by index): the policies that apply, by priority descending.
    by_action: [Vec<usize>; 4],
    admin_role: Option<String>,
    /// The entity's field names, in model order (for field access).
    fields: Vec<String>,
    /// Whether any policy names `fields`.
    has_field_rules: bool,
}

impl PolicySet {
    /// Builds the set for `entity` from its compiled policies; `admin_role` bypasses them all.
    pub fn new(entity: &str, policies: &[CompiledPolicy], admin_role: Option<String>) -> Self {
        let mut by_action: [Vec<usize>; 4] = Default::default();
        for action in Action::ALL {
            let mut list: Vec<usize> = (0..policies.len())
                .filter(|&i| policies.get(i).is_some_and(|p| action.matches(p.action)))
                .collect();
            // Stable: equal priorities keep their schema order.
            list.sort_by_key(|&i| std::cmp::Reverse(policies.get(i).map_or(0, |p| p.priority)));
            if let Some(slot) = by_action.get_mut(action.index()) {
                *slot = list;
            }
        }
        PolicySet {
            entity: entity.to_owned(),
            policies: policies.to_vec(),
            by_action,
            admin_role,
            fields: Vec::new(),
            has_field_rules: policies.iter().any(|p| p.fields.is_some()),
        }
    }

    /// Builds the set of a compiled model (with its fields, for field access).
    pub fn from_model(model: &CompiledModel, admin_role: Option<String>) -> Self {
        let mut set = Self::new(&model.entity, &model.policies, admin_role);
        set.fields = model.fields.iter().map(|f| f.name.clone()).collect();
        set
    }

    /// The entity the policies are about.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// The policies that apply to `action`, by priority descending.
    pub fn applicable(&self, action: Action) -> impl Iterator<Item = &CompiledPolicy> {
        self.by_action
            .get(action.index())
            .into_iter()
            .flatten()
            .filter_map(|&i| self.policies.get(i))
    }

    pub(crate) fn is_admin(&self, ctx: &RequestContext<'_>) -> bool {
        self.admin_role
            .as_deref()
            .is_some_and(|admin| ctx.roles.iter().any(|r| r == admin))
    }

    /// Decides whether `ctx` may do `action`, on `record` when given (a stored record for read,
    /// update and delete; the new record for create). A `record.*` condition without a record is
    /// an evaluation error.
    pub fn can<'p>(
        &'p self,
        action: Action,
        ctx: &RequestContext<'_>,
        record: Option<&dyn RecordView>,
    ) -> Decision<'p> {
        let decide = |allowed, reason| Decision {
            allowed,
            reason,
            action,
            resource: &self.entity,
        };
        if self.is_admin(ctx) {
            return decide(true, DecisionReason::AdminBypass);
        }
        let mut allowed_by: Option<&'p str> = None;
        let mut deny_error: Option<(&'p str, &'static str)> = None;
        let mut allow_error: Option<(&'p str, &'static str)> = None;
        for policy in self.applicable(action).filter(|p| p.decides_action()) {
            let deny = policy.effect == Effect::Deny;
            if !deny && allowed_by.is_some() {
                continue;
            }
            let verdict = policy_verdict(policy, ctx, record);
            match (verdict, deny) {
                (Tri::True, true) => {
                    return decide(
                        false,
                        DecisionReason::Denied {
                            policy: &policy.name,
                        },
                    );
                }
                (Tri::True, false) => allowed_by = Some(&policy.name),
                (Tri::Error(e), true) => {
                    deny_error = deny_error.or(Some((&policy.name, e)));
                }
                (Tri::Error(e), false) => {
                    allow_error = allow_error.or(Some((&policy.name, e)));
                }
                (Tri::False, _) => {}
            }
        }
        match (deny_error, allowed_by, allow_error) {
            (Some((policy, reason)), _, _) | (None, None, Some((policy, reason))) => {
                decide(false, DecisionReason::EvaluationError { policy, reason })
            }
            (None, Some(policy), _) => decide(true, DecisionReason::Allowed { policy }),
            (None, None, None) => decide(false, DecisionReason::NoMatchingAllow),
        }
    }
}

/// Whether all of a policy's conditions hold (Kleene `AND`: a false condition wins over an error).
fn policy_verdict(
    policy: &CompiledPolicy,
    ctx: &RequestContext<'_>,
    record: Option<&dyn RecordView>,
) -> Tri {
    let mut acc = Tri::True;
    for c in &policy.conditions {
        acc = acc.and(eval_condition(c, ctx, record));
        if acc == Tri::False {
            break;
        }
    }
    acc
}
