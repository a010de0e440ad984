//! Policies: the active policies of each entity, and the explain tester (roles, user id, tenant,
//! realm, a record) that shows the decision, the deciding policy and the field grants, decided
//! by the same gate as requests (nothing audited: it is a question, not a request).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use metaengine_core::policy::{Action, RecordView};
use metaengine_runtime::gate::explain;
use metaengine_runtime::{Actor, PolicyGate};
use metaengine_store::PageRequest;
use serde_json::{Map, Value};

use crate::Ctx;
use crate::form::Query;
use crate::page::{self, Layout, Shown, shown};
use crate::signed::Signed;
use metaengine_server::extract::Path;

#[derive(Template)]
#[template(path = "policies_index.html")]
struct IndexPage {
    layout: Layout,
    entities: Vec<(String, usize)>,
}

/// `GET /_/policies`: the active entities and how many policies each has.
pub async fn index(State(ctx): State<Ctx>, signed: Signed) -> Response {
    let layout = signed.layout("policies");
    let rows = match ctx
        .app
        .registry
        .list_entities(&signed.actor, PageRequest::new(1, 1000))
        .await
    {
        Ok(p) => p.data,
        Err(e) => return page::error_page(layout, "Policies", shown(e)),
    };
    let mut entities = Vec::new();
    for row in rows.into_iter().filter(|r| r.active_version.is_some()) {
        if let Ok(model) = ctx.app.data.model(&row.name).await {
            entities.push((row.name, model.model.policies.len()));
        }
    }
    page::html(StatusCode::OK, &IndexPage { layout, entities })
}

/// One policy as the table shows it.
pub struct PolicyLine {
    /// Name.
    pub name: String,
    /// `allow` or `deny`.
    pub effect: String,
    /// The action (or `*`).
    pub action: String,
    /// Priority.
    pub priority: String,
    /// The conditions as JSON.
    pub conditions: String,
    /// The fields it grants or withholds, if it names any.
    pub fields: String,
}

/// A field's verdict for the tester.
pub struct VerdictLine {
    /// The field.
    pub field: String,
    /// `visible`, `hidden`, `writable` or `forbidden`.
    pub verdict: &'static str,
    /// The policy that decided it.
    pub why: String,
}

/// The tester's answer.
pub struct Explanation {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The deciding policy.
    pub policy: String,
    /// Why.
    pub reason: String,
    /// Field verdicts (none for the admin role, which may use every field).
    pub fields: Vec<VerdictLine>,
    /// Whether the admin role bypassed the policies.
    pub admin: bool,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct EntityPage {
    layout: Layout,
    entity: String,
    version: String,
    policies: Vec<PolicyLine>,
    action: String,
    user: String,
    tenant: String,
    realm: String,
    roles: String,
    record: String,
    explanation: Option<Explanation>,
    error: Option<Shown>,
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `GET /_/policies/{entity}[?action=…&user=…&tenant=…&realm=…&roles=…&record=…]`.
pub async fn entity(
    State(ctx): State<Ctx>,
    signed: Signed,
    Path(entity): Path<String>,
    Query(q): Query,
) -> Response {
    let layout = signed.layout("policies");
    let version = match ctx
        .app
        .registry
        .active_version(&signed.actor, &entity)
        .await
    {
        Ok(v) => v,
        Err(e) => return page::error_page(layout, &entity, shown(e)),
    };
    let model = match ctx.app.data.model(&entity).await {
        Ok(m) => m,
        Err(e) => return page::error_page(layout, &entity, shown(e)),
    };
    let policies = version
        .schema
        .get("policies")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| PolicyLine {
                    name: text(p.get("name")),
                    effect: text(p.get("effect")),
                    action: text(p.get("action")),
                    priority: text(p.get("priority")),
                    conditions: text(p.get("conditions")),
                    fields: text(p.get("fields")),
                })
                .collect()
        })
        .unwrap_or_default();
    let action = q.text("action").unwrap_or("read").to_owned();
    let user = q.get("user").unwrap_or("").to_owned();
    let tenant = q
        .text("tenant")
        .unwrap_or(&signed.actor.tenant_id)
        .to_owned();
    let realm = q.text("realm").unwrap_or(&signed.actor.realm_id).to_owned();
    let roles = q.get("roles").unwrap_or("").to_owned();
    let record = q.get("record").unwrap_or("").to_owned();
    let mut error = None;
    let mut explanation = None;
    if q.get("explain").is_some() {
        match tester(
            &ctx,
            &model,
            (&action, &user, &tenant, &realm, &roles, &record),
        ) {
            Ok(e) => explanation = Some(e),
            Err(e) => error = Some(e),
        }
    }
    let status = page::status_of(error.as_ref());
    page::html(
        status,
        &EntityPage {
            layout,
            version: version.version,
            entity,
            policies,
            action,
            user,
            tenant,
            realm,
            roles,
            record,
            explanation,
            error,
        },
    )
}

fn invalid(pointer: &str, message: String) -> Shown {
    Shown::one(422, pointer, message)
}

fn tester(
    ctx: &Ctx,
    model: &metaengine_runtime::ActiveModel,
    (action, user, tenant, realm, roles, record): (&str, &str, &str, &str, &str, &str),
) -> Result<Explanation, Shown> {
    let action = Action::ALL
        .into_iter()
        .find(|a| a.as_str() == action)
        .ok_or_else(|| invalid("/action", format!("`{action}` is not an action")))?;
    let record: Option<Map<String, Value>> = match record.trim() {
        "" => None,
        text => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Some(map),
            Ok(_) => {
                return Err(invalid(
                    "/record",
                    "the record must be a JSON object".to_owned(),
                ));
            }
            Err(e) => {
                return Err(invalid(
                    "/record",
                    format!("the record is not valid JSON: {e}"),
                ));
            }
        },
    };
    let who = Actor {
        user_id: user.trim().to_owned(),
        tenant_id: tenant.trim().to_owned(),
        realm_id: realm.trim().to_owned(),
        roles: roles
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let gate = PolicyGate::new(ctx.app.registry.access(), None, false);
    let view = record.as_ref().map(|r| r as &dyn RecordView);
    let decision = gate.decide(model, action, &who, view);
    let (policy, reason) = explain(&decision);
    let verdicts = if decision.allowed && action != Action::Delete {
        gate.field_verdicts(model, action, &who)
    } else {
        None
    };
    let admin = verdicts.is_none() && decision.allowed && action != Action::Delete;
    let fields = verdicts
        .unwrap_or_default()
        .into_iter()
        .map(|v| VerdictLine {
            field: v.field.to_owned(),
            verdict: v.word(action),
            why: v.reason(),
        })
        .collect();
    Ok(Explanation {
        decision: if decision.allowed { "allow" } else { "deny" },
        policy: policy.unwrap_or_else(|| "-".to_owned()),
        reason,
        fields,
        admin,
    })
}
