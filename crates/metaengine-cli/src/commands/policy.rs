//! `metaengine policy check`

use anyhow::{Context as _, bail};
use metaengine_core::policy::{Action, RecordView};
use metaengine_runtime::gate::explain;
use metaengine_runtime::{ActiveModel, Actor, PolicyGate};
use serde_json::{Map, Value};

use super::Context;
use crate::cli::PolicyCheckArgs;

fn parse_action(action: &str) -> anyhow::Result<Action> {
    Action::ALL
        .into_iter()
        .find(|a| a.as_str() == action)
        .with_context(|| {
            format!("--action `{action}` must be one of `create`, `read`, `update`, `delete`")
        })
}

/// The fields the user may use with `action` (SPEC §15), each with the policy that granted or
/// withheld it.
fn print_fields(gate: &PolicyGate, model: &ActiveModel, action: Action, user: &Actor) {
    let Some(verdicts) = gate.field_verdicts(model, action, user) else {
        println!("fields:   every field (the admin role bypasses policies)");
        return;
    };
    println!("fields:   ({action}; system fields are always visible)");
    let width = verdicts.iter().map(|v| v.field.len()).max().unwrap_or(0);
    for v in &verdicts {
        let (verdict, why) = (v.word(action), v.reason());
        println!("  {:<width$}  {verdict:<9}  {why}", v.field);
    }
}

pub async fn check(ctx: &Context, args: PolicyCheckArgs) -> anyhow::Result<()> {
    let action = parse_action(&args.action)?;
    let record: Option<Map<String, Value>> = match &args.record {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => bail!("`{}` must hold a JSON object", path.display()),
                Err(e) => bail!("`{}` is not valid JSON: {e}", path.display()),
            }
        }
    };
    let model = ctx
        .services
        .registry
        .compiled(&ctx.actor, &args.entity, None)
        .await?;
    let active = ActiveModel::new(model);
    let gate = PolicyGate::new(ctx.services.registry.access(), None, false);
    let user = Actor {
        user_id: args.user,
        tenant_id: args.tenant,
        realm_id: args.realm,
        roles: args.roles.into_iter().filter(|r| !r.is_empty()).collect(),
    };
    let view = record.as_ref().map(|r| r as &dyn RecordView);
    let decision = gate.decide(&active, action, &user, view);
    let (policy, reason) = explain(&decision);
    println!(
        "decision: {}",
        if decision.allowed { "allow" } else { "deny" }
    );
    println!("policy:   {}", policy.as_deref().unwrap_or("-"));
    println!("reason:   {reason}");
    println!("version:  {} of {}", active.version, active.entity);
    if action != Action::Delete && decision.allowed {
        print_fields(&gate, &active, action, &user);
    }
    if !decision.allowed {
        bail!(
            "denied: {}",
            metaengine_core::policy::enforce(&decision)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}
