//! The row filter, as SQL, against real tables: for seeded random policy sets (validated like a
//! stored schema), contexts and records, the rows the store's list returns are exactly the records
//! the in-memory evaluator allows to read (SPEC §6: the caller sees only rows it may read), on
//! SQLite, on PostgreSQL, and on PostgreSQL with a language collation. Every field type: integers,
//! numbers (with integral and fractional literals), booleans, text with byte-order comparisons,
//! exact decimals (beyond the 15 digits of a double), dates, timestamps with offsets, uuids in
//! either case, JSON (`exists`), and two record fields compared with each other. The records the
//! evaluator sees are written as a client would send them (`"12.5"`, `+01:00`, upper-case uuids),
//! the rows as the database stores them (`12.50`, UTC, lower case), as on a create's policy check
//! against a list of the stored rows.

use std::collections::BTreeSet;

use metaengine_testing::Rng;

use metaengine_core::policy::{Action, PolicySet, RequestContext, RowFilter, eval_predicate};
use metaengine_core::{ValidationContext, compile};
use metaengine_sql::query::{ListQuery, Scope};
use metaengine_sql::{Dialect, qualified_table};
use metaengine_store::{NewEntity, NewVersion, Store};
use serde_json::{Map, Value, json};

const CASES: usize = 250;
const RECORDS: usize = 40;

const STATUSES: [&str; 3] = ["draft", "sent", "paid"];
const USERS: [&str; 3] = ["u1", "u2", "u"];
const ROLES: [&str; 3] = ["admin", "user", "guest"];
/// Labels whose order differs between byte order and language collations (`B` < `a` in bytes).
const LABELS: [&str; 6] = ["apple", "Banana", "cherry", "\u{c4}pfel", "b", "Zed"];

/// Decimals: (as a client writes it, as the column stores it). Two differ only in the 18th
/// significant digit, which a double cannot tell apart.
const TOTALS: [(&str, &str); 6] = [
    ("12.5", "12.50"),
    ("9", "9.00"),
    ("-3.25", "-3.25"),
    ("1234567890123456.12", "1234567890123456.12"),
    ("1234567890123456.13", "1234567890123456.13"),
    ("0.0", "0.00"),
];
const DUES: [&str; 4] = ["2026-01-31", "2026-02-01", "2025-12-31", "2027-06-15"];
/// Timestamps: (RFC 3339 with an offset, as stored in UTC with milliseconds). The first is
/// earlier than the second although its text sorts after it.
const ATS: [(&str, &str); 4] = [
    ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00.000Z"),
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000Z"),
    ("2026-01-01T00:00:00.001Z", "2026-01-01T00:00:00.001Z"),
    ("2025-12-31T23:59:59.999-00:30", "2026-01-01T00:29:59.999Z"),
];
/// Uuids: (either case, lower case).
const REFS: [(&str, &str); 3] = [
    (
        "0192F3A4-5B6C-7D8E-9F00-112233445566",
        "0192f3a4-5b6c-7d8e-9f00-112233445566",
    ),
    (
        "0192f3a4-5b6c-7d8e-9f00-a12233445566",
        "0192f3a4-5b6c-7d8e-9f00-a12233445566",
    ),
    (
        "FFFFFFFF-0000-7000-8000-000000000000",
        "ffffffff-0000-7000-8000-000000000000",
    ),
];

fn fields() -> Value {
    json!([
        { "name": "invoiceNumber", "type": "string", "required": true },
        { "name": "amount", "type": "integer" },
        { "name": "score", "type": "number" },
        { "name": "status", "type": "string" },
        { "name": "owner", "type": "string" },
        { "name": "paid", "type": "boolean" },
        { "name": "label", "type": "string" },
        { "name": "total", "type": "decimal", "precision": 20, "scale": 2 },
        { "name": "ceiling", "type": "decimal", "precision": 20, "scale": 3 },
        { "name": "due", "type": "date" },
        { "name": "at", "type": "datetime" },
        { "name": "until", "type": "datetime" },
        { "name": "ref", "type": "reference", "referenceTo": "Invoice" },
        { "name": "meta", "type": "json" }
    ])
}

/// A typed field and a literal for it (see [`typed_value`]).
fn typed_literal(rng: &mut Rng) -> (&'static str, Value) {
    let field = *rng.pick(&["total", "due", "at", "ref"]);
    (field, typed_value(rng, field))
}

/// A literal for a typed field: one of the records' values in either form, or a value between.
fn typed_value(rng: &mut Rng, field: &str) -> Value {
    let pick_pair = |rng: &mut Rng, pairs: &[(&'static str, &'static str)]| {
        let (a, b) = *rng.pick(pairs);
        if rng.chance(50) { a } else { b }
    };
    match field {
        "total" => match rng.below(4) {
            0 => json!(12.5),
            1 => json!(10),
            2 => json!("1234567890123456.125"),
            _ => json!(pick_pair(rng, &TOTALS)),
        },
        "due" => json!(rng.pick(&DUES)),
        "at" => json!(pick_pair(rng, &ATS)),
        _ => json!(pick_pair(rng, &REFS)),
    }
}

fn condition(rng: &mut Rng) -> Value {
    let ops = ["eq", "ne", "gt", "gte", "lt", "lte"];
    match rng.below(16) {
        0 | 1 => {
            json!({ "field": "record.amount", "operator": rng.pick(&ops), "value": rng.below(100) })
        }
        2 => {
            json!({ "field": "record.status", "operator": rng.pick(&["eq", "ne"]), "value": rng.pick(&STATUSES) })
        }
        3 => {
            let values: Vec<_> = STATUSES.iter().filter(|_| rng.chance(50)).collect();
            json!({ "field": "record.status", "operator": rng.pick(&["in", "not_in"]), "value": values })
        }
        4 => {
            json!({ "field": "record.owner", "operator": rng.pick(&ops), "value": "context.userId" })
        }
        5 => {
            json!({ "field": "record.label", "operator": "contains", "value": rng.pick(&["a", "e", "\u{c4}"]) })
        }
        6 => json!({ "field": "record.owner", "operator": "exists", "value": rng.chance(50) }),
        7 => {
            // Text ordering: byte order on every backend and collation.
            json!({ "field": "record.label", "operator": rng.pick(&ops), "value": rng.pick(&["B", "a", "Zz", "b", "\u{c4}"]) })
        }
        8 => {
            // An integer literal on a number field, and a fraction: one parameter type per text.
            let value = if rng.chance(50) {
                json!(rng.below(50))
            } else {
                json!(rng.below(50) as f64 + 0.5)
            };
            json!({ "field": "record.score", "operator": rng.pick(&ops), "value": value })
        }
        9 => {
            json!({ "field": "record.paid", "operator": rng.pick(&["eq", "ne"]), "value": rng.chance(50) })
        }
        10 => {
            // Two fields of the record.
            let (l, r) = *rng.pick(&[
                ("amount", "score"),
                ("label", "status"),
                ("owner", "createdBy"),
                ("total", "ceiling"),
                ("at", "until"),
                ("ref", "ref"),
            ]);
            json!({ "field": format!("record.{l}"), "operator": rng.pick(&ops), "value": format!("record.{r}") })
        }
        11 | 12 => {
            // Decimals, dates, timestamps and uuids, by their values, not their texts.
            let (field, value) = typed_literal(rng);
            json!({ "field": format!("record.{field}"), "operator": rng.pick(&ops), "value": value })
        }
        13 => {
            let (field, first) = typed_literal(rng);
            let second = typed_value(rng, field);
            let values: Vec<Value> = [first, second]
                .into_iter()
                .filter(|_| rng.chance(70))
                .collect();
            json!({ "field": format!("record.{field}"), "operator": rng.pick(&["in", "not_in"]), "value": values })
        }
        14 => {
            // A uuid field against a request value (never a uuid here): no row either way.
            json!({ "field": "record.ref", "operator": rng.pick(&["eq", "ne"]), "value": "context.userId" })
        }
        15 => {
            let field = rng.pick(&["meta", "total", "at", "ref"]);
            json!({ "field": format!("record.{field}"), "operator": "exists", "value": rng.chance(50) })
        }
        _ => {
            json!({ "field": "user.role", "operator": rng.pick(&["eq", "ne"]), "value": rng.pick(&ROLES) })
        }
    }
}

fn policies(rng: &mut Rng) -> Value {
    let n = rng.below(5);
    let list: Vec<Value> = (0..n)
        .map(|i| {
            let conditions: Vec<Value> = (0..rng.below(3)).map(|_| condition(rng)).collect();
            json!({
                "name": format!("p{i}"),
                "effect": if rng.chance(70) { "allow" } else { "deny" },
                "action": if rng.chance(70) { "read" } else { "*" },
                "priority": rng.below(3),
                "conditions": conditions
            })
        })
        .collect();
    Value::Array(list)
}

/// A record as the evaluator sees it (as a client wrote it) and the stored text of each typed
/// column (`None` for null).
struct Written {
    record: Map<String, Value>,
    stored: [Option<String>; 7],
}

fn records(rng: &mut Rng) -> Vec<Written> {
    (0..RECORDS)
        .map(|i| {
            let mut maybe = |v: Value| if rng.chance(10) { Value::Null } else { v };
            let amount = maybe(json!(i as u64 * 7 % 100));
            let score = maybe(json!((i as f64) * 1.25));
            let status = maybe(json!(STATUSES[i % 3]));
            let owner = maybe(json!(USERS[i % 3]));
            let paid = maybe(json!(i % 2 == 0));
            let label = maybe(json!(LABELS[i % LABELS.len()]));
            let mut pair = |(written, stored): (&str, &str)| {
                if rng.chance(10) { (Value::Null, None) } else { (json!(written), Some(stored.to_owned())) }
            };
            let total = pair(TOTALS[i % TOTALS.len()]);
            let (c_written, c_stored) = TOTALS[(i / 2) % TOTALS.len()];
            let ceiling = pair((c_written, &format!("{c_stored}0")));
            let due = pair((DUES[i % DUES.len()], DUES[i % DUES.len()]));
            let at = pair(ATS[i % ATS.len()]);
            let until = pair(ATS[(i / 3) % ATS.len()]);
            let reference = pair(REFS[i % REFS.len()]);
            let meta = if rng.chance(10) {
                (Value::Null, None)
            } else {
                (json!({ "k": 1 }), Some(r#"{"k": 1}"#.to_owned()))
            };
            let record = json!({ "invoiceNumber": format!("INV-{i:03}"), "amount": amount, "score": score,
                    "status": status, "owner": owner, "paid": paid, "label": label, "createdBy": "u",
                    "total": total.0, "ceiling": ceiling.0, "due": due.0, "at": at.0,
                    "until": until.0, "ref": reference.0, "meta": meta.0 })
                .as_object()
                .unwrap()
                .clone();
            Written {
                record,
                stored: [total.1, ceiling.1, due.1, at.1, until.1, reference.1, meta.1],
            }
        })
        .collect()
}

/// Inserts one record with its columns typed as the engine's tables hold them.
async fn insert(dialect: Dialect, pool: &Pool, w: &Written) {
    let table = qualified_table(dialect, "ent_invoice");
    let (id, now) = match dialect {
        Dialect::Postgres => ("gen_random_uuid()", "now()"),
        Dialect::Sqlite => ("lower(hex(randomblob(16)))", "'2026-01-01T00:00:00.000Z'"),
    };
    let typed = match dialect {
        Dialect::Postgres => {
            "$8::numeric, $9::numeric, $10::date, $11::timestamptz, $12::timestamptz, $13::uuid, $14::jsonb"
        }
        Dialect::Sqlite => "$8, $9, $10, $11, $12, $13, $14",
    };
    let sql = format!(
        "INSERT INTO {table} (tenant_id, realm_id, id, created_at, updated_at, created_by, \
         updated_by, invoice_number, amount, score, status, owner, paid, label, total, ceiling, \
         due, at, until, ref, meta) \
         VALUES ('t1', 'r1', {id}, {now}, {now}, 'u', 'u', $1, $2, $3, $4, $5, $6, $7, {typed})"
    );
    let r = &w.record;
    let text = |k: &str| r[k].as_str().map(str::to_owned);
    macro_rules! run {
        ($pool:expr) => {{
            let mut q = sqlx::query(&sql)
                .bind(text("invoiceNumber"))
                .bind(r["amount"].as_i64())
                .bind(r["score"].as_f64())
                .bind(text("status"))
                .bind(text("owner"))
                .bind(r["paid"].as_bool())
                .bind(text("label"));
            for stored in &w.stored {
                q = q.bind(stored.clone());
            }
            q.execute($pool).await.unwrap()
        }};
    }
    match pool {
        Pool::Pg(p) => {
            run!(p);
        }
        Pool::Lite(p) => {
            run!(p);
        }
    }
}

enum Pool {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

async fn setup(store: &dyn Store) {
    let actor = metaengine_store::testkit::actor();
    let audit = metaengine_store::NewAudit::success(
        metaengine_store::EventType::EntityCreate,
        &actor,
        "Invoice",
        None,
    );
    store
        .create_entity(
            &NewEntity {
                name: "Invoice".into(),
                description: None,
                created_by: "t".into(),
            },
            &audit,
        )
        .await
        .unwrap();
    store
        .create_version(
            &NewVersion {
                entity_name: "Invoice".into(),
                version: "v1".into(),
                schema: json!({ "fields": fields() }),
                created_by: "t".into(),
            },
            &audit,
        )
        .await
        .unwrap();
    store
        .activate_version("Invoice", "v1", &|_| vec![])
        .await
        .unwrap();
}

/// Runs every case: the rows the store's list returns under the row filter are exactly the
/// records `can()` lets the caller read.
async fn agree(dialect: Dialect, store: &dyn Store, pool: Pool) {
    setup(store).await;
    // The rows are written straight into the table with references to records that do not
    // exist (their values matter, not their targets): the database's enforcement of the
    // reference (SPEC §13) is switched off for this table.
    let link = metaengine_sql::ReferenceLink {
        table: "ent_invoice".into(),
        column: "ref".into(),
        target: "ent_invoice".into(),
    };
    for statement in metaengine_sql::drop_reference(dialect, &link.table, &link.name()) {
        match &pool {
            Pool::Pg(p) => sqlx::raw_sql(&statement).execute(p).await.map(|_| ()),
            Pool::Lite(p) => sqlx::raw_sql(&statement).execute(p).await.map(|_| ()),
        }
        .unwrap();
    }
    let mut rng = Rng(0x5EED_2026_1126);
    let written = records(&mut rng);
    for w in &written {
        insert(dialect, &pool, w).await;
    }
    let all: Vec<&Map<String, Value>> = written.iter().map(|w| &w.record).collect();
    let (mut checked, mut nonempty_filters) = (0, 0);
    for case in 0..CASES {
        let doc = json!({ "fields": fields(), "policies": policies(&mut rng) });
        let schema = match metaengine_core::validate_schema(
            &doc,
            &ValidationContext {
                entity_name: Some("Invoice"),
                entity_exists: &|_| true,
            },
        ) {
            Ok(schema) => schema,
            Err(problems) => panic!("case {case}: {problems:?}\n{doc}"),
        };
        let model = compile("Invoice", "v1", &schema, "t", "2026-11-26T00:00:00.000Z");
        let set = PolicySet::from_model(&model, None);
        let roles: Vec<String> = ROLES
            .iter()
            .filter(|_| rng.chance(40))
            .map(|r| r.to_string())
            .collect();
        let user: &&str = rng.pick(&USERS);
        let ctx = RequestContext {
            user_id: user,
            tenant_id: "t1",
            realm_id: "r1",
            roles: &roles,
        };
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|r| set.can(Action::Read, &ctx, Some(**r)).allowed)
            .map(|r| r["invoiceNumber"].as_str().unwrap().to_owned())
            .collect();
        let row_filter = set.row_filter(Action::Read, &ctx);
        if let RowFilter::Where(predicate) = &row_filter {
            nonempty_filters += 1;
            for r in &all {
                let name = r["invoiceNumber"].as_str().unwrap();
                assert_eq!(
                    eval_predicate(predicate, *r),
                    expected.contains(name),
                    "case {case}: eval_predicate and can() disagree on {r:?}\n{doc}"
                );
            }
        }
        let query = ListQuery {
            scope: Scope {
                tenant_id: "t1",
                realm_id: "r1",
            },
            row_filter: &row_filter,
            filters: &[],
            order: None,
            fields: None,
            limit: 100,
            offset: 0,
            after: None,
            expand: &[],
            related: &[],
        };
        let page = store
            .list_records(&model, &query, usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{doc}"));
        let got: BTreeSet<String> = page
            .records
            .iter()
            .map(|text| {
                let v: Value = serde_json::from_str(text).unwrap();
                v["invoiceNumber"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            got, expected,
            "case {case}: SQL and can() disagree\npolicies: {doc}\nroles: {roles:?} user: {}",
            ctx.user_id
        );
        checked += 1;
    }
    assert_eq!(checked, CASES);
    assert!(
        nonempty_filters > CASES / 4,
        "too few cases exercised SQL: {nonempty_filters}"
    );
}

#[tokio::test]
async fn sqlite_row_filters_match_the_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    let store = metaengine_store_sqlite::SqliteStore::connect(&url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = Pool::Lite(store.sqlite_pool().unwrap().clone());
    agree(Dialect::Sqlite, &store, pool).await;
}

#[tokio::test]
async fn postgres_row_filters_match_the_evaluator() {
    let db = metaengine_store_postgres::testing::TestDatabase::create().await;
    let store = metaengine_store_postgres::PostgresStore::connect(db.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = Pool::Pg(store.postgres_pool().unwrap().clone());
    agree(Dialect::Postgres, &store, pool).await;
}

/// The same on a database whose default collation orders text by language rules: the row filter
/// orders text in byte order like the evaluator, whatever the server's collation.
#[tokio::test]
async fn postgres_row_filters_match_the_evaluator_under_a_language_collation() {
    let db =
        metaengine_store_postgres::testing::TestDatabase::create_with_language_collation().await;
    let store = metaengine_store_postgres::PostgresStore::connect(db.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = Pool::Pg(store.postgres_pool().unwrap().clone());
    agree(Dialect::Postgres, &store, pool).await;
}
