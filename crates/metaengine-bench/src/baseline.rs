//! The baseline: a hand-written axum + sqlx server answering the benchmarked requests as an
//! expert would write them for this one entity — the limit of this stack on this machine.
//!
//! The same contract as the engine on the measured path: the bearer JWT is verified the same way
//! (HS256 with `jsonwebtoken`, secret from `METAENGINE_JWT_SECRET`), tenant and realm come from its
//! claims and scope every statement, the pool has the same size and connection options, and the
//! answers have the same JSON (records, a list's `meta` with its cursor and total, a batch's
//! `results`). Its SQL, table and index are its own ([`crate::sql`]): typed columns decoded into
//! structs and serialized by serde. What it does not do is what makes it a baseline: no metadata,
//! no model cache, no policy gate, no audit trail, no tenant-status check; it knows one entity,
//! one list shape and the Invoice's field rules written out by hand.
use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize, Serializer};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use crate::sql;

/// The claims the engine reads from a token (SPEC §9).
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    sub: String,
    pub(crate) tenant_id: String,
    pub(crate) realm_id: String,
    #[expect(
        dead_code,
        reason = "verified like the engine does; the baseline has no policies"
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
                .test_before_acquire(false)
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
    pub(crate) db: Db,
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

/// The router: `/ready`, get, list and create of invoices, and the batch route.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/api/data/Invoice", get(list).post(create))
        .route("/api/data/Invoice/{id}", get(get_one))
        .route(
            "/api/data/Customer",
            get(crate::relations::customers_with_invoices),
        )
        .route("/api/data/batch", post(batch))
        .with_state(state)
}

async fn ready() -> &'static str {
    "ok"
}

pub(crate) fn status(code: StatusCode) -> Response {
    code.into_response()
}

pub(crate) fn claims(state: &AppState, headers: &HeaderMap) -> Result<Claims, StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    jsonwebtoken::decode::<Claims>(token, &state.key, &state.validation)
        .map(|data| data.claims)
        .map_err(|_| StatusCode::UNAUTHORIZED)
}

pub(crate) fn failed(what: &str, e: &sqlx::Error) -> Response {
    if let sqlx::Error::Database(db) = e
        && db.is_unique_violation()
    {
        return status(StatusCode::CONFLICT);
    }
    tracing::error!(error = %e, "{what} failed");
    status(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `2025-06-30T12:00:00.000Z`, the engine's datetime text.
fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

/// `2025-06-30T12:00:00.000Z`, the engine's datetime text.
pub(crate) fn datetime_text(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An invoice as PostgreSQL types it.
#[derive(Debug, sqlx::FromRow, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgInvoice {
    id: Uuid,
    tenant_id: String,
    realm_id: String,
    invoice_number: String,
    customer_id: String,
    total_amount: String,
    status: String,
    due_date: Option<NaiveDate>,
    #[serde(serialize_with = "millis")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "millis")]
    updated_at: DateTime<Utc>,
    created_by: String,
    updated_by: String,
    row_version: i64,
}

/// An invoice as SQLite stores it (the API's text for every value).
#[derive(Debug, sqlx::FromRow, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiteInvoice {
    id: String,
    tenant_id: String,
    realm_id: String,
    invoice_number: String,
    customer_id: String,
    total_amount: String,
    status: String,
    due_date: Option<String>,
    created_at: String,
    updated_at: String,
    created_by: String,
    updated_by: String,
    row_version: i64,
}

/// A record of either database, with what the handlers need of it.
trait Record: Serialize {
    /// The list's sort key (the due date's text) and the id, for the cursor.
    fn key(&self) -> (Option<String>, String);
    /// The `ETag` value.
    fn row_version(&self) -> i64;
}

impl Record for PgInvoice {
    fn key(&self) -> (Option<String>, String) {
        (
            self.due_date.map(|d| d.format("%Y-%m-%d").to_string()),
            self.id.hyphenated().to_string(),
        )
    }
    fn row_version(&self) -> i64 {
        self.row_version
    }
}

impl Record for LiteInvoice {
    fn key(&self) -> (Option<String>, String) {
        (self.due_date.clone(), self.id.clone())
    }
    fn row_version(&self) -> i64 {
        self.row_version
    }
}

pub(crate) fn json_of<T: Serialize>(code: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (code, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn record_response<R: Record>(code: StatusCode, record: &R) -> Response {
    let mut response = json_of(code, record);
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", record.row_version())) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
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
    // Anything but a UUID is no record's id: 404, as the engine answers.
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return status(StatusCode::NOT_FOUND);
    };
    let found = match &state.db {
        Db::Postgres(pool) => sqlx::query_as::<_, PgInvoice>(sql::PG_GET)
            .bind(uuid)
            .bind(&claims.tenant_id)
            .bind(&claims.realm_id)
            .fetch_optional(pool)
            .await
            .map(|r| r.map(|r| record_response(StatusCode::OK, &r))),
        Db::Sqlite(pool) => sqlx::query_as::<_, LiteInvoice>(sql::LITE_GET)
            .bind(uuid.hyphenated().to_string())
            .bind(&claims.tenant_id)
            .bind(&claims.realm_id)
            .fetch_optional(pool)
            .await
            .map(|r| r.map(|r| record_response(StatusCode::OK, &r))),
    };
    match found {
        Ok(Some(response)) => response,
        Ok(None) => status(StatusCode::NOT_FOUND),
        Err(e) => failed("get", &e),
    }
}

/// The one list the baseline knows: `filter[status][eq]=…&orderBy=dueDate&orderDir=desc&
/// pageSize=N`, with `count=none` or the total (`count=exact`, the default).
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
    count: Option<String>,
    /// `customerId` (the relations benchmark) or none.
    expand: Option<String>,
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
pub fn cursor(key: Option<&str>, id: &str) -> String {
    let array = serde_json::json!([key, id]);
    base64url(array.to_string().as_bytes())
}

/// A page's `meta`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    page: u32,
    page_size: u32,
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_pages: Option<i64>,
}

/// `{"data": [...], "meta": {...}}`.
#[derive(Debug, Serialize)]
struct Page<R> {
    data: Vec<R>,
    meta: Meta,
}

fn page<R: Record>(mut rows: Vec<R>, page_size: u32, total: Option<i64>) -> Response {
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    let next_cursor = if more {
        rows.last().map(|r| {
            let (key, id) = r.key();
            cursor(key.as_deref(), &id)
        })
    } else {
        None
    };
    let meta = Meta {
        page: 1,
        page_size,
        next_cursor,
        total,
        total_pages: total.map(|t| (t + i64::from(page_size) - 1) / i64::from(page_size)),
    };
    json_of(StatusCode::OK, &Page { data: rows, meta })
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
    let with_total = match params.count.as_deref() {
        None | Some("exact") => true,
        Some("none") => false,
        Some(_) => return status(StatusCode::BAD_REQUEST),
    };
    if params.order_by != "dueDate"
        || params.order_dir != "desc"
        || params.page_size == 0
        || params.page_size > 100
        || !["draft", "sent", "paid"].contains(&params.status.as_str())
    {
        return status(StatusCode::BAD_REQUEST);
    }
    match params.expand.as_deref() {
        None => {}
        Some("customerId") if !with_total => {
            return crate::relations::invoices_with_customers(
                &state,
                &claims.tenant_id,
                &claims.realm_id,
                &params.status,
                params.page_size,
            )
            .await;
        }
        Some(_) => return status(StatusCode::BAD_REQUEST),
    }
    let limit = i64::from(params.page_size) + 1;
    let (t, r, s) = (&claims.tenant_id, &claims.realm_id, &params.status);
    let answer = match &state.db {
        Db::Postgres(pool) => {
            let list = sql::with_limit(sql::PG_LIST, limit);
            let rows = sqlx::query_as::<_, PgInvoice>(&list)
                .bind(t)
                .bind(r)
                .bind(s)
                .fetch_all(pool)
                .await;
            let total = match (&rows, with_total) {
                (Ok(_), true) => sqlx::query_scalar::<_, i64>(sql::PG_COUNT)
                    .bind(t)
                    .bind(r)
                    .bind(s)
                    .fetch_one(pool)
                    .await
                    .map(Some),
                _ => Ok(None),
            };
            rows.and_then(|rows| total.map(|total| page(rows, params.page_size, total)))
        }
        Db::Sqlite(pool) => {
            let list = sql::with_limit(sql::LITE_LIST, limit);
            let rows = sqlx::query_as::<_, LiteInvoice>(&list)
                .bind(t)
                .bind(r)
                .bind(s)
                .fetch_all(pool)
                .await;
            let total = match (&rows, with_total) {
                (Ok(_), true) => sqlx::query_scalar::<_, i64>(sql::LITE_COUNT)
                    .bind(t)
                    .bind(r)
                    .bind(s)
                    .fetch_one(pool)
                    .await
                    .map(Some),
                _ => Ok(None),
            };
            rows.and_then(|rows| total.map(|total| page(rows, params.page_size, total)))
        }
    };
    answer.unwrap_or_else(|e| failed("list", &e))
}

/// A new invoice as a client sends it: the Invoice's field rules, by hand.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewInvoice {
    invoice_number: String,
    customer_id: String,
    total_amount: String,
    #[serde(default = "draft")]
    status: String,
    due_date: Option<NaiveDate>,
}

fn draft() -> String {
    "draft".to_owned()
}

/// `0` to `9999999999.99`: at most 10 digits before the point and 2 after.
fn is_amount(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    (1..=10).contains(&int.len())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !s.ends_with('.')
}

impl NewInvoice {
    fn is_valid(&self) -> bool {
        (1..=32).contains(&self.invoice_number.chars().count())
            && !self.customer_id.is_empty()
            && is_amount(&self.total_amount)
            && ["draft", "sent", "paid"].contains(&self.status.as_str())
    }
}

/// The transaction time, at the millisecond the database keeps.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

fn now_text(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let claims = match claims(&state, &headers) {
        Ok(c) => c,
        Err(code) => return status(code),
    };
    let new = match serde_json::from_slice::<NewInvoice>(&body) {
        Ok(new) if new.is_valid() => new,
        _ => return status(StatusCode::UNPROCESSABLE_ENTITY),
    };
    let (id, at) = (Uuid::now_v7(), now());
    let created = match &state.db {
        Db::Postgres(pool) => sqlx::query_as::<_, PgInvoice>(sql::PG_INSERT)
            .bind(id)
            .bind(&claims.tenant_id)
            .bind(&claims.realm_id)
            .bind(&new.invoice_number)
            .bind(&new.customer_id)
            .bind(&new.total_amount)
            .bind(&new.status)
            .bind(new.due_date)
            .bind(at)
            .bind(&claims.sub)
            .fetch_one(pool)
            .await
            .map(|r| record_response(StatusCode::CREATED, &r)),
        Db::Sqlite(pool) => {
            let sql = format!(
                "{}(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?10, 1){}",
                sql::LITE_INSERT_HEAD,
                sql::LITE_RETURNING
            );
            sqlx::query_as::<_, LiteInvoice>(&sql)
                .bind(id.hyphenated().to_string())
                .bind(&claims.tenant_id)
                .bind(&claims.realm_id)
                .bind(&new.invoice_number)
                .bind(&new.customer_id)
                .bind(&new.total_amount)
                .bind(&new.status)
                .bind(new.due_date.map(|d| d.format("%Y-%m-%d").to_string()))
                .bind(now_text(&at))
                .bind(&claims.sub)
                .fetch_one(pool)
                .await
                .map(|r| record_response(StatusCode::CREATED, &r))
        }
    };
    created.unwrap_or_else(|e| failed("create", &e))
}

/// The batch route of SPEC §7, for creates of invoices.
#[derive(Debug, Deserialize)]
struct Batch {
    operations: Vec<Operation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Operation {
    op: String,
    entity: String,
    record: NewInvoice,
}

/// One result of a batch.
#[derive(Debug, Serialize)]
struct Created<R> {
    status: u16,
    record: R,
}

#[derive(Debug, Serialize)]
struct Results<R> {
    results: Vec<Created<R>>,
}

fn results<R: Serialize>(records: Vec<R>) -> Response {
    let results = records
        .into_iter()
        .map(|record| Created {
            status: 201,
            record,
        })
        .collect();
    json_of(StatusCode::OK, &Results { results })
}

async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let claims = match claims(&state, &headers) {
        Ok(c) => c,
        Err(code) => return status(code),
    };
    let Ok(batch) = serde_json::from_slice::<Batch>(&body) else {
        return status(StatusCode::UNPROCESSABLE_ENTITY);
    };
    let ops = batch.operations;
    if ops.is_empty()
        || ops.len() > 1_000
        || !ops
            .iter()
            .all(|o| o.op == "create" && o.entity == "Invoice" && o.record.is_valid())
    {
        return status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let at = now();
    let ids: Vec<Uuid> = ops.iter().map(|_| Uuid::now_v7()).collect();
    let done = match &state.db {
        Db::Postgres(pool) => {
            let column = |f: fn(&NewInvoice) -> &String| -> Vec<&str> {
                ops.iter().map(|o| f(&o.record).as_str()).collect()
            };
            let due: Vec<Option<NaiveDate>> = ops.iter().map(|o| o.record.due_date).collect();
            sqlx::query_as::<_, PgInvoice>(sql::PG_INSERT_MANY)
                .bind(&claims.tenant_id)
                .bind(&claims.realm_id)
                .bind(at)
                .bind(&claims.sub)
                .bind(&ids)
                .bind(column(|r| &r.invoice_number))
                .bind(column(|r| &r.customer_id))
                .bind(column(|r| &r.total_amount))
                .bind(column(|r| &r.status))
                .bind(due)
                .fetch_all(pool)
                .await
                .map(results)
        }
        Db::Sqlite(pool) => {
            let mut sql = String::from(sql::LITE_INSERT_HEAD);
            for i in 0..ops.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)");
            }
            sql.push_str(sql::LITE_RETURNING);
            let at = now_text(&at);
            let mut q = sqlx::query_as::<_, LiteInvoice>(&sql);
            for (op, id) in ops.iter().zip(&ids) {
                let r = &op.record;
                q = q
                    .bind(id.hyphenated().to_string())
                    .bind(&claims.tenant_id)
                    .bind(&claims.realm_id)
                    .bind(&r.invoice_number)
                    .bind(&r.customer_id)
                    .bind(&r.total_amount)
                    .bind(&r.status)
                    .bind(r.due_date.map(|d| d.format("%Y-%m-%d").to_string()))
                    .bind(at.clone())
                    .bind(at.clone())
                    .bind(&claims.sub)
                    .bind(&claims.sub);
            }
            // One statement is one transaction: all or nothing.
            q.fetch_all(pool).await.map(results)
        }
    };
    done.unwrap_or_else(|e| failed("batch", &e))
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
    use axum::body::Body;
    use axum::http::Request;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    const SECRET: &str = "test-secret";

    #[test]
    fn the_cursor_is_the_engines() {
        let key = "2025-06-30";
        let id = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6";
        for key in [Some(key.to_owned()), None] {
            let engine = metaengine_sql::query::encode_cursor(
                &metaengine_sql::query::Cursor::from_row(key.clone(), id.to_owned()),
            );
            assert_eq!(cursor(key.as_deref(), id), engine);
        }
    }

    #[test]
    fn amounts_follow_the_invoices_decimal_rule() {
        for ok in ["0", "12", "12.5", "12.50", "9999999999.99"] {
            assert!(is_amount(ok), "{ok}");
        }
        for bad in ["", "12.", ".5", "1.234", "-1", "12345678901", "1e3", "1,5"] {
            assert!(!is_amount(bad), "{bad}");
        }
    }

    fn token(tenant: &str, secret: &str) -> String {
        let claims = json!({
            "sub": "u1", "tenant_id": tenant, "realm_id": "r1", "roles": ["admin"],
            "exp": chrono::Utc::now().timestamp() + 600,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    async fn call(
        state: &AppState,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let res = app(state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, value)
    }

    /// The baseline's table on `url`, empty.
    async fn state(url: &str) -> AppState {
        let db = Db::connect(url, 4).await.unwrap();
        let setup = match &db {
            Db::Postgres(_) => sql::PG_SETUP,
            Db::Sqlite(_) => sql::LITE_SETUP,
        };
        for statement in setup {
            match &db {
                Db::Postgres(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
                Db::Sqlite(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
            }
            .unwrap();
        }
        AppState::new(db, SECRET)
    }

    async fn writes_reads_and_refuses(url: &str) {
        let state = state(url).await;
        let t1 = token("t1", SECRET);
        let records: Vec<Value> = (0..60).map(crate::prepare::gen_record).collect();
        let operations: Vec<Value> = records
            .iter()
            .map(|r| json!({"op": "create", "entity": "Invoice", "record": r}))
            .collect();
        let (status, _, body) = call(
            &state,
            "POST",
            "/api/data/batch",
            Some(&t1),
            Some(json!({ "operations": operations })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let created = body["results"].as_array().unwrap();
        assert_eq!(created.len(), 60);
        for (result, sent) in created.iter().zip(&records) {
            assert_eq!(result["status"], 201);
            assert_eq!(result["record"]["invoiceNumber"], sent["invoiceNumber"]);
            assert_eq!(result["record"]["dueDate"], sent["dueDate"]);
            assert_eq!(result["record"]["tenantId"], "t1");
            assert_eq!(result["record"]["rowVersion"], 1);
        }

        // Another tenant's invoice, by the single route.
        let (status, headers, other) = call(
            &state,
            "POST",
            "/api/data/Invoice",
            Some(&token("t2", SECRET)),
            Some(crate::prepare::gen_record(1_000)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{other}");
        assert_eq!(headers["etag"], "\"1\"");
        assert!(
            other["createdAt"]
                .as_str()
                .is_some_and(|t| t.len() == 24 && t.ends_with('Z'))
        );

        // Get by id: the record as created; another tenant's is not there.
        let first = &created[3]["record"];
        let id = first["id"].as_str().unwrap();
        let (status, headers, got) = call(
            &state,
            "GET",
            &format!("/api/data/Invoice/{id}"),
            Some(&t1),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&got, first);
        assert_eq!(headers["etag"], "\"1\"");
        let path = format!("/api/data/Invoice/{}", other["id"].as_str().unwrap());
        assert_eq!(
            call(&state, "GET", &path, Some(&t1), None).await.0,
            StatusCode::NOT_FOUND
        );
        let path = "/api/data/Invoice/not-an-id";
        assert_eq!(
            call(&state, "GET", path, Some(&t1), None).await.0,
            StatusCode::NOT_FOUND
        );

        // A page of 5 paid invoices, latest due date first and none last, with its total.
        let list = "/api/data/Invoice?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=dueDate&orderDir=desc&pageSize=5";
        let mut paid: Vec<&Value> = created
            .iter()
            .map(|r| &r["record"])
            .filter(|r| r["status"] == "paid")
            .collect();
        paid.sort_by(|a, b| {
            let key = |r: &Value| {
                (
                    r["dueDate"].as_str().map(str::to_owned),
                    r["id"].to_string(),
                )
            };
            key(b).cmp(&key(a))
        });
        assert!(paid.len() > 5, "{}", paid.len());
        let (status, _, page) = call(&state, "GET", list, Some(&t1), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["data"], json!(paid[..5]));
        let last = paid[4];
        let next = cursor(last["dueDate"].as_str(), last["id"].as_str().unwrap());
        assert_eq!(page["meta"]["nextCursor"], next.as_str());
        assert_eq!(page["meta"]["total"], paid.len());
        assert_eq!(page["meta"]["totalPages"], paid.len().div_ceil(5));
        let (_, _, page) = call(
            &state,
            "GET",
            &format!("{list}&count=none"),
            Some(&t1),
            None,
        )
        .await;
        assert!(page["meta"].get("total").is_none());
        assert_eq!(page["data"].as_array().unwrap().len(), 5);
        // The invoices without a due date come last.
        let all = list.replace("pageSize=5", "pageSize=100");
        let (_, _, page) = call(&state, "GET", &all, Some(&t1), None).await;
        let dues: Vec<&Value> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["dueDate"])
            .collect();
        let nulls = dues.iter().position(|d| d.is_null()).unwrap_or(dues.len());
        assert!(dues[nulls..].iter().all(|d| d.is_null()));
        assert_eq!(page["meta"]["nextCursor"], Value::Null);

        // Refusals: a bad amount, a number taken, no or a forged token, an unknown list shape.
        let mut bad = crate::prepare::gen_record(2_000);
        bad["totalAmount"] = json!("12.345");
        let create = |body: Value, t: Option<String>| {
            let state = state.clone();
            async move {
                call(
                    &state,
                    "POST",
                    "/api/data/Invoice",
                    t.as_deref(),
                    Some(body),
                )
                .await
                .0
            }
        };
        assert_eq!(
            create(bad, Some(t1.clone())).await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            create(records[0].clone(), Some(t1.clone())).await,
            StatusCode::CONFLICT
        );
        assert_eq!(
            create(records[0].clone(), None).await,
            StatusCode::UNAUTHORIZED
        );
        let forged = token("t1", "another-secret");
        assert_eq!(
            create(records[0].clone(), Some(forged)).await,
            StatusCode::UNAUTHORIZED
        );
        let asc = list.replace("orderDir=desc", "orderDir=asc");
        assert_eq!(
            call(&state, "GET", &asc, Some(&t1), None).await.0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn the_baseline_writes_reads_and_refuses_on_sqlite() {
        let (db, _store) = metaengine_testing::sqlite().await;
        writes_reads_and_refuses(db.url()).await;
    }

    #[tokio::test]
    async fn the_baseline_writes_reads_and_refuses_on_postgres() {
        let (db, _store) = metaengine_testing::postgres().await;
        writes_reads_and_refuses(db.url()).await;
    }
}
