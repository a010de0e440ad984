//! Change capture for the realtime feed (SPEC §14): every insert, update and delete of an
//! entity's data table records a row in the engine's change log (`meta_changes`), written by the
//! database itself in the same transaction as the write. So no change is recorded for a write
//! that rolls back, none is missed for one that commits, and every path that writes records (the
//! single routes, batches, imports with `COPY`, `setNull` and `cascade` deletes) is covered
//! without each of them knowing.
//!
//! Each change row holds the record as the API writes it (`record`: the new state, `previous`:
//! the state before an update or a delete), built by the same SQL as expansions
//! ([`super::expand::record_object`]), so a subscriber's policies and filters see exactly what a
//! `get` returns.
//!
//! - **PostgreSQL**: three statement-level triggers with transition tables (one `INSERT … SELECT`
//!   per statement, not one per row: a `COPY` of 10,000 rows costs one insert of 10,000 change
//!   rows) calling one PL/pgSQL function per table, `meta."changes_<table>"`. The change row's
//!   `seq` comes from an identity column and its `txid` is the writing transaction's id, which the
//!   feed needs to read changes in commit order (see the store's `realtime` module).
//! - **SQLite**: three row-level triggers (SQLite has no statement-level ones). A trigger names
//!   the row's values `NEW."col"` / `OLD."col"`; a one-row derived table renames them back to the
//!   plain column names the record's JSON expression uses.
//!
//! The functions and triggers are replaced at every activation (a new version may have new
//! columns), in the activation's transaction.

use super::column::record_columns;
use super::expand::{literal_text, record_object};
use crate::{Dialect, qualified_table};
use metaengine_core::CompiledModel;
use metaengine_core::ident::{SYSTEM_COLUMNS, quote_ident};

/// The change log table, as a statement names it.
pub fn changes_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "meta.meta_changes",
        Dialect::Sqlite => "meta_changes",
    }
}

/// The name of the PostgreSQL function of `table`'s triggers (and the stem of the triggers'
/// names on both backends).
fn capture_name(table: &str) -> String {
    format!("changes_{table}")
}

/// The statements that make the database record every change of `model`'s table (replacing
/// what an earlier version installed). Run them after the table has its new columns.
pub fn change_capture(dialect: Dialect, model: &CompiledModel) -> Vec<String> {
    let table = qualified_table(dialect, &model.table_name);
    let entity = literal_text(&model.entity);
    let json = record_object(dialect, &record_columns(model), &[]);
    let log = changes_table(dialect);
    let name = capture_name(&model.table_name);
    let columns = "(\"tenant_id\", \"realm_id\", \"entity\", \"record_id\", \"op\", \
                   \"row_version\", \"record\", \"previous\")";
    match dialect {
        Dialect::Postgres => {
            let function = format!("meta.{}", quote_ident(&name));
            let body = format!(
                "BEGIN \
                 IF TG_OP = 'INSERT' THEN \
                 INSERT INTO {log} {columns} SELECT \"tenant_id\", \"realm_id\", {entity}, \
                 \"id\"::text, 'create', \"row_version\", {json}, NULL FROM \"__new\"; \
                 ELSIF TG_OP = 'UPDATE' THEN \
                 INSERT INTO {log} {columns} SELECT \"n\".\"tenant_id\", \"n\".\"realm_id\", \
                 {entity}, \"n\".\"id\"::text, 'update', \"n\".\"row_version\", \"n\".\"__j\", \
                 \"o\".\"__j\" FROM (SELECT \"id\", \"tenant_id\", \"realm_id\", \"row_version\", \
                 {json} AS \"__j\" FROM \"__new\") AS \"n\" JOIN (SELECT \"id\", {json} AS \"__j\" \
                 FROM \"__old\") AS \"o\" ON \"o\".\"id\" = \"n\".\"id\"; \
                 ELSE \
                 INSERT INTO {log} {columns} SELECT \"tenant_id\", \"realm_id\", {entity}, \
                 \"id\"::text, 'delete', \"row_version\", NULL, {json} FROM \"__old\"; \
                 END IF; \
                 RETURN NULL; \
                 END"
            );
            let trigger = |op: &str, suffix: &str, transition: &str| {
                let trigger = quote_ident(&format!("{name}_{suffix}"));
                [
                    format!("DROP TRIGGER IF EXISTS {trigger} ON {table}"),
                    format!(
                        "CREATE TRIGGER {trigger} AFTER {op} ON {table} REFERENCING {transition} \
                         FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
                    ),
                ]
            };
            let mut out = vec![format!(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS \
                 $capture$ {body} $capture$"
            )];
            out.extend(trigger("INSERT", "i", "NEW TABLE AS \"__new\""));
            out.extend(trigger(
                "UPDATE",
                "u",
                "OLD TABLE AS \"__old\" NEW TABLE AS \"__new\"",
            ));
            out.extend(trigger("DELETE", "d", "OLD TABLE AS \"__old\""));
            out
        }
        Dialect::Sqlite => {
            // Every column the JSON and the change row read, renamed from `NEW.`/`OLD.`.
            let mut names: Vec<&str> = SYSTEM_COLUMNS.to_vec();
            names.extend(model.fields.iter().map(|f| f.column_name.as_str()));
            let row = |of: &str| {
                let list = names
                    .iter()
                    .map(|c| format!("{of}.{q} AS {q}", q = quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("(SELECT {list})")
            };
            let trigger = |op: &str, suffix: &str, body: String| {
                let trigger = quote_ident(&format!("{name}_{suffix}"));
                [
                    format!("DROP TRIGGER IF EXISTS {trigger}"),
                    format!(
                        "CREATE TRIGGER {trigger} AFTER {op} ON {table} FOR EACH ROW BEGIN \
                         {body}; END"
                    ),
                ]
            };
            let mut out = Vec::with_capacity(6);
            out.extend(trigger(
                "INSERT",
                "i",
                format!(
                    "INSERT INTO {log} {columns} SELECT \"tenant_id\", \"realm_id\", {entity}, \
                     \"id\", 'create', \"row_version\", {json}, NULL FROM {}",
                    row("NEW")
                ),
            ));
            out.extend(trigger(
                "UPDATE",
                "u",
                format!(
                    "INSERT INTO {log} {columns} SELECT \"tenant_id\", \"realm_id\", {entity}, \
                     \"id\", 'update', \"row_version\", {json}, (SELECT {json} FROM {}) FROM {}",
                    row("OLD"),
                    row("NEW")
                ),
            ));
            out.extend(trigger(
                "DELETE",
                "d",
                format!(
                    "INSERT INTO {log} {columns} SELECT \"tenant_id\", \"realm_id\", {entity}, \
                     \"id\", 'delete', \"row_version\", NULL, {json} FROM {}",
                    row("OLD")
                ),
            ));
            out
        }
    }
}

/// The statements that remove what [`change_capture`] installed for `table` (an entity
/// deleted: its table's triggers go with the table, PostgreSQL's function does not).
pub fn drop_change_capture(dialect: Dialect, table: &str) -> Vec<String> {
    match dialect {
        Dialect::Postgres => vec![format!(
            "DROP FUNCTION IF EXISTS meta.{}() CASCADE",
            quote_ident(&capture_name(table))
        )],
        Dialect::Sqlite => ["i", "u", "d"]
            .iter()
            .map(|s| {
                format!(
                    "DROP TRIGGER IF EXISTS {}",
                    quote_ident(&format!("{}_{s}", capture_name(table)))
                )
            })
            .collect(),
    }
}

/// A query whose one row says whether `table`'s change capture is installed (its first column
/// is a count: 0 when not). `$1` is the trigger name [`capture_probe_name`] gives.
pub fn capture_installed(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "SELECT count(*) FROM pg_catalog.pg_trigger WHERE tgname = $1",
        Dialect::Sqlite => {
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = $1"
        }
    }
}

/// The name of one of `table`'s capture triggers, for [`capture_installed`].
pub fn capture_probe_name(table: &str) -> String {
    format!("{}_d", capture_name(table))
}
