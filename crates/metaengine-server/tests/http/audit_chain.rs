//! `GET /api/meta/audit/verify` (SPEC §16) on both backends: after concurrent writes of two
//! tenants (each record write seals its audit row in its own statement, verify chains the sealed
//! rows first, the batched writer chains the reads), every chain verifies and holds every row; a
//! tenant's admin
//! verifies only its own tenant's chain.

use std::sync::Arc;

use metaengine_store::Store;
use serde_json::json;

use crate::support::{admin, define_entity, start, token};

async fn concurrent_writes_leave_every_chain_whole(store: Arc<dyn Store>) {
    let server = Arc::new(start(store).await);
    let r = server
        .post(
            "/api/admin/tenants",
            &admin(),
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    define_entity(
        &server,
        "Note",
        json!({
            "fields": [{ "name": "text", "type": "string" }],
            "policies": [{ "name": "all", "effect": "allow", "action": "*" }]
        }),
    )
    .await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let tenant = if writer % 2 == 0 { "default" } else { "acme" };
            let who = token(&format!("w{writer}"), tenant, "main", &["user"]);
            for i in 0..10 {
                let r = server
                    .post(
                        "/api/data/Note",
                        &who,
                        json!({ "text": format!("{writer}-{i}") }),
                    )
                    .await;
                assert_eq!(r.status, 201, "{:#}", r.body);
                let id = r.body["id"].as_str().unwrap().to_owned();
                let r = server.get(&format!("/api/data/Note/{id}"), &who).await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = server.get("/api/meta/audit/verify", &admin()).await;
    assert_eq!(report.status, 200, "{:#}", report.body);
    assert_eq!(report.body["verified"], true, "{:#}", report.body);
    assert_eq!(report.body["firstBroken"], serde_json::Value::Null);
    // Every row is in a chain: as many as the trail lists.
    let rows = server.get("/api/meta/audit?pageSize=1", &admin()).await;
    assert_eq!(
        report.body["rows"], rows.body["meta"]["total"],
        "{:#}",
        report.body
    );
    assert!(report.body["rows"].as_u64().unwrap() >= 80);

    let acme_admin = token("boss", "acme", "main", &["admin"]);
    let own = server.get("/api/meta/audit/verify", &acme_admin).await;
    assert_eq!(own.status, 200, "{:#}", own.body);
    assert_eq!(own.body["tenants"], 1);
    assert_eq!(own.body["verified"], true);
    let other = server
        .get("/api/meta/audit/verify?tenantId=default", &acme_admin)
        .await;
    assert_eq!(other.status, 403, "{:#}", other.body);
    let user = token("u", "acme", "main", &["user"]);
    assert_eq!(
        server.get("/api/meta/audit/verify", &user).await.status,
        403
    );
    let bad = server
        .get("/api/meta/audit/verify?tenant=acme", &admin())
        .await;
    assert_eq!(bad.status, 400);
}

crate::on_both_backends!(concurrent_writes_leave_every_chain_whole);
