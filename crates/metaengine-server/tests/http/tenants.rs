//! `/api/admin/tenants`: platform admins create, list, rename and suspend tenants; every change is
//! audited; nobody else may.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::json;

use crate::support::{admin, start, token};

async fn platform_admins_manage_tenants(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    let r = server
        .post(
            "/api/admin/tenants",
            &admin,
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    assert_eq!(r.header("location"), Some("/api/admin/tenants/acme"));
    assert_eq!(r.body["status"], "active");
    server
        .post(
            "/api/admin/tenants",
            &admin,
            json!({ "id": "acme", "name": "Again" }),
        )
        .await
        .problem(409);
    let bad = server
        .post(
            "/api/admin/tenants",
            &admin,
            json!({ "id": "Not OK", "name": "x" }),
        )
        .await;
    assert_eq!(bad.problem(422)["errors"][0]["pointer"], "/id");
    let list = server.get("/api/admin/tenants", &admin).await;
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "default"]);
    let renamed = server
        .call(
            Method::PATCH,
            "/api/admin/tenants/acme",
            Some(&admin),
            Some(json!({ "name": "Acme Inc." })),
        )
        .await;
    assert_eq!(renamed.body["name"], "Acme Inc.");
    let bad = server
        .call(
            Method::PATCH,
            "/api/admin/tenants/acme",
            Some(&admin),
            Some(json!({ "status": "gone" })),
        )
        .await;
    assert_eq!(bad.problem(422)["errors"][0]["pointer"], "/status");
    server
        .call(
            Method::PATCH,
            "/api/admin/tenants/nope",
            Some(&admin),
            Some(json!({ "name": "x" })),
        )
        .await
        .problem(404);
    // A user, or another tenant's admin, may not.
    let user = token("u", "default", "main", &["user"]);
    server
        .post(
            "/api/admin/tenants",
            &user,
            json!({ "id": "x1", "name": "x" }),
        )
        .await
        .problem(403);
    let acme_admin = token("a", "acme", "main", &["admin"]);
    server
        .post(
            "/api/admin/tenants",
            &acme_admin,
            json!({ "id": "x2", "name": "x" }),
        )
        .await
        .problem(403);
    // A tenant admin reads its own tenant's audit rows; asking for another's is refused, not
    // answered with its own (issue 12 item 19).
    let own = server
        .get("/api/meta/audit?tenantId=acme", &acme_admin)
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    let other = server
        .get("/api/meta/audit?tenantId=default", &acme_admin)
        .await;
    assert_eq!(other.problem(403)["code"], "forbidden");
    let audit = server
        .get("/api/meta/audit?resource=acme&pageSize=100", &admin)
        .await;
    let types: Vec<(&str, &str)> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["eventType"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(types.contains(&("tenant.create", "success")), "{types:?}");
    assert!(types.contains(&("tenant.update", "success")), "{types:?}");
    assert!(types.contains(&("tenant.create", "failure")), "{types:?}");
    server.stop().await;
}

crate::on_both_backends!(platform_admins_manage_tenants);
