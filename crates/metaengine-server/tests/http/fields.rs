//! Field-level permissions (SPEC §15) through the API, on both backends: a field the caller may
//! not read is absent from lists, gets, expansions and realtime events, and naming it anywhere
//! answers exactly as a field that does not exist (so bisecting with `gt` filters learns
//! nothing); writing a field the caller may not write is `403 field_forbidden` at its pointer,
//! in a single write and in a batch, and nothing is written; the audit trail verifies.

use std::sync::Arc;
use std::time::Duration;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, admin, define_entity, start, token};

const ROLE_IS: &str = "user.role";

fn role(name: &str) -> Value {
    json!([{ "field": ROLE_IS, "operator": "eq", "value": name }])
}

/// `Department { name, budget }` (staff read `name` only) and `Employee { name, level, salary,
/// department }`: HR reads and writes everything; staff read `name`, `level` and `department`,
/// and write `name`; contractors read everything but `level`, withheld by a deny that leaves
/// the read itself to the allow.
async fn define(server: &TestServer) {
    define_entity(
        server,
        "Department",
        json!({
            "fields": [
                { "name": "name", "type": "string" },
                { "name": "budget", "type": "number" }
            ],
            "policies": [
                { "name": "hr", "effect": "allow", "action": "*", "conditions": role("hr") },
                { "name": "staff-names", "effect": "allow", "action": "read",
                  "fields": ["name"], "conditions": role("staff") }
            ]
        }),
    )
    .await;
    define_entity(
        server,
        "Employee",
        json!({
            "fields": [
                { "name": "name", "type": "string" },
                { "name": "level", "type": "integer" },
                { "name": "salary", "type": "number", "sensitive": true },
                { "name": "department", "type": "reference", "referenceTo": "Department" }
            ],
            "policies": [
                { "name": "hr", "effect": "allow", "action": "*", "conditions": role("hr") },
                { "name": "staff-read", "effect": "allow", "action": "read",
                  "fields": ["name", "level", "department"], "conditions": role("staff") },
                { "name": "staff-write", "effect": "allow", "action": "*",
                  "fields": ["name"], "conditions": role("staff") },
                { "name": "contractors", "effect": "allow", "action": "read",
                  "conditions": role("contractor") },
                { "name": "no-levels", "effect": "deny", "action": "read",
                  "fields": ["level"], "conditions": role("contractor") }
            ]
        }),
    )
    .await;
}

fn hr() -> String {
    token("hana", "default", "main", &["hr"])
}
fn staff() -> String {
    token("sam", "default", "main", &["staff"])
}
fn contractor() -> String {
    token("cory", "default", "main", &["contractor"])
}

/// Salaries 1,000 … 5,000 and one department with a budget, as HR writes them.
async fn seed(server: &TestServer) -> (String, Vec<String>) {
    let hr = hr();
    let r = server
        .post(
            "/api/data/Department",
            &hr,
            json!({ "name": "R&D", "budget": 1e6 }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let department = r.body["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 1..=5 {
        let r = server
            .post(
                "/api/data/Employee",
                &hr,
                json!({ "name": format!("e{i}"), "level": i, "salary": i * 1000,
                        "department": department }),
            )
            .await;
        assert_eq!(r.status, 201, "{:#}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    (department, ids)
}

fn keys(record: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn hidden_fields_are_left_out_of_what_a_caller_reads(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(&server).await;
    let (department, ids) = seed(&server).await;
    let system = [
        "createdAt",
        "createdBy",
        "id",
        "realmId",
        "rowVersion",
        "tenantId",
        "updatedAt",
        "updatedBy",
    ];
    let with = |own: &[&'static str]| {
        let mut all: Vec<&str> = system.iter().copied().chain(own.iter().copied()).collect();
        all.sort_unstable();
        all
    };

    let list = server
        .get("/api/data/Employee?orderBy=level", &staff())
        .await;
    assert_eq!(list.status, 200, "{:#}", list.body);
    let records = list.body["data"].as_array().unwrap();
    assert_eq!(records.len(), 5);
    for r in records {
        assert_eq!(keys(r), with(&["department", "level", "name"]), "{r}");
    }
    let get = server
        .get(&format!("/api/data/Employee/{}", ids[0]), &staff())
        .await;
    assert_eq!(get.status, 200);
    assert_eq!(keys(&get.body), with(&["department", "level", "name"]));

    // The deny withholds `level` only: the contractor still reads, with the salary.
    let get = server
        .get(&format!("/api/data/Employee/{}", ids[0]), &contractor())
        .await;
    assert_eq!(get.status, 200, "{:#}", get.body);
    assert_eq!(keys(&get.body), with(&["department", "name", "salary"]));
    let get = server
        .get(&format!("/api/data/Employee/{}", ids[0]), &hr())
        .await;
    assert_eq!(
        keys(&get.body),
        with(&["department", "level", "name", "salary"])
    );

    // An expansion carries the target's readable fields only, system fields included.
    let list = server
        .get("/api/data/Employee?expand=department&pageSize=1", &staff())
        .await;
    assert_eq!(list.status, 200, "{:#}", list.body);
    let expanded = &list.body["data"][0]["expand"]["department"];
    assert_eq!(expanded["id"], department.as_str());
    assert_eq!(keys(expanded), with(&["name"]));
    let get = server
        .get(
            &format!("/api/data/Employee/{}?expand=department", ids[1]),
            &staff(),
        )
        .await;
    assert_eq!(keys(&get.body["expand"]["department"]), with(&["name"]));
    // `fields=` within the readable ones works as for anyone.
    let list = server.get("/api/data/Employee?fields=name", &staff()).await;
    assert_eq!(list.status, 200, "{:#}", list.body);
    let for_hr = server.get("/api/data/Employee?fields=name", &hr()).await;
    assert_eq!(keys(&list.body["data"][0]), keys(&for_hr.body["data"][0]));
    assert_eq!(keys(&list.body["data"][0]), ["id", "name"]);
}

/// The answer for `path`, which names the hidden field `hidden`, is the answer for the same path
/// naming `bogus`, a field the entity does not have (with the name replaced).
async fn same_as_unknown(server: &TestServer, who: &str, path: &str, hidden: &str) {
    let answer = server.get(path, who).await;
    let unknown = server.get(&path.replace(hidden, "bogus"), who).await;
    assert_eq!(answer.status, 400, "{path}: {:#}", answer.body);
    assert_eq!(answer.body["code"], "unknown_field", "{path}");
    let text = answer.body.to_string().replace(hidden, "bogus");
    assert_eq!(text, unknown.body.to_string(), "{path}");
}

async fn naming_a_hidden_field_answers_as_an_unknown_one(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(&server).await;
    seed(&server).await;
    let staff = staff();
    for (path, hidden) in [
        ("/api/data/Employee?filter[salary][gt]=0", "salary"),
        ("/api/data/Employee?filter[salary][isnull]=true", "salary"),
        ("/api/data/Employee?orderBy=salary", "salary"),
        ("/api/data/Employee?fields=name,salary", "salary"),
        ("/api/data/Employee/count?filter[salary][lt]=100", "salary"),
        (
            "/api/data/Employee?expand=department&fields=department.budget",
            "budget",
        ),
        (
            "/api/data/Employee?filter[department.budget][gt]=0",
            "budget",
        ),
        ("/api/data/Department?filter[budget][gt]=0", "budget"),
    ] {
        same_as_unknown(&server, &staff, path, hidden).await;
    }

    // Bisecting the salary of e3 (3,000) learns nothing: every probe gets the same answer.
    let mut answers = Vec::new();
    for x in [0, 2999, 3000, 3001, 1_000_000] {
        let r = server
            .get(
                &format!("/api/data/Employee?filter[name][eq]=e3&filter[salary][gt]={x}"),
                &staff,
            )
            .await;
        answers.push(format!("{} {}", r.status, r.body));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    assert!(answers[0].starts_with("400"), "{}", answers[0]);
    // For HR the same filter works.
    let r = server
        .get("/api/data/Employee?filter[salary][gt]=2999", &hr())
        .await;
    assert_eq!(r.body["meta"]["total"], 3);
}

async fn writing_a_forbidden_field_is_refused_and_nothing_is_written(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(&server).await;
    let (_, ids) = seed(&server).await;
    let staff = staff();
    let r = server
        .post(
            "/api/data/Employee",
            &staff,
            json!({ "name": "new", "salary": 99, "level": 1 }),
        )
        .await;
    assert_eq!(r.status, 403, "{:#}", r.body);
    assert_eq!(r.body["code"], "field_forbidden");
    let mut pointers: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.get("pointer").and_then(Value::as_str).unwrap())
        .collect();
    pointers.sort_unstable();
    assert_eq!(pointers, ["/level", "/salary"]);
    assert!(!r.body.to_string().contains("99"), "{}", r.body);
    let r = server
        .call(
            Method::PATCH,
            &format!("/api/data/Employee/{}", ids[0]),
            Some(&staff),
            Some(json!({ "salary": 1 })),
        )
        .await;
    assert_eq!(r.status, 403, "{:#}", r.body);
    assert_eq!(r.body["errors"][0]["pointer"], "/salary");
    let r = server
        .post(
            "/api/data/batch",
            &staff,
            json!({ "operations": [
                { "op": "create", "entity": "Employee", "record": { "name": "ok" } },
                { "op": "update", "entity": "Employee", "id": ids[1], "record": { "salary": 1 } }
            ]}),
        )
        .await;
    assert_eq!(r.status, 403, "{:#}", r.body);
    assert_eq!(r.body["code"], "field_forbidden");
    assert_eq!(
        r.body["errors"][0]["pointer"],
        "/operations/1/record/salary"
    );
    // Nothing was written: five employees, salaries unchanged.
    let all = server.get("/api/data/Employee?orderBy=level", &hr()).await;
    assert_eq!(all.body["meta"]["total"], 5);
    let salaries: Vec<f64> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["salary"].as_f64().unwrap())
        .collect();
    assert_eq!(salaries, [1000.0, 2000.0, 3000.0, 4000.0, 5000.0]);
    // A write within the grant goes through.
    let r = server
        .call(
            Method::PATCH,
            &format!("/api/data/Employee/{}", ids[0]),
            Some(&staff),
            Some(json!({ "name": "renamed" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert!(r.body.get("salary").is_none(), "{:#}", r.body);
    let verify = server.get("/api/meta/audit/verify", &admin()).await;
    assert_eq!(verify.body["verified"], true, "{:#}", verify.body);
}

async fn events_carry_only_readable_fields(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(&server).await;
    let mut staff = server
        .events("/api/data/Employee/events", &staff(), None)
        .await
        .map_err(|a| a.body)
        .unwrap();
    let mut hr_stream = server
        .events("/api/data/Employee/events", &hr(), None)
        .await
        .map_err(|a| a.body)
        .unwrap();
    let r = server
        .post(
            "/api/data/Employee",
            &hr(),
            json!({ "name": "x", "level": 2, "salary": 777 }),
        )
        .await;
    assert_eq!(r.status, 201);
    let seen = staff.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(seen.event, "create");
    let record = &seen.data["record"];
    assert_eq!(record["name"], "x");
    assert!(record.get("salary").is_none(), "{record}");
    let full = hr_stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(full.data["record"]["salary"], 777.0);
}

crate::on_both_backends!(
    hidden_fields_are_left_out_of_what_a_caller_reads,
    naming_a_hidden_field_answers_as_an_unknown_one,
    writing_a_forbidden_field_is_refused_and_nothing_is_written,
    events_carry_only_readable_fields,
);
