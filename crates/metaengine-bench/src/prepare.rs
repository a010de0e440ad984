//! Preparing the databases as a user would: the Invoice entity (with the index its list needs)
//! activated through the engine's command line, tenants created and rows written through the
//! running engine's HTTP API (`POST /api/data/batch`, 1,000 creates per request, 4 in flight),
//! with no manual `ANALYZE` of the engine's table (the engine's own statistics only). Then the
//! baseline's own table ([`crate::sql`]) gets a copy of the rows, its index, `VACUUM ANALYZE`.
//!
//! Row `i` (0-based) of the main data set belongs to tenant `t{i % 100:03}` and realm
//! `r{(i / 100) % 2 + 1}`. Values are realistic and deterministic: unique invoice numbers, 20,000
//! customers, amounts up to 99,999.99, a status in draft/sent/paid (about a third each), a due
//! date in 2025–2026 (none for one row in twenty).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use tokio::io::AsyncWriteExt;

use crate::load;
use crate::sql;

/// Tenants the main data set is spread over.
pub const TENANTS: u64 = 100;
/// Realms per tenant.
pub const REALMS: u64 = 2;
/// The tenant the benchmark reads.
pub const BENCH_TENANT: &str = "t001";
/// The realm the benchmark reads.
pub const BENCH_REALM: &str = "r1";
/// The tenant the benchmark's writes go to (emptied before each measurement).
pub const WRITE_TENANT: &str = "w001";
/// Creates per batch request while filling.
const FILL_BATCH: usize = 1_000;
/// Batch requests in flight while filling.
const FILL_IN_FLIGHT: usize = 4;

/// How to run the engine's command line.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The `metaengine` binary.
    pub bin: PathBuf,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `METAENGINE_JWT_SECRET`.
    pub secret: String,
}

impl Engine {
    /// Runs `metaengine --database-url URL --data-dir DIR <args>` with `stdin`; its stdout.
    pub async fn run(
        &self,
        url: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--database-url")
            .arg(url)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .env("METAENGINE_JWT_SECRET", &self.secret)
            .env("METAENGINE_LOG", "warn")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).await?;
            drop(pipe);
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "`metaengine {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Defines and activates the benchmark's Invoice (creating the engine's tables first).
    pub async fn activate_invoice(&self, url: &str) -> anyhow::Result<()> {
        self.run(url, &["migrate"], None).await?;
        self.run(url, &["entity", "create", "Invoice"], None)
            .await?;
        self.run(
            url,
            &["version", "create", "Invoice", "v1"],
            Some(&sql::invoice_schema()),
        )
        .await?;
        self.run(url, &["version", "activate", "Invoice", "v1"], None)
            .await?;
        Ok(())
    }

    /// A token for `tenant`/`realm` with the admin role, valid for a day, signed with the
    /// engine's secret (the claims `metaengine token` writes).
    pub fn token(&self, tenant: &str, realm: &str) -> anyhow::Result<String> {
        let claims = serde_json::json!({
            "sub": "bench", "tenant_id": tenant, "realm_id": realm, "roles": ["admin"],
            "exp": chrono::Utc::now().timestamp() + 86_400,
        });
        Ok(jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )?)
    }
}

/// SplitMix64: a good 64-bit mix of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The canonical text of `cents / 100`.
fn decimal(cents: u64) -> String {
    let (int, frac) = (cents / 100, cents % 100);
    match frac {
        0 => int.to_string(),
        f if f % 10 == 0 => format!("{int}.{}", f / 10),
        f => format!("{int}.{f:02}"),
    }
}

/// The new invoice of row `i`, as a client sends it.
pub fn gen_record(i: u64) -> serde_json::Value {
    let r = mix(i);
    let day = (r >> 8) % 730;
    let due = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
        .and_then(|d| d.checked_add_days(chrono::Days::new(day)))
        .map(|d| d.format("%Y-%m-%d").to_string());
    let status = match (r >> 40) % 3 {
        0 => "draft",
        1 => "sent",
        _ => "paid",
    };
    serde_json::json!({
        "invoiceNumber": format!("INV-{i:09}"),
        "customerId": format!("CUST-{:05}", (i * 7919) % 20_000),
        "totalAmount": decimal((r >> 16) % 10_000_000),
        "status": status,
        "dueDate": if i.is_multiple_of(20) { None } else { due },
    })
}

/// A piece of the data to write: rows `rows` of one tenant and realm.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Tenant.
    pub tenant: String,
    /// Realm.
    pub realm: String,
    /// Row numbers (for [`gen_record`]).
    pub rows: Vec<u64>,
}

/// The main data set's rows `0..n`, as chunks of at most [`FILL_BATCH`] rows of one scope.
pub fn spread(n: u64) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for t in 0..TENANTS {
        for r in 0..REALMS {
            // Row i is in tenant i % 100 and realm (i / 100) % 2: i = t + 100 r + 200 k.
            let rows: Vec<u64> = (t + TENANTS * r..n)
                .step_by((TENANTS * REALMS) as usize)
                .collect();
            for part in rows.chunks(FILL_BATCH) {
                chunks.push(Chunk {
                    tenant: format!("t{t:03}"),
                    realm: format!("r{}", r + 1),
                    rows: part.to_vec(),
                });
            }
        }
    }
    chunks
}

/// Rows `from..to` of one tenant and realm, in chunks of at most [`FILL_BATCH`].
pub fn one_scope(tenant: &str, realm: &str, from: u64, to: u64) -> Vec<Chunk> {
    let rows: Vec<u64> = (from..to).collect();
    rows.chunks(FILL_BATCH)
        .map(|part| Chunk {
            tenant: tenant.to_owned(),
            realm: realm.to_owned(),
            rows: part.to_vec(),
        })
        .collect()
}

/// Creates `tenants` through `POST /api/admin/tenants` (as the platform's admin).
pub async fn create_tenants(
    engine: &Engine,
    addr: SocketAddr,
    tenants: &[String],
) -> anyhow::Result<()> {
    let token = engine.token("default", "default")?;
    for id in tenants {
        let body = serde_json::json!({ "id": id, "name": format!("Bench tenant {id}") });
        let (status, answer) = load::send(addr, Some(&token), "/api/admin/tenants", Some(&body))
            .await
            .map_err(anyhow::Error::msg)?;
        if status != 201 && status != 409 {
            bail!(
                "creating tenant {id} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    Ok(())
}

/// Writes `chunks` of invoices through the engine's batch route, [`FILL_IN_FLIGHT`] requests
/// at a time; rows per second.
pub async fn fill(engine: &Engine, addr: SocketAddr, chunks: Vec<Chunk>) -> anyhow::Result<f64> {
    fill_with(engine, addr, chunks, "Invoice", gen_record).await
}

/// [`fill`] with records of `entity` made by `record`.
pub async fn fill_with(
    engine: &Engine,
    addr: SocketAddr,
    chunks: Vec<Chunk>,
    entity: &'static str,
    record: fn(u64) -> serde_json::Value,
) -> anyhow::Result<f64> {
    let rows: usize = chunks.iter().map(|c| c.rows.len()).sum();
    let queue = Arc::new(Mutex::new(VecDeque::from(chunks)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..FILL_IN_FLIGHT {
        let (queue, engine) = (queue.clone(), engine.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(chunk) = next else {
                    return anyhow::Ok(());
                };
                let token = engine.token(&chunk.tenant, &chunk.realm)?;
                let operations: Vec<serde_json::Value> = chunk
                    .rows
                    .iter()
                    .map(|i| {
                        serde_json::json!({
                            "op": "create", "entity": entity, "record": record(*i)
                        })
                    })
                    .collect();
                let body = serde_json::json!({ "operations": operations });
                let (status, answer) =
                    load::send(addr, Some(&token), "/api/data/batch", Some(&body))
                        .await
                        .map_err(anyhow::Error::msg)?;
                if status != 200 {
                    bail!(
                        "a fill batch answered {status}: {}",
                        String::from_utf8_lossy(answer.get(..400).unwrap_or(&answer))
                    );
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// `postgres://…/name` → (`postgres://…/postgres`, `name`).
fn split_database(url: &str) -> anyhow::Result<(String, String)> {
    let (base, name) = url
        .rsplit_once('/')
        .with_context(|| format!("`{url}` names no database"))?;
    let name = name.split('?').next().unwrap_or_default();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        bail!("the bench database name `{name}` must be lowercase letters, digits and `_`");
    }
    Ok((format!("{base}/postgres"), name.to_owned()))
}

/// `sqlite://<absolute path>`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// One benchmark database: the engine's tables and the baseline's.
#[derive(Debug, Clone)]
pub enum Target {
    /// A PostgreSQL database (dropped and created by [`Target::recreate`]).
    Postgres {
        /// `postgres://…/name`.
        url: String,
    },
    /// A SQLite file.
    Sqlite {
        /// The file.
        path: PathBuf,
    },
}

/// A connection to a [`Target`].
enum Conn {
    Pg(PgConnection),
    Lite(SqliteConnection),
}

impl Target {
    /// The engine's store on this database, migrated (in process, for the in-process
    /// benchmarks).
    pub async fn open_store(&self) -> anyhow::Result<std::sync::Arc<dyn metaengine_store::Store>> {
        let store: std::sync::Arc<dyn metaengine_store::Store> = match self {
            Target::Postgres { url } => {
                std::sync::Arc::new(metaengine_store_postgres::PostgresStore::connect(url).await?)
            }
            Target::Sqlite { path } => std::sync::Arc::new(
                metaengine_store_sqlite::SqliteStore::connect(&sqlite_url(path)).await?,
            ),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// `postgres` or `sqlite`.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Postgres { .. } => "postgres",
            Target::Sqlite { .. } => "sqlite",
        }
    }

    /// The URL the servers are given.
    pub fn url(&self) -> String {
        match self {
            Target::Postgres { url } => url.clone(),
            Target::Sqlite { path } => sqlite_url(path),
        }
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        Ok(match self {
            Target::Postgres { url } => Conn::Pg(PgConnection::connect(url).await?),
            Target::Sqlite { path } => {
                Conn::Lite(SqliteConnection::connect(&sqlite_url(path)).await?)
            }
        })
    }

    /// An empty database (PostgreSQL: dropped and created; SQLite: the files removed).
    pub async fn recreate(&self) -> anyhow::Result<()> {
        match self {
            Target::Postgres { url } => {
                let (admin, name) = split_database(url)?;
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .with_context(|| format!("PostgreSQL is not reachable at {admin}"))?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await?;
                conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
                    .await?;
                conn.close().await?;
            }
            Target::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                }
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        Ok(())
    }

    /// Rows of the engine's and of the baseline's table in tenants `LIKE tenants`; `None` when
    /// either table is missing.
    pub async fn rows(&self, tenants: &str) -> Option<(u64, u64)> {
        if let Target::Sqlite { path } = self
            && !path.exists()
        {
            return None;
        }
        let (engine, baseline) = match self {
            Target::Postgres { .. } => ("core.ent_invoice", "baseline.invoice"),
            Target::Sqlite { .. } => ("ent_invoice", "baseline_invoice"),
        };
        let mut conn = self.connect().await.ok()?;
        let mut counts = [0_u64; 2];
        for (table, n) in [engine, baseline].iter().zip(counts.iter_mut()) {
            let c: i64 = match &mut conn {
                Conn::Pg(c) => sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM {table} WHERE tenant_id LIKE $1"
                ))
                .bind(tenants)
                .fetch_one(c)
                .await
                .ok()?,
                Conn::Lite(c) => sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM {table} WHERE tenant_id LIKE ?1"
                ))
                .bind(tenants)
                .fetch_one(c)
                .await
                .ok()?,
            };
            *n = u64::try_from(c).ok()?;
        }
        let [e, b] = counts;
        Some((e, b))
    }

    pub async fn execute(&self, statements: &[&str]) -> anyhow::Result<()> {
        match self.connect().await? {
            Conn::Pg(mut c) => {
                for s in statements {
                    c.execute(*s).await?;
                }
            }
            Conn::Lite(mut c) => {
                for s in statements {
                    c.execute(*s).await?;
                }
            }
        }
        Ok(())
    }

    /// The baseline's table and index, empty.
    pub async fn setup_baseline(&self) -> anyhow::Result<()> {
        match self {
            Target::Postgres { .. } => self.execute(sql::PG_SETUP).await,
            Target::Sqlite { .. } => self.execute(sql::LITE_SETUP).await,
        }
    }

    /// Copies the engine's new rows into the baseline's table, then vacuums and analyzes the
    /// baseline's table (only: the engine's statistics stay the engine's).
    pub async fn copy_to_baseline(&self) -> anyhow::Result<()> {
        match self {
            Target::Postgres { .. } => {
                self.execute(&[sql::PG_COPY, sql::PG_ANALYZE, "CHECKPOINT"])
                    .await
            }
            Target::Sqlite { .. } => {
                self.execute(&[
                    sql::LITE_COPY,
                    sql::LITE_ANALYZE,
                    "PRAGMA wal_checkpoint(TRUNCATE)",
                ])
                .await
            }
        }
    }

    /// The ids of `tenant`/`realm`.
    pub async fn ids(&self, tenant: &str, realm: &str) -> anyhow::Result<Vec<String>> {
        let ids =
            match self.connect().await? {
                Conn::Pg(mut c) => sqlx::query_scalar(
                    "SELECT id::text FROM baseline.invoice WHERE tenant_id = $1 AND realm_id = $2",
                )
                .bind(tenant)
                .bind(realm)
                .fetch_all(&mut c)
                .await?,
                Conn::Lite(mut c) => {
                    sqlx::query_scalar(
                        "SELECT id FROM baseline_invoice WHERE tenant_id = ?1 AND realm_id = ?2",
                    )
                    .bind(tenant)
                    .bind(realm)
                    .fetch_all(&mut c)
                    .await?
                }
            };
        Ok(ids)
    }

    /// Removes the rows of `tenant` from both tables (what a previous run's writes left).
    pub async fn delete_rows_of(&self, tenant: &str) -> anyhow::Result<()> {
        match self.connect().await? {
            Conn::Pg(mut c) => {
                for table in ["core.ent_invoice", "baseline.invoice"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
                        .bind(tenant)
                        .execute(&mut c)
                        .await?;
                }
            }
            Conn::Lite(mut c) => {
                for table in ["ent_invoice", "baseline_invoice"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = ?1"))
                        .bind(tenant)
                        .execute(&mut c)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn rows_spread_over_100_tenants_and_2_realms_evenly() {
        let chunks = spread(20_000);
        let mut per_scope = std::collections::HashMap::new();
        for c in &chunks {
            for i in &c.rows {
                assert_eq!(c.tenant, format!("t{:03}", i % TENANTS));
                assert_eq!(c.realm, format!("r{}", (i / TENANTS) % REALMS + 1));
            }
            *per_scope
                .entry((c.tenant.clone(), c.realm.clone()))
                .or_insert(0) += c.rows.len();
        }
        assert_eq!(per_scope.len(), 200);
        assert!(per_scope.values().all(|c| *c == 100));
        let mut all: Vec<u64> = chunks.iter().flat_map(|c| c.rows.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..20_000).collect::<Vec<_>>());
        assert!(spread(1_000_000).iter().all(|c| c.rows.len() <= FILL_BATCH));
        let one = one_scope("g001", "r1", 500, 2_700);
        assert_eq!(one.len(), 3);
        assert_eq!(one.iter().map(|c| c.rows.len()).sum::<usize>(), 2_200);
    }

    #[test]
    fn records_have_the_shapes_the_invoice_accepts() {
        let rows: Vec<serde_json::Value> = (0..3_000).map(gen_record).collect();
        let numbers: std::collections::HashSet<_> = rows
            .iter()
            .map(|r| r["invoiceNumber"].to_string())
            .collect();
        assert_eq!(numbers.len(), rows.len());
        for s in ["draft", "sent", "paid"] {
            let c = rows.iter().filter(|r| r["status"] == s).count();
            assert!((800..1200).contains(&c), "{s}: {c}");
        }
        assert_eq!(rows.iter().filter(|r| r["dueDate"].is_null()).count(), 150);
        assert!(rows.iter().all(|r| {
            let a = r["totalAmount"].as_str().unwrap();
            !a.contains('.') || !a.ends_with('0')
        }));
        assert_eq!(gen_record(7), gen_record(7), "deterministic");
        assert_eq!(decimal(1_234_500), "12345");
        assert_eq!(decimal(1_234_550), "12345.5");
        assert_eq!(decimal(7), "0.07");
    }

    #[test]
    fn the_database_name_must_be_a_plain_identifier() {
        let (admin, name) =
            split_database("postgres://postgres@127.0.0.1:5432/metaengine_bench").unwrap();
        assert_eq!(admin, "postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(name, "metaengine_bench");
        assert!(split_database("postgres://h/bad\"name").is_err());
    }
}
