//! The baseline's own schema and SQL, written by hand as an expert would for the benchmarked
//! requests, independent of the engine's query builder: a table of its own (`baseline.invoice` on
//! PostgreSQL, `baseline_invoice` on SQLite) filled with a copy of the engine's rows, keyed by
//! `id`, with one index that serves the list's filter and order, vacuumed and analyzed after the
//! copy. Records are decoded into typed structs and serialized by serde (see [`crate::baseline`]).
//!
//! Placeholders, in order: get — id, tenant, realm; list — tenant, realm, status, limit; count —
//! tenant, realm, status; insert — id, tenant, realm, invoice number, customer, amount, status,
//! due date, now, user.

/// The columns every read and every `RETURNING` gives, in the record's order (PostgreSQL).
macro_rules! pg_columns {
    () => {
        "id, tenant_id, realm_id, invoice_number, customer_id, total_amount::text AS total_amount, \
         status, due_date, created_at, updated_at, created_by, updated_by, row_version"
    };
}

/// The same on SQLite (every value is stored as the text the API shows).
macro_rules! lite_columns {
    () => {
        "id, tenant_id, realm_id, invoice_number, customer_id, total_amount, status, due_date, \
         created_at, updated_at, created_by, updated_by, row_version"
    };
}

/// The columns a copy or an insert writes.
macro_rules! insert_columns {
    () => {
        "id, tenant_id, realm_id, invoice_number, customer_id, total_amount, status, due_date, \
         created_at, updated_at, created_by, updated_by, row_version"
    };
}

/// The baseline's table and index on PostgreSQL (recreated empty).
pub const PG_SETUP: &[&str] = &[
    "DROP SCHEMA IF EXISTS baseline CASCADE",
    "CREATE SCHEMA baseline",
    "CREATE TABLE baseline.invoice (
        id uuid PRIMARY KEY,
        tenant_id text NOT NULL,
        realm_id text NOT NULL,
        invoice_number varchar(32) NOT NULL,
        customer_id text NOT NULL,
        total_amount numeric(12,2) NOT NULL CHECK (total_amount >= 0),
        status text NOT NULL CHECK (status IN ('draft', 'sent', 'paid')),
        due_date date,
        created_at timestamptz(3) NOT NULL,
        updated_at timestamptz(3) NOT NULL,
        created_by text NOT NULL,
        updated_by text NOT NULL,
        row_version bigint NOT NULL,
        UNIQUE (tenant_id, realm_id, invoice_number)
    )",
    "CREATE INDEX invoice_page ON baseline.invoice
        (tenant_id, realm_id, status, due_date DESC NULLS LAST, id DESC)",
];

/// Copies the engine's rows that the baseline does not have yet.
pub const PG_COPY: &str = concat!(
    "INSERT INTO baseline.invoice (",
    insert_columns!(),
    ") SELECT ",
    insert_columns!(),
    " FROM core.ent_invoice ON CONFLICT (id) DO NOTHING"
);

/// After a copy: the statistics and the visibility map (index-only counts).
pub const PG_ANALYZE: &str = "VACUUM ANALYZE baseline.invoice";

/// Get by id.
pub const PG_GET: &str = concat!(
    "SELECT ",
    pg_columns!(),
    " FROM baseline.invoice WHERE id = $1 AND tenant_id = $2 AND realm_id = $3"
);

/// A page of one status, latest due date first (no due date last), served by `invoice_page`;
/// followed by ` LIMIT n` with the page size written as a number ([`with_limit`]).
pub const PG_LIST: &str = concat!(
    "SELECT ",
    pg_columns!(),
    " FROM baseline.invoice WHERE tenant_id = $1 AND realm_id = $2 AND status = $3 \
     ORDER BY due_date DESC NULLS LAST, id DESC"
);

/// `sql` with ` LIMIT limit`. Written, not bound: PostgreSQL plans a prepared statement with a
/// `LIMIT $n` for 10 % of the matching rows and then prefers planning every execution anew.
pub fn with_limit(sql: &str, limit: i64) -> String {
    format!("{sql} LIMIT {limit}")
}

/// The total of that list.
pub const PG_COUNT: &str = "SELECT count(*) FROM baseline.invoice \
     WHERE tenant_id = $1 AND realm_id = $2 AND status = $3";

/// One new invoice.
pub const PG_INSERT: &str = concat!(
    "INSERT INTO baseline.invoice (",
    insert_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $9, $10, $10, 1) RETURNING ",
    pg_columns!()
);

/// Many new invoices of one tenant and realm, as arrays: $1 tenant, $2 realm, $3 now, $4 user,
/// $5 ids, $6 numbers, $7 customers, $8 amounts, $9 statuses, $10 due dates.
pub const PG_INSERT_MANY: &str = concat!(
    "INSERT INTO baseline.invoice (",
    insert_columns!(),
    ") SELECT u.id, $1, $2, u.n, u.c, u.a::numeric, u.s, u.d, $3, $3, $4, $4, 1 \
     FROM UNNEST($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::date[]) \
     WITH ORDINALITY AS u(id, n, c, a, s, d, i) ORDER BY u.i RETURNING ",
    pg_columns!()
);

/// The baseline's table and indexes on SQLite (recreated empty).
pub const LITE_SETUP: &[&str] = &[
    "DROP TABLE IF EXISTS baseline_invoice",
    "CREATE TABLE baseline_invoice (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        realm_id TEXT NOT NULL,
        invoice_number TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        total_amount TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('draft', 'sent', 'paid')),
        due_date TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        row_version INTEGER NOT NULL,
        UNIQUE (tenant_id, realm_id, invoice_number)
    )",
    // SQLite sorts NULL as the smallest value: DESC puts invoices without a due date last.
    "CREATE INDEX baseline_invoice_page ON baseline_invoice
        (tenant_id, realm_id, status, due_date DESC, id DESC)",
];

/// Copies the engine's rows that the baseline does not have yet.
pub const LITE_COPY: &str = concat!(
    "INSERT OR IGNORE INTO baseline_invoice (",
    insert_columns!(),
    ") SELECT ",
    insert_columns!(),
    " FROM ent_invoice"
);

/// After a copy.
pub const LITE_ANALYZE: &str = "ANALYZE baseline_invoice";

/// Get by id.
pub const LITE_GET: &str = concat!(
    "SELECT ",
    lite_columns!(),
    " FROM baseline_invoice WHERE id = ?1 AND tenant_id = ?2 AND realm_id = ?3"
);

/// A page of one status, latest due date first (no due date last); followed by ` LIMIT n`
/// ([`with_limit`]).
pub const LITE_LIST: &str = concat!(
    "SELECT ",
    lite_columns!(),
    " FROM baseline_invoice WHERE tenant_id = ?1 AND realm_id = ?2 AND status = ?3 \
     ORDER BY due_date DESC, id DESC"
);

/// The total of that list.
pub const LITE_COUNT: &str = "SELECT count(*) FROM baseline_invoice \
     WHERE tenant_id = ?1 AND realm_id = ?2 AND status = ?3";

/// The start of an insert of one or more invoices; then `(?, …)` per row and [`LITE_RETURNING`].
pub const LITE_INSERT_HEAD: &str = concat!(
    "INSERT INTO baseline_invoice (",
    insert_columns!(),
    ") VALUES "
);

/// The end of a SQLite insert.
pub const LITE_RETURNING: &str = concat!(" RETURNING ", lite_columns!());

/// The Invoice of `examples/invoice-v1.json` with the index an expert user declares for the
/// benchmarked list (status, then the latest due date first).
pub fn invoice_schema() -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/invoice-v1.json")).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "indexes".to_owned(),
            serde_json::json!([{ "fields": ["status", "-dueDate"] }]),
        );
    }
    schema.to_string()
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_schema_declares_the_lists_index() {
        let schema: serde_json::Value = serde_json::from_str(&invoice_schema()).unwrap();
        assert_eq!(schema["indexes"][0]["fields"][1], "-dueDate");
        assert_eq!(schema["fields"][0]["name"], "invoiceNumber");
    }

    #[test]
    fn the_baseline_does_not_run_the_engines_sql() {
        // The baseline reads typed columns from its own table with its own SQL.
        for sql in [PG_GET, PG_LIST, PG_COUNT, LITE_GET, LITE_LIST, LITE_COUNT] {
            assert!(sql.contains("baseline"), "{sql}");
            assert!(!sql.contains("json"), "{sql}");
            assert!(!sql.contains("ent_invoice"), "{sql}");
        }
    }
}
