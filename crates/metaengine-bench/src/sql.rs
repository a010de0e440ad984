//! The SQL the baseline runs: THE SAME TEXT the engine issues for the Invoice of
//! `examples/invoice-v1.json` (copied verbatim from `metaengine_sql::query::QueryBuilder`; the test
//! below builds the engine's statements and fails the moment they differ, so the baseline can
//! never drift into doing less work than the engine).
//!
//! Placeholders, in order — get: tenant, realm, id; list: tenant, realm, status, limit + 1,
//! offset.

/// The record of PostgreSQL, built by the database as one JSON text.
macro_rules! pg_record {
    () => {
        r#"json_build_object('id', "id"::text, 'invoiceNumber', "invoice_number", 'customerId', "customer_id", 'totalAmount', "total_amount"::text, 'status', "status", 'dueDate', to_char("due_date", 'YYYY-MM-DD'), 'tenantId', "tenant_id", 'realmId', "realm_id", 'createdAt', to_char("created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'updatedAt', to_char("updated_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'createdBy', "created_by", 'updatedBy', "updated_by", 'rowVersion', "row_version")::text"#
    };
}

/// The record of SQLite.
macro_rules! lite_record {
    () => {
        r#"json_object('id', "id", 'invoiceNumber', "invoice_number", 'customerId', "customer_id", 'totalAmount', "total_amount", 'status', "status", 'dueDate', "due_date", 'tenantId', "tenant_id", 'realmId', "realm_id", 'createdAt', "created_at", 'updatedAt', "updated_at", 'createdBy', "created_by", 'updatedBy', "updated_by", 'rowVersion', "row_version")"#
    };
}

/// Get by id, PostgreSQL.
pub const PG_GET: &str = concat!(
    "SELECT ",
    pg_record!(),
    r#" AS "record" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" = $3::uuid"#
);

/// A page filtered by status, newest first, PostgreSQL.
pub const PG_LIST: &str = concat!(
    "SELECT ",
    pg_record!(),
    r#" AS "record", to_char("created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "__k", "id"::text AS "__id" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "status" = $3 ORDER BY "created_at" DESC, "id" DESC LIMIT $4 OFFSET $5"#
);

/// Get by id, SQLite.
pub const LITE_GET: &str = concat!(
    "SELECT ",
    lite_record!(),
    r#" AS "record" FROM "ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND "id" = ?3"#
);

/// A page filtered by status, newest first, SQLite.
pub const LITE_LIST: &str = concat!(
    "SELECT ",
    lite_record!(),
    r#" AS "record", "created_at" AS "__k", "id" AS "__id" FROM "ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND "status" = ?3 ORDER BY "created_at" DESC, "id" DESC LIMIT ?4 OFFSET ?5"#
);

/// The schema the benchmark activates (the seed's Invoice).
pub const INVOICE_SCHEMA: &str = include_str!("../../../examples/invoice-v1.json");

#[cfg(test)]
mod tests {

    use super::*;
    use metaengine_core::policy::RowFilter;
    use metaengine_core::record::{Filter, FilterOp, FilterValue};
    use metaengine_core::{EntitySchema, SqlValue, compile};
    use metaengine_sql::Dialect;
    use metaengine_sql::query::{ListQuery, Order, QueryBuilder, Scope};

    fn model() -> metaengine_core::CompiledModel {
        let schema: EntitySchema = serde_json::from_str(INVOICE_SCHEMA).unwrap();
        compile(
            "Invoice",
            "v1",
            &schema,
            "bench",
            "2026-01-01T00:00:00.000Z",
        )
    }

    const SCOPE: Scope<'static> = Scope {
        tenant_id: "t001",
        realm_id: "r1",
    };
    const ID: &str = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6";

    /// The engine's statements for the two benchmarked requests, as the data service builds
    /// them for an admin (policies bypassed: no row filter).
    fn engine(
        dialect: Dialect,
    ) -> (
        metaengine_sql::query::Statement,
        metaengine_sql::query::Statement,
    ) {
        let m = model();
        let b = QueryBuilder::new(dialect, &m);
        let get = b.get(SCOPE, ID, None).unwrap();
        let filters = [Filter {
            field: "status".to_owned(),
            op: FilterOp::Eq,
            value: FilterValue::One(SqlValue::Text("paid".to_owned())),
        }];
        let order = Order {
            field: "createdAt".to_owned(),
            descending: true,
        };
        let list = b
            .list(&ListQuery {
                scope: SCOPE,
                row_filter: &RowFilter::All,
                filters: &filters,
                order: Some(&order),
                fields: None,
                limit: 20,
                offset: 0,
                after: None,
            })
            .unwrap();
        (get, list)
    }

    #[test]
    fn the_baseline_runs_the_engines_sql_text_on_postgres() {
        let (get, list) = engine(Dialect::Postgres);
        assert_eq!(PG_GET, get.sql);
        assert_eq!(PG_LIST, list.sql);
        let text = |s: &str| SqlValue::Text(s.to_owned());
        assert_eq!(get.binds, [text("t001"), text("r1"), text(ID)]);
        assert_eq!(
            list.binds,
            [
                text("t001"),
                text("r1"),
                text("paid"),
                SqlValue::Int(21),
                SqlValue::Int(0)
            ]
        );
    }

    #[test]
    fn the_baseline_runs_the_engines_sql_text_on_sqlite() {
        let (get, list) = engine(Dialect::Sqlite);
        assert_eq!(LITE_GET, get.sql);
        assert_eq!(LITE_LIST, list.sql);
        assert_eq!(get.binds.len(), 3);
        assert_eq!(list.binds.len(), 5);
    }
}
