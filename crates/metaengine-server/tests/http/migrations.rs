//! Activation migrates the data table without losing or corrupting a value (SPEC §5), seen
//! through the API: an integer that becomes a decimal keeps every digit, a hidden column that
//! comes back is compared with the live column, and changes that only some rows survive are
//! refused only when a row would not survive them.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Answer, TestServer, admin, start};

/// Creates the entity `Item` (once) and its version `version` with `fields` and an allow-all
/// policy.
async fn define(server: &TestServer, version: &str, fields: Value) {
    let admin = admin();
    if version == "v1" {
        let r = server
            .post("/api/meta/entities", &admin, json!({ "name": "Item" }))
            .await;
        assert_eq!(r.status, 201, "{:#}", r.body);
    }
    let schema = json!({
        "fields": fields,
        "policies": [{ "name": "all", "effect": "allow", "action": "*" }]
    });
    let r = server
        .post(
            "/api/meta/entities/Item/versions",
            &admin,
            json!({ "version": version, "schema": schema }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
}

async fn activate(server: &TestServer, version: &str) -> Answer {
    let path = format!("/api/meta/entities/Item/versions/{version}/activate");
    server.call(Method::POST, &path, Some(&admin()), None).await
}

/// Asserts an activation refused with breaking changes at exactly `pointers`.
fn refused(r: &Answer, pointers: &[&str]) {
    let problem = r.problem(409);
    assert_eq!(problem["code"], "breaking_changes", "{problem:#}");
    let found: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(found, pointers, "{problem:#}");
}

async fn create(server: &TestServer, record: Value) -> Value {
    let r = server.post("/api/data/Item", &admin(), record).await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    r.body
}

async fn field(server: &TestServer, id: &Value, name: &str) -> Value {
    let path = format!("/api/data/Item/{}", id.as_str().unwrap());
    let r = server.get(&path, &admin()).await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    r.body[name].clone()
}

async fn integer_to_decimal_keeps_every_digit(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(
        &server,
        "v1",
        json!([{ "name": "qty", "type": "integer", "indexed": true }]),
    )
    .await;
    assert_eq!(activate(&server, "v1").await.status, 200);
    let small = create(&server, json!({ "qty": 12 })).await["id"].clone();
    let big = create(&server, json!({ "qty": 9_007_199_254_740_993_i64 })).await["id"].clone();

    // decimal(19,4) has 15 integer digits: the 16-digit integer does not fit.
    define(
        &server,
        "v2",
        json!([{ "name": "qty", "type": "decimal", "precision": 19, "scale": 4, "indexed": true }]),
    )
    .await;
    refused(&activate(&server, "v2").await, &["/fields/0/precision"]);
    assert_eq!(
        field(&server, &big, "qty").await,
        json!(9_007_199_254_740_993_i64)
    );

    define(
        &server,
        "v3",
        json!([{ "name": "qty", "type": "decimal", "precision": 30, "scale": 4, "indexed": true }]),
    )
    .await;
    let r = activate(&server, "v3").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    // Old rows come back as decimals (strings) with the new scale; new rows keep every digit.
    assert_eq!(field(&server, &small, "qty").await, json!("12.0000"));
    assert_eq!(
        field(&server, &big, "qty").await,
        json!("9007199254740993.0000")
    );
    let exact = create(&server, json!({ "qty": "1234567890123456.1234" })).await["id"].clone();
    assert_eq!(
        field(&server, &exact, "qty").await,
        json!("1234567890123456.1234")
    );
    // The index still serves filters and order by value, not by text.
    let r = server
        .get(
            "/api/data/Item?filter[qty][gt]=100&orderBy=qty&orderDir=desc",
            &admin(),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let got: Vec<&Value> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["qty"])
        .collect();
    assert_eq!(
        got,
        [
            &json!("9007199254740993.0000"),
            &json!("1234567890123456.1234")
        ]
    );
    server.stop().await;
}

async fn a_column_that_comes_back_is_checked_against_the_table(store: Arc<dyn Store>) {
    let server = start(store).await;
    let name = json!({ "name": "name", "type": "string" });
    define(
        &server,
        "v1",
        json!([name, { "name": "qty", "type": "integer" }]),
    )
    .await;
    assert_eq!(activate(&server, "v1").await.status, 200);
    let id = create(&server, json!({ "name": "a", "qty": 7 })).await["id"].clone();
    // qty removed (hidden), then back as a string: refused, whatever the history says.
    define(&server, "v2", json!([name])).await;
    assert_eq!(activate(&server, "v2").await.status, 200);
    define(
        &server,
        "v3",
        json!([name, { "name": "qty", "type": "string" }]),
    )
    .await;
    refused(&activate(&server, "v3").await, &["/fields/1/type"]);
    // Forget the history: delete v1, the only version that knew qty as an integer. The live
    // column still says what it holds.
    let r = server
        .call(
            Method::DELETE,
            "/api/meta/entities/Item/versions/v1",
            Some(&admin()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    let r = activate(&server, "v3").await;
    refused(&r, &["/fields/1/type"]);
    let detail = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        detail.contains("bigint") || detail.contains("INTEGER"),
        "{detail}"
    );
    // Deactivate and delete the version that shaped the table, too: still refused.
    let r = server
        .call(
            Method::POST,
            "/api/meta/entities/Item/versions/v2/deactivate",
            Some(&admin()),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = server
        .call(
            Method::DELETE,
            "/api/meta/entities/Item/versions/v2",
            Some(&admin()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    refused(&activate(&server, "v3").await, &["/fields/1/type"]);
    // The same field as it was comes back with its value.
    define(
        &server,
        "v4",
        json!([name, { "name": "qty", "type": "integer" }]),
    )
    .await;
    let r = activate(&server, "v4").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(field(&server, &id, "qty").await, json!(7));
    server.stop().await;
}

async fn activation_refuses_only_what_would_break_rows(store: Arc<dyn Store>) {
    let server = start(store).await;
    let status =
        |values: &[&str]| json!({ "name": "status", "type": "enum", "enumValues": values });
    let code = |max: u32, required: bool| json!({ "name": "code", "type": "string", "maxLength": max, "required": required });
    define(
        &server,
        "v1",
        json!([status(&["a", "b", "c"]), code(20, false)]),
    )
    .await;
    assert_eq!(activate(&server, "v1").await.status, 200);
    create(&server, json!({ "status": "a", "code": "x" })).await;
    let b = create(&server, json!({ "status": "b" })).await["id"].clone();

    // Removing `c`, which no row uses, is fine; removing `b` is not.
    define(&server, "v2", json!([status(&["a", "b"]), code(20, false)])).await;
    assert_eq!(activate(&server, "v2").await.status, 200);
    define(&server, "v3", json!([status(&["a"]), code(20, false)])).await;
    refused(&activate(&server, "v3").await, &["/fields/0/enumValues"]);

    // A longer maxLength, then back to v2: fine while every value fits.
    define(&server, "v4", json!([status(&["a", "b"]), code(40, false)])).await;
    assert_eq!(activate(&server, "v4").await.status, 200);
    assert_eq!(activate(&server, "v2").await.status, 200);
    assert_eq!(activate(&server, "v4").await.status, 200);
    let long =
        create(&server, json!({ "status": "a", "code": "y".repeat(30) })).await["id"].clone();
    refused(&activate(&server, "v2").await, &["/fields/1/maxLength"]);
    let path = format!("/api/data/Item/{}", long.as_str().unwrap());
    let r = server
        .call(
            Method::PATCH,
            &path,
            Some(&admin()),
            Some(json!({ "code": "short" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = activate(&server, "v2").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    // The narrowed column holds what v2 allows: a 21-character code is refused as invalid.
    let r = server
        .post(
            "/api/data/Item",
            &admin(),
            json!({ "status": "a", "code": "z".repeat(21) }),
        )
        .await;
    r.problem(422);

    // `code` becomes required: refused while a row has none, fine once it has.
    define(&server, "v5", json!([status(&["a", "b"]), code(20, true)])).await;
    refused(&activate(&server, "v5").await, &["/fields/1/required"]);
    let path = format!("/api/data/Item/{}", b.as_str().unwrap());
    let r = server
        .call(
            Method::PATCH,
            &path,
            Some(&admin()),
            Some(json!({ "code": "b" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = activate(&server, "v5").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    server.stop().await;
}

async fn a_unique_index_over_repeated_values_names_its_field(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(&server, "v1", json!([{ "name": "code", "type": "string" }])).await;
    assert_eq!(activate(&server, "v1").await.status, 200);
    create(&server, json!({ "code": "x" })).await;
    let twin = create(&server, json!({ "code": "x" })).await["id"].clone();
    // Rows without a value never collide.
    create(&server, json!({})).await;
    create(&server, json!({})).await;
    define(
        &server,
        "v2",
        json!([{ "name": "code", "type": "string", "unique": true }]),
    )
    .await;
    let r = activate(&server, "v2").await;
    refused(&r, &["/fields/0/unique"]);
    let path = format!("/api/data/Item/{}", twin.as_str().unwrap());
    let r = server
        .call(
            Method::PATCH,
            &path,
            Some(&admin()),
            Some(json!({ "code": "y" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = activate(&server, "v2").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = server
        .post("/api/data/Item", &admin(), json!({ "code": "y" }))
        .await;
    r.problem(409);
    server.stop().await;
}

/// Every field type, activated over a table with rows and changed: the live columns match what
/// the fields need (no activation is refused for a column the engine made itself).
async fn every_type_matches_its_own_live_column(store: Arc<dyn Store>) {
    let server = start(store).await;
    let fields = json!([
        { "name": "s", "type": "string", "maxLength": 10 },
        { "name": "t", "type": "text" },
        { "name": "i", "type": "integer" },
        { "name": "n", "type": "number" },
        { "name": "d", "type": "decimal", "precision": 12, "scale": 3 },
        { "name": "b", "type": "boolean" },
        { "name": "day", "type": "date" },
        { "name": "at", "type": "datetime" },
        { "name": "e", "type": "enum", "enumValues": ["x"] },
        { "name": "j", "type": "json" }
    ]);
    define(&server, "v1", fields.clone()).await;
    assert_eq!(activate(&server, "v1").await.status, 200);
    create(
        &server,
        json!({ "s": "a", "i": 1, "d": "1.5", "at": "2026-01-01T00:00:00Z" }),
    )
    .await;
    let mut more = fields.as_array().unwrap().clone();
    more.push(json!({ "name": "extra", "type": "string" }));
    define(&server, "v2", Value::Array(more)).await;
    let r = activate(&server, "v2").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = activate(&server, "v1").await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    server.stop().await;
}

crate::on_both_backends!(
    integer_to_decimal_keeps_every_digit,
    a_column_that_comes_back_is_checked_against_the_table,
    activation_refuses_only_what_would_break_rows,
    every_type_matches_its_own_live_column,
    a_unique_index_over_repeated_values_names_its_field,
);
