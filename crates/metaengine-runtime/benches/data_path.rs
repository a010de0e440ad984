//! The embedded data path on PostgreSQL (issue #5's numbers): import N rows (default 1,000,000)
//! of the seed's Invoice across 100 tenants × 2 realms through the importer the CLI uses, then
//! `DataService::get` and `DataService::list` against hand-written sqlx queries that run the same
//! SQL text on the same pool and write the record's JSON by hand, interleaved in rounds, median
//! and p99 of each.
//!
//! ```sh
//! cargo bench -p metaengine-runtime --bench data_path                  # 1,000,000 rows
//! METAENGINE_BENCH_ROWS=100000 cargo bench -p metaengine-runtime --bench data_path
//! cargo bench -p metaengine-runtime --bench data_path -- --rows 100000
//! ```
//!
//! It creates its own database on the server of `METAENGINE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and drops it at the end. Timings are printed, never
//! asserted; the only assertions check that the hand-written SQL is the engine's, byte for byte,
//! and that both sides return the same records.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator of the `metaengine` binary, whose import this measures: with the system
/// allocator, the large audit rows of an import (every record's values) cost a page fault
/// per allocation, which the command line does not pay.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::{DateTime, NaiveDate, Utc};
use metaengine_core::policy::RowFilter;
use metaengine_runtime::data::{ImportOptions, ImportRow};
use metaengine_runtime::{
    AccessConfig, Actor, AuditWriter, AuditWriterConfig, CacheConfig, DataLimits, DataService,
    FilterParam, ListRequest, ModelCache, PolicyGate, Registry,
};
use metaengine_sql::Dialect;
use metaengine_sql::query::{Filter, FilterOp, FilterValue, ListQuery, Order, QueryBuilder, Scope};
use metaengine_store::Store;
use metaengine_store_postgres::PostgresStore;
use metaengine_store_postgres::testing::TestDatabase;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

const TENANTS: usize = 100;
const REALMS: usize = 2;
const STATUSES: [&str; 3] = ["draft", "sent", "paid"];

/// The engine's SELECT of one record (checked against the query builder at start).
const GET_SQL: &str = r#"SELECT "id"::uuid AS "__r_id", "invoice_number"::text AS "__r_invoice_number", "customer_id"::text AS "__r_customer_id", "total_amount"::text AS "__r_total_amount", "status"::text AS "__r_status", "due_date"::date AS "__r_due_date", "tenant_id"::text AS "__r_tenant_id", "realm_id"::text AS "__r_realm_id", "created_at"::timestamptz AS "__r_created_at", "updated_at"::timestamptz AS "__r_updated_at", "created_by"::text AS "__r_created_by", "updated_by"::text AS "__r_updated_by", "row_version"::int8 AS "__r_row_version" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" = $3::uuid"#;

/// The engine's page of 20 (`status` eq, `createdAt` descending; fetches 21 to see a next page).
const LIST_SQL: &str = r#"SELECT "id"::uuid AS "__r_id", "invoice_number"::text AS "__r_invoice_number", "customer_id"::text AS "__r_customer_id", "total_amount"::text AS "__r_total_amount", "status"::text AS "__r_status", "due_date"::date AS "__r_due_date", "tenant_id"::text AS "__r_tenant_id", "realm_id"::text AS "__r_realm_id", "created_at"::timestamptz AS "__r_created_at", "updated_at"::timestamptz AS "__r_updated_at", "created_by"::text AS "__r_created_by", "updated_by"::text AS "__r_updated_by", "row_version"::int8 AS "__r_row_version", to_char("created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "__k", "id"::text AS "__id" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "status" = $3 ORDER BY "created_at" DESC, "id" DESC LIMIT 21"#;

/// The engine's count for the same filter.
const COUNT_SQL: &str = r#"SELECT COUNT(*) AS "count" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "status" = $3"#;

fn rows_wanted() -> usize {
    let mut args = std::env::args().skip_while(|a| a != "--rows");
    if args.next().is_some()
        && let Some(n) = args.next()
    {
        return n.replace('_', "").parse().expect("--rows takes a number");
    }
    std::env::var("METAENGINE_BENCH_ROWS")
        .ok()
        .map(|n| {
            n.replace('_', "")
                .parse()
                .expect("METAENGINE_BENCH_ROWS is a number")
        })
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            1_000_000
        } else {
            // Not under `cargo bench` (e.g. `cargo test --all-targets` in CI): a smoke run that
            // checks the benchmark still works, without its cost; its figures mean nothing.
            SMOKE_ROWS
        })
}

/// Rows of the smoke run that `cargo test` makes of this benchmark.
const SMOKE_ROWS: usize = 4_000;

fn actor(tenant: usize, realm: usize, roles: &[&str]) -> Actor {
    Actor {
        user_id: "bench".into(),
        tenant_id: format!("t{tenant:03}"),
        realm_id: format!("r{realm}"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

/// One NDJSON line, as `metaengine data import` reads it.
fn line(tenant: usize, realm: usize, i: usize) -> String {
    format!(
        r#"{{"invoiceNumber": "INV-{tenant:03}-{realm}-{i:07}", "customerId": "cust-{:04}", "totalAmount": "{}.{:02}", "status": "{}", "dueDate": "2026-{:02}-{:02}"}}"#,
        i % 1000,
        (i * 37) % 10_000,
        i % 100,
        STATUSES[i % 3],
        1 + i % 12,
        1 + i % 28
    )
}

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat` (Linux; clock ticks of
/// 10 ms); `None` elsewhere.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds used so far by the PostgreSQL backends serving the benchmark's database (the
/// server runs on this machine).
async fn backend_cpu_seconds(pool: &PgPool) -> Option<f64> {
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .fetch_all(pool)
            .await
            .ok()?;
    pids.iter().map(|p| cpu_seconds(&p.to_string())).sum()
}

struct Env {
    _db: TestDatabase,
    pool: PgPool,
    data: DataService,
    writer: AuditWriter,
    cache: ModelCache,
}

async fn env() -> Env {
    let db = TestDatabase::create().await;
    let pg = PostgresStore::connect(db.url()).await.unwrap();
    pg.migrate().await.unwrap();
    let pool = pg.postgres_pool().expect("a PostgreSQL store").clone();
    let store: Arc<dyn Store> = Arc::new(pg);
    let access = AccessConfig::default();
    let registry = Registry::new(store.clone(), access.clone());
    let root = Actor {
        user_id: "root".into(),
        tenant_id: "default".into(),
        realm_id: "default".into(),
        roles: vec!["admin".into()],
    };
    let schema: Value =
        serde_json::from_str(include_str!("../../../examples/invoice-v1.json")).unwrap();
    registry
        .create_entity(&root, "Invoice", None)
        .await
        .unwrap();
    registry
        .create_version(&root, "Invoice", "v1", schema)
        .await
        .unwrap();
    registry.activate(&root, "Invoice", "v1").await.unwrap();
    let cache = ModelCache::new(store.clone(), CacheConfig::default())
        .await
        .unwrap();
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let gate = PolicyGate::new(&access, Some(writer.clone()), false);
    let data = DataService::new(
        store,
        cache.clone(),
        gate,
        writer.clone(),
        DataLimits::default(),
        metaengine_runtime::ChangeSignal::default(),
    );
    Env {
        _db: db,
        pool,
        data,
        writer,
        cache,
    }
}

/// Imports `rows` rows, `rows / 200` per tenant and realm; returns the elapsed time.
async fn import(env: &Env, rows: usize) -> Duration {
    let per_scope = rows / (TENANTS * REALMS);
    let started = Instant::now();
    let mut imported = 0;
    for tenant in 0..TENANTS {
        for realm in 1..=REALMS {
            let mut importer = env.data.importer(
                actor(tenant, realm, &["admin"]),
                "Invoice",
                ImportOptions::default(),
            );
            let mut reports = Vec::new();
            for i in 0..per_scope {
                let text = line(tenant, realm, i);
                let record = serde_json::from_str::<Value>(&text)
                    .map_err(|e| vec![metaengine_core::Problem::new("", e.to_string())]);
                reports.extend(
                    importer
                        .push(ImportRow {
                            line: i as u64 + 1,
                            record,
                        })
                        .await
                        .unwrap(),
                );
            }
            reports.extend(importer.finish().await.unwrap());
            for report in reports {
                assert!(report.rejected.is_empty(), "{:?}", report.rejected);
                imported += report.imported;
            }
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(imported as usize, per_scope * TENANTS * REALMS);
    elapsed
}

/// Checks that the hand-written SQL is exactly what the engine builds.
async fn check_sql(env: &Env, id: &str) {
    let model = env.cache.active_model("Invoice").await.unwrap();
    let builder = QueryBuilder::new(Dialect::Postgres, &model);
    let scope = Scope {
        tenant_id: "t042",
        realm_id: "r1",
    };
    let get = builder.get(scope, id, None, &[]).unwrap();
    assert_eq!(get.sql, GET_SQL, "GET_SQL must be the engine's statement");
    let filters = [Filter {
        field: "status".into(),
        op: FilterOp::Eq,
        value: FilterValue::One(metaengine_core::SqlValue::Text("sent".into())),
    }];
    let order = Order {
        field: "createdAt".into(),
        descending: true,
    };
    let list = builder
        .list(&ListQuery {
            scope,
            row_filter: &RowFilter::All,
            filters: &filters,
            order: Some(&order),
            fields: None,
            limit: 20,
            offset: 0,
            after: None,
            expand: &[],
            related: &[],
        })
        .unwrap();
    assert_eq!(
        list.sql, LIST_SQL,
        "LIST_SQL must be the engine's statement"
    );
    let count = builder
        .count(scope, &RowFilter::All, &filters, &[])
        .unwrap();
    assert_eq!(
        count.sql, COUNT_SQL,
        "COUNT_SQL must be the engine's statement"
    );
}

/// The record's JSON from the row's columns, written by hand.
fn hand_record(r: &PgRow) -> String {
    let time = |i: usize| {
        r.get::<DateTime<Utc>, _>(i)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    serde_json::json!({
        "id": r.get::<uuid::Uuid, _>(0).to_string(),
        "invoiceNumber": r.get::<Option<String>, _>(1),
        "customerId": r.get::<Option<String>, _>(2),
        "totalAmount": r.get::<Option<String>, _>(3),
        "status": r.get::<Option<String>, _>(4),
        "dueDate": r.get::<Option<NaiveDate>, _>(5).map(|d| d.format("%Y-%m-%d").to_string()),
        "tenantId": r.get::<String, _>(6),
        "realmId": r.get::<String, _>(7),
        "createdAt": time(8),
        "updatedAt": time(9),
        "createdBy": r.get::<String, _>(10),
        "updatedBy": r.get::<String, _>(11),
        "rowVersion": r.get::<i64, _>(12),
    })
    .to_string()
}

async fn hand_get(pool: &PgPool, actor: &Actor, id: &str) -> String {
    let row = sqlx::query(GET_SQL)
        .bind(&actor.tenant_id)
        .bind(&actor.realm_id)
        .bind(id)
        .fetch_optional(pool)
        .await
        .unwrap()
        .unwrap();
    hand_record(&row)
}

async fn hand_list(pool: &PgPool, actor: &Actor, count: bool) -> (Vec<String>, Option<i64>) {
    let rows = sqlx::query(LIST_SQL)
        .bind(&actor.tenant_id)
        .bind(&actor.realm_id)
        .bind("sent")
        .fetch_all(pool)
        .await
        .unwrap();
    let records: Vec<String> = rows.iter().take(20).map(hand_record).collect();
    if let Some(last) = rows.get(19) {
        let _key: Option<String> = last.get("__k");
        let _id: String = last.get("__id");
    }
    let total = if count {
        let row = sqlx::query(COUNT_SQL)
            .bind(&actor.tenant_id)
            .bind(&actor.realm_id)
            .bind("sent")
            .fetch_one(pool)
            .await
            .unwrap();
        Some(row.get::<i64, _>("count"))
    } else {
        None
    };
    (records, total)
}

fn list_request(count: bool) -> ListRequest {
    ListRequest {
        page_size: Some(20),
        order_by: Some("createdAt".into()),
        descending: true,
        filters: vec![FilterParam::new("status", "eq", "sent")],
        count,
        ..ListRequest::default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    List,
    ListCount,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get by id",
            Op::List => "list 20, status eq, createdAt desc, count off",
            Op::ListCount => "list 20, status eq, createdAt desc, count on",
        }
    }
}

/// One call, engine or hand-written, on the `i`-th sample (a tenant/realm and one of its ids).
async fn call(env: &Env, op: Op, engine: bool, samples: &[(Actor, String)], i: usize) -> Duration {
    let (actor, id) = &samples[i % samples.len()];
    let started = Instant::now();
    match (op, engine) {
        (Op::Get, true) => {
            std::hint::black_box(env.data.get(actor, "Invoice", id, &[]).await.unwrap());
        }
        (Op::Get, false) => {
            std::hint::black_box(hand_get(&env.pool, actor, id).await);
        }
        (Op::List | Op::ListCount, true) => {
            let req = list_request(op == Op::ListCount);
            std::hint::black_box(env.data.list(actor, "Invoice", &req).await.unwrap());
        }
        (Op::List | Op::ListCount, false) => {
            std::hint::black_box(hand_list(&env.pool, actor, op == Op::ListCount).await);
        }
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The latencies of one side and the CPU seconds it cost (this process, the database's
/// backends), the background audit writer included.
#[derive(Default)]
struct Side {
    latencies: Vec<Duration>,
    own_cpu: f64,
    backend_cpu: f64,
}

/// Interleaved rounds of `per_round` calls per side (the side that goes first alternates).
async fn measure(
    env: &Env,
    op: Op,
    samples: &[(Actor, String)],
    rounds: usize,
    per_round: usize,
) -> (Side, Side) {
    let (mut engine, mut hand) = (Side::default(), Side::default());
    for i in 0..200 {
        call(env, op, true, samples, i).await;
        call(env, op, false, samples, i).await;
    }
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for side in order {
            let into = if side { &mut engine } else { &mut hand };
            let own = cpu_seconds("self");
            let backends = backend_cpu_seconds(&env.pool).await;
            for k in 0..per_round {
                let d = call(env, op, side, samples, round * per_round + k).await;
                into.latencies.push(d);
            }
            if side {
                // The engine's data.read audit rows are part of its cost: write them now.
                env.writer.flush().await;
            }
            into.own_cpu += own.zip(cpu_seconds("self")).map_or(0.0, |(a, b)| b - a);
            into.backend_cpu += backends
                .zip(backend_cpu_seconds(&env.pool).await)
                .map_or(0.0, |(a, b)| b - a);
        }
    }
    engine.latencies.sort();
    hand.latencies.sort();
    (engine, hand)
}

async fn run(rows: usize) {
    println!(
        "data path benchmark: PostgreSQL, embedded library (no HTTP), Invoice of examples/invoice-v1.json"
    );
    let env = env().await;

    let own_before = cpu_seconds("self");
    let backends_before = backend_cpu_seconds(&env.pool).await;
    let elapsed = import(&env, rows).await;
    let own = own_before.zip(cpu_seconds("self")).map(|(a, b)| b - a);
    let backends = backends_before
        .zip(backend_cpu_seconds(&env.pool).await)
        .map(|(a, b)| b - a);
    let imported = rows / (TENANTS * REALMS) * TENANTS * REALMS;
    println!(
        "import: {imported} rows across {TENANTS} tenants x {REALMS} realms in {:.2} s = {:.0} rows/s \
         (batches of 1,000, 2 in flight, one data.create audit row per batch)",
        elapsed.as_secs_f64(),
        imported as f64 / elapsed.as_secs_f64()
    );
    if let (Some(own), Some(backends)) = (own, backends) {
        println!(
            "import CPU: this process {own:.2} s ({:.1} µs/row: generating and parsing the NDJSON \
             lines, validating, building statements), PostgreSQL backends {backends:.2} s ({:.1} µs/row); \
             {:.1} CPU-s over {:.2} s of wall time",
            own * 1e6 / imported as f64,
            backends * 1e6 / imported as f64,
            own + backends,
            elapsed.as_secs_f64()
        );
    }
    sqlx::query("VACUUM ANALYZE core.ent_invoice")
        .execute(&env.pool)
        .await
        .unwrap();

    // Samples: 1,000 records spread over every tenant and realm, read as a plain user (the
    // seed's `everyone-reads` policy, evaluated by the gate; no admin bypass).
    // 1 % of the pages of a large table; more of a small one (the smoke run), so that some rows
    // are picked.
    let percent = (300_000.0 / rows.max(1) as f64).clamp(1.0, 100.0);
    let picked = sqlx::query(
        r#"SELECT tenant_id, realm_id, id::text AS id FROM core.ent_invoice TABLESAMPLE SYSTEM ($1) LIMIT 1000"#,
    )
    .bind(percent as f32)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let samples: Vec<(Actor, String)> = picked
        .iter()
        .map(|r| {
            let actor = Actor {
                user_id: "reader".into(),
                tenant_id: r.get("tenant_id"),
                realm_id: r.get("realm_id"),
                roles: vec!["user".into()],
            };
            (actor, r.get::<String, _>("id"))
        })
        .collect();
    assert!(!samples.is_empty(), "no rows to sample");
    check_sql(&env, &samples[0].1).await;
    for (actor, id) in samples.iter().take(20) {
        let (engine, _) = env.data.get(actor, "Invoice", id, &[]).await.unwrap();
        let json = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(json(&engine), json(&hand_get(&env.pool, actor, id).await));
        let page = env
            .data
            .list(actor, "Invoice", &list_request(true))
            .await
            .unwrap();
        let (records, total) = hand_list(&env.pool, actor, true).await;
        let engine: Vec<Value> = page.records.iter().map(|r| json(r)).collect();
        let hand: Vec<Value> = records.iter().map(|r| json(r)).collect();
        assert_eq!(engine, hand);
        assert_eq!(page.meta.total.map(|t| t as i64), total);
    }

    let (rounds, per_round) = (10, 300);
    println!(
        "reads: {rounds} interleaved rounds x {per_round} calls per side per op, {} sampled records \
         over {} tenant/realm pairs; engine = DataService (model cache, policy gate as role `user`, \
         query builder, data.read audit ON through the batched AuditWriter); hand-written = sqlx with \
         the engine's SQL text on the same pool, no audit",
        samples.len(),
        TENANTS * REALMS
    );
    println!(
        "{:<48} {:>12} {:>12} {:>12} {:>12} {:>8} {:>8}  {:>22}  {:>22}",
        "op",
        "engine p50",
        "hand p50",
        "engine p99",
        "hand p99",
        "p50 x",
        "p99 x",
        "CPU/call engine",
        "CPU/call hand"
    );
    let calls = (rounds * per_round) as f64;
    for op in [Op::Get, Op::List, Op::ListCount] {
        let (engine, hand) = measure(&env, op, &samples, rounds, per_round).await;
        let (e, h) = (&engine.latencies, &hand.latencies);
        let (e50, h50) = (percentile(e, 0.5), percentile(h, 0.5));
        let (e99, h99) = (percentile(e, 0.99), percentile(h, 0.99));
        let cpu = |side: &Side| {
            format!(
                "{:.0} + {:.0} µs",
                side.own_cpu * 1e6 / calls,
                side.backend_cpu * 1e6 / calls
            )
        };
        println!(
            "{:<48} {:>9.1} µs {:>9.1} µs {:>9.1} µs {:>9.1} µs {:>8.3} {:>8.3}  {:>22}  {:>22}",
            op.name(),
            micros(e50),
            micros(h50),
            micros(e99),
            micros(h99),
            micros(e50) / micros(h50),
            micros(e99) / micros(h99),
            cpu(&engine),
            cpu(&hand)
        );
    }
    println!(
        "(CPU/call: this process + the PostgreSQL backends, per call, from /proc; the engine's \
         includes writing its data.read audit rows)"
    );
    env.writer.shutdown().await;
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM meta.meta_audit WHERE event_type = 'data.read'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    println!("data.read audit rows written by the engine's reads: {audited}");
    env.pool.close().await;
}

fn main() {
    let rows = rows_wanted();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(rows));
}
