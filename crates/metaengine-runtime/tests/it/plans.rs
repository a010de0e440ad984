//! Query plans (issue 19): a list ordered by an indexed field, by `createdAt` or `id`, in either
//! direction, with a filter and with a keyset cursor, is served in index order without a sort
//! step, on SQLite and on PostgreSQL; a get uses the primary key once the engine has analyzed the
//! table; on PostgreSQL a list's total is counted from the index alone once the engine has
//! vacuumed it. Plans are deterministic, so these are real assertions, not timings.

use std::sync::Arc;

use metaengine_core::record::{Filter, FilterOp, FilterValue};
use metaengine_core::{SqlValue, ValidationContext, compile, validate_schema};
use metaengine_runtime::{AccessConfig, Actor, Registry};
use metaengine_sql::Dialect;
use metaengine_sql::query::{Cursor, ListQuery, Order, QueryBuilder, Scope, Statement};
use metaengine_store::Store;
use serde_json::{Value, json};

fn schema() -> Value {
    json!({
        "fields": [
            { "name": "invoiceNumber", "type": "string", "required": true, "indexed": true },
            { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"] },
            { "name": "dueDate", "type": "date" },
            { "name": "totalAmount", "type": "decimal" }
        ],
        "indexes": [{ "fields": ["status", "-dueDate"] }],
        "policies": [{ "name": "all", "effect": "allow", "action": "*" }]
    })
}

async fn activate(store: Arc<dyn Store>) -> metaengine_core::CompiledModel {
    let admin = Actor {
        user_id: "root".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    };
    let registry = Registry::new(store, AccessConfig::default());
    registry
        .create_entity(&admin, "Invoice", None)
        .await
        .unwrap();
    registry
        .create_version(&admin, "Invoice", "v1", schema())
        .await
        .unwrap();
    registry.activate(&admin, "Invoice", "v1").await.unwrap();
    let ctx = ValidationContext {
        entity_name: Some("Invoice"),
        entity_exists: &|_| true,
    };
    let schema = validate_schema(&schema(), &ctx).unwrap();
    compile("Invoice", "v1", &schema, "t", "2026-12-03T00:00:00.000Z")
}

const SCOPE: Scope<'static> = Scope {
    tenant_id: "t1",
    realm_id: "r1",
};

fn paid() -> Vec<Filter> {
    vec![Filter {
        field: "status".into(),
        op: FilterOp::Eq,
        value: FilterValue::One(SqlValue::Text("paid".into())),
    }]
}

/// Every list whose order an index serves, as `(what, statement)`.
fn lists(dialect: Dialect, model: &metaengine_core::CompiledModel) -> Vec<(String, Statement)> {
    let b = QueryBuilder::new(dialect, model);
    let all = metaengine_core::policy::RowFilter::All;
    let paid = paid();
    let cursor = Cursor {
        values: vec![
            SqlValue::Text("2026-06-01".into()),
            SqlValue::Text("0190f1a2-3b4c-7d5e-8f60-718293a4b5c6".into()),
        ],
    };
    let mut out = Vec::new();
    for (field, filtered) in [
        ("dueDate", true),
        ("invoiceNumber", false),
        ("createdAt", false),
        ("id", false),
    ] {
        for descending in [false, true] {
            let order = Order {
                field: field.into(),
                descending,
            };
            let q = ListQuery {
                scope: SCOPE,
                row_filter: &all,
                filters: if filtered { &paid } else { &[] },
                order: Some(&order),
                fields: None,
                limit: 20,
                offset: 0,
                after: None,
                expand: &[],
                related: &[],
            };
            let dir = if descending { "desc" } else { "asc" };
            out.push((format!("{field} {dir}"), b.list(&q).unwrap()));
            if field == "dueDate" {
                let after = ListQuery {
                    after: Some(&cursor),
                    expand: &[],
                    related: &[],
                    ..q
                };
                out.push((format!("{field} {dir} after"), b.list(&after).unwrap()));
            }
        }
    }
    let default = ListQuery {
        scope: SCOPE,
        row_filter: &all,
        filters: &[],
        order: None,
        fields: None,
        limit: 20,
        offset: 0,
        after: None,
        expand: &[],
        related: &[],
    };
    out.push(("default order".into(), b.list(&default).unwrap()));
    out
}

fn get(dialect: Dialect, model: &metaengine_core::CompiledModel) -> Statement {
    QueryBuilder::new(dialect, model)
        .get(SCOPE, "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6", None, &[])
        .unwrap()
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for v in $binds {
            q = match v {
                SqlValue::Null => q.bind(None::<String>),
                SqlValue::Text(s) => q.bind(s.clone()),
                SqlValue::Int(i) => q.bind(*i),
                SqlValue::Float(f) => q.bind(*f),
                SqlValue::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}

#[tokio::test]
async fn sqlite_lists_are_served_in_index_order() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/test.db", dir.path().display());
    let store = metaengine_store_sqlite::SqliteStore::connect(&url)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = store.sqlite_pool().unwrap().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let model = activate(store.clone()).await;
    sqlx::query(
        "INSERT INTO ent_invoice (tenant_id, realm_id, id, created_at, updated_at, created_by, \
         updated_by, invoice_number, status, due_date, total_amount) \
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 4000) \
         SELECT CASE WHEN n % 4 = 0 THEN 't2' ELSE 't1' END, 'r1', lower(hex(randomblob(16))), \
         '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'u', 'u', 'INV-' || n, \
         CASE n % 3 WHEN 0 THEN 'draft' WHEN 1 THEN 'sent' ELSE 'paid' END, \
         CASE WHEN n % 10 = 0 THEN NULL ELSE date('2026-01-01', '+' || (n % 365) || ' days') END, \
         CAST(n AS TEXT) FROM g",
    )
    .execute(&pool)
    .await
    .unwrap();
    // The analysis reports the rows it found (the statistics' threshold depends on it).
    assert_eq!(store.analyze_records(&model).await.unwrap(), 4000);
    let explain = |s: Statement| {
        let pool = pool.clone();
        async move {
            let sql = format!("EXPLAIN QUERY PLAN {}", s.sql);
            let q = bind_all!(sqlx::query_as::<_, (i64, i64, i64, String)>(&sql), &s.binds);
            let rows = q.fetch_all(&pool).await.unwrap();
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
        }
    };
    for (what, statement) in lists(Dialect::Sqlite, &model) {
        let plan = explain(statement).await;
        assert!(!plan.contains("TEMP B-TREE"), "{what}: sorted\n{plan}");
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
            "{what}\n{plan}"
        );
    }
    let plan = explain(get(Dialect::Sqlite, &model)).await;
    assert!(
        plan.contains("sqlite_autoindex_ent_invoice_1 (tenant_id=? AND id=?)"),
        "get\n{plan}"
    );
}

#[tokio::test]
async fn postgres_lists_are_served_in_index_order() {
    let db =
        metaengine_store_postgres::testing::TestDatabase::create_with_language_collation().await;
    let store = metaengine_store_postgres::PostgresStore::connect(db.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = store.postgres_pool().unwrap().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let model = activate(store.clone()).await;
    sqlx::query(
        "INSERT INTO core.ent_invoice (tenant_id, realm_id, id, created_at, updated_at, created_by, \
         updated_by, invoice_number, status, due_date, total_amount) \
         SELECT CASE WHEN g % 4 = 0 THEN 't2' ELSE 't1' END, 'r1', gen_random_uuid(), \
         now() - g * interval '1 second', now(), 'u', 'u', 'INV-' || g, \
         (ARRAY['draft', 'sent', 'paid'])[1 + g % 3], \
         CASE WHEN g % 10 = 0 THEN NULL ELSE date '2026-01-01' + (g % 365) END, g \
         FROM generate_series(1, 4000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(store.analyze_records(&model).await.unwrap(), 4000);
    let explain = |s: Statement, no_sort: bool| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            // With sorting priced out, a Sort node is left only where no index gives the order.
            let setting = if no_sort { "off" } else { "on" };
            sqlx::query(&format!("SET enable_sort = {setting}"))
                .execute(&mut *conn)
                .await
                .unwrap();
            let sql = format!("EXPLAIN {}", s.sql);
            let q = bind_all!(sqlx::query_scalar::<_, String>(&sql), &s.binds);
            let rows = q.fetch_all(&mut *conn).await.unwrap();
            sqlx::query("RESET enable_sort")
                .execute(&mut *conn)
                .await
                .unwrap();
            rows.join("\n")
        }
    };
    for (what, statement) in lists(Dialect::Postgres, &model) {
        let plan = explain(statement, true).await;
        assert!(!plan.contains("Sort"), "{what}: sorted\n{plan}");
        assert!(plan.contains("Index"), "{what}\n{plan}");
    }
    let plan = explain(get(Dialect::Postgres, &model), false).await;
    assert!(plan.contains("ent_invoice_pkey"), "get\n{plan}");

    // The total of a filtered list is counted from the index alone: the engine's statistics step
    // also vacuumed the freshly filled table (autovacuum may be off), so no row is fetched from
    // the heap to check its visibility.
    let count = QueryBuilder::new(Dialect::Postgres, &model)
        .count(
            SCOPE,
            &metaengine_core::policy::RowFilter::All,
            &paid(),
            &[],
        )
        .unwrap();
    let sql = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {}", count.sql);
    let q = bind_all!(sqlx::query_scalar::<_, String>(&sql), &count.binds);
    let plan = q.fetch_all(&pool).await.unwrap().join("\n");
    assert!(plan.contains("Index Only Scan"), "count\n{plan}");
    assert!(plan.contains("Heap Fetches: 0"), "count\n{plan}");

    // The next analysis, after a few writes (far below autovacuum's vacuum thresholds), only
    // analyzes: no VACUUM of the whole table and its indexes for them.
    let runs = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT vacuum_count, analyze_count FROM pg_stat_user_tables \
             WHERE relid = 'core.ent_invoice'::regclass",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (vacuums, analyses) = runs().await;
    sqlx::query(
        "INSERT INTO core.ent_invoice (tenant_id, realm_id, id, created_at, updated_at, \
         created_by, updated_by, invoice_number, status, total_amount) \
         SELECT 't1', 'r1', gen_random_uuid(), now(), now(), 'u', 'u', 'MORE-' || g, 'paid', g \
         FROM generate_series(1, 100) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(store.analyze_records(&model).await.unwrap(), 4100);
    assert_eq!(runs().await, (vacuums, analyses + 1));
}

/// Imports `rows` invoices through the importer `metaengine data import` uses.
async fn import(store: Arc<dyn Store>, rows: usize, tag: &str) {
    use metaengine_runtime::data::{ImportOptions, ImportRow};
    use metaengine_runtime::{
        AuditWriter, AuditWriterConfig, CacheConfig, DataLimits, DataService, ModelCache,
        PolicyGate,
    };
    let cache = ModelCache::new(store.clone(), CacheConfig::default())
        .await
        .unwrap();
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let gate = PolicyGate::new(&AccessConfig::default(), Some(writer.clone()), false);
    let data = DataService::new(
        store,
        cache,
        gate,
        writer,
        DataLimits::default(),
        metaengine_runtime::ChangeSignal::default(),
    );
    let actor = Actor {
        user_id: "u".into(),
        tenant_id: "t1".into(),
        realm_id: "r1".into(),
        roles: vec!["admin".into()],
    };
    let mut importer = data.importer(actor, "Invoice", ImportOptions::default());
    for i in 0..rows {
        let record = json!({ "invoiceNumber": format!("{tag}-{i}"), "status": "paid" });
        importer
            .push(ImportRow {
                line: i as u64 + 1,
                record: Ok(record),
            })
            .await
            .unwrap();
    }
    let reports = importer.finish().await.unwrap();
    assert!(reports.iter().all(|r| r.rejected.is_empty()));
}

/// An import analyzes its table when it ends, if it wrote enough to change the statistics
/// (autovacuum's rule: 500 rows plus 10 % of the table): the planner knows the rows of a freshly
/// imported table, and 20 more rows in a table of 1,200 do not cost another analysis, nor do 600
/// in a process that did not analyze the table itself.
#[tokio::test]
async fn an_import_analyzes_its_table_when_it_changed_enough() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/test.db", dir.path().display());
    let sqlite = metaengine_store_sqlite::SqliteStore::connect(&url)
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let lite = sqlite.sqlite_pool().unwrap().clone();
    let db = metaengine_store_postgres::testing::TestDatabase::create().await;
    let postgres = metaengine_store_postgres::PostgresStore::connect(db.url())
        .await
        .unwrap();
    postgres.migrate().await.unwrap();
    let pg = postgres.postgres_pool().unwrap().clone();
    let stores: [Arc<dyn Store>; 2] = [Arc::new(sqlite), Arc::new(postgres)];
    for (i, store) in stores.into_iter().enumerate() {
        activate(store.clone()).await;
        let analyzed = || {
            let (lite, pg) = (lite.clone(), pg.clone());
            async move {
                if i == 0 {
                    sqlx::query_scalar::<_, String>(
                        "SELECT stat FROM sqlite_stat1 WHERE tbl = 'ent_invoice' LIMIT 1",
                    )
                    .fetch_optional(&lite)
                    .await
                    .unwrap()
                    .and_then(|s| s.split(' ').next().and_then(|n| n.parse::<i64>().ok()))
                } else {
                    let n = sqlx::query_scalar::<_, f32>(
                        "SELECT reltuples FROM pg_class WHERE oid = 'core.ent_invoice'::regclass",
                    )
                    .fetch_one(&pg)
                    .await
                    .unwrap();
                    (n >= 0.0).then_some(n as i64)
                }
            }
        };
        // Nothing known yet (PostgreSQL's index builds record an empty table as 0 rows).
        assert_eq!(analyzed().await.unwrap_or(0), 0, "backend {i}");
        import(store.clone(), 1_200, "A").await;
        assert_eq!(analyzed().await, Some(1_200), "backend {i}");
        import(store.clone(), 20, "B").await;
        assert_eq!(
            analyzed().await,
            Some(1_200),
            "backend {i}: 20 rows change nothing"
        );
        // Each import is a data service of its own, as after a restart: it learns the size the
        // last analysis found instead of analyzing after 500 rows (600 < 500 + 10 % of 1,200).
        import(store.clone(), 600, "C").await;
        assert_eq!(
            analyzed().await,
            Some(1_200),
            "backend {i}: 600 rows in a table of 1,200 (a new process)"
        );
        import(store, 700, "D").await;
        assert_eq!(analyzed().await, Some(2_520), "backend {i}: 700 rows do");
    }
}
