//! Entities and versions: create, the version editor with errors at their fields, the diff and
//! the activation plan with breaking changes, activate, deactivate, roll back, prune, delete.

use std::sync::Arc;

use axum::http::Method;
use metaengine_store::Store;
use serde_json::json;

use crate::support::{App, admin_token};

crate::on_both_backends!(
    an_entity_is_created_with_errors_at_its_name,
    a_version_is_edited_with_errors_at_its_fields,
    the_activation_plan_shows_breaking_changes,
    activate_deactivate_roll_back_and_prune,
    deleting_needs_the_typed_name_and_force_for_rows,
);

async fn an_entity_is_created_with_errors_at_its_name(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    let page = b
        .post("/_/entities", &[("name", "9bad"), ("description", "kept")])
        .await
        .expect(422);
    assert!(
        page.has("<p class=\"field-error\" data-pointer=\"/name\">"),
        "{}",
        page.body
    );
    assert!(page.has("value=\"kept\""), "the form keeps what was typed");
    let page = b
        .submit(
            "/_/entities",
            &[("name", "Invoice"), ("description", "Bills")],
        )
        .await
        .ok();
    assert!(page.has("<h1>Invoice</h1>") && page.has("Bills"));
    let page = b
        .post("/_/entities", &[("name", "Invoice")])
        .await
        .expect(409);
    assert!(page.has("data-status=\"409\""));
    let page = b.get("/_/entities").await.ok();
    assert!(page.has("href=\"/_/entities/Invoice\""));
}

async fn a_version_is_edited_with_errors_at_its_fields(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    b.submit("/_/entities", &[("name", "Invoice")]).await.ok();
    let page = b
        .submit(
            "/_/entities/Invoice/versions",
            &[("version", "v1"), ("from", "")],
        )
        .await
        .ok();
    assert!(
        page.has("never active: editable") && page.has("data-field=\"name\""),
        "{}",
        page.body
    );
    let v1 = "/_/entities/Invoice/versions/v1";
    // Every option of a field from the field form.
    let page = b
        .submit(
            &format!("{v1}/fields"),
            &[
                ("name", "status"),
                ("type", "enum"),
                ("required", "on"),
                ("indexed", "on"),
                ("enumValues", "draft, paid"),
                ("default", "\"draft\""),
            ],
        )
        .await
        .ok();
    assert!(
        page.has("Field added") && page.has("data-field=\"status\""),
        "{}",
        page.body
    );
    assert!(
        page.has("default: &#34;draft&#34;")
            && page.has("enumValues: [&#34;draft&#34;,&#34;paid&#34;]"),
        "{}",
        page.body
    );
    // A refused field: the problem shows in the field form, nothing is stored.
    let page = b
        .post(
            &format!("{v1}/fields"),
            &[("name", "level"), ("type", "enum")],
        )
        .await
        .expect(422);
    assert!(
        page.has("data-pointer=\"new-field\">a field of type `enum` needs `enumValues`"),
        "{}",
        page.body
    );
    assert!(!page.has("data-field=\"level\""));
    assert!(
        page.has("value=\"level\"") && page.has("<option value=\"enum\" selected>"),
        "the form keeps what was typed"
    );
    let page = b
        .post(
            &format!("{v1}/fields"),
            &[("name", "n"), ("type", "integer"), ("min", "ten")],
        )
        .await
        .expect(422);
    assert!(page.has("`min` must be a number"));
    // The JSON tab: a schema whose second field is wrong is refused at that field's row.
    let bad = json!({ "fields": [
        { "name": "name", "type": "string" },
        { "name": "total", "type": "decimal", "min": 5, "max": 1 }
    ] })
    .to_string();
    let page = b
        .post(&format!("{v1}/validate"), &[("schema", &bad)])
        .await
        .expect(422);
    assert!(
        page.has("<tr data-pointer=\"/fields/1\" data-field=\"total\" class=\"has-error\">")
            || page.has("/fields/1"),
        "{}",
        page.body
    );
    assert!(
        page.has("&#34;total&#34;"),
        "the posted text stays in the editor"
    );
    let page = b
        .post(&format!("{v1}/save"), &[("schema", "{ not json")])
        .await
        .expect(422);
    assert!(page.has("<code>/schema</code>"));
    let good = json!({ "fields": [
        { "name": "name", "type": "string", "required": true },
        { "name": "total", "type": "decimal", "precision": 12, "scale": 2, "min": 0 }
    ], "policies": [{ "name": "all", "effect": "allow", "action": "*" }] })
    .to_string();
    let page = b
        .post(&format!("{v1}/validate"), &[("schema", &good)])
        .await
        .ok();
    assert!(page.has("id=\"valid\""));
    let page = b
        .submit(&format!("{v1}/save"), &[("schema", &good)])
        .await
        .ok();
    assert!(
        page.has("Version saved")
            && page.has("data-field=\"total\"")
            && !page.has("data-field=\"status\"")
    );
    assert!(page.has("data-policy") || page.has("&#34;all&#34;"));
    let page = b
        .submit(&format!("{v1}/fields/name/delete"), &[])
        .await
        .ok();
    assert!(page.has("Field removed") && !page.has("data-field=\"name\""));
    // The API sees the same version.
    let (_, v) = app
        .api(
            Method::GET,
            "/api/meta/entities/Invoice/versions/v1",
            &admin_token(),
            None,
        )
        .await;
    assert_eq!(v["schema"]["fields"][0]["name"], "total");
}

async fn the_activation_plan_shows_breaking_changes(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    b.submit("/_/entities", &[("name", "Invoice")]).await.ok();
    let schema = json!({ "fields": [{ "name": "name", "type": "string" }, { "name": "amount", "type": "integer" }] }).to_string();
    b.submit(
        "/_/entities/Invoice/versions",
        &[("version", "v1"), ("from", "")],
    )
    .await
    .ok();
    b.submit(
        "/_/entities/Invoice/versions/v1/save",
        &[("schema", &schema)],
    )
    .await
    .ok();
    let page = b.get("/_/entities/Invoice/versions/v1").await.ok();
    assert!(
        page.has("No version is active: 2 step(s)")
            && page.has("id=\"ddl\"")
            && page.has("CREATE TABLE"),
        "{}",
        page.body
    );
    let page = b
        .submit("/_/entities/Invoice/versions/v1/activate", &[])
        .await
        .ok();
    assert!(
        page.has("Version activated") && page.has("<span class=\"badge active\">v1</span>"),
        "{}",
        page.body
    );
    // v2 from v1 changes `amount` to a string (breaking) and adds `note`.
    b.submit(
        "/_/entities/Invoice/versions",
        &[("version", "v2"), ("from", "v1")],
    )
    .await
    .ok();
    let v2 = json!({ "fields": [{ "name": "name", "type": "string" }, { "name": "amount", "type": "boolean" }, { "name": "note", "type": "text" }] }).to_string();
    b.submit("/_/entities/Invoice/versions/v2/save", &[("schema", &v2)])
        .await
        .ok();
    let page = b.get("/_/entities/Invoice/versions/v2").await.ok();
    assert!(
        page.has("class=\"error breaking\"") && page.has("<code>/fields/1"),
        "{}",
        page.body
    );
    assert!(
        page.has("<span class=\"badge added\">added</span>")
            && page.has("<span class=\"badge changed\">changed</span>"),
        "{}",
        page.body
    );
    assert!(
        !page.has("id=\"activate\""),
        "no activate button while the plan breaks"
    );
    // Posted anyway: refused with the same problems, v1 stays active.
    let page = b
        .post("/_/entities/Invoice/versions/v2/activate", &[])
        .await
        .expect(409);
    assert!(page.has("/fields/1"), "{}", page.body);
    let (_, e) = app
        .api(
            Method::GET,
            "/api/meta/entities/Invoice",
            &admin_token(),
            None,
        )
        .await;
    assert_eq!(e["activeVersion"], "v1");
}

async fn activate_deactivate_roll_back_and_prune(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    b.submit("/_/entities", &[("name", "Item")]).await.ok();
    let v1 = json!({ "fields": [{ "name": "name", "type": "string" }, { "name": "old", "type": "string" }] }).to_string();
    let v2 = json!({ "fields": [{ "name": "name", "type": "string" }] }).to_string();
    for (v, schema) in [("v1", &v1), ("v2", &v2)] {
        b.submit("/_/entities/Item/versions", &[("version", v), ("from", "")])
            .await
            .ok();
        b.submit(
            &format!("/_/entities/Item/versions/{v}/save"),
            &[("schema", schema)],
        )
        .await
        .ok();
        b.submit(&format!("/_/entities/Item/versions/{v}/activate"), &[])
            .await
            .ok();
    }
    let page = b.get("/_/entities/Item").await.ok();
    assert!(
        page.has("Roll back to v1") && page.has("Hidden columns") && page.has("<code>old</code>"),
        "{}",
        page.body
    );
    // A version that was active is read-only.
    let page = b.get("/_/entities/Item/versions/v1").await.ok();
    assert!(
        page.has("was active: read-only") && page.has(" readonly") && page.has("Roll back to v1")
    );
    // Roll back to v1: `old` shows again.
    let page = b
        .submit("/_/entities/Item/versions/v1/activate", &[])
        .await
        .ok();
    assert!(
        page.has("<span class=\"badge active\">v1</span>") && !page.has("Hidden columns"),
        "{}",
        page.body
    );
    b.submit("/_/entities/Item/versions/v2/activate", &[])
        .await
        .ok();
    // Prune needs the typed name.
    let page = b
        .post("/_/entities/Item/prune", &[("confirm", "item")])
        .await
        .expect(422);
    assert!(page.has("Type the entity"), "{}", page.body);
    let page = b
        .submit("/_/entities/Item/prune", &[("confirm", "Item")])
        .await
        .ok();
    assert!(
        page.has("Hidden columns dropped") && !page.has("<code>old</code>"),
        "{}",
        page.body
    );
    let page = b
        .submit("/_/entities/Item/versions/v2/deactivate", &[])
        .await
        .ok();
    assert!(page.has("Version deactivated") && page.has("No active version"));
}

async fn deleting_needs_the_typed_name_and_force_for_rows(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    crate::support::define(
        &app,
        "Memo",
        json!({ "fields": [{ "name": "text", "type": "string" }] }),
    )
    .await;
    let (s, _) = app
        .api(
            Method::POST,
            "/api/data/Memo",
            &admin_token(),
            Some(json!({ "text": "hi" })),
        )
        .await;
    assert_eq!(s, 201);
    let mut b = app.admin().await;
    b.get("/_/entities/Memo").await.ok();
    b.post("/_/entities/Memo/delete", &[("confirm", "wrong")])
        .await
        .expect(422);
    let page = b
        .post("/_/entities/Memo/delete", &[("confirm", "Memo")])
        .await;
    assert_eq!(page.status, 409, "rows and no force: {}", page.body);
    let page = b
        .submit(
            "/_/entities/Memo/delete",
            &[("confirm", "Memo"), ("force", "on")],
        )
        .await
        .ok();
    assert!(page.has("Entity deleted") && !page.has("/_/entities/Memo\""));
}
