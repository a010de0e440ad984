//! The seed's scenario over HTTP: define Invoice, activate it, write and read records, a guest
//! denied, and the audit trail showing every step.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::json;

use crate::support::{admin, invoice_v1, start, token};

async fn seed_scenario(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    invoice_v1(&server).await;

    // The entity and its version, as the seed shapes them.
    let entity = server.get("/api/meta/entities/Invoice", &admin).await;
    assert_eq!(entity.status, 200);
    assert_eq!(entity.body["name"], "Invoice");
    assert_eq!(entity.body["activeVersion"], "v1");
    let version = server
        .get("/api/meta/entities/Invoice/versions/v1", &admin)
        .await;
    assert_eq!(version.body["version"], "v1");
    assert_eq!(
        version.body["schema"]["fields"].as_array().unwrap().len(),
        5
    );
    let list = server.get("/api/meta/entities", &admin).await;
    assert_eq!(list.body["meta"]["total"], 1);
    assert!(list.body["meta"]["nextCursor"].is_null());

    // Twelve invoices.
    let mut ids = Vec::new();
    for i in 0..12 {
        let r = server
            .post(
                "/api/data/Invoice",
                &admin,
                json!({ "invoiceNumber": format!("INV-{i:03}"), "customerId": "c-1",
                        "totalAmount": "100.50", "status": if i % 2 == 0 { "paid" } else { "sent" },
                        "dueDate": "2026-12-31" }),
            )
            .await;
        assert_eq!(r.status, 201, "{:#}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(
            r.header("location"),
            Some(format!("/api/data/Invoice/{id}").as_str())
        );
        assert_eq!(r.header("etag"), Some("\"1\""));
        assert_eq!(r.body["totalAmount"], "100.50");
        assert_eq!(r.body["tenantId"], "default");
        assert_eq!(r.body["createdBy"], "root");
        assert_eq!(r.body["rowVersion"], 1);
        ids.push(id);
    }

    // Page 1 of size 10.
    let page = server
        .get(
            "/api/data/Invoice?page=1&pageSize=10&orderBy=invoiceNumber&orderDir=asc",
            &admin,
        )
        .await;
    assert_eq!(page.status, 200, "{:#}", page.body);
    assert_eq!(page.body["data"].as_array().unwrap().len(), 10);
    assert_eq!(page.body["data"][0]["invoiceNumber"], "INV-000");
    assert_eq!(page.body["meta"]["page"], 1);
    assert_eq!(page.body["meta"]["pageSize"], 10);
    assert_eq!(page.body["meta"]["total"], 12);
    assert_eq!(page.body["meta"]["totalPages"], 2);
    // The cursor continues where the page ended.
    let cursor = page.body["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let next = server
        .get(
            &format!("/api/data/Invoice?pageSize=10&orderBy=invoiceNumber&orderDir=asc&count=none&after={cursor}"),
            &admin,
        )
        .await;
    assert_eq!(next.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(next.body["data"][0]["invoiceNumber"], "INV-010");
    assert!(next.body["meta"].get("total").is_none());
    assert!(next.body["meta"]["nextCursor"].is_null());
    // A filter and the count.
    let paid = server
        .get("/api/data/Invoice/count?filter[status][eq]=paid", &admin)
        .await;
    assert_eq!(paid.body, json!({ "count": 6 }));
    let some = server
        .get(
            "/api/data/Invoice?filter[invoiceNumber][in]=INV-001,INV-002&fields=invoiceNumber",
            &admin,
        )
        .await;
    assert_eq!(some.body["meta"]["total"], 2);

    // Get one.
    let one = server
        .get(&format!("/api/data/Invoice/{}", ids[3]), &admin)
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["invoiceNumber"], "INV-003");
    assert_eq!(one.header("etag"), Some("\"1\""));

    // Update with the ETag, then delete.
    let updated = server
        .send(
            Method::PATCH,
            &format!("/api/data/Invoice/{}", ids[3]),
            Some(&admin),
            Some(json!({ "status": "paid" })),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(updated.status, 200, "{:#}", updated.body);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    assert_eq!(updated.body["status"], "paid");
    let deleted = server
        .call(
            Method::DELETE,
            &format!("/api/data/Invoice/{}", ids[4]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let gone = server
        .get(&format!("/api/data/Invoice/{}", ids[4]), &admin)
        .await;
    gone.problem(404);

    // A guest may read but not create: 403 and a policy.deny row.
    let guest = token("gus", "default", "main", &["guest"]);
    let read = server
        .get(&format!("/api/data/Invoice/{}", ids[0]), &guest)
        .await;
    assert_eq!(read.status, 200);
    let denied = server
        .post(
            "/api/data/Invoice",
            &guest,
            json!({ "invoiceNumber": "G-1", "customerId": "c", "totalAmount": "1.00" }),
        )
        .await;
    denied.problem(403);

    // The audit trail by resource shows every step.
    let audit = server
        .get("/api/meta/audit?resource=Invoice&pageSize=100", &admin)
        .await;
    assert_eq!(audit.status, 200, "{:#}", audit.body);
    let types: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventType"].as_str().unwrap())
        .collect();
    for expected in [
        "meta.entity.create",
        "meta.version.create",
        "meta.version.activate",
        "meta.migrate",
        "data.create",
        "data.read",
        "data.update",
        "data.delete",
        "policy.deny",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let deny = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eventType"] == "policy.deny")
        .unwrap();
    assert_eq!(deny["result"], "failure");
    assert_eq!(deny["userId"], "gus");
    // Newest first.
    let times: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let denials = server
        .get(
            "/api/meta/audit?eventType=policy.deny,auth.failure&result=failure",
            &admin,
        )
        .await;
    assert_eq!(denials.body["meta"]["total"], 1);
    server.stop().await;
}

async fn metadata_lifecycle(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    invoice_v1(&server).await;
    // A v2 with a field added through the field routes, planned, then activated.
    let v1 = server
        .get("/api/meta/entities/Invoice/versions/v1", &admin)
        .await;
    let r = server
        .post(
            "/api/meta/entities/Invoice/versions",
            &admin,
            json!({ "version": "v2", "schema": v1.body["schema"] }),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = server
        .post(
            "/api/meta/entities/Invoice/versions/v2/fields",
            &admin,
            json!({ "name": "notes", "type": "text" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .call(
            Method::PATCH,
            "/api/meta/entities/Invoice/versions/v2/fields/notes",
            Some(&admin),
            Some(json!({ "maxLength": 500 })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let plan = server
        .call(
            Method::POST,
            "/api/meta/entities/Invoice/versions/v2/activate?dryRun=true",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(plan.status, 200);
    assert_eq!(plan.body["applied"], false);
    let still = server.get("/api/meta/entities/Invoice", &admin).await;
    assert_eq!(still.body["activeVersion"], "v1");
    let applied = server
        .call(
            Method::POST,
            "/api/meta/entities/Invoice/versions/v2/activate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(applied.status, 200);
    assert_eq!(applied.body["applied"], true);
    assert!(
        !applied.body["plan"]["statements"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // An active version is immutable: its fields cannot change.
    let refused = server
        .call(
            Method::DELETE,
            "/api/meta/entities/Invoice/versions/v2/fields/notes",
            Some(&admin),
            None,
        )
        .await;
    refused.problem(409);
    let compiled = server
        .get("/api/meta/entities/Invoice/compiled", &admin)
        .await;
    assert_eq!(compiled.body["version"], "v2");
    // Validation answers 200 with every problem.
    let v = server
        .post(
            "/api/meta/validate",
            &admin,
            json!({ "schema": { "fields": [{ "name": "x", "type": "nope" }, { "name": "Bad Name", "type": "string" }] } }),
        )
        .await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["valid"], false);
    assert!(
        v.body["errors"].as_array().unwrap().len() >= 2,
        "{:#}",
        v.body
    );
    assert_eq!(v.body["errors"][0]["pointer"], "/fields/0/type");
    // An invalid version is refused with the same shape, and audited.
    let bad = server
        .post(
            "/api/meta/entities/Invoice/versions",
            &admin,
            json!({ "version": "v3", "schema": { "fields": [{ "name": "x", "type": "nope" }] } }),
        )
        .await;
    assert_eq!(bad.problem(422)["errors"][0]["pointer"], "/fields/0/type");
    let failures = server
        .get(
            "/api/meta/audit?eventType=meta.version.create&result=failure",
            &admin,
        )
        .await;
    assert_eq!(failures.body["meta"]["total"], 1);
    // Deactivate, cache clear, delete with rows needs force.
    let r = server
        .call(
            Method::POST,
            "/api/meta/entities/Invoice/versions/v2/deactivate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["isActive"], false);
    let r = server
        .call(Method::POST, "/api/meta/cache/clear", Some(&admin), None)
        .await;
    assert_eq!(r.status, 200);
    let r = server
        .call(
            Method::DELETE,
            "/api/meta/entities/Invoice?force=true",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    server
        .get("/api/meta/entities/Invoice", &admin)
        .await
        .problem(404);
    server.stop().await;
}

crate::on_both_backends!(seed_scenario, metadata_lifecycle);
