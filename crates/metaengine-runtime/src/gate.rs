//! The policy gate (SPEC §6): every data request passes through it. It decides with the entity's
//! compiled policies, explains the decision, filters rows for lists and counts, and audits: a
//! denial always (`policy.deny`), an allow when configured (`policy.allow`). Read-path decisions
//! go through the batched [`AuditWriter`]; write paths take the event from
//! [`PolicyGate::audit_event`] and write it in their own transaction.

use metaengine_core::policy::{
    Action, Decision, DecisionReason, FieldAccess, FieldVerdict, PolicyDenied, RecordView,
    RequestContext, RowFilter, enforce,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metaengine_store::{AuditResult, EventType, NewAudit};
use serde_json::{Value, json};

use crate::actor::{AccessConfig, Actor};
use crate::audit_writer::AuditWriter;
use crate::cache::ActiveModel;

/// Decides, explains and audits access to entity data.
#[derive(Debug, Clone)]
pub struct PolicyGate {
    admin_role: String,
    audit: Option<AuditWriter>,
    audit_allows: bool,
    counts: Arc<DecisionCounts>,
}

/// Decisions taken since the gate was created (for metrics).
#[derive(Debug, Default)]
struct DecisionCounts {
    allowed: AtomicU64,
    denied: AtomicU64,
}

/// The request context of an actor, borrowed (evaluation allocates nothing).
pub fn request_context(actor: &Actor) -> RequestContext<'_> {
    RequestContext {
        user_id: &actor.user_id,
        tenant_id: &actor.tenant_id,
        realm_id: &actor.realm_id,
        roles: &actor.roles,
    }
}

impl PolicyGate {
    /// A gate with the platform's admin role (which bypasses policies), writing its audit events
    /// through `audit` (none: decisions are not audited, as in `metaengine policy check`).
    pub fn new(access: &AccessConfig, audit: Option<AuditWriter>, audit_allows: bool) -> Self {
        Self {
            admin_role: access.admin_role.clone(),
            audit,
            audit_allows,
            counts: Arc::default(),
        }
    }

    /// Decisions taken so far by this gate and its clones: `(allowed, denied)`.
    pub fn decision_counts(&self) -> (u64, u64) {
        (
            self.counts.allowed.load(Ordering::Relaxed),
            self.counts.denied.load(Ordering::Relaxed),
        )
    }

    /// The decision on `action` for `actor`, with the record when there is one. Nothing audited.
    pub fn decide<'m>(
        &self,
        model: &'m ActiveModel,
        action: Action,
        actor: &Actor,
        record: Option<&dyn RecordView>,
    ) -> Decision<'m> {
        let decision = if actor.has_role(&self.admin_role) {
            Decision {
                allowed: true,
                reason: DecisionReason::AdminBypass,
                action,
                resource: &model.entity,
            }
        } else {
            model.policies.can(action, &request_context(actor), record)
        };
        let counter = if decision.allowed {
            &self.counts.allowed
        } else {
            &self.counts.denied
        };
        counter.fetch_add(1, Ordering::Relaxed);
        decision
    }

    /// The rows of a list or count the actor may see: `RowFilter::All` for the admin role.
    pub fn row_filter(&self, model: &ActiveModel, action: Action, actor: &Actor) -> RowFilter {
        if actor.has_role(&self.admin_role) {
            return RowFilter::All;
        }
        model.policies.row_filter(action, &request_context(actor))
    }

    /// The fields of `model` the actor may use with `action` (SPEC §15): all of them for the
    /// admin role or when no policy names fields.
    pub fn field_access<'m>(
        &self,
        model: &'m ActiveModel,
        action: Action,
        actor: &Actor,
    ) -> FieldAccess<'m> {
        if actor.has_role(&self.admin_role) {
            return FieldAccess::All;
        }
        model.policies.field_access(action, &request_context(actor))
    }

    /// The verdict on every field of `model` for the actor and `action`, with the policies that
    /// granted or withheld each (the explanation of [`PolicyGate::field_access`]); `None` for the
    /// admin role, which may use every field.
    pub fn field_verdicts<'m>(
        &self,
        model: &'m ActiveModel,
        action: Action,
        actor: &Actor,
    ) -> Option<Vec<FieldVerdict<'m>>> {
        (!actor.has_role(&self.admin_role)).then(|| {
            model
                .policies
                .field_verdicts(action, &request_context(actor))
        })
    }

    /// The audit event of a decision: always for a denial, for an allow only when configured.
    pub fn audit_event(
        &self,
        decision: &Decision<'_>,
        actor: &Actor,
        record_id: Option<&str>,
    ) -> Option<NewAudit> {
        if decision.allowed && !self.audit_allows {
            return None;
        }
        let (policy, reason) = explain(decision);
        let mut details =
            json!({ "action": decision.action.as_str(), "policy": policy, "reason": reason });
        if let (Some(id), Value::Object(map)) = (record_id, &mut details) {
            map.insert("recordId".into(), id.into());
        }
        let event = if decision.allowed {
            EventType::PolicyAllow
        } else {
            EventType::PolicyDeny
        };
        let mut audit = NewAudit::success(event, &actor.audit(), decision.resource, Some(details));
        if !decision.allowed {
            audit.result = AuditResult::Failure;
            audit.error_message = enforce(decision).err().map(|e| e.to_string());
        }
        Some(audit)
    }

    /// Decides a read-path request and audits it through the batched writer; a denial becomes
    /// the typed error.
    pub async fn authorize(
        &self,
        model: &ActiveModel,
        action: Action,
        actor: &Actor,
        record: Option<&(dyn RecordView + Sync)>,
        record_id: Option<&str>,
    ) -> Result<(), PolicyDenied> {
        let decision = self.decide(model, action, actor, record.map(|r| r as &dyn RecordView));
        if let (Some(writer), Some(event)) =
            (&self.audit, self.audit_event(&decision, actor, record_id))
        {
            writer.record(event).await;
        }
        enforce(&decision)
    }
}

/// What a write asks of the gate: the stored record (update, delete) and the record as it would be
/// after the write (create, update).
#[derive(Clone, Copy)]
pub struct WriteCheck<'r> {
    /// `Create`, `Update` or `Delete`.
    pub action: Action,
    /// The record as stored (update and delete).
    pub before: Option<&'r (dyn RecordView + Sync)>,
    /// The record as it would be (create and update).
    pub after: Option<&'r (dyn RecordView + Sync)>,
    /// The record's id, for the audit row.
    pub record_id: Option<&'r str>,
}

impl PolicyGate {
    /// Decides a write like PostgreSQL row security: the stored record must be reachable
    /// (`USING`) and the resulting one must stay reachable (`WITH CHECK`), so nobody moves a row
    /// out of their reach or into someone else's. Returns the verdict and the audit event to
    /// write in the write's own transaction (a denial always, an allow when configured).
    pub fn check_write(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        write: WriteCheck<'_>,
    ) -> (Result<(), PolicyDenied>, Option<NewAudit>) {
        let mut decision = None;
        for record in [write.before, write.after].into_iter().flatten() {
            let d = self.decide(model, write.action, actor, Some(record as &dyn RecordView));
            let denied = !d.allowed;
            decision = Some(d);
            if denied {
                break;
            }
        }
        let decision = decision.unwrap_or_else(|| self.decide(model, write.action, actor, None));
        let audit = self.audit_event(&decision, actor, write.record_id);
        (enforce(&decision), audit)
    }
}

/// The deciding policy (if any) and a short reason, for audit rows and `policy check`.
pub fn explain(decision: &Decision<'_>) -> (Option<String>, String) {
    match decision.reason {
        DecisionReason::Allowed { policy } => (Some(policy.to_owned()), "allowed by policy".into()),
        DecisionReason::Denied { policy } => (Some(policy.to_owned()), "denied by policy".into()),
        DecisionReason::NoMatchingAllow => (None, "no policy allows it".into()),
        DecisionReason::AdminBypass => (None, "admin role bypasses policies".into()),
        DecisionReason::EvaluationError { policy, reason } => (
            Some(policy.to_owned()),
            format!("policy could not be evaluated ({reason}); denied"),
        ),
    }
}
