//! The realtime change feed (SPEC §14) over real HTTP, on both backends: events of creates,
//! updates and deletes in commit order; a subscriber sees exactly the changes of the records it
//! can read (a property test with random policies, checked against the list's own SQL row
//! filter); resume without loss or duplicates; `reset` past retention; the refusals; streams
//! closed on suspension and deactivation; concurrent writers; two instances on one PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metaengine_server::Settings;
use metaengine_store::{Store, Timestamp};
use metaengine_testing::Rng;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    EventStream, Sse, TestServer, admin, define_entity as define, start, start_with, token,
};

/// Long enough for an event to arrive on a loaded machine; a missing one costs this much.
const WAIT: Duration = Duration::from_secs(5);
/// How long the tail of a stream must stay quiet to count as drained.
const QUIET: Duration = Duration::from_millis(700);

fn admins() -> Value {
    json!({ "name": "admins", "effect": "allow", "action": "*",
            "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] })
}

async fn define_doc(server: &TestServer) {
    define(
        server,
        "Doc",
        json!({ "fields": [
                    { "name": "title", "type": "string" },
                    { "name": "status", "type": "enum", "enumValues": ["open", "paid"] },
                    { "name": "amount", "type": "decimal", "precision": 10, "scale": 2 }
                ],
                "policies": [admins(),
                    { "name": "everyone-reads", "effect": "allow", "action": "read" }] }),
    )
    .await;
}

async fn create(server: &TestServer, who: &str, record: Value) -> Value {
    let r = server.post("/api/data/Doc", who, record).await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    r.body
}

async fn patch(server: &TestServer, who: &str, id: &str, record: Value) -> Value {
    let path = format!("/api/data/Doc/{id}");
    let r = server
        .call(Method::PATCH, &path, Some(who), Some(record))
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    r.body
}

async fn delete(server: &TestServer, who: &str, id: &str) {
    let path = format!("/api/data/Doc/{id}");
    let r = server.call(Method::DELETE, &path, Some(who), None).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
}

async fn subscribe(server: &TestServer, path: &str, who: &str) -> EventStream {
    match server.events(path, who, None).await {
        Ok(s) => s,
        Err(a) => panic!("{path}: {} {:#}", a.status, a.body),
    }
}

/// `(event, id, reason)` of each event, for comparing sequences.
fn summary(events: &[Sse]) -> Vec<(String, String, Option<String>)> {
    events
        .iter()
        .map(|e| {
            (
                e.event.clone(),
                e.data["id"].as_str().unwrap_or("").to_owned(),
                e.data["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn ids(events: &[Sse]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse::<i64>().unwrap())
        .collect()
}

fn increasing(ids: &[i64]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

async fn changes_reach_subscribers_in_commit_order(store: Arc<dyn Store>) {
    let server = start(store).await;
    define_doc(&server).await;
    let admin = admin();
    let mut all = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    let mut paid = subscribe(
        &server,
        "/api/data/Doc/events?filter[status][eq]=paid",
        &admin,
    )
    .await;

    let doc = create(
        &server,
        &admin,
        json!({ "title": "a", "status": "open", "amount": "10.5" }),
    )
    .await;
    let id = doc["id"].as_str().unwrap().to_owned();
    let e = all.next(WAIT).await.expect("the create's event");
    assert_eq!(e.event, "create");
    assert_eq!(
        e.data,
        json!({ "entity": "Doc", "id": id, "rowVersion": 1, "record": doc }),
        "the event carries the record exactly as the API returned it"
    );
    assert_eq!(all.retries, ["2000"]);

    patch(&server, &admin, &id, json!({ "status": "paid" })).await;
    patch(&server, &admin, &id, json!({ "amount": "11" })).await;
    let current = patch(&server, &admin, &id, json!({ "status": "open" })).await;
    delete(&server, &admin, &id).await;
    let rest = all.drain(QUIET).await;
    assert_eq!(
        summary(&rest),
        [
            ("update".into(), id.clone(), None),
            ("update".into(), id.clone(), None),
            ("update".into(), id.clone(), None),
            ("delete".into(), id.clone(), None),
        ]
    );
    assert_eq!(rest[2].data["record"], current);
    assert_eq!(
        rest[3].data,
        json!({ "entity": "Doc", "id": id, "rowVersion": 4 })
    );
    let mut every = vec![e];
    every.extend(rest);
    assert!(increasing(&ids(&every)), "{:?}", ids(&every));

    // The filtered stream: the record enters with the first update and leaves with the third.
    let seen = paid.drain(QUIET).await;
    assert_eq!(
        summary(&seen),
        [
            ("create".into(), id.clone(), Some("inScope".into())),
            ("update".into(), id.clone(), None),
            ("delete".into(), id.clone(), Some("outOfScope".into())),
        ]
    );
    assert_eq!(seen[0].data["record"]["status"], "paid");
    assert!(seen[2].data.get("record").is_none());

    // A batch: its writes arrive in the batch's order.
    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [
                { "op": "create", "entity": "Doc", "record": { "title": "b1" } },
                { "op": "create", "entity": "Doc", "record": { "title": "b2", "status": "paid" } }
            ] }),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let batch = all.drain(QUIET).await;
    let titles: Vec<&str> = batch
        .iter()
        .map(|e| e.data["record"]["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(titles, ["b1", "b2"]);
    let seen = paid.drain(QUIET).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data["record"]["title"], "b2");
}

/// Policies of the property test, one drawn per case: what a `reader` may read.
fn reader_policies(rng: &mut Rng) -> Value {
    let conditions = [
        json!([{ "field": "record.level", "operator": "gt", "value": 2 }]),
        json!([{ "field": "record.owner", "operator": "eq", "value": "user.id" }]),
        json!([{ "field": "record.tag", "operator": "in", "value": ["a", "b"] }]),
        json!([{ "field": "record.amount", "operator": "lte", "value": "50.00" }]),
        json!([{ "field": "record.owner", "operator": "ne", "value": "user.id" },
               { "field": "record.level", "operator": "lte", "value": 3 }]),
        json!([{ "field": "record.tag", "operator": "exists", "value": true }]),
    ];
    let mut policies = vec![admins()];
    for i in 0..=rng.below(2) {
        policies.push(
            json!({ "name": format!("read-{i}"), "effect": "allow", "action": "read",
            "conditions": rng.pick(&conditions).clone() }),
        );
    }
    if rng.chance(50) {
        policies.push(
            json!({ "name": "deny-c", "effect": "deny", "action": "read",
            "conditions": [{ "field": "record.tag", "operator": "eq", "value": "c" }] }),
        );
    }
    json!({ "fields": [
                { "name": "owner", "type": "string" },
                { "name": "level", "type": "integer" },
                { "name": "tag", "type": "enum", "enumValues": ["a", "b", "c"] },
                { "name": "amount", "type": "decimal", "precision": 10, "scale": 2 }
            ],
            "policies": policies })
}

fn random_values(rng: &mut Rng) -> Value {
    let mut record = serde_json::Map::new();
    record.insert("owner".into(), json!(*rng.pick(&["u1", "u2", "u3"])));
    record.insert("level".into(), json!(rng.below(6)));
    if rng.chance(80) {
        record.insert("tag".into(), json!(*rng.pick(&["a", "b", "c"])));
    } else {
        record.insert("tag".into(), Value::Null);
    }
    record.insert("amount".into(), json!(format!("{}.25", rng.below(100))));
    // Updates change some fields only.
    if rng.chance(30) {
        let keep = *rng.pick(&["owner", "level", "tag", "amount"]);
        record.retain(|k, _| k == keep);
    }
    Value::Object(record)
}

/// Whether `who` can read record `id` of Doc right now, through the list's SQL row filter.
async fn can_read(server: &TestServer, who: &str, id: &str) -> bool {
    let r = server
        .get(
            &format!("/api/data/Doc?filter[id][eq]={id}&count=none"),
            who,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    r.body["data"].as_array().is_some_and(|d| !d.is_empty())
}

async fn subscribers_get_exactly_the_changes_they_may_read(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    for tenant in ["t1", "t2"] {
        let r = server
            .post(
                "/api/admin/tenants",
                &admin,
                json!({ "id": tenant, "name": tenant }),
            )
            .await;
        assert_eq!(r.status, 201, "{:#}", r.body);
    }
    let mut rng = Rng(0x5EED_0015);
    define(&server, "Doc", reader_policies(&mut rng)).await;
    // Writers in two tenants and two realms; readers in each, and one reader per user.
    let writers = [
        token("w", "t1", "r1", &["admin"]),
        token("w", "t1", "r2", &["admin"]),
        token("w", "t2", "r1", &["admin"]),
    ];
    let readers = [
        token("u1", "t1", "r1", &["reader"]),
        token("u2", "t1", "r1", &["reader"]),
        token("u1", "t1", "r2", &["reader"]),
        token("u1", "t2", "r1", &["reader"]),
        token("boss", "t1", "r1", &["admin"]),
    ];
    let mut streams = Vec::new();
    for r in &readers {
        streams.push(subscribe(&server, "/api/realtime?entities=Doc", r).await);
    }
    // What each reader should get: decided by the list's SQL row filter after each write.
    let mut expected: Vec<Vec<(String, String, Option<String>)>> = vec![Vec::new(); readers.len()];
    let mut visible: Vec<HashMap<String, bool>> = vec![HashMap::new(); readers.len()];
    // The live records and the writer (scope) of each.
    let mut records: Vec<(usize, String)> = Vec::new();
    let (mut shown, mut hidden) = (0, 0);
    for _ in 0..60 {
        let op = rng.below(10);
        let (id, step) = if records.is_empty() || op < 4 {
            let w = usize::try_from(rng.below(writers.len() as u64)).unwrap();
            let mut values = random_values(&mut rng);
            values["owner"] = json!(*rng.pick(&["u1", "u2", "u3"]));
            let r = server.post("/api/data/Doc", &writers[w], values).await;
            assert_eq!(r.status, 201, "{:#}", r.body);
            let id = r.body["id"].as_str().unwrap().to_owned();
            records.push((w, id.clone()));
            (id, Step::Create)
        } else {
            let i = usize::try_from(rng.below(records.len() as u64)).unwrap();
            let (w, id) = records[i].clone();
            if op < 8 {
                let values = random_values(&mut rng);
                let path = format!("/api/data/Doc/{id}");
                let r = server
                    .call(Method::PATCH, &path, Some(&writers[w]), Some(values))
                    .await;
                assert_eq!(r.status, 200, "{:#}", r.body);
                (id, Step::Update)
            } else {
                delete(&server, &writers[w], &id).await;
                records.remove(i);
                (id, Step::Delete)
            }
        };
        for (k, reader) in readers.iter().enumerate() {
            let before = visible[k].get(&id).copied().unwrap_or(false);
            let after = step != Step::Delete && can_read(&server, reader, &id).await;
            visible[k].insert(id.clone(), after);
            let event = match (step, before, after) {
                (Step::Create, _, true) => Some(("create", None)),
                (Step::Update, false, true) => Some(("create", Some("inScope"))),
                (Step::Update, true, true) => Some(("update", None)),
                (Step::Update, true, false) => Some(("delete", Some("outOfScope"))),
                (Step::Delete, true, _) => Some(("delete", None)),
                _ => None,
            };
            match event {
                Some((name, reason)) => {
                    shown += 1;
                    expected[k].push((name.to_owned(), id.clone(), reason.map(str::to_owned)));
                }
                None => hidden += 1,
            }
        }
    }
    for (k, stream) in streams.iter_mut().enumerate() {
        let got = stream.drain(QUIET).await;
        assert!(increasing(&ids(&got)), "reader {k}: {:?}", ids(&got));
        assert_eq!(summary(&got), expected[k], "reader {k}");
    }
    assert!(shown > 40 && hidden > 40, "shown {shown}, hidden {hidden}");
}

/// A write of the property test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Update,
    Delete,
}

async fn resume_loses_and_duplicates_nothing(store: Arc<dyn Store>) {
    let server = start(store).await;
    define_doc(&server).await;
    let admin = admin();
    let mut first = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    for title in ["a", "b", "c"] {
        create(&server, &admin, json!({ "title": title })).await;
    }
    let got = first.next(WAIT).await.expect("the first event");
    let last = got.id.clone().unwrap();
    drop(first);
    // Written while the client is away.
    let d = create(&server, &admin, json!({ "title": "d" })).await;
    patch(
        &server,
        &admin,
        d["id"].as_str().unwrap(),
        json!({ "title": "d2" }),
    )
    .await;

    let mut again = server
        .events("/api/realtime?entities=Doc", &admin, Some(&last))
        .await
        .unwrap_or_else(|a| panic!("{:#}", a.body));
    let replayed = again.drain(QUIET).await;
    let titles: Vec<&str> = replayed
        .iter()
        .map(|e| e.data["record"]["title"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(titles, ["b", "c", "d", "d2"]);
    assert!(ids(&replayed)[0] > last.parse::<i64>().unwrap());
    // Then live, after the replay.
    create(&server, &admin, json!({ "title": "e" })).await;
    let live = again.drain(QUIET).await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].data["record"]["title"], "e");
    let mut every = replayed;
    every.extend(live);
    assert!(increasing(&ids(&every)));
}

async fn reset_when_resuming_past_retention(store: Arc<dyn Store>) {
    let server = start(store.clone()).await;
    define_doc(&server).await;
    let admin = admin();
    let mut s = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    create(&server, &admin, json!({ "title": "old" })).await;
    let old = s.next(WAIT).await.expect("an event").id.unwrap();
    drop(s);
    create(&server, &admin, json!({ "title": "purged" })).await;
    // Retention passes over both changes.
    let later = Timestamp(chrono::Utc::now() + chrono::Duration::seconds(1));
    assert_eq!(store.purge_changes(later).await.unwrap(), 2);
    assert_eq!(
        store.purge_changes(later).await.unwrap(),
        0,
        "purged already"
    );

    let mut resumed = server
        .events("/api/realtime?entities=Doc", &admin, Some(&old))
        .await
        .unwrap_or_else(|a| panic!("{:#}", a.body));
    let first = resumed.next(WAIT).await.expect("a reset");
    assert_eq!(first.event, "reset");
    create(&server, &admin, json!({ "title": "new" })).await;
    let live = resumed.drain(QUIET).await;
    assert_eq!(summary(&live).len(), 1);
    assert_eq!(live[0].data["record"]["title"], "new");

    // An id that is not one of ours: reset too.
    let mut odd = server
        .events("/api/realtime?entities=Doc", &admin, Some("not-an-id"))
        .await
        .unwrap_or_else(|a| panic!("{:#}", a.body));
    assert_eq!(
        odd.next(WAIT).await.map(|e| e.event).as_deref(),
        Some("reset")
    );
}

async fn refusals_are_problems(store: Arc<dyn Store>) {
    let server = start_with(
        store,
        Settings {
            realtime_max_subscribers: Some(2),
            ..Settings::default()
        },
    )
    .await;
    define_doc(&server).await;
    define(
        &server,
        "Secret",
        json!({ "fields": [{ "name": "docId", "type": "reference", "referenceTo": "Doc" }],
                "policies": [admins()] }),
    )
    .await;
    let admin = admin();
    let refused = |r: Result<EventStream, crate::support::Answer>| match r {
        Ok(_) => panic!("a stream where a refusal was expected"),
        Err(a) => a,
    };
    let a = refused(server.events("/api/realtime", &admin, None).await);
    a.problem(400);
    let a = refused(
        server
            .events("/api/realtime?entities=Nope", &admin, None)
            .await,
    );
    a.problem(404);
    let a = refused(
        server
            .events("/api/realtime?entities=Doc&x=1", &admin, None)
            .await,
    );
    a.problem(400);
    let a = refused(
        server
            .events("/api/data/Doc/events?filter[nope][eq]=1", &admin, None)
            .await,
    );
    assert_eq!(a.problem(400)["code"], "unknown_field");
    let a = refused(
        server
            .events(
                "/api/data/Secret/events?filter[docId.title][eq]=x",
                &admin,
                None,
            )
            .await,
    );
    assert_eq!(a.problem(400)["code"], "invalid_filter");
    // A caller no policy lets read.
    let guest = token("g", "default", "main", &["guest"]);
    let a = refused(
        server
            .events("/api/realtime?entities=Secret", &guest, None)
            .await,
    );
    a.problem(403);
    // An inactive entity.
    let r = server
        .post("/api/meta/entities", &admin, json!({ "name": "Draft" }))
        .await;
    assert_eq!(r.status, 201);
    let a = refused(
        server
            .events("/api/realtime?entities=Draft", &admin, None)
            .await,
    );
    a.problem(409);
    // The token only in the Authorization header, never in the query string.
    let r = server
        .call(
            Method::GET,
            &format!("/api/realtime?entities=Doc&access_token={admin}"),
            None,
            None,
        )
        .await;
    r.problem(401);
    // Past `realtime_max_subscribers`.
    let _one = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    let _two = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    let a = refused(
        server
            .events("/api/realtime?entities=Doc", &admin, None)
            .await,
    );
    a.problem(503);
    assert!(a.header("retry-after").is_some());
    drop(_one);
    // A closed stream frees its place.
    let deadline = Instant::now() + WAIT;
    loop {
        match server
            .events("/api/realtime?entities=Doc", &admin, None)
            .await
        {
            Ok(_) => break,
            Err(a) if Instant::now() < deadline => {
                a.problem(503);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(a) => panic!("still refused: {:#}", a.body),
        }
    }
}

async fn suspension_and_deactivation_close_streams(store: Arc<dyn Store>) {
    let server = start(store).await;
    define_doc(&server).await;
    let admin = admin();
    let r = server
        .post(
            "/api/admin/tenants",
            &admin,
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(r.status, 201);
    let acme = token("u", "acme", "main", &["reader"]);
    let mut tenant_stream = subscribe(&server, "/api/realtime?entities=Doc", &acme).await;
    let mut admin_stream = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    let r = server
        .call(
            Method::PATCH,
            "/api/admin/tenants/acme",
            Some(&admin),
            Some(json!({ "status": "suspended" })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let suspended = Instant::now();
    assert!(tenant_stream.ended(Duration::from_secs(3)).await);
    assert!(
        suspended.elapsed() < Duration::from_millis(1500),
        "closed after {:?}",
        suspended.elapsed()
    );
    assert!(!admin_stream.ended(Duration::from_millis(100)).await);

    let r = server
        .call(
            Method::POST,
            "/api/meta/entities/Doc/versions/v1/deactivate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let deactivated = Instant::now();
    assert!(admin_stream.ended(Duration::from_secs(3)).await);
    assert!(deactivated.elapsed() < Duration::from_millis(1500));
}

async fn concurrent_writers_every_change_once_in_order(store: Arc<dyn Store>) {
    let server = Arc::new(start(store).await);
    define_doc(&server).await;
    let admin = admin();
    let mut s = subscribe(&server, "/api/realtime?entities=Doc", &admin).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let server = server.clone();
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let r = server
                    .post(
                        "/api/data/Doc",
                        &admin,
                        json!({ "title": format!("{w}-{i}") }),
                    )
                    .await;
                assert_eq!(r.status, 201, "{:#}", r.body);
                ids.push(r.body["id"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    let got = s.drain(Duration::from_millis(1500)).await;
    assert!(increasing(&ids(&got)));
    let mut received: Vec<String> = got
        .iter()
        .map(|e| e.data["id"].as_str().unwrap().to_owned())
        .collect();
    received.sort();
    written.sort();
    assert_eq!(received, written, "every committed create, once");
}

async fn cascades_and_cleared_references_are_changes_too(store: Arc<dyn Store>) {
    let server = start(store).await;
    let everyone = json!({ "name": "everyone", "effect": "allow", "action": "*" });
    define(
        &server,
        "Customer",
        json!({ "fields": [{ "name": "name", "type": "string" }], "policies": [everyone] }),
    )
    .await;
    define(
        &server,
        "Order",
        json!({ "fields": [{ "name": "customerId", "type": "reference", "referenceTo": "Customer",
                             "onDelete": "cascade" }], "policies": [everyone] }),
    )
    .await;
    define(
        &server,
        "Note",
        json!({ "fields": [{ "name": "customerId", "type": "reference", "referenceTo": "Customer",
                             "onDelete": "setNull" }], "policies": [everyone] }),
    )
    .await;
    let admin = admin();
    let customer = server
        .post("/api/data/Customer", &admin, json!({ "name": "c" }))
        .await
        .body["id"]
        .clone();
    let order = server
        .post("/api/data/Order", &admin, json!({ "customerId": customer }))
        .await
        .body["id"]
        .clone();
    let note = server
        .post("/api/data/Note", &admin, json!({ "customerId": customer }))
        .await
        .body["id"]
        .clone();
    let mut s = subscribe(
        &server,
        "/api/realtime?entities=Customer,Order,Note",
        &admin,
    )
    .await;
    let path = format!("/api/data/Customer/{}", customer.as_str().unwrap());
    let r = server.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(r.status, 204, "{:#}", r.body);
    let got = s.drain(QUIET).await;
    let mut seen: Vec<(String, String, Value)> = got
        .iter()
        .map(|e| {
            (
                e.event.clone(),
                e.data["entity"].as_str().unwrap().to_owned(),
                e.data["id"].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        seen,
        [
            ("delete".to_owned(), "Customer".to_owned(), customer),
            ("update".to_owned(), "Note".to_owned(), note),
            ("delete".to_owned(), "Order".to_owned(), order),
        ]
    );
    let cleared = got.iter().find(|e| e.data["entity"] == "Note").unwrap();
    assert_eq!(cleared.data["record"]["customerId"], Value::Null);
    assert!(increasing(&ids(&got)));
}

crate::on_both_backends!(
    cascades_and_cleared_references_are_changes_too,
    changes_reach_subscribers_in_commit_order,
    subscribers_get_exactly_the_changes_they_may_read,
    resume_loses_and_duplicates_nothing,
    reset_when_resuming_past_retention,
    refusals_are_problems,
    suspension_and_deactivation_close_streams,
    concurrent_writers_every_change_once_in_order,
);

/// Two instances on one PostgreSQL: a write through one reaches a subscriber of the other
/// within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_reaches_a_subscriber_of_another() {
    let (db, store) = metaengine_testing::postgres().await;
    let a = start(store).await;
    let b = start(db.open_another().await).await;
    define_doc(&a).await;
    let admin = admin();
    let mut on_b = subscribe(&b, "/api/realtime?entities=Doc", &admin).await;
    let written = Instant::now();
    let doc = create(&a, &admin, json!({ "title": "from A" })).await;
    let e = on_b.next(WAIT).await.expect("the event on B");
    let took = written.elapsed();
    assert_eq!(e.data["id"], doc["id"]);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
