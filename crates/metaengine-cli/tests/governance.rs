//! Governance as a user meets it, on SQLite and PostgreSQL: a `sensitive` field's values never
//! reach the audit trail, the server's log (at debug level) or an error message, while the
//! audit rows of data changes (single writes, a batch's, an import's) carry the other fields'
//! old and new values; `metaengine audit verify` holds until an audit row is changed by hand
//! with SQL, then names that row.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed step is a failed test"
)]

#[path = "support/server.rs"]
mod server;
mod support;

use metaengine_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use server::{call, serve};
use support::Cli;

const EMPLOYEE: &str = r#"{ "fields": [
  { "name": "name", "type": "string", "required": true },
  { "name": "salary", "type": "number", "sensitive": true, "min": 0 }
], "policies": [
  { "name": "everyone", "effect": "allow", "action": "*" },
  { "name": "no-salary", "effect": "deny", "action": "read", "fields": ["salary"],
    "conditions": [{ "field": "user.role", "operator": "eq", "value": "intern" }] }
] }"#;

/// Values that must never be seen outside the record itself.
const MARKERS: [&str; 3] = ["987654321", "123454321", "SeCrEt-MaRkEr"];

fn define(cli: &Cli) {
    let schema = cli.dir.path().join("employee.json");
    std::fs::write(&schema, EMPLOYEE).unwrap();
    cli.ok(&["entity", "create", "Employee"], None);
    let path = schema.to_str().unwrap();
    cli.ok(&["version", "create", "Employee", "v1", path], None);
    cli.ok(&["version", "activate", "Employee", "v1"], None);
}

fn no_marker(what: &str, text: &str) {
    for marker in MARKERS {
        assert!(!text.contains(marker), "{what} shows `{marker}`:\n{text}");
    }
}

fn story(cli: &Cli) -> String {
    define(cli);
    // The explanation names who granted and who withheld each field.
    let check = cli.ok(
        &[
            "policy", "check", "--entity", "Employee", "--action", "read", "--user", "i",
            "--roles", "intern",
        ],
        None,
    );
    let line = |field: &str| {
        check
            .lines()
            .find(|l| l.trim_start().starts_with(field))
            .unwrap_or_else(|| panic!("no line for {field}:\n{check}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("name"), "name visible granted by `everyone`");
    assert_eq!(line("salary"), "salary hidden withheld by `no-salary`");
    let token = cli.ok(&["token", "--user", "u", "--roles", "admin"], None);
    let token = token.trim();
    let log = cli.dir.path().join("server.log");
    let (mut server, port) = serve(cli, &log);

    let (status, body) = call(
        port,
        "POST",
        "/api/data/Employee",
        token,
        Some(&json!({ "name": "Ann", "salary": 987654321 })),
    );
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/data/Employee/{id}");
    let (status, body) = call(
        port,
        "PATCH",
        &path,
        token,
        Some(&json!({ "name": "Anne", "salary": 123454321 })),
    );
    assert_eq!(status, 200, "{body}");
    // Refused writes: the answer names the field, never the value.
    let (status, body) = call(
        port,
        "PATCH",
        &path,
        token,
        Some(&json!({ "salary": "SeCrEt-MaRkEr" })),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("/salary"), "{body}");
    no_marker("a 422 answer", &body);
    let (status, body) = call(
        port,
        "GET",
        "/api/data/Employee?filter[salary][gt]=SeCrEt-MaRkEr",
        token,
        None,
    );
    assert_eq!(status, 400, "{body}");
    no_marker("a 400 answer", &body);
    let (status, _) = call(port, "DELETE", &path, token, None);
    assert_eq!(status, 204);
    // A batch's creates share one audit row; it holds their values the same way.
    let (status, body) = call(
        port,
        "POST",
        "/api/data/batch",
        token,
        Some(&json!({ "operations": [
            { "op": "create", "entity": "Employee", "record": { "name": "Bob", "salary": 987654321 } }
        ] })),
    );
    assert_eq!(status, 200, "{body}");
    let batch_id = serde_json::from_str::<Value>(&body).unwrap()["results"][0]["record"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The server's chainer gives every row its place in its chain within moments, without
    // anyone asking for a verification.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = call(port, "GET", "/api/meta/audit?pageSize=100", token, None);
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        let rows = page["data"].as_array().unwrap();
        assert!(rows.len() >= 4, "{page}");
        if rows
            .iter()
            .all(|r| r["hash"].is_string() && r["prevHash"].is_string())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rows still unchained: {page}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The key of the seals lives in the data directory, readable by its owner only.
    let key = std::fs::metadata(cli.dir.path().join("audit-key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    let (status, body) = call(port, "GET", "/api/meta/audit/verify", token, None);
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["firstBroken"], Value::Null);
    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("DEBUG"),
        "the server logged at debug level:\n{log}"
    );
    no_marker("the server's log", &log);
    // An import's batch row, likewise.
    let ndjson = cli.dir.path().join("employees.ndjson");
    std::fs::write(&ndjson, "{\"name\": \"Cy\", \"salary\": 123454321}\n").unwrap();
    let imported = cli.ok(
        &["data", "import", "Employee", ndjson.to_str().unwrap()],
        None,
    );
    assert!(
        imported.contains("imported 1 row (0 rejected)"),
        "{imported}"
    );

    // Every row of the trail, whatever its resource.
    let rows = cli.json(&["audit", "--page-size", "100", "--json"]);
    assert!(rows["meta"]["total"].as_u64().unwrap() < 100);
    no_marker("the audit trail", &rows.to_string());
    // The row of a batch (`Some("batch")`), of an import's batch (`Some("import")`) or of a
    // single write (`None`).
    let details_where = |event: &str, many: Option<&str>| {
        rows["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                let d = &r["details"];
                r["eventType"] == event
                    && r["result"] == "success"
                    && match many {
                        Some(kind) => d[kind] == true,
                        None => d["batch"].is_null() && d["import"].is_null(),
                    }
            })
            .unwrap()["details"]
            .clone()
    };
    let details = |event: &str| details_where(event, None);
    // A batch's and an import's rows: each record's values, the sensitive field named only.
    let created = |name: &str, id: &Value| json!([{ "id": id, "new": { "name": name }, "sensitive": ["salary"] }]);
    assert_eq!(
        details_where("data.create", Some("batch"))["records"],
        created("Bob", &json!(batch_id))
    );
    let import = details_where("data.create", Some("import"));
    assert_eq!(import["records"], created("Cy", &import["firstId"]));
    assert_eq!(
        details("data.create")["changes"],
        json!([{ "field": "name", "old": null, "new": "Ann" }, { "field": "salary" }])
    );
    assert_eq!(
        details("data.update")["changes"],
        json!([{ "field": "name", "old": "Ann", "new": "Anne" }, { "field": "salary" }])
    );
    assert_eq!(
        details("data.delete")["changes"],
        json!([{ "field": "name", "old": "Anne", "new": null }, { "field": "salary" }])
    );

    let verified = cli.ok(&["audit", "verify"], None);
    assert!(verified.contains("verified"), "{verified}");
    // The update's row, as someone with database access would rewrite it.
    rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eventType"] == "data.update")
        .unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `metaengine audit verify` after `sql` ran: exit 1, naming `event_id`.
fn broken(cli: &Cli, event_id: &str) {
    let out = cli.run(&["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(event_id), "{stderr}");
    assert!(stderr.contains("does not match its hash"), "{stderr}");
    let json = cli.run(&["audit", "verify", "--json"], None);
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["verified"], false);
    assert_eq!(report["firstBroken"]["eventId"], event_id);
}

/// The story on `cli`'s database, then the update's audit row rewritten by hand with `forge`
/// (SQL on that database), then `audit verify` names it.
async fn story_then_forgery<F, Fut>(cli: Cli, forge: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (cli, event_id) = tokio::task::spawn_blocking(move || {
        let id = story(&cli);
        (cli, id)
    })
    .await
    .unwrap();
    forge(cli.url.clone(), event_id.clone()).await;
    tokio::task::spawn_blocking(move || broken(&cli, &event_id))
        .await
        .unwrap();
}

const FORGE: &str = "UPDATE {table} SET user_id = 'someone-else' WHERE event_id = $1";

#[tokio::test]
async fn sensitive_values_stay_out_of_audit_and_logs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/gov.db", dir.path().display());
    story_then_forgery(Cli { url, dir }, |url, event_id| async move {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let forge = FORGE.replace("{table}", "meta_audit");
        sqlx::query(&forge)
            .bind(&event_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn sensitive_values_stay_out_of_audit_and_logs_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    story_then_forgery(cli, |url, event_id| async move {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let forge = FORGE.replace("{table}", "meta.meta_audit");
        sqlx::query(&forge)
            .bind(&event_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    })
    .await;
}
