//! `GET /api/meta/snapshot` and `POST /api/meta/snapshot/apply` (SPEC §17) on both backends: the
//! document an instance exports, a dry run that changes nothing, an apply whose steps carry the
//! activation's plan, a second apply that changes nothing, a malformed document answered 422 at
//! its pointer, and a caller who is not an admin refused; `GET /api/meta/codegen/typescript`
//! (SPEC §19) as text, for the active versions only.

use std::sync::Arc;

use metaengine_store::Store;
use serde_json::json;

use crate::support::{admin, define_entity, start, token};

async fn a_snapshot_round_trips_over_http(store: Arc<dyn Store>) {
    let server = start(store).await;
    define_entity(
        &server,
        "Note",
        json!({ "fields": [{ "name": "text", "type": "string" }] }),
    )
    .await;
    let taken = server.get("/api/meta/snapshot", &admin()).await;
    assert_eq!(taken.status, 200, "{:#}", taken.body);
    assert_eq!(taken.body["entities"][0]["name"], "Note");
    assert_eq!(taken.body["entities"][0]["activeVersion"], "v1");
    assert_eq!(taken.body["tenants"][0]["id"], "default");

    let mut next = taken.body.clone();
    next["entities"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({
            "name": "Memo",
            "description": "Short memos",
            "activeVersion": "v1",
            "versions": [{ "version": "v1", "schema": { "fields": [{ "name": "body", "type": "text" }] } }]
        }),
    );
    let dry = server
        .post(
            "/api/meta/snapshot/apply?dryRun=true",
            &admin(),
            next.clone(),
        )
        .await;
    assert_eq!(dry.status, 200, "{:#}", dry.body);
    assert_eq!(
        (dry.body["dryRun"].clone(), dry.body["changed"].clone()),
        (json!(true), json!(true))
    );
    let steps: Vec<&str> = dry.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["createEntity", "createVersion", "activate"]);
    assert_eq!(dry.body["steps"][2]["plan"]["table"], "ent_memo");
    assert_eq!(
        server.get("/api/meta/snapshot", &admin()).await.body,
        taken.body
    );

    let done = server
        .post("/api/meta/snapshot/apply", &admin(), next.clone())
        .await;
    assert_eq!(done.status, 200, "{:#}", done.body);
    assert_eq!(done.body["changed"], true);
    let now = server.get("/api/meta/snapshot", &admin()).await;
    assert_eq!(now.body, next);
    let r = server
        .post("/api/data/Memo", &admin(), json!({ "body": "hello" }))
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let again = server
        .post("/api/meta/snapshot/apply?dryRun=false", &admin(), next)
        .await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body["changed"], false);
    assert_eq!(again.body["steps"], json!([]));

    let bad = server
        .post(
            "/api/meta/snapshot/apply",
            &admin(),
            json!({ "entities": [{ "name": "Memo", "versions": [{ "version": 2 }] }] }),
        )
        .await;
    assert_eq!(bad.status, 422, "{:#}", bad.body);
    assert_eq!(
        bad.body["errors"][0]["pointer"],
        "/entities/0/versions/0/version"
    );
    let user = token("u", "default", "main", &["user"]);
    assert_eq!(server.get("/api/meta/snapshot", &user).await.status, 403);
    let refused = server
        .post(
            "/api/meta/snapshot/apply?dryRun=true",
            &user,
            json!({ "entities": [] }),
        )
        .await;
    assert_eq!(refused.status, 403, "{:#}", refused.body);
}

async fn the_typescript_module_over_http(store: Arc<dyn Store>) {
    let server = start(store).await;
    define_entity(
        &server,
        "Note",
        json!({ "fields": [{ "name": "text", "type": "string", "maxLength": 40 }] }),
    )
    .await;
    let r = server
        .post("/api/meta/entities", &admin(), json!({ "name": "Draft" }))
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let module = server.get("/api/meta/codegen/typescript", &admin()).await;
    assert_eq!(module.status, 200);
    assert_eq!(
        module.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let text = module.body.as_str().unwrap();
    assert!(text.contains("export interface Note {"), "{text}");
    assert!(
        text.contains("  text: z.string().max(40).nullable(),"),
        "{text}"
    );
    assert!(
        !text.contains("Draft"),
        "an entity without an active version: {text}"
    );
    let again = server.get("/api/meta/codegen/typescript", &admin()).await;
    assert_eq!(again.body, module.body, "the same bytes");
    let user = token("u", "default", "main", &["user"]);
    let refused = server.get("/api/meta/codegen/typescript", &user).await;
    assert_eq!(refused.status, 403, "{:#}", refused.body);
}

crate::on_both_backends!(
    a_snapshot_round_trips_over_http,
    the_typescript_module_over_http
);
