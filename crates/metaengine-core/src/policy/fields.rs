//! Field-level permissions (SPEC §15): which fields of an entity a caller may read or write.
//!
//! An `allow` policy with `fields` grants only those fields for its action; without `fields` it
//! grants them all. A `deny` policy with `fields` withholds those fields and leaves the action to
//! the other policies ([`CompiledPolicy::decides_action`]). A caller may use the fields granted
//! by the allow policies that match it minus those withheld by the deny policies that match it.
//! Field access is decided per caller: a policy matches when its `user.*` and `context.*`
//! conditions hold (a policy with `fields` has no other; a `record.*` condition of an allow
//! without `fields` decides which rows, not which fields). System fields are always visible.

use super::eval::{Tri, eval_condition};
use super::{Action, PolicySet, RequestContext};
use crate::compile::{CompiledCondition, CompiledPolicy, ConditionValue, ValuePath};
use crate::schema::Effect;

/// The verdict on one field for one caller and action, with the policies behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldVerdict<'p> {
    /// The field.
    pub field: &'p str,
    /// Whether the caller may use it.
    pub allowed: bool,
    /// The highest-priority matching allow policy that grants it.
    pub granted_by: Option<&'p str>,
    /// The highest-priority matching deny policy that withholds it.
    pub withheld_by: Option<&'p str>,
}

impl FieldVerdict<'_> {
    /// The verdict in a word: `visible` or `hidden` for `read`, `writable` or `forbidden` for a
    /// write (`policy check` and the admin UI's explain tester say it the same way).
    pub fn word(&self, action: Action) -> &'static str {
        match (action, self.allowed) {
            (Action::Read, true) => "visible",
            (Action::Read, false) => "hidden",
            (_, true) => "writable",
            (_, false) => "forbidden",
        }
    }

    /// Why, naming the policy that decided it.
    pub fn reason(&self) -> String {
        match (self.granted_by, self.withheld_by) {
            (_, Some(deny)) => format!("withheld by `{deny}`"),
            (Some(allow), None) => format!("granted by `{allow}`"),
            (None, None) => "granted by no matching policy".to_owned(),
        }
    }
}

/// The fields a caller may use with an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldAccess<'p> {
    /// Every field (no policy holds a field back from this caller).
    All,
    /// Only the fields whose verdict allows them (every field's verdict, in model order).
    Restricted(Vec<FieldVerdict<'p>>),
}

impl FieldAccess<'_> {
    /// Whether the caller may use `field` (a system field or a name the entity does not have is
    /// not held back here: the caller of this decides what unknown names mean).
    pub fn allows(&self, field: &str) -> bool {
        match self {
            FieldAccess::All => true,
            FieldAccess::Restricted(verdicts) => {
                verdicts.iter().all(|v| v.field != field || v.allowed)
            }
        }
    }

    /// The fields held back, in model order.
    pub fn hidden(&self) -> impl Iterator<Item = &str> {
        let verdicts = match self {
            FieldAccess::All => &[][..],
            FieldAccess::Restricted(v) => v.as_slice(),
        };
        verdicts.iter().filter(|v| !v.allowed).map(|v| v.field)
    }

    /// The fields the caller may use, in model order (`None`: all of them).
    pub fn visible(&self) -> Option<Vec<String>> {
        match self {
            FieldAccess::All => None,
            FieldAccess::Restricted(v) => Some(
                v.iter()
                    .filter(|v| v.allowed)
                    .map(|v| v.field.to_owned())
                    .collect(),
            ),
        }
    }
}

/// Whether a condition names the record (on either side).
fn names_record(c: &CompiledCondition) -> bool {
    matches!(c.subject, ValuePath::Record(_))
        || matches!(c.value, ConditionValue::Path(ValuePath::Record(_)))
}

/// Whether a policy's conditions on the caller all hold (its `record.*` conditions left aside).
fn matches_caller(policy: &CompiledPolicy, ctx: &RequestContext<'_>) -> bool {
    policy
        .conditions
        .iter()
        .filter(|c| !names_record(c))
        .all(|c| eval_condition(c, ctx, None) == Tri::True)
}

impl PolicySet {
    /// Whether any policy of the set names `fields`: without one, every caller may use every
    /// field and [`PolicySet::field_access`] answers without evaluating anything.
    pub fn has_field_rules(&self) -> bool {
        self.has_field_rules
    }

    /// The verdict on every field of the entity for `ctx` and `action`, with the policies that
    /// granted or withheld each (the explanation; see the module docs). The admin role may use
    /// every field.
    pub fn field_verdicts(
        &self,
        action: Action,
        ctx: &RequestContext<'_>,
    ) -> Vec<FieldVerdict<'_>> {
        let admin = self.is_admin(ctx);
        let matching: Vec<&CompiledPolicy> = if admin {
            Vec::new()
        } else {
            self.applicable(action)
                .filter(|p| matches_caller(p, ctx))
                .collect()
        };
        let names = |p: &CompiledPolicy, field: &str| {
            p.fields
                .as_ref()
                .is_none_or(|f| f.iter().any(|n| n == field))
        };
        self.fields
            .iter()
            .map(|field| {
                let granted_by = matching
                    .iter()
                    .find(|p| p.effect == Effect::Allow && names(p, field))
                    .map(|p| p.name.as_str());
                let withheld_by = matching
                    .iter()
                    .find(|p| p.effect == Effect::Deny && p.fields.is_some() && names(p, field))
                    .map(|p| p.name.as_str());
                FieldVerdict {
                    field,
                    allowed: admin || (granted_by.is_some() && withheld_by.is_none()),
                    granted_by,
                    withheld_by,
                }
            })
            .collect()
    }

    /// The fields `ctx` may use with `action`: [`FieldAccess::All`] without evaluating anything
    /// when no policy names fields (or for the admin role).
    pub fn field_access(&self, action: Action, ctx: &RequestContext<'_>) -> FieldAccess<'_> {
        if !self.has_field_rules || self.is_admin(ctx) {
            return FieldAccess::All;
        }
        let verdicts = self.field_verdicts(action, ctx);
        if verdicts.iter().all(|v| v.allowed) {
            FieldAccess::All
        } else {
            FieldAccess::Restricted(verdicts)
        }
    }
}
