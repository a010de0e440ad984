//! Preparing the databases: the Invoice entity activated through the engine's own command line,
//! then N rows across 100 tenants × 2 realms loaded with SQL (an `INSERT … SELECT
//! generate_series` on PostgreSQL, batched inserts in one transaction on SQLite), then `ANALYZE`.
//!
//! Row `i` (0-based) belongs to tenant `t{i % 100:03}` and realm `r{(i / 100) % 2 + 1}`; its
//! `created_at` moves forward through 2025 with `i`, and its id is a UUIDv7 of that millisecond.
//! Values are realistic and deterministic: unique invoice numbers, 20,000 customers, amounts up to
//! 99,999.99, a status in draft/sent/paid (about a third each), a due date 30 days after creation
//! (none for one row in twenty).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection, Row, SqliteConnection};
use tokio::io::AsyncWriteExt;

use crate::sql::INVOICE_SCHEMA;

/// Tenants the rows are spread over.
pub const TENANTS: u64 = 100;
/// Realms per tenant.
pub const REALMS: u64 = 2;
/// The tenant the benchmark reads.
pub const BENCH_TENANT: &str = "t001";
/// The realm the benchmark reads.
pub const BENCH_REALM: &str = "r1";

/// 2025-01-01T00:00:00Z in Unix milliseconds: the first row's `created_at`.
const START_MS: u64 = 1_735_689_600_000;
/// One year: the rows' `created_at` span it.
const SPAN_MS: u64 = 365 * 24 * 3600 * 1000;

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

    /// Defines and activates the seed's Invoice (creating the engine's tables first).
    pub async fn activate_invoice(&self, url: &str) -> anyhow::Result<()> {
        self.run(url, &["migrate"], None).await?;
        self.run(url, &["entity", "create", "Invoice"], None)
            .await?;
        self.run(
            url,
            &["version", "create", "Invoice", "v1"],
            Some(INVOICE_SCHEMA),
        )
        .await?;
        self.run(url, &["version", "activate", "Invoice", "v1"], None)
            .await?;
        Ok(())
    }

    /// A token for `tenant`/`realm` with the admin role, minted by `metaengine token`.
    pub async fn token(&self, url: &str, tenant: &str, realm: &str) -> anyhow::Result<String> {
        let out = self
            .run(
                url,
                &[
                    "token", "--user", "bench", "--tenant", tenant, "--realm", realm, "--roles",
                    "admin", "--ttl", "86400",
                ],
                None,
            )
            .await?;
        let token = out.trim().to_owned();
        if token.is_empty() || token.contains(char::is_whitespace) {
            bail!("`metaengine token` printed no token: {out:?}");
        }
        Ok(token)
    }
}

/// One generated row (the SQLite loader's values; PostgreSQL computes the same shapes in SQL).
#[derive(Debug, Clone, PartialEq)]
pub struct GenRow {
    /// Tenant.
    pub tenant: String,
    /// Realm.
    pub realm: String,
    /// UUIDv7 of `created_at`'s millisecond.
    pub id: String,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub created_at: String,
    /// `created_at` plus 0–4 days.
    pub updated_at: String,
    /// `user0` … `user49`.
    pub created_by: String,
    /// `user0` … `user49`.
    pub updated_by: String,
    /// 1–3.
    pub row_version: i64,
    /// `INV-000000042`: unique.
    pub invoice_number: String,
    /// `CUST-01234`.
    pub customer_id: String,
    /// Canonical decimal text (no trailing zero after the point), 0 to 99999.99.
    pub total_amount: String,
    /// draft, sent or paid.
    pub status: &'static str,
    /// `YYYY-MM-DD`, or none for one row in twenty.
    pub due_date: Option<String>,
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

fn datetime(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn date(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Row `i` of `n`.
pub fn gen_row(i: u64, n: u64) -> GenRow {
    let ms = START_MS + i * SPAN_MS / n.max(1);
    let r = mix(i);
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&r.to_le_bytes());
    random[8..].copy_from_slice(&mix(r).to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &random)
        .into_uuid()
        .hyphenated()
        .to_string();
    const DAY: u64 = 24 * 3600 * 1000;
    GenRow {
        tenant: format!("t{:03}", i % TENANTS),
        realm: format!("r{}", (i / TENANTS) % REALMS + 1),
        id,
        created_at: datetime(ms),
        updated_at: datetime(ms + (i % 5) * DAY),
        created_by: format!("user{}", i % 50),
        updated_by: format!("user{}", (i * 7) % 50),
        row_version: i64::try_from(1 + i % 3).unwrap_or(1),
        invoice_number: format!("INV-{i:09}"),
        customer_id: format!("CUST-{:05}", (i * 7919) % 20_000),
        total_amount: decimal((r >> 16) % 10_000_000),
        status: match (r >> 40) % 3 {
            0 => "draft",
            1 => "sent",
            _ => "paid",
        },
        due_date: (!i.is_multiple_of(20)).then(|| date(ms + 30 * DAY)),
    }
}

/// The columns every loader writes, in order.
const COLUMNS: &str = "tenant_id, realm_id, id, created_at, updated_at, created_by, updated_by, \
    row_version, invoice_number, customer_id, total_amount, status, due_date";

/// PostgreSQL: the rows computed by the database itself (`$1` = N). Same shapes as [`gen_row`];
/// the pseudo-random parts come from `md5(i)`.
const PG_LOAD: &str = r#"
INSERT INTO core.ent_invoice (tenant_id, realm_id, id, created_at, updated_at, created_by,
    updated_by, row_version, invoice_number, customer_id, total_amount, status, due_date)
SELECT
    't' || lpad((i % 100)::text, 3, '0'),
    'r' || ((i / 100) % 2 + 1),
    (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(m, 1, 3) || '-'
        || substr('89ab', (i % 4)::int + 1, 1) || substr(m, 4, 3) || '-' || substr(m, 7, 12))::uuid,
    ts,
    ts + (i % 5) * interval '1 day',
    'user' || (i % 50),
    'user' || ((i * 7) % 50),
    1 + i % 3,
    'INV-' || lpad(i::text, 9, '0'),
    'CUST-' || lpad(((i * 7919) % 20000)::text, 5, '0'),
    (('x' || substr(m, 19, 8))::bit(32)::bigint % 10000000) / 100.0,
    (ARRAY['draft', 'sent', 'paid'])[1 + ('x' || substr(m, 27, 6))::bit(24)::int % 3],
    CASE WHEN i % 20 = 0 THEN NULL ELSE (ts AT TIME ZONE 'UTC' + interval '30 days')::date END
FROM generate_series(0::bigint, $1::bigint - 1) AS s(i),
LATERAL (SELECT 1735689600000 + i * 31536000000 / $1::bigint AS ms) a,
LATERAL (SELECT to_timestamp(ms / 1000.0) AS ts, md5(i::text) AS m,
                lpad(to_hex(ms), 12, '0') AS h) b
"#;

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

/// Rows of the Invoice table, if the engine's Invoice is there (`None` when it is not).
async fn pg_rows(url: &str) -> Option<u64> {
    let mut conn = PgConnection::connect(url).await.ok()?;
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('core.ent_invoice')::text")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    exists.as_ref()?;
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM core.tenant WHERE id LIKE 't%'")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    if u64::try_from(tenants).ok()? != TENANTS {
        return None;
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM core.ent_invoice")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    u64::try_from(n).ok()
}

/// Recreates the PostgreSQL database of `url` with `rows` rows, unless it holds exactly that
/// many already (and `force` is off). Returns whether it prepared.
pub async fn prepare_postgres(
    engine: &Engine,
    url: &str,
    rows: u64,
    force: bool,
) -> anyhow::Result<bool> {
    if !force && pg_rows(url).await == Some(rows) {
        return Ok(false);
    }
    let (admin, name) = split_database(url)?;
    let mut conn = PgConnection::connect(&admin)
        .await
        .with_context(|| format!("PostgreSQL is not reachable at {admin}"))?;
    conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await?;
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    conn.close().await?;
    engine.activate_invoice(url).await?;
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(
        "INSERT INTO core.tenant (id, name) SELECT 't' || lpad(g::text, 3, '0'), \
         'Bench tenant ' || g FROM generate_series(0, $1::int - 1) AS g",
    )
    .bind(i32::try_from(TENANTS).unwrap_or(100))
    .execute(&mut conn)
    .await?;
    let n = i64::try_from(rows).context("too many rows")?;
    sqlx::query(PG_LOAD).bind(n).execute(&mut conn).await?;
    conn.execute("VACUUM ANALYZE core.ent_invoice").await?;
    conn.execute("CHECKPOINT").await?;
    Ok(true)
}

/// The ids of the benchmarked tenant and realm (PostgreSQL).
pub async fn pg_ids(url: &str) -> anyhow::Result<Vec<String>> {
    let mut conn = PgConnection::connect(url).await?;
    let ids = sqlx::query(
        "SELECT id::text AS id FROM core.ent_invoice WHERE tenant_id = $1 AND realm_id = $2",
    )
    .bind(BENCH_TENANT)
    .bind(BENCH_REALM)
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("id"))
    .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// `sqlite://<absolute path>`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn sqlite_rows(path: &Path) -> Option<u64> {
    if !path.exists() {
        return None;
    }
    let mut conn = SqliteConnection::connect(&sqlite_url(path)).await.ok()?;
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant WHERE id LIKE 't%'")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    if u64::try_from(tenants).ok()? != TENANTS {
        return None;
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ent_invoice")
        .fetch_one(&mut conn)
        .await
        .ok()?;
    u64::try_from(n).ok()
}

/// Rows per multi-row `INSERT` on SQLite (13 values each, below SQLite's 32,766 variables).
const SQLITE_BATCH: u64 = 500;

/// Inserts rows `0..n` into an open SQLite database, in one transaction.
pub async fn load_sqlite_rows(conn: &mut SqliteConnection, n: u64) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query(
        "WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < ?1 - 1) \
         INSERT INTO tenant (id, name) SELECT 't' || printf('%03d', x), 'Bench tenant ' || x FROM g",
    )
    .bind(i64::try_from(TENANTS).unwrap_or(100))
    .execute(&mut *tx)
    .await?;
    let row_values = format!("({})", vec!["?"; 13].join(", "));
    let mut start = 0;
    while start < n {
        let end = (start + SQLITE_BATCH).min(n);
        let count = usize::try_from(end - start).unwrap_or(0);
        let sql = format!(
            "INSERT INTO ent_invoice ({COLUMNS}) VALUES {}",
            vec![row_values.as_str(); count].join(", ")
        );
        let rows: Vec<GenRow> = (start..end).map(|i| gen_row(i, n)).collect();
        let mut q = sqlx::query(&sql);
        for r in &rows {
            q = q
                .bind(&r.tenant)
                .bind(&r.realm)
                .bind(&r.id)
                .bind(&r.created_at)
                .bind(&r.updated_at)
                .bind(&r.created_by)
                .bind(&r.updated_by)
                .bind(r.row_version)
                .bind(&r.invoice_number)
                .bind(&r.customer_id)
                .bind(&r.total_amount)
                .bind(r.status)
                .bind(&r.due_date);
        }
        q.execute(&mut *tx).await?;
        start = end;
    }
    tx.commit().await?;
    conn.execute("ANALYZE").await?;
    Ok(())
}

/// Recreates the SQLite file at `path` with `rows` rows, unless it holds exactly that many
/// already (and `force` is off). Returns whether it prepared.
pub async fn prepare_sqlite(
    engine: &Engine,
    path: &Path,
    rows: u64,
    force: bool,
) -> anyhow::Result<bool> {
    if !force && sqlite_rows(path).await == Some(rows) {
        return Ok(false);
    }
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
    let url = sqlite_url(path);
    engine.activate_invoice(&url).await?;
    let mut conn = SqliteConnection::connect(&url).await?;
    load_sqlite_rows(&mut conn, rows).await?;
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    conn.close().await?;
    Ok(true)
}

/// The ids of the benchmarked tenant and realm (SQLite).
pub async fn sqlite_ids(path: &Path) -> anyhow::Result<Vec<String>> {
    let mut conn = SqliteConnection::connect(&sqlite_url(path)).await?;
    let ids = sqlx::query("SELECT id FROM ent_invoice WHERE tenant_id = ?1 AND realm_id = ?2")
        .bind(BENCH_TENANT)
        .bind(BENCH_REALM)
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn rows_spread_over_100_tenants_and_2_realms_evenly() {
        let n = 20_000;
        let mut per_scope = std::collections::HashMap::new();
        for i in 0..n {
            let r = gen_row(i, n);
            *per_scope.entry((r.tenant, r.realm)).or_insert(0) += 1;
        }
        assert_eq!(per_scope.len(), 200);
        assert!(per_scope.values().all(|c| *c == 100));
        assert_eq!(
            per_scope[&(BENCH_TENANT.to_owned(), BENCH_REALM.to_owned())],
            100
        );
    }

    #[test]
    fn ids_are_uuid_v7_of_the_creation_millisecond_and_increase_with_it() {
        let n = 1_000;
        let a = gen_row(10, n);
        let b = gen_row(11, n);
        let ua = uuid::Uuid::parse_str(&a.id).unwrap();
        assert_eq!(ua.get_version_num(), 7);
        assert_eq!(a.id, a.id.to_lowercase());
        let (secs, nanos) = ua.get_timestamp().unwrap().to_unix();
        let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert_eq!(datetime(ms), a.created_at);
        assert!(a.created_at < b.created_at && a.id < b.id);
        assert_eq!(gen_row(10, n), a, "deterministic");
    }

    #[test]
    fn values_have_the_shapes_the_engine_stores() {
        let n = 3_000;
        let rows: Vec<GenRow> = (0..n).map(|i| gen_row(i, n)).collect();
        let numbers: std::collections::HashSet<_> =
            rows.iter().map(|r| &r.invoice_number).collect();
        assert_eq!(numbers.len(), rows.len());
        for s in ["draft", "sent", "paid"] {
            let c = rows.iter().filter(|r| r.status == s).count();
            assert!((800..1200).contains(&c), "{s}: {c}");
        }
        assert_eq!(rows.iter().filter(|r| r.due_date.is_none()).count(), 150);
        assert_eq!(rows[0].created_at, "2025-01-01T00:00:00.000Z");
        assert!(
            rows.iter()
                .all(|r| r.created_at.len() == 24 && r.created_at.ends_with('Z'))
        );
        assert!(
            rows.iter()
                .all(|r| !r.total_amount.ends_with('0') || !r.total_amount.contains('.'))
        );
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
