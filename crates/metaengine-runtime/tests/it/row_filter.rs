//! The row filter, as SQL, against real tables: for seeded random policy sets (validated like a
//! stored schema), contexts and records, the rows the store's list returns are exactly the records
//! the in-memory evaluator allows to read (SPEC §6: the caller sees only rows it may read), on
//! SQLite, on PostgreSQL, and on PostgreSQL with a language collation. Integers, numbers (with
//! integral and fractional literals), booleans, text with byte-order comparisons, and two record
//! fields compared with each other.

use std::collections::BTreeSet;

use metaengine_core::policy::{Action, PolicySet, RequestContext, RowFilter, eval_predicate};
use metaengine_core::{ValidationContext, compile};
use metaengine_sql::query::{ListQuery, Scope};
use metaengine_sql::{Dialect, qualified_table};
use metaengine_store::{NewEntity, NewVersion, Store};
use serde_json::{Map, Value, json};

const CASES: usize = 250;
const RECORDS: usize = 40;

/// A small deterministic generator (SplitMix64): the same seed gives the same cases everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const STATUSES: [&str; 3] = ["draft", "sent", "paid"];
const USERS: [&str; 3] = ["u1", "u2", "u"];
const ROLES: [&str; 3] = ["admin", "user", "guest"];
/// Labels whose order differs between byte order and language collations (`B` < `a` in bytes).
const LABELS: [&str; 6] = ["apple", "Banana", "cherry", "\u{c4}pfel", "b", "Zed"];

fn fields() -> Value {
    json!([
        { "name": "invoiceNumber", "type": "string", "required": true },
        { "name": "amount", "type": "integer" },
        { "name": "score", "type": "number" },
        { "name": "status", "type": "string" },
        { "name": "owner", "type": "string" },
        { "name": "paid", "type": "boolean" },
        { "name": "label", "type": "string" }
    ])
}

fn condition(rng: &mut Rng) -> Value {
    let ops = ["eq", "ne", "gt", "gte", "lt", "lte"];
    match rng.below(12) {
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
            ]);
            json!({ "field": format!("record.{l}"), "operator": rng.pick(&ops), "value": format!("record.{r}") })
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

fn records(rng: &mut Rng) -> Vec<Map<String, Value>> {
    (0..RECORDS)
        .map(|i| {
            let mut maybe = |v: Value| if rng.chance(10) { Value::Null } else { v };
            let amount = maybe(json!(i as u64 * 7 % 100));
            let score = maybe(json!((i as f64) * 1.25));
            let status = maybe(json!(STATUSES[i % 3]));
            let owner = maybe(json!(USERS[i % 3]));
            let paid = maybe(json!(i % 2 == 0));
            let label = maybe(json!(LABELS[i % LABELS.len()]));
            json!({ "invoiceNumber": format!("INV-{i:03}"), "amount": amount, "score": score,
                    "status": status, "owner": owner, "paid": paid, "label": label, "createdBy": "u" })
                .as_object()
                .unwrap()
                .clone()
        })
        .collect()
}

/// Inserts one record with its columns typed as the engine's tables hold them.
async fn insert(dialect: Dialect, pool: &Pool, r: &Map<String, Value>) {
    let table = qualified_table(dialect, "ent_invoice");
    let (id, now) = match dialect {
        Dialect::Postgres => ("gen_random_uuid()", "now()"),
        Dialect::Sqlite => ("lower(hex(randomblob(16)))", "'x'"),
    };
    let sql = format!(
        "INSERT INTO {table} (tenant_id, realm_id, id, created_at, updated_at, created_by, \
         updated_by, invoice_number, amount, score, status, owner, paid, label) \
         VALUES ('t1', 'r1', {id}, {now}, {now}, 'u', 'u', $1, $2, $3, $4, $5, $6, $7)"
    );
    let text = |k: &str| r[k].as_str().map(str::to_owned);
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(&sql)
                .bind(text("invoiceNumber"))
                .bind(r["amount"].as_i64())
                .bind(r["score"].as_f64())
                .bind(text("status"))
                .bind(text("owner"))
                .bind(r["paid"].as_bool())
                .bind(text("label"))
                .execute($pool)
                .await
                .unwrap()
        };
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
    let mut rng = Rng(0x5EED_2026_1126);
    let all = records(&mut rng);
    for r in &all {
        insert(dialect, &pool, r).await;
    }
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
            .filter(|r| set.can(Action::Read, &ctx, Some(*r)).allowed)
            .map(|r| r["invoiceNumber"].as_str().unwrap().to_owned())
            .collect();
        let row_filter = set.row_filter(Action::Read, &ctx);
        if let RowFilter::Where(predicate) = &row_filter {
            nonempty_filters += 1;
            for r in &all {
                let name = r["invoiceNumber"].as_str().unwrap();
                assert_eq!(
                    eval_predicate(predicate, r),
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
    let pool = Pool::Lite(store.pool().clone());
    agree(Dialect::Sqlite, &store, pool).await;
}

#[tokio::test]
async fn postgres_row_filters_match_the_evaluator() {
    let db = metaengine_store_postgres::testing::TestDatabase::create().await;
    let store = metaengine_store_postgres::PostgresStore::connect(db.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = Pool::Pg(store.pool().clone());
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
    let pool = Pool::Pg(store.pool().clone());
    agree(Dialect::Postgres, &store, pool).await;
}
