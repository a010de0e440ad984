//! The relations benchmark (`--relations`, issue 14): a Customer ← Invoice pair in a database of
//! its own, one tenant with 1,000 customers and 100 invoices each (100,000), filled through the
//! engine's batch API. Two reads, engine against the baseline's hand-written join:
//! - a page of 20 paid invoices, latest due date first, each with its customer
//!   (`expand=customerId`): the baseline runs one `LEFT JOIN`;
//! - a page of 20 customers with their invoices (`expand=Invoice_via_customerId`, 100 each):
//!   the baseline reads the page, then the invoices of its customers in one statement
//!   (`customer_id = ANY($3)` / `IN (…)`, by customer and id), and groups them.
//!
//! The baseline's tables are its own (`baseline.rel_customer`, `baseline.rel_invoice`, typed
//! uuids on PostgreSQL), copied from the engine's, with the indexes these reads need.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use uuid::Uuid;

use crate::baseline::{AppState, Db, claims, cursor, datetime_text, failed, json_of, status};

/// The invoice list with its customers, as both servers answer it.
pub const INVOICES_PATH: &str = "/api/data/Invoice?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=dueDate&orderDir=desc&pageSize=20&count=none&expand=customerId";
/// The customer list with their invoices.
pub const CUSTOMERS_PATH: &str =
    "/api/data/Customer?pageSize=20&count=none&expand=Invoice_via_customerId";
/// Customers in the benchmark's tenant.
pub const CUSTOMERS: u64 = 1_000;
/// Invoices per customer.
pub const INVOICES_PER_CUSTOMER: u64 = 100;

/// The engine's Customer.
pub fn customer_schema() -> String {
    serde_json::json!({
        "fields": [
            { "name": "name", "type": "string", "required": true },
            { "name": "region", "type": "string" }
        ],
        "policies": [{ "name": "everyone-reads", "effect": "allow", "action": "read" },
                     { "name": "admins", "effect": "allow", "action": "*",
                       "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] }]
    })
    .to_string()
}

/// The benchmark's Invoice with `customerId` a reference to Customer.
pub fn invoice_schema() -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(&crate::sql::invoice_schema()).unwrap_or_default();
    if let Some(fields) = schema.get_mut("fields").and_then(|f| f.as_array_mut()) {
        for f in fields.iter_mut() {
            if f["name"] == "customerId" {
                *f = serde_json::json!({ "name": "customerId", "type": "reference",
                                          "referenceTo": "Customer", "required": true });
            }
        }
    }
    schema.to_string()
}

/// The id of customer `i`: a fixed UUID (version 7 layout), so invoices can name it.
pub fn customer_id(i: u64) -> String {
    format!("01900000-0000-7000-8000-{i:012}")
}

/// The new customer `i`.
pub fn gen_customer(i: u64) -> serde_json::Value {
    let region = match i % 4 {
        0 => "north",
        1 => "south",
        2 => "east",
        _ => "west",
    };
    serde_json::json!({ "id": customer_id(i), "name": format!("Customer {i:04}"), "region": region })
}

/// The new invoice `i`: the main benchmark's, for customer `i % 1,000`.
pub fn gen_invoice(i: u64) -> serde_json::Value {
    let mut record = crate::prepare::gen_record(i);
    if let Some(object) = record.as_object_mut() {
        object.insert(
            "customerId".to_owned(),
            serde_json::Value::String(customer_id(i % CUSTOMERS)),
        );
    }
    record
}

/// The baseline's tables on PostgreSQL, filled from the engine's, indexed and analyzed.
pub const PG_SETUP: &[&str] = &[
    "CREATE SCHEMA IF NOT EXISTS baseline",
    "DROP TABLE IF EXISTS baseline.rel_invoice",
    "DROP TABLE IF EXISTS baseline.rel_customer",
    "CREATE TABLE baseline.rel_customer AS SELECT id, tenant_id, realm_id, name, region, \
     created_at, updated_at, created_by, updated_by, row_version FROM core.ent_customer",
    "ALTER TABLE baseline.rel_customer ADD PRIMARY KEY (tenant_id, id)",
    "CREATE INDEX rel_customer_page ON baseline.rel_customer (tenant_id, realm_id, created_at, id)",
    "CREATE TABLE baseline.rel_invoice AS SELECT id, tenant_id, realm_id, invoice_number, \
     customer_id, total_amount, status, due_date, created_at, updated_at, created_by, \
     updated_by, row_version FROM core.ent_invoice",
    "ALTER TABLE baseline.rel_invoice ADD PRIMARY KEY (tenant_id, id)",
    "CREATE INDEX rel_invoice_page ON baseline.rel_invoice \
     (tenant_id, realm_id, status, due_date DESC NULLS LAST, id DESC)",
    "CREATE INDEX rel_invoice_customer ON baseline.rel_invoice (tenant_id, customer_id, id)",
    "VACUUM ANALYZE baseline.rel_customer",
    "VACUUM ANALYZE baseline.rel_invoice",
];

/// The same on SQLite.
pub const LITE_SETUP: &[&str] = &[
    "DROP TABLE IF EXISTS rel_invoice",
    "DROP TABLE IF EXISTS rel_customer",
    "CREATE TABLE rel_customer (id TEXT NOT NULL, tenant_id TEXT NOT NULL, realm_id TEXT NOT NULL, \
     name TEXT NOT NULL, region TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, \
     created_by TEXT NOT NULL, updated_by TEXT NOT NULL, row_version INTEGER NOT NULL, \
     PRIMARY KEY (tenant_id, id))",
    "INSERT INTO rel_customer SELECT id, tenant_id, realm_id, name, region, created_at, \
     updated_at, created_by, updated_by, row_version FROM ent_customer",
    "CREATE INDEX rel_customer_page ON rel_customer (tenant_id, realm_id, created_at, id)",
    "CREATE TABLE rel_invoice (id TEXT NOT NULL, tenant_id TEXT NOT NULL, realm_id TEXT NOT NULL, \
     invoice_number TEXT NOT NULL, customer_id TEXT NOT NULL, total_amount TEXT NOT NULL, \
     status TEXT NOT NULL, due_date TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, \
     created_by TEXT NOT NULL, updated_by TEXT NOT NULL, row_version INTEGER NOT NULL, \
     PRIMARY KEY (tenant_id, id))",
    "INSERT INTO rel_invoice SELECT id, tenant_id, realm_id, invoice_number, customer_id, \
     total_amount, status, due_date, created_at, updated_at, created_by, updated_by, row_version \
     FROM ent_invoice",
    "CREATE INDEX rel_invoice_page ON rel_invoice \
     (tenant_id, realm_id, status, due_date DESC, id DESC)",
    "CREATE INDEX rel_invoice_customer ON rel_invoice (tenant_id, customer_id, id)",
    "ANALYZE rel_customer",
    "ANALYZE rel_invoice",
];

const PG_INVOICE_COLUMNS: &str = "i.id, i.tenant_id, i.realm_id, i.invoice_number, i.customer_id, \
     i.total_amount::text AS total_amount, i.status, i.due_date, i.created_at, i.updated_at, \
     i.created_by, i.updated_by, i.row_version";
const PG_CUSTOMER_COLUMNS: &str = "c.id AS c_id, c.tenant_id AS c_tenant_id, \
     c.realm_id AS c_realm_id, c.name AS c_name, c.region AS c_region, \
     c.created_at AS c_created_at, c.updated_at AS c_updated_at, c.created_by AS c_created_by, \
     c.updated_by AS c_updated_by, c.row_version AS c_row_version";
const LITE_INVOICE_COLUMNS: &str = "i.id, i.tenant_id, i.realm_id, i.invoice_number, \
     i.customer_id, i.total_amount, i.status, i.due_date, i.created_at, i.updated_at, \
     i.created_by, i.updated_by, i.row_version";

/// A customer as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Customer {
    id: String,
    name: String,
    region: Option<String>,
    tenant_id: String,
    realm_id: String,
    created_at: String,
    updated_at: String,
    created_by: String,
    updated_by: String,
    row_version: i64,
}

/// An invoice as the API shows it, with what `expand` adds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Invoice<E: Serialize> {
    id: String,
    invoice_number: String,
    customer_id: String,
    total_amount: String,
    status: String,
    due_date: Option<String>,
    tenant_id: String,
    realm_id: String,
    created_at: String,
    updated_at: String,
    created_by: String,
    updated_by: String,
    row_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expand: Option<E>,
}

#[derive(Debug, Serialize)]
struct WithCustomer {
    #[serde(rename = "customerId")]
    customer: Option<Customer>,
}

#[derive(Debug, Serialize)]
struct CustomerWithInvoices {
    #[serde(flatten)]
    customer: Customer,
    expand: Invoices,
}

#[derive(Debug, Serialize)]
struct Invoices {
    #[serde(rename = "Invoice_via_customerId")]
    invoices: Vec<Invoice<()>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    page: u32,
    page_size: u32,
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct Page<R: Serialize> {
    data: Vec<R>,
    meta: Meta,
}

fn pg_time(row: &sqlx::postgres::PgRow, column: &str) -> Result<String, sqlx::Error> {
    let t: DateTime<Utc> = row.try_get(column)?;
    Ok(datetime_text(&t))
}

fn pg_invoice<E: Serialize>(row: &sqlx::postgres::PgRow) -> Result<Invoice<E>, sqlx::Error> {
    let due: Option<NaiveDate> = row.try_get("due_date")?;
    Ok(Invoice {
        id: row.try_get::<Uuid, _>("id")?.hyphenated().to_string(),
        invoice_number: row.try_get("invoice_number")?,
        customer_id: row
            .try_get::<Uuid, _>("customer_id")?
            .hyphenated()
            .to_string(),
        total_amount: row.try_get("total_amount")?,
        status: row.try_get("status")?,
        due_date: due.map(|d| d.format("%Y-%m-%d").to_string()),
        tenant_id: row.try_get("tenant_id")?,
        realm_id: row.try_get("realm_id")?,
        created_at: pg_time(row, "created_at")?,
        updated_at: pg_time(row, "updated_at")?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
        row_version: row.try_get("row_version")?,
        expand: None,
    })
}

fn pg_customer(row: &sqlx::postgres::PgRow, p: &str) -> Result<Option<Customer>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<Uuid>, _>(format!("{p}id").as_str())? else {
        return Ok(None);
    };
    Ok(Some(Customer {
        id: id.hyphenated().to_string(),
        name: row.try_get(format!("{p}name").as_str())?,
        region: row.try_get(format!("{p}region").as_str())?,
        tenant_id: row.try_get(format!("{p}tenant_id").as_str())?,
        realm_id: row.try_get(format!("{p}realm_id").as_str())?,
        created_at: pg_time(row, &format!("{p}created_at"))?,
        updated_at: pg_time(row, &format!("{p}updated_at"))?,
        created_by: row.try_get(format!("{p}created_by").as_str())?,
        updated_by: row.try_get(format!("{p}updated_by").as_str())?,
        row_version: row.try_get(format!("{p}row_version").as_str())?,
    }))
}

fn lite_invoice<E: Serialize>(row: &sqlx::sqlite::SqliteRow) -> Result<Invoice<E>, sqlx::Error> {
    Ok(Invoice {
        id: row.try_get("id")?,
        invoice_number: row.try_get("invoice_number")?,
        customer_id: row.try_get("customer_id")?,
        total_amount: row.try_get("total_amount")?,
        status: row.try_get("status")?,
        due_date: row.try_get("due_date")?,
        tenant_id: row.try_get("tenant_id")?,
        realm_id: row.try_get("realm_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
        row_version: row.try_get("row_version")?,
        expand: None,
    })
}

fn lite_customer(row: &sqlx::sqlite::SqliteRow, p: &str) -> Result<Option<Customer>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<String>, _>(format!("{p}id").as_str())? else {
        return Ok(None);
    };
    Ok(Some(Customer {
        id,
        name: row.try_get(format!("{p}name").as_str())?,
        region: row.try_get(format!("{p}region").as_str())?,
        tenant_id: row.try_get(format!("{p}tenant_id").as_str())?,
        realm_id: row.try_get(format!("{p}realm_id").as_str())?,
        created_at: row.try_get(format!("{p}created_at").as_str())?,
        updated_at: row.try_get(format!("{p}updated_at").as_str())?,
        created_by: row.try_get(format!("{p}created_by").as_str())?,
        updated_by: row.try_get(format!("{p}updated_by").as_str())?,
        row_version: row.try_get(format!("{p}row_version").as_str())?,
    }))
}

/// A page of `rows` (one more than `size` means a next page, whose cursor is `key` of the last
/// one kept).
fn page<R: Serialize>(
    mut rows: Vec<R>,
    size: u32,
    key: impl Fn(&R) -> (Option<String>, String),
) -> Response {
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    let next_cursor = if more {
        rows.last().map(|r| {
            let (k, id) = key(r);
            cursor(k.as_deref(), &id)
        })
    } else {
        None
    };
    json_of(
        StatusCode::OK,
        &Page {
            data: rows,
            meta: Meta {
                page: 1,
                page_size: size,
                next_cursor,
            },
        },
    )
}

/// `GET /api/data/Invoice?filter[status][eq]=…&orderBy=dueDate&orderDir=desc&pageSize=N&
/// count=none&expand=customerId`: one `LEFT JOIN`.
pub async fn invoices_with_customers(
    state: &AppState,
    tenant: &str,
    realm: &str,
    status_value: &str,
    size: u32,
) -> Response {
    let limit = i64::from(size) + 1;
    let key = |i: &Invoice<WithCustomer>| (i.due_date.clone(), i.id.clone());
    let answer = match &state.db {
        Db::Postgres(pool) => {
            let sql = format!(
                "SELECT {PG_INVOICE_COLUMNS}, {PG_CUSTOMER_COLUMNS} FROM baseline.rel_invoice i \
                 LEFT JOIN baseline.rel_customer c ON c.tenant_id = i.tenant_id \
                 AND c.realm_id = i.realm_id AND c.id = i.customer_id \
                 WHERE i.tenant_id = $1 AND i.realm_id = $2 AND i.status = $3 \
                 ORDER BY i.due_date DESC NULLS LAST, i.id DESC LIMIT {limit}"
            );
            sqlx::query(&sql)
                .bind(tenant)
                .bind(realm)
                .bind(status_value)
                .fetch_all(pool)
                .await
                .and_then(|rows| {
                    rows.iter()
                        .map(|row| {
                            let mut i = pg_invoice::<WithCustomer>(row)?;
                            i.expand = Some(WithCustomer {
                                customer: pg_customer(row, "c_")?,
                            });
                            Ok(i)
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
        }
        Db::Sqlite(pool) => {
            let sql = format!(
                "SELECT {LITE_INVOICE_COLUMNS}, {} FROM rel_invoice i \
                 LEFT JOIN rel_customer c ON c.tenant_id = i.tenant_id \
                 AND c.realm_id = i.realm_id AND c.id = i.customer_id \
                 WHERE i.tenant_id = ?1 AND i.realm_id = ?2 AND i.status = ?3 \
                 ORDER BY i.due_date DESC, i.id DESC LIMIT {limit}",
                PG_CUSTOMER_COLUMNS
            );
            sqlx::query(&sql)
                .bind(tenant)
                .bind(realm)
                .bind(status_value)
                .fetch_all(pool)
                .await
                .and_then(|rows| {
                    rows.iter()
                        .map(|row| {
                            let mut i = lite_invoice::<WithCustomer>(row)?;
                            i.expand = Some(WithCustomer {
                                customer: lite_customer(row, "c_")?,
                            });
                            Ok(i)
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                })
        }
    };
    match answer {
        Ok(rows) => page(rows, size, key),
        Err(e) => failed("list with customers", &e),
    }
}

/// The customer list's parameters.
#[derive(Debug, Deserialize)]
pub struct CustomerParams {
    #[serde(rename = "pageSize")]
    page_size: u32,
    count: Option<String>,
    expand: Option<String>,
}

/// `GET /api/data/Customer?pageSize=N&count=none&expand=Invoice_via_customerId`: the page, then
/// its customers' invoices (at most 100 each, by id) in one statement, grouped here.
pub async fn customers_with_invoices(
    State(state): State<AppState>,
    Query(params): Query<CustomerParams>,
    headers: HeaderMap,
) -> Response {
    let claims = match claims(&state, &headers) {
        Ok(c) => c,
        Err(code) => return status(code),
    };
    if params.count.as_deref() != Some("none")
        || params.expand.as_deref() != Some("Invoice_via_customerId")
        || params.page_size == 0
        || params.page_size > 100
    {
        return status(StatusCode::BAD_REQUEST);
    }
    let size = params.page_size;
    let limit = i64::from(size) + 1;
    let (t, r) = (&claims.tenant_id, &claims.realm_id);
    let customer_columns = "id AS c_id, tenant_id AS c_tenant_id, realm_id AS c_realm_id, \
         name AS c_name, region AS c_region, created_at AS c_created_at, \
         updated_at AS c_updated_at, created_by AS c_created_by, updated_by AS c_updated_by, \
         row_version AS c_row_version";
    let answer: Result<Vec<CustomerWithInvoices>, sqlx::Error> = match &state.db {
        Db::Postgres(pool) => {
            async {
                let customers: Vec<Customer> = sqlx::query(&format!(
                    "SELECT {customer_columns} FROM baseline.rel_customer \
                 WHERE tenant_id = $1 AND realm_id = $2 ORDER BY created_at, id LIMIT {limit}"
                ))
                .bind(t)
                .bind(r)
                .fetch_all(pool)
                .await?
                .iter()
                .filter_map(|row| pg_customer(row, "c_").transpose())
                .collect::<Result<_, _>>()?;
                let ids: Vec<Uuid> = customers
                    .iter()
                    .filter_map(|c| Uuid::parse_str(&c.id).ok())
                    .collect();
                let rows = sqlx::query(&format!(
                    "SELECT {PG_INVOICE_COLUMNS} FROM baseline.rel_invoice i \
                 WHERE i.tenant_id = $1 AND i.realm_id = $2 AND i.customer_id = ANY($3) \
                 ORDER BY i.customer_id, i.id"
                ))
                .bind(t)
                .bind(r)
                .bind(&ids)
                .fetch_all(pool)
                .await?;
                let invoices = rows
                    .iter()
                    .map(pg_invoice::<()>)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(group(customers, invoices))
            }
            .await
        }
        Db::Sqlite(pool) => {
            async {
                let customers: Vec<Customer> = sqlx::query(&format!(
                    "SELECT {customer_columns} FROM rel_customer \
                 WHERE tenant_id = ?1 AND realm_id = ?2 ORDER BY created_at, id LIMIT {limit}"
                ))
                .bind(t)
                .bind(r)
                .fetch_all(pool)
                .await?
                .iter()
                .filter_map(|row| lite_customer(row, "c_").transpose())
                .collect::<Result<_, _>>()?;
                let marks: Vec<String> = (0..customers.len())
                    .map(|i| format!("?{}", i + 3))
                    .collect();
                let sql = format!(
                    "SELECT {LITE_INVOICE_COLUMNS} FROM rel_invoice i WHERE i.tenant_id = ?1 \
                 AND i.realm_id = ?2 AND i.customer_id IN ({}) ORDER BY i.customer_id, i.id",
                    marks.join(", ")
                );
                let mut q = sqlx::query(&sql).bind(t).bind(r);
                for c in &customers {
                    q = q.bind(&c.id);
                }
                let invoices = q
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(lite_invoice::<()>)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(group(customers, invoices))
            }
            .await
        }
    };
    match answer {
        Ok(rows) => page(rows, size, |c: &CustomerWithInvoices| {
            (Some(c.customer.created_at.clone()), c.customer.id.clone())
        }),
        Err(e) => failed("customers with invoices", &e),
    }
}

/// Each customer with its invoices (`invoices` sorted by customer, then id), at most 100.
fn group(customers: Vec<Customer>, invoices: Vec<Invoice<()>>) -> Vec<CustomerWithInvoices> {
    let mut by_customer: std::collections::HashMap<String, Vec<Invoice<()>>> =
        std::collections::HashMap::new();
    for i in invoices {
        let list = by_customer.entry(i.customer_id.clone()).or_default();
        if list.len() < 100 {
            list.push(i);
        }
    }
    customers
        .into_iter()
        .map(|c| {
            let invoices = by_customer.remove(&c.id).unwrap_or_default();
            CustomerWithInvoices {
                customer: c,
                expand: Invoices { invoices },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoices_refer_to_the_customers_by_a_uuid() {
        let schema: serde_json::Value = serde_json::from_str(&invoice_schema()).unwrap();
        let field = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "customerId")
            .unwrap();
        assert_eq!(field["type"], "reference");
        assert_eq!(field["referenceTo"], "Customer");
        let id = gen_invoice(1_234)["customerId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(id, customer_id(234));
        assert!(Uuid::parse_str(&id).is_ok());
        assert_eq!(gen_customer(234)["id"], id.as_str());
    }
}
