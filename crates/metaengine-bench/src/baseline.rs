//! The baseline: a minimal hand-written axum + sqlx server answering the two benchmarked requests
//! exactly as the engine does — the physical limit of this stack.
//!
//! Same work as the engine, no more and no less on the measured path: the bearer JWT is verified
//! the same way (HS256 with `jsonwebtoken`, secret from `METAENGINE_JWT_SECRET`), tenant and realm
//! come from its claims, the SQL text is the engine's own ([`crate::sql`]), the pool has the same
//! size and connection options, and the body has the same JSON shape (the record as the database
//! built it; a list as `{"data": [...], "meta": {"page", "pageSize", "nextCursor"}}`).
//! What it does not do is what makes it a baseline: no metadata, no model cache, no policy gate,
//! no audit trail, no tenant-status check, and it knows one entity and one query shape only.

use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

use crate::sql;

/// The claims the engine reads from a token (SPEC §9).
#[derive(Debug, Deserialize)]
struct Claims {
    #[expect(
        dead_code,
        reason = "verified like the engine does, not used by the two reads"
    )]
    sub: String,
    tenant_id: String,
    realm_id: String,
    #[expect(
        dead_code,
        reason = "verified like the engine does, not used by the two reads"
    )]
    roles: Vec<String>,
}

/// The database of the baseline.
#[derive(Debug, Clone)]
pub enum Db {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

impl Db {
    /// Opens a pool of `pool_size` connections on `url`, with the options the engine's stores use.
    pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<Db> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(pool_size.max(1))
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(pool_size.max(1))
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        }
    }
}

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    db: Db,
    key: DecodingKey,
    validation: Validation,
}

impl AppState {
    /// State over `db`, verifying tokens signed with `secret` (its UTF-8 bytes).
    pub fn new(db: Db, secret: &str) -> AppState {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        AppState {
            db,
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }
}

/// The router: `/ready`, `GET /api/data/Invoice/{id}` and `GET /api/data/Invoice`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/api/data/Invoice", get(list))
        .route("/api/data/Invoice/{id}", get(get_one))
        .with_state(state)
}

async fn ready() -> &'static str {
    "ok"
}

fn status(code: StatusCode) -> Response {
    code.into_response()
}

fn claims(state: &AppState, headers: &HeaderMap) -> Result<Claims, StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    jsonwebtoken::decode::<Claims>(token, &state.key, &state.validation)
        .map(|data| data.claims)
        .map_err(|_| StatusCode::UNAUTHORIZED)
}

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A lowercase hyphenated UUID (anything else is no record's id: 404, as the engine answers).
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// The `rowVersion` of a record text: its last key, so the digits after the last `:`.
fn row_version(record: &str) -> Option<&str> {
    let (_, tail) = record.rsplit_once(':')?;
    let digits = tail.trim_end_matches('}').trim();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match claims(&state, &headers) {
        Ok(c) => c,
        Err(code) => return status(code),
    };
    if !is_uuid(&id) {
        return status(StatusCode::NOT_FOUND);
    }
    let row = match &state.db {
        Db::Postgres(pool) => sqlx::query(sql::PG_GET)
            .bind(claims.tenant_id.as_str())
            .bind(claims.realm_id.as_str())
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .and_then(|r| r.map(|r| r.try_get::<String, _>("record")).transpose()),
        Db::Sqlite(pool) => sqlx::query(sql::LITE_GET)
            .bind(claims.tenant_id.as_str())
            .bind(claims.realm_id.as_str())
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .and_then(|r| r.map(|r| r.try_get::<String, _>("record")).transpose()),
    };
    match row {
        Ok(Some(record)) => {
            let etag =
                row_version(&record).and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok());
            let mut response = json(record);
            if let Some(etag) = etag {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Ok(None) => status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::error!(error = %e, "get failed");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The one list the baseline knows: `filter[status][eq]=…&orderBy=createdAt&orderDir=desc&
/// pageSize=N&count=none`.
#[derive(Debug, Deserialize)]
struct ListParams {
    #[serde(rename = "filter[status][eq]")]
    status: String,
    #[serde(rename = "orderBy")]
    order_by: String,
    #[serde(rename = "orderDir")]
    order_dir: String,
    #[serde(rename = "pageSize")]
    page_size: u32,
    count: String,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for s in [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63]
            .iter()
            .take(chunk.len() + 1)
        {
            if let Some(c) = ALPHABET.get(*s as usize) {
                out.push(char::from(*c));
            }
        }
    }
    out
}

/// The engine's cursor: `[sortKey, id]` as compact JSON, base64url without padding.
pub fn cursor(key: &str, id: &str) -> String {
    let array = serde_json::Value::Array(vec![key.into(), id.into()]);
    base64url(array.to_string().as_bytes())
}

/// `{"data":[…],"meta":{"page":1,"pageSize":N,"nextCursor":…}}`, records spliced in as the
/// database wrote them.
pub fn page_json(records: &[String], page_size: u32, next: Option<&str>) -> String {
    let mut out = String::with_capacity(records.iter().map(String::len).sum::<usize>() + 96);
    out.push_str("{\"data\":[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(record);
    }
    out.push_str("],\"meta\":{\"page\":1,\"pageSize\":");
    out.push_str(&page_size.to_string());
    out.push_str(",\"nextCursor\":");
    match next {
        Some(c) => {
            out.push('"');
            out.push_str(c);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push_str("}}");
    out
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
    headers: HeaderMap,
) -> Response {
    let claims = match claims(&state, &headers) {
        Ok(c) => c,
        Err(code) => return status(code),
    };
    if params.order_by != "createdAt"
        || params.order_dir != "desc"
        || params.count != "none"
        || params.page_size == 0
        || params.page_size > 100
        || !["draft", "sent", "paid"].contains(&params.status.as_str())
    {
        return status(StatusCode::BAD_REQUEST);
    }
    let limit = i64::from(params.page_size) + 1;
    let rows = match &state.db {
        Db::Postgres(pool) => sqlx::query(sql::PG_LIST)
            .bind(claims.tenant_id.as_str())
            .bind(claims.realm_id.as_str())
            .bind(params.status.as_str())
            .bind(limit)
            .bind(0_i64)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(pg_triple).collect()),
        Db::Sqlite(pool) => sqlx::query(sql::LITE_LIST)
            .bind(claims.tenant_id.as_str())
            .bind(claims.realm_id.as_str())
            .bind(params.status.as_str())
            .bind(limit)
            .bind(0_i64)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(lite_triple).collect()),
    };
    let mut rows: Vec<Triple> = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "list failed");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let page = usize::try_from(params.page_size).unwrap_or(usize::MAX);
    let more = rows.len() > page;
    rows.truncate(page);
    let next = if more {
        rows.last()
            .map(|(_, key, id)| cursor(key.as_deref().unwrap_or_default(), id))
    } else {
        None
    };
    let records: Vec<String> = rows.into_iter().map(|(r, _, _)| r).collect();
    json(page_json(&records, params.page_size, next.as_deref()))
}

type Triple = (String, Option<String>, String);

fn pg_triple(row: &sqlx::postgres::PgRow) -> Result<Triple, sqlx::Error> {
    Ok((
        row.try_get("record")?,
        row.try_get("__k")?,
        row.try_get("__id")?,
    ))
}

fn lite_triple(row: &sqlx::sqlite::SqliteRow) -> Result<Triple, sqlx::Error> {
    Ok((
        row.try_get("record")?,
        row.try_get("__k")?,
        row.try_get("__id")?,
    ))
}

/// Serves the baseline on `listen` until the process is stopped.
pub async fn serve(listen: &str, url: &str, pool_size: u32, secret: &str) -> anyhow::Result<()> {
    let db = Db::connect(url, pool_size).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, pool_size, "baseline listening");
    axum::serve(listener, app(AppState::new(db, secret))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_cursor_is_the_engines() {
        let key = "2025-06-30T12:00:00.000Z";
        let id = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6";
        let engine = metaengine_sql::query::encode_cursor(
            &metaengine_sql::query::Cursor::from_row(Some(key.to_owned()), id.to_owned()),
        );
        assert_eq!(cursor(key, id), engine);
    }

    #[test]
    fn a_page_has_the_engines_shape() {
        let records = vec![r#"{"id": "a"}"#.to_owned(), r#"{"id": "b"}"#.to_owned()];
        let body: serde_json::Value =
            serde_json::from_str(&page_json(&records, 2, Some("abc"))).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "data": [{"id": "a"}, {"id": "b"}],
                "meta": {"page": 1, "pageSize": 2, "nextCursor": "abc"}
            })
        );
        let last: serde_json::Value = serde_json::from_str(&page_json(&[], 20, None)).unwrap();
        assert_eq!(last["meta"]["nextCursor"], serde_json::Value::Null);
        assert_eq!(last["data"], serde_json::json!([]));
    }

    use axum::body::Body;
    use axum::http::Request;
    use metaengine_core::plan::{TableState, plan_migration};
    use metaengine_core::{EntitySchema, compile};
    use metaengine_sql::{Dialect, render_plan};
    use serde_json::Value;
    use sqlx::Connection;
    use tower::ServiceExt;

    const SECRET: &str = "test-secret";

    fn token(tenant: &str, realm: &str, secret: &str) -> String {
        let claims = serde_json::json!({
            "sub": "u1", "tenant_id": tenant, "realm_id": realm, "roles": ["admin"],
            "exp": chrono::Utc::now().timestamp() + 600,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    /// A SQLite file with the engine's Invoice table (its own DDL) and `n` generated rows.
    async fn sqlite(dir: &std::path::Path, n: u64) -> (AppState, Vec<crate::prepare::GenRow>) {
        let path = dir.join("bench.db");
        let url = crate::prepare::sqlite_url(&path);
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        let schema: EntitySchema = serde_json::from_str(crate::sql::INVOICE_SCHEMA).unwrap();
        let model = compile(
            "Invoice",
            "v1",
            &schema,
            "bench",
            "2026-01-01T00:00:00.000Z",
        );
        let plan = plan_migration(&model.table_name, None, &schema, &TableState::default());
        for ddl in render_plan(Dialect::Sqlite, &model.table_name, &plan) {
            sqlx::raw_sql(&ddl).execute(&mut conn).await.unwrap();
        }
        sqlx::raw_sql("CREATE TABLE tenant (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        crate::prepare::load_sqlite_rows(&mut conn, n)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let db = Db::connect(&url, 4).await.unwrap();
        let rows = (0..n).map(|i| crate::prepare::gen_row(i, n)).collect();
        (AppState::new(db, SECRET), rows)
    }

    async fn call(
        state: &AppState,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app(state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, value)
    }

    #[tokio::test]
    async fn the_baseline_serves_a_tenants_records_by_id_and_by_page() {
        let dir = tempfile::tempdir().unwrap();
        let (state, rows) = sqlite(dir.path(), 6_000).await;
        let t = token("t001", "r1", SECRET);
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| r.tenant == "t001" && r.realm == "r1")
            .collect();
        assert_eq!(mine.len(), 30);

        let r = mine[3];
        let (status, headers, body) =
            call(&state, &format!("/api/data/Invoice/{}", r.id), Some(&t)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], r.id.as_str());
        assert_eq!(body["invoiceNumber"], r.invoice_number.as_str());
        assert_eq!(body["totalAmount"], r.total_amount.as_str());
        assert_eq!(body["tenantId"], "t001");
        assert_eq!(body["createdAt"], r.created_at.as_str());
        assert_eq!(headers["etag"], format!("\"{}\"", r.row_version));

        // Another tenant's record is not there; neither is a non-id; no token, no answer.
        let other = rows.iter().find(|r| r.tenant == "t002").unwrap();
        let (status, _, _) =
            call(&state, &format!("/api/data/Invoice/{}", other.id), Some(&t)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(&state, "/api/data/Invoice/not-an-id", Some(&t)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(&state, &format!("/api/data/Invoice/{}", r.id), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let forged = token("t001", "r1", "another-secret");
        let (status, _, _) = call(
            &state,
            &format!("/api/data/Invoice/{}", r.id),
            Some(&forged),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // A page of 5: the newest paid invoices of the tenant and realm, with the cursor after.
        let path = "/api/data/Invoice?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=createdAt&orderDir=desc&pageSize=5&count=none";
        let (status, _, body) = call(&state, path, Some(&t)).await;
        assert_eq!(status, StatusCode::OK);
        let mut paid: Vec<_> = mine.iter().filter(|r| r.status == "paid").collect();
        paid.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        assert!(paid.len() > 5, "{}", paid.len());
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = paid.iter().take(5).map(|r| r.id.as_str()).collect();
        assert_eq!(ids, expected);
        let last = paid[4];
        assert_eq!(
            body["meta"]["nextCursor"],
            cursor(&last.created_at, &last.id).as_str()
        );
        assert_eq!(body["meta"]["page"], 1);
        assert_eq!(body["meta"]["pageSize"], 5);
        assert!(body["meta"].get("total").is_none());

        // A list shape the baseline does not know is refused, not answered with something else.
        let (status, _, _) = call(
            &state,
            &path.replace("orderDir=desc", "orderDir=asc"),
            Some(&t),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn row_version_is_read_from_either_backends_text() {
        assert_eq!(
            row_version(r#"{"id" : "x", "rowVersion" : 12}"#),
            Some("12")
        );
        assert_eq!(row_version(r#"{"id":"x","rowVersion":3}"#), Some("3"));
        assert_eq!(row_version(r#"{"id":"x","note":"a:b"}"#), None);
    }
}
