//! Bad input gets a 4xx problem+json that says what was wrong and where; nothing stored changes.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::json;

use crate::support::{admin, invoice_v1, start, token};

async fn bad_requests_get_the_right_4xx(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    invoice_v1(&server).await;
    let url = format!("{}/api/data/Invoice", server.base);

    // 413: a 2 MiB body, over a raw socket (see `oversized_post`).
    let status_line = oversized_post(&server.base, &admin).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert!(
        status_line.contains("application/problem+json"),
        "{status_line}"
    );

    // 415: not JSON; 400: malformed JSON, too deep.
    let r = server
        .client
        .post(&url)
        .bearer_auth(&admin)
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = server
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"invoiceNumber\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let r = server
        .client
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // 422 with every field error at once.
    let r = server
        .post(
            "/api/data/Invoice",
            &admin,
            json!({ "invoiceNumber": "x".repeat(40), "totalAmount": "-1", "status": "lost" }),
        )
        .await;
    let problem = r.problem(422);
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    for p in ["/invoiceNumber", "/customerId", "/totalAmount", "/status"] {
        assert!(pointers.contains(&p), "{p} missing in {pointers:?}");
    }
    // System fields and unknown fields are not the caller's to write: 400, with the pointer;
    // a create may give its `id` (SPEC §7), but only a UUID: 422.
    for (body, pointer, status) in [
        (
            json!({ "id": "mine", "invoiceNumber": "I", "customerId": "c", "totalAmount": "1" }),
            "/id",
            422,
        ),
        (
            json!({ "rowVersion": 3, "invoiceNumber": "I", "customerId": "c", "totalAmount": "1" }),
            "/rowVersion",
            400,
        ),
        (
            json!({ "nope": 1, "invoiceNumber": "I", "customerId": "c", "totalAmount": "1" }),
            "/nope",
            400,
        ),
    ] {
        let r = server.post("/api/data/Invoice", &admin, body).await;
        assert_eq!(r.problem(status)["errors"][0]["pointer"], pointer);
    }
    assert_eq!(
        server.get("/api/data/Invoice/count", &admin).await.body["count"],
        0
    );

    // 409 on a unique value, 412 on a stale If-Match.
    let body = json!({ "invoiceNumber": "INV-1", "customerId": "c", "totalAmount": "5.00" });
    let first = server.post("/api/data/Invoice", &admin, body.clone()).await;
    assert_eq!(first.status, 201);
    let taken = server
        .post("/api/data/Invoice", &admin, body)
        .await
        .problem(409)
        .clone();
    assert_eq!(taken["code"], "unique_violation", "{taken}");
    assert_eq!(taken["type"], "/problems/unique-violation", "{taken}");
    // The same wording as an import's refused row: it names the unique field.
    assert!(
        taken["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(`invoiceNumber`)")),
        "{taken}"
    );
    let id = first.body["id"].as_str().unwrap();
    let path = format!("/api/data/Invoice/{id}");
    let ok = server
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "status": "sent" })),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(ok.status, 200);
    let stale = server
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "status": "paid" })),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.problem(412)["code"], "stale_row_version");
    let stale_delete = server
        .send(
            Method::DELETE,
            &path,
            Some(&admin),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    stale_delete.problem(412);
    assert_eq!(server.get(&path, &admin).await.body["status"], "sent");

    // 400: unknown field, operator, orderBy, parameter; 404: unknown entity, route.
    // Each with its code, so a client tells a misspelled field from a bad value.
    for (query, code) in [
        ("filter[nope][eq]=1", "unknown_field"),
        ("filter[status][like]=x", "invalid_filter"),
        ("filter[totalAmount][gt]=abc", "invalid_filter"),
        ("orderBy=nope", "unknown_field"),
        ("pagesize=10", "bad_request"),
        ("pageSize=1000", "bad_request"),
        ("orderDir=up", "bad_request"),
        ("count=maybe", "bad_request"),
        ("after=garbage", "invalid_cursor"),
        ("filter[status]=x", "bad_request"),
    ] {
        let r = server
            .get(&format!("/api/data/Invoice?{query}"), &admin)
            .await;
        let problem = r.problem(400).clone();
        assert_eq!(problem["code"], code, "{query}: {problem}");
    }
    let missing = server.get("/api/data/Nope", &admin).await;
    assert_eq!(missing.problem(404)["code"], "not_found");
    // A version that has been active cannot change: 409 with its own code.
    let immutable = server
        .call(
            Method::PUT,
            "/api/meta/entities/Invoice/versions/v1",
            Some(&admin),
            Some(json!({ "schema": { "fields": [{ "name": "x", "type": "string" }] } })),
        )
        .await
        .problem(409)
        .clone();
    assert_eq!(immutable["code"], "version_immutable", "{immutable}");
    server.get("/api/nothing/here", &admin).await.problem(404);
    server
        .call(Method::PUT, "/api/data/Invoice", Some(&admin), None)
        .await
        .problem(405);
    server
        .get("/api/data/Invoice/not-a-uuid", &admin)
        .await
        .problem(404);
    // NUL (`\u0000`), which PostgreSQL cannot store: 422 at its pointer in a body, 400 in a
    // query string or a path, 401 in a token claim, on both backends alike (issue 12 item 11).
    let nul = server
        .post(
            "/api/data/Invoice",
            &admin,
            json!({ "invoiceNumber": "INV-\u{0}", "customerId": "c", "totalAmount": "1" }),
        )
        .await;
    let problem = nul.problem(422);
    assert_eq!(
        problem["errors"][0]["pointer"], "/invoiceNumber",
        "{problem}"
    );
    let nul = server
        .call(
            Method::PATCH,
            "/api/meta/entities/Invoice",
            Some(&admin),
            Some(json!({ "description": "a\u{0}b" })),
        )
        .await;
    assert_eq!(nul.problem(422)["errors"][0]["pointer"], "/description");
    for path in [
        "/api/data/Invoice?filter[status][eq]=a%00b",
        "/api/data/Invoice/count?filter[invoiceNumber][eq]=%00",
        "/api/meta/audit?userId=%00",
        "/api/data/Item%00",
        "/api/data/Invoice/%00",
    ] {
        let r = server.get(path, &admin).await;
        assert_eq!(r.problem(400)["code"], "bad_request", "{path}");
    }
    let nul_claim = token("u\u{0}", "default", "main", &["admin"]);
    let r = server.get("/api/data/Invoice", &nul_claim).await;
    assert_eq!(r.problem(401)["code"], "unauthenticated");
    assert_eq!(
        server.get("/api/data/Invoice/count", &admin).await.body["count"],
        1
    );

    // An audit query names known event types and results; a typo is not an empty answer.
    let typo = server
        .get("/api/meta/audit?eventType=data.create,data.creat", &admin)
        .await;
    let detail = typo.problem(400)["detail"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        detail.contains("`data.creat`") && detail.contains("meta.version.activate"),
        "{detail}"
    );
    let result = server.get("/api/meta/audit?result=ok", &admin).await;
    let detail = result.problem(400)["detail"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(detail.contains("success, failure"), "{detail}");
    let known = server
        .get(
            "/api/meta/audit?eventType=data.create&result=success",
            &admin,
        )
        .await;
    assert_eq!(known.status.as_u16(), 200, "{}", known.body);

    // A path parameter that is not UTF-8: problem+json too, not the framework's plain text.
    let bad_path = server.get("/api/data/Invoice/%FF", &admin).await;
    assert_eq!(bad_path.problem(400)["code"], "bad_request");
    server.stop().await;
}

async fn other_tenants_see_nothing(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    invoice_v1(&server).await;
    let r = server
        .post(
            "/api/admin/tenants",
            &admin,
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(r.status, 201);
    let mine = server
        .post(
            "/api/data/Invoice",
            &admin,
            json!({ "invoiceNumber": "INV-1", "customerId": "c", "totalAmount": "5.00" }),
        )
        .await;
    let id = mine.body["id"].as_str().unwrap().to_owned();
    let acme_admin = token("ann", "acme", "main", &["admin"]);
    let other_realm = token("bob", "default", "other", &["admin"]);
    for who in [&acme_admin, &other_realm] {
        // Another tenant's (or realm's) id answers exactly like a missing one.
        let theirs = server.get(&format!("/api/data/Invoice/{id}"), who).await;
        let missing = server
            .get(
                "/api/data/Invoice/01900000-0000-7000-8000-000000000000",
                who,
            )
            .await;
        assert_eq!(theirs.problem(404)["title"], missing.problem(404)["title"]);
        assert_eq!(
            server.get("/api/data/Invoice/count", who).await.body["count"],
            0
        );
        assert_eq!(
            server.get("/api/data/Invoice", who).await.body["meta"]["total"],
            0
        );
        server
            .call(
                Method::PATCH,
                &format!("/api/data/Invoice/{id}"),
                Some(who),
                Some(json!({ "status": "paid" })),
            )
            .await
            .problem(404);
        server
            .call(
                Method::DELETE,
                &format!("/api/data/Invoice/{id}"),
                Some(who),
                None,
            )
            .await
            .problem(404);
    }
    // The same unique value is free in another tenant.
    let theirs = server
        .post(
            "/api/data/Invoice",
            &acme_admin,
            json!({ "invoiceNumber": "INV-1", "customerId": "c", "totalAmount": "7.00" }),
        )
        .await;
    assert_eq!(theirs.status, 201, "{:#}", theirs.body);
    assert_eq!(
        server
            .get(&format!("/api/data/Invoice/{id}"), &admin)
            .await
            .body["totalAmount"],
        "5.00"
    );
    // Another tenant's admin may read metadata but not change it, and sees only its own audit rows.
    assert_eq!(
        server.get("/api/meta/entities", &acme_admin).await.status,
        200
    );
    server
        .post(
            "/api/meta/entities",
            &acme_admin,
            json!({ "name": "Order" }),
        )
        .await
        .problem(403);
    server
        .get("/api/admin/tenants", &acme_admin)
        .await
        .problem(403);
    let audit = server
        .get("/api/meta/audit?pageSize=100", &acme_admin)
        .await;
    assert!(
        audit.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tenantId"] == "acme"),
        "{:#}",
        audit.body
    );
    assert!(audit.body["meta"]["total"].as_u64().unwrap() >= 1);
    server.stop().await;
}

/// Issue 12 item 17: a body that does not arrive in time is 408 (not 503), and a client's
/// `X-Request-Id` is echoed only when it is short and plain.
async fn slow_bodies_time_out_with_408_and_request_ids_are_capped(store: Arc<dyn Store>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = crate::support::start_with(
        store,
        metaengine_server::config::Settings {
            request_timeout_ms: Some(500),
            ..Default::default()
        },
    )
    .await;
    let admin = admin();
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/data/Invoice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\""
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf))
        .await
        .expect("the server answers within the timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");

    let echoed = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let plain = server
        .client
        .get(format!("{}/health", server.base))
        .header("x-request-id", "trace-42.a:b")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed(&plain).as_deref(), Some("trace-42.a:b"));
    let long = "x".repeat(10_000);
    let r = server
        .client
        .get(format!("{}/health", server.base))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    let id = echoed(&r).unwrap();
    assert!(id.len() <= 128 && id != long, "{id}");
    server.stop().await;
}

crate::on_both_backends!(
    bad_requests_get_the_right_4xx,
    other_tenants_see_nothing,
    slow_bodies_time_out_with_408_and_request_ids_are_capped
);

/// Announces a 2 MiB JSON body and returns the answer's head (status line and headers).
async fn oversized_post(base: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = format!("{{\"invoiceNumber\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let head = format!(
        "POST /api/data/Invoice HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Only the head: its Content-Length alone is over the limit, so the server answers without
    // reading the body (sending the body too would race the server closing the connection).
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    text.split("\r\n\r\n").next().unwrap_or("").to_owned()
}
