//! The row filter, as SQL, against real tables: for seeded random policy sets, contexts and
//! records, the rows a `SELECT … WHERE <row filter>` returns are exactly the records the in-memory
//! evaluator allows to read (SPEC §6: the caller sees only rows it may read), on SQLite and on
//! PostgreSQL.

use std::collections::BTreeSet;

use metaengine_core::ident::{SYSTEM_COLUMNS, SYSTEM_FIELDS};
use metaengine_core::policy::{Action, PolicySet, RequestContext, RowFilter, eval_predicate};
use metaengine_core::{EntitySchema, compile};
use metaengine_sql::{Dialect, qualified_table, render_predicate};
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
const USERS: [&str; 2] = ["u1", "u2"];
const ROLES: [&str; 3] = ["admin", "user", "guest"];

fn fields() -> Value {
    json!([
        { "name": "invoiceNumber", "type": "string", "required": true },
        { "name": "amount", "type": "integer" },
        { "name": "status", "type": "string" },
        { "name": "owner", "type": "string" }
    ])
}

fn condition(rng: &mut Rng) -> Value {
    let ops = ["eq", "ne", "gt", "gte", "lt", "lte"];
    match rng.below(8) {
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
            json!({ "field": "record.owner", "operator": rng.pick(&["eq", "ne"]), "value": "context.userId" })
        }
        5 => {
            json!({ "field": "record.status", "operator": "contains", "value": rng.pick(&["a", "d", "en"]) })
        }
        6 => json!({ "field": "record.owner", "operator": "exists", "value": rng.chance(50) }),
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
            let amount = if rng.chance(10) { Value::Null } else { json!(rng.below(100)) };
            let status = if rng.chance(10) { Value::Null } else { json!(rng.pick(&STATUSES)) };
            let owner = if rng.chance(15) { Value::Null } else { json!(rng.pick(&USERS)) };
            json!({ "invoiceNumber": format!("INV-{i:03}"), "amount": amount, "status": status, "owner": owner })
                .as_object()
                .unwrap()
                .clone()
        })
        .collect()
}

fn bind<'q, DB: sqlx::Database>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    v: &Value,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match v {
        Value::String(s) => q.bind(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => q.bind(n.as_i64().unwrap()),
        Value::Number(n) => q.bind(n.as_f64().unwrap()),
        Value::Bool(b) => q.bind(*b),
        _ => q.bind(None::<String>),
    }
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

/// Runs every case; `insert` writes one record, `select` returns the invoice numbers a query
/// with binds returns.
async fn agree<I, S, FI, FS>(dialect: Dialect, insert: I, select: S)
where
    I: Fn(Map<String, Value>) -> FI,
    FI: std::future::Future<Output = ()>,
    S: Fn(String, Vec<Value>) -> FS,
    FS: std::future::Future<Output = BTreeSet<String>>,
{
    let mut rng = Rng(0x5EED_2026_1126);
    let all = records(&mut rng);
    for r in &all {
        insert(r.clone()).await;
    }
    let table = qualified_table(dialect, "ent_invoice");
    let (mut checked, mut nonempty_filters) = (0, 0);
    for case in 0..CASES {
        let doc = json!({ "fields": fields(), "policies": policies(&mut rng) });
        let schema: EntitySchema = serde_json::from_value(doc.clone()).unwrap();
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
        let column_of = |field: &str| -> Option<String> {
            model
                .field(field)
                .map(|f| f.column_name.clone())
                .or_else(|| {
                    SYSTEM_FIELDS
                        .iter()
                        .position(|s| *s == field)
                        .map(|i| SYSTEM_COLUMNS[i].to_owned())
                })
        };
        let got = match set.row_filter(Action::Read, &ctx) {
            RowFilter::Nothing => BTreeSet::new(),
            RowFilter::All => {
                select(
                    format!(
                        "SELECT invoice_number FROM {table} WHERE tenant_id = $1 AND realm_id = $2"
                    ),
                    vec![],
                )
                .await
            }
            RowFilter::Where(predicate) => {
                nonempty_filters += 1;
                for r in &all {
                    let name = r["invoiceNumber"].as_str().unwrap();
                    assert_eq!(
                        eval_predicate(&predicate, r),
                        expected.contains(name),
                        "case {case}: eval_predicate and can() disagree on {r:?}\n{doc}"
                    );
                }
                let (sql, values) = render_predicate(dialect, &predicate, &column_of, 3).unwrap();
                let query = format!(
                    "SELECT invoice_number FROM {table} WHERE tenant_id = $1 AND realm_id = $2 AND ({sql})"
                );
                select(query, values).await
            }
        };
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
    setup(&store).await;
    let pool = store.pool().clone();
    let insert = |r: Map<String, Value>| {
        let pool = pool.clone();
        async move {
            let q = sqlx::query(
                "INSERT INTO ent_invoice (tenant_id, realm_id, id, created_at, updated_at, created_by, \
                 updated_by, invoice_number, amount, status, owner) \
                 VALUES ('t1', 'r1', $1, 'x', 'x', 'u', 'u', $2, $3, $4, $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string());
            let q = bind(q, &r["invoiceNumber"]);
            let q = bind(q, &r["amount"]);
            let q = bind(q, &r["status"]);
            let q = bind(q, &r["owner"]);
            q.execute(&pool).await.unwrap();
        }
    };
    let select = |sql: String, values: Vec<Value>| {
        let pool = pool.clone();
        async move {
            let mut q = sqlx::query_scalar::<_, String>(&sql).bind("t1").bind("r1");
            for v in &values {
                q = match v {
                    Value::String(s) => q.bind(s.clone()),
                    Value::Number(n) if n.is_i64() || n.is_u64() => q.bind(n.as_i64().unwrap()),
                    Value::Number(n) => q.bind(n.as_f64().unwrap()),
                    Value::Bool(b) => q.bind(*b),
                    _ => q.bind(None::<String>),
                };
            }
            q.fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{sql}"))
                .into_iter()
                .collect()
        }
    };
    agree(Dialect::Sqlite, insert, select).await;
}

#[tokio::test]
async fn postgres_row_filters_match_the_evaluator() {
    let db = metaengine_store_postgres::testing::TestDatabase::create().await;
    let store = metaengine_store_postgres::PostgresStore::connect(db.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    setup(&store).await;
    let pool = store.pool().clone();
    let insert = |r: Map<String, Value>| {
        let pool = pool.clone();
        async move {
            let q = sqlx::query(
                "INSERT INTO core.ent_invoice (tenant_id, realm_id, id, created_at, updated_at, \
                 created_by, updated_by, invoice_number, amount, status, owner) \
                 VALUES ('t1', 'r1', gen_random_uuid(), now(), now(), 'u', 'u', $1, $2, $3, $4)",
            );
            let q = bind(q, &r["invoiceNumber"]);
            let q = match &r["amount"] {
                Value::Null => q.bind(None::<i64>),
                v => bind(q, v),
            };
            let q = bind(q, &r["status"]);
            let q = bind(q, &r["owner"]);
            q.execute(&pool).await.unwrap();
        }
    };
    let select = |sql: String, values: Vec<Value>| {
        let pool = pool.clone();
        async move {
            let mut q = sqlx::query_scalar::<_, String>(&sql).bind("t1").bind("r1");
            for v in &values {
                q = match v {
                    Value::String(s) => q.bind(s.clone()),
                    Value::Number(n) if n.is_i64() || n.is_u64() => q.bind(n.as_i64().unwrap()),
                    Value::Number(n) => q.bind(n.as_f64().unwrap()),
                    Value::Bool(b) => q.bind(*b),
                    _ => q.bind(None::<String>),
                };
            }
            q.fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{sql}"))
                .into_iter()
                .collect()
        }
    };
    agree(Dialect::Postgres, insert, select).await;
}
