//! Policies whose conditions name decimal, date, datetime and reference fields (SPEC §6), seen
//! through the API: a get, a list, a count and a create decide alike, by the values' types
//! (`"9.00"` is less than `"10.00"`, a timestamp with an offset is an instant, a uuid in upper
//! case is the same uuid), on both backends.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, admin, start, token};

const REF: &str = "0192f3a4-5b6c-7d8e-9f00-112233445566";

/// `Deal` with one read policy for clerks: a total under 10 (as a number, not as text), due
/// before February, signed after 2026-01-01T00:00Z, for one partner (compared as a uuid); and a
/// create policy with the same conditions.
async fn define(server: &TestServer) {
    let admin = admin();
    let r = server
        .post("/api/meta/entities", &admin, json!({ "name": "Deal" }))
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let conditions = json!([
        { "field": "user.role", "operator": "eq", "value": "clerk" },
        { "field": "record.total", "operator": "lt", "value": 10 },
        { "field": "record.due", "operator": "lt", "value": "2026-02-01" },
        { "field": "record.signedAt", "operator": "gt", "value": "2026-01-01T01:00:00+01:00" },
        { "field": "record.partner", "operator": "eq", "value": REF.to_uppercase() }
    ]);
    let schema = json!({
        "fields": [
            { "name": "title", "type": "string" },
            { "name": "total", "type": "decimal", "precision": 12, "scale": 2 },
            { "name": "due", "type": "date" },
            { "name": "signedAt", "type": "datetime" },
            { "name": "partner", "type": "reference", "referenceTo": "Deal" }
        ],
        "policies": [
            { "name": "clerks-read", "effect": "allow", "action": "read", "conditions": conditions },
            { "name": "clerks-create", "effect": "allow", "action": "create", "conditions": conditions }
        ]
    });
    let r = server
        .post(
            "/api/meta/entities/Deal/versions",
            &admin,
            json!({ "version": "v1", "schema": schema }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .call(
            Method::POST,
            "/api/meta/entities/Deal/versions/v1/activate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
}

async fn typed_conditions_decide_get_list_count_and_create_alike(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(&server).await;
    let admin = admin();
    // The partner every deal points at, readable by clerks: it points at itself.
    let partner = json!({ "id": REF, "title": "partner", "total": 1, "due": "2026-01-01",
                          "signedAt": "2026-01-01T12:00:00Z" });
    let r = server.post("/api/data/Deal", &admin, partner).await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .call(
            Method::PATCH,
            &format!("/api/data/Deal/{REF}"),
            Some(&admin),
            Some(json!({ "partner": REF })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let deal = |title: &str, total: Value, due: &str, signed: &str| json!({ "title": title, "total": total, "due": due, "signedAt": signed, "partner": REF });
    // Readable: 9.00 < 10 although "9.00" > "10" as text; signed 00:30 UTC is after 00:00 UTC.
    let visible = [
        deal("nine", json!("9.00"), "2026-01-31", "2026-01-01T00:30:00Z"),
        deal(
            "small",
            json!(0.5),
            "2025-12-01",
            "2026-01-01T02:00:00+01:00",
        ),
    ];
    // Hidden, each by one condition: the total, the due date, the instant (23:30 UTC the day
    // before, although its text sorts after the bound's), and the partner.
    let hidden = [
        deal("ten", json!("10.00"), "2026-01-31", "2026-01-02T00:00:00Z"),
        deal("late", json!(1), "2026-02-01", "2026-01-02T00:00:00Z"),
        deal("early", json!(1), "2026-01-15", "2026-01-01T09:00:00+10:00"),
        json!({ "title": "other", "total": 1, "due": "2026-01-15",
                "signedAt": "2026-01-02T00:00:00Z" }),
    ];
    let mut ids = Vec::new();
    for record in visible.iter().chain(&hidden) {
        let r = server.post("/api/data/Deal", &admin, record.clone()).await;
        assert_eq!(r.status, 201, "{:#}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let clerk = token("c1", "default", "main", &["clerk"]);

    let r = server
        .get("/api/data/Deal?orderBy=title&pageSize=50", &clerk)
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let titles: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["nine", "partner", "small"], "{:#}", r.body);
    assert_eq!(r.body["meta"]["total"], 3);
    let r = server.get("/api/data/Deal/count", &clerk).await;
    assert_eq!(r.body["count"], 3, "{:#}", r.body);
    for (i, id) in ids.iter().enumerate() {
        let r = server.get(&format!("/api/data/Deal/{id}"), &clerk).await;
        let expected = if i < visible.len() { 200 } else { 404 };
        assert_eq!(r.status, expected, "deal {i}: {:#}", r.body);
    }

    // A create is decided on the record as written, by the same comparisons.
    let r = server
        .post(
            "/api/data/Deal",
            &clerk,
            deal("mine", json!("9.99"), "2026-01-01", "2026-01-01T00:00:01Z"),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .post(
            "/api/data/Deal",
            &clerk,
            deal(
                "too much",
                json!("10.0"),
                "2026-01-01",
                "2026-01-01T00:00:01Z",
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{:#}", r.body);
    let r = server
        .post(
            "/api/data/Deal",
            &clerk,
            deal(
                "too early",
                json!(1),
                "2026-01-01",
                "2026-01-01T09:59:59+10:00",
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{:#}", r.body);
    server.stop().await;
}

crate::on_both_backends!(typed_conditions_decide_get_list_count_and_create_alike);
