//! Policies with the explain tester, the audit trail with its filters and chain verification,
//! tenants, and the audit rows of a UI action against those of the same API call.

use std::sync::Arc;

use axum::http::Method;
use metaengine_store::Store;
use serde_json::{Value, json};

use crate::support::{App, admin_token, define};

crate::on_both_backends!(
    the_explain_tester_shows_decision_policy_and_fields,
    the_audit_trail_filters_and_verifies,
    tenants_are_created_suspended_and_reactivated,
    a_ui_action_writes_the_audit_rows_of_its_api_call,
);

async fn the_explain_tester_shows_decision_policy_and_fields(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    define(
        &app,
        "Employee",
        json!({ "fields": [{ "name": "name", "type": "string" }, { "name": "salary", "type": "integer" }, { "name": "ownerId", "type": "string" }],
          "policies": [
            { "name": "staff-names", "effect": "allow", "action": "read", "priority": 10, "fields": ["name"],
              "conditions": [{ "field": "user.role", "operator": "eq", "value": "staff" }] },
            { "name": "own-row", "effect": "allow", "action": "update", "priority": 5,
              "conditions": [{ "field": "record.ownerId", "operator": "eq", "value": "user.id" }] }
          ] }),
    )
    .await;
    let mut b = app.admin().await;
    let page = b.get("/_/policies").await.ok();
    assert!(page.has("/_/policies/Employee") && page.has("2 policies"));
    let page = b.get("/_/policies/Employee").await.ok();
    assert!(page.has("data-policy=\"staff-names\"") && page.has("data-policy=\"own-row\""));
    let page = b
        .get("/_/policies/Employee?explain=1&action=read&user=sam&roles=staff")
        .await
        .ok();
    assert!(
        page.has("id=\"decision-value\">allow") && page.has("id=\"deciding-policy\">staff-names"),
        "{}",
        page.body
    );
    assert!(
        page.has(
            "<tr data-field=\"salary\"><td>salary</td><td><span class=\"badge hidden\">hidden"
        ),
        "{}",
        page.body
    );
    let page = b
        .get("/_/policies/Employee?explain=1&action=delete&user=sam&roles=staff")
        .await
        .ok();
    assert!(page.has("id=\"decision-value\">deny") && page.has("no policy allows it"));
    // A condition on the record: decided with the record given.
    let record = json!({ "ownerId": "sam" }).to_string();
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("explain", "1"),
            ("action", "update"),
            ("user", "sam"),
            ("record", record.as_str()),
        ])
        .finish();
    let page = b.get(&format!("/_/policies/Employee?{q}")).await.ok();
    assert!(page.has("id=\"deciding-policy\">own-row"), "{}", page.body);
    let page = b
        .get("/_/policies/Employee?explain=1&action=read&record=%5B1%5D")
        .await
        .expect(422);
    assert!(page.has("<code>/record</code>"));
}

async fn the_audit_trail_filters_and_verifies(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    b.submit("/_/entities", &[("name", "Invoice")]).await.ok();
    b.post("/_/entities", &[("name", "bad name")])
        .await
        .expect(422);
    let page = b.get("/_/audit").await.ok();
    assert!(
        page.has("data-event=\"meta.entity.create\""),
        "{}",
        page.body
    );
    let page = b
        .get("/_/audit?eventType=meta.entity.create&result=failure")
        .await
        .ok();
    assert_eq!(
        page.body.matches("<tr class=\"failure\"").count(),
        1,
        "{}",
        page.body
    );
    assert!(!page.has("<tr class=\"success\""));
    let page = b.get("/_/audit?resource=Invoice&result=success").await.ok();
    assert!(
        page.has("<pre>{\n  &#34;"),
        "details pretty-printed: {}",
        page.body
    );
    let page = b.get("/_/audit?from=not-a-time").await.expect(400);
    assert!(page.has("<code>/from</code>"));
    app.state.store.chain_audit().await.unwrap();
    let page = b.get("/_/audit?verify=1").await.ok();
    assert!(
        page.has("id=\"verify-report\"") && page.has("Verified:"),
        "{}",
        page.body
    );
}

async fn tenants_are_created_suspended_and_reactivated(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    b.get("/_/tenants").await.ok();
    let page = b
        .post("/_/tenants", &[("id", "Bad Id"), ("name", "x")])
        .await
        .expect(422);
    assert!(page.has("value=\"Bad Id\""));
    let page = b
        .submit("/_/tenants", &[("id", "acme"), ("name", "Acme Corp")])
        .await
        .ok();
    assert!(page.has("Tenant created") && page.has("data-tenant=\"acme\""));
    let page = b
        .submit("/_/tenants/acme/status", &[("status", "suspended")])
        .await
        .ok();
    assert!(
        page.has("<span class=\"badge suspended\">suspended</span>"),
        "{}",
        page.body
    );
    let page = b
        .submit("/_/tenants/acme/status", &[("status", "active")])
        .await
        .ok();
    assert!(!page.has("badge suspended"));
    // The platform tenant has no suspend button, and suspending it is refused.
    assert!(!page.has("action=\"/_/tenants/default/status\""));
    b.post("/_/tenants/default/status", &[("status", "suspended")])
        .await
        .expect(409);
}

/// The audit rows as a comparable shape: what differs between two equal actions (ids, times,
/// hashes) left out.
fn shape(rows: &Value) -> Vec<Value> {
    rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["eventType"],
                r["userId"],
                r["tenantId"],
                r["action"],
                r["result"],
                r["details"]
            ])
        })
        .collect()
}

async fn a_ui_action_writes_the_audit_rows_of_its_api_call(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let admin = admin_token();
    let schema = json!({ "fields": [{ "name": "n", "type": "integer", "min": 0 }] });
    // Through the API, as `root`…
    let mut b = app.signed_in_as("root", "default", &["admin"]).await;
    app.api(
        Method::POST,
        "/api/meta/entities",
        &admin,
        Some(json!({ "name": "A" })),
    )
    .await;
    app.api(
        Method::POST,
        "/api/meta/entities/A/versions",
        &admin,
        Some(json!({ "version": "v1", "schema": schema })),
    )
    .await;
    app.api(
        Method::POST,
        "/api/meta/entities/A/versions/v1/activate",
        &admin,
        None,
    )
    .await;
    app.api(
        Method::POST,
        "/api/data/A",
        &admin,
        Some(json!({ "n": -1 })),
    )
    .await;
    // …and the same through the UI, signed in with the same identity.
    b.get("/_/entities").await.ok();
    b.submit("/_/entities", &[("name", "B")]).await.ok();
    b.submit("/_/entities/B/versions", &[("version", "v1"), ("from", "")])
        .await
        .ok();
    b.submit(
        "/_/entities/B/versions/v1/save",
        &[("schema", &schema.to_string())],
    )
    .await
    .ok();
    b.submit("/_/entities/B/versions/v1/activate", &[])
        .await
        .ok();
    b.post("/_/data/B/new", &[("field.n", "-1")])
        .await
        .expect(422);
    app.state.audit.flush().await;
    let (_, a) = app
        .api(
            Method::GET,
            "/api/meta/audit?resource=A&pageSize=100",
            &admin,
            None,
        )
        .await;
    let (_, ui) = app
        .api(
            Method::GET,
            "/api/meta/audit?resource=B&pageSize=100",
            &admin,
            None,
        )
        .await;
    let (a, ui) = (shape(&a), shape(&ui));
    // The UI's version was created with a starter field and then saved: one `meta.version.update`
    // more; every other row is the API's, in the same order.
    let ui: Vec<Value> = ui
        .into_iter()
        .filter(|r| r[0] != "meta.version.update")
        .collect();
    let a = serde_json::to_string(&a)
        .unwrap()
        .replace("\"A\"", "\"X\"")
        .replace("ent_a", "ent_x");
    let ui = serde_json::to_string(&ui)
        .unwrap()
        .replace("\"B\"", "\"X\"")
        .replace("ent_b", "ent_x");
    assert!(
        a.contains("meta.version.activate") && a.contains("meta.entity.create"),
        "{a}"
    );
    assert_eq!(a, ui);
}
