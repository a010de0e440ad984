//! DDL: a [`MigrationPlan`] rendered as statements of one dialect.

use crate::Dialect;
use crate::checks::sqlite_decimal_text;
use metaengine_core::FieldType;
use metaengine_core::compile::CompiledIndex;
use metaengine_core::ident::{SYSTEM, SYSTEM_COLUMNS, quote_ident};
use metaengine_core::plan::{ColumnDef, MigrationPlan, MigrationStep};
use serde_json::Value;

/// PostgreSQL schema of the entity data tables.
const PG_SCHEMA: &str = "core";

/// The column type of a field column.
pub fn column_type(dialect: Dialect, column: &ColumnDef) -> String {
    use FieldType as T;
    match dialect {
        Dialect::Postgres => match column.field_type {
            // Text columns compare and sort in byte order (`COLLATE "C"`), as the API documents
            // and SQLite does: the list's ORDER BY and the indexes then share one collation, so
            // an index serves the order whatever the database's default collation.
            T::String => match column.max_length {
                Some(n) => format!("varchar({n}) COLLATE \"C\""),
                None => "text COLLATE \"C\"".to_owned(),
            },
            T::Text | T::Enum => "text COLLATE \"C\"".to_owned(),
            T::Integer => "bigint".to_owned(),
            T::Number => "double precision".to_owned(),
            T::Decimal => {
                let p = column
                    .precision
                    .unwrap_or(metaengine_core::DEFAULT_DECIMAL_PRECISION);
                let s = column
                    .scale
                    .unwrap_or(metaengine_core::DEFAULT_DECIMAL_SCALE);
                format!("numeric({p},{s})")
            }
            T::Boolean => "boolean".to_owned(),
            T::Date => "date".to_owned(),
            T::Datetime => "timestamptz(3)".to_owned(),
            T::Reference => "uuid".to_owned(),
            T::Json => "jsonb".to_owned(),
        },
        Dialect::Sqlite => match column.field_type {
            T::Integer | T::Boolean => "INTEGER".to_owned(),
            T::Number => "REAL".to_owned(),
            // Decimals as TEXT keep every digit; dates and timestamps as ISO 8601 text.
            _ => "TEXT".to_owned(),
        },
    }
}

/// The table as SQL: `"core"."ent_invoice"` on PostgreSQL, `"ent_invoice"` on SQLite.
pub fn qualified_table(dialect: Dialect, table: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("{}.{}", quote_ident(PG_SCHEMA), quote_ident(table)),
        Dialect::Sqlite => quote_ident(table),
    }
}

/// `DROP TABLE` for an entity's data table (entity deletion with `force`).
pub fn drop_table(dialect: Dialect, table: &str) -> String {
    // PostgreSQL: `CASCADE` drops the foreign keys of other tables that point at this one (never
    // the tables themselves). SQLite's reference triggers are dropped by the store first.
    match dialect {
        Dialect::Postgres => format!(
            "DROP TABLE IF EXISTS {} CASCADE",
            qualified_table(dialect, table)
        ),
        Dialect::Sqlite => format!("DROP TABLE IF EXISTS {}", qualified_table(dialect, table)),
    }
}

/// `ALTER TABLE … DROP COLUMN` for a hidden column (`prune`).
pub fn drop_column(dialect: Dialect, table: &str, column: &str) -> String {
    format!(
        "ALTER TABLE {} DROP COLUMN {}",
        qualified_table(dialect, table),
        quote_ident(column)
    )
}

/// Fresh planner statistics for the data table. On PostgreSQL `ANALYZE`, or with `vacuum`
/// `VACUUM (ANALYZE)`: what autovacuum does after many inserts (PostgreSQL 13's insert
/// threshold) or dead rows, so that the pages of a freshly filled table are marked all-visible
/// and counts and covered lists are answered from the index alone, even where autovacuum is off
/// (see [`VACUUM_DUE`]). On SQLite `ANALYZE` whatever `vacuum` says (its `VACUUM` rewrites the
/// whole file; its indexes need no visibility map). Not in a transaction: run it on its own.
pub fn analyze_table(dialect: Dialect, table: &str, vacuum: bool) -> String {
    match dialect {
        Dialect::Postgres if vacuum => {
            format!("VACUUM (ANALYZE) {}", qualified_table(dialect, table))
        }
        Dialect::Postgres | Dialect::Sqlite => {
            format!("ANALYZE {}", qualified_table(dialect, table))
        }
    }
}

/// PostgreSQL: whether a data table is due for a `VACUUM`, one row `"due"` (none for a
/// missing table), with the table ([`qualified_table`]) bound as `$1`: when more than a fifth of
/// its pages are not known to be all-visible (the scale of autovacuum's vacuum thresholds; new
/// rows fill pages that are not, and updates and deletes clear the pages they touch). The
/// table's size is read as it is now; its all-visible pages as the last `VACUUM` or `ANALYZE`
/// counted them, which writes since can only have lowered. So it reads no statistics that lag
/// behind the writes (the cumulative statistics' counters do, by up to a second or more). A
/// `VACUUM` of a table of 130,000 rows and four indexes cost about 2.4 s of PostgreSQL's time
/// in the HTTP benchmark, an `ANALYZE` a small part of it: the engine analyzes at `500 + 10 %`
/// writes, and vacuums about every other time under a stream of inserts.
pub const VACUUM_DUE: &str = "SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int8 \
     - c.relallvisible) * 5 > pg_relation_size(c.oid) / current_setting('block_size')::int8 \
     AS \"due\" FROM pg_catalog.pg_class c WHERE c.oid = to_regclass($1)";

/// The row count of a data table as its last analysis found it, one row `"rows"` (none or `NULL`
/// before any), with the table bound as `$1` / `?1`: [`qualified_table`] on PostgreSQL (read
/// from `pg_class.reltuples`, -1 before an analysis), the table's name on SQLite (the first
/// number of its `sqlite_stat1` row).
pub fn analyzed_rows(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "SELECT CASE WHEN reltuples < 0 THEN NULL ELSE reltuples::int8 END AS \"rows\" \
             FROM pg_class WHERE oid = to_regclass($1)"
        }
        Dialect::Sqlite => {
            "SELECT CAST(substr(stat, 1, instr(stat || ' ', ' ') - 1) AS INTEGER) AS \"rows\" \
             FROM sqlite_stat1 WHERE tbl = ?1 LIMIT 1"
        }
    }
}

/// `SELECT EXISTS (SELECT 1 FROM table)`: whether the data table holds any row.
pub fn has_rows(dialect: Dialect, table: &str) -> String {
    format!(
        "SELECT EXISTS (SELECT 1 FROM {})",
        qualified_table(dialect, table)
    )
}

/// A JSON value as an SQL literal for a column of type `field_type`: `NULL`, booleans (`1`/`0` on
/// SQLite), numbers as `serde_json` prints them (quoted for a decimal on SQLite, stored as text),
/// strings single-quoted with quotes doubled, arrays and objects as their JSON text, quoted.
pub fn literal(dialect: Dialect, field_type: FieldType, value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Bool(b) => match (dialect, b) {
            (Dialect::Postgres, true) => "true".to_owned(),
            (Dialect::Postgres, false) => "false".to_owned(),
            (Dialect::Sqlite, true) => "1".to_owned(),
            (Dialect::Sqlite, false) => "0".to_owned(),
        },
        Value::Number(n) if dialect == Dialect::Sqlite && field_type == FieldType::Decimal => {
            quote_string(dialect, &n.to_string())
        }
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_string(dialect, s),
        Value::Array(_) | Value::Object(_) => quote_string(dialect, &value.to_string()),
    }
}

/// A string literal, quotes doubled. On PostgreSQL a string holding a backslash is written as an
/// escape string (`E'a\\b'`, backslashes doubled), whose meaning does not depend on the server's
/// `standard_conforming_strings`: with that setting off, a backslash in a plain literal would
/// escape the quote after it.
fn quote_string(dialect: Dialect, s: &str) -> String {
    let quoted = s.replace('\'', "''");
    match dialect {
        Dialect::Postgres if s.contains('\\') => format!("E'{}'", quoted.replace('\\', "\\\\")),
        _ => format!("'{quoted}'"),
    }
}

/// The DDL statements of `plan` for the data table `table` (unquoted, e.g. `ent_invoice`), in
/// order. Steps that need no DDL in a dialect (hiding a column, a widening SQLite does not see)
/// give no statement. A plan with breaking changes must not be rendered: the caller refuses it.
pub fn render_plan(dialect: Dialect, table: &str, plan: &MigrationPlan) -> Vec<String> {
    let t = qualified_table(dialect, table);
    let pg = dialect == Dialect::Postgres;
    let mut out = Vec::new();
    for step in &plan.steps {
        match step {
            MigrationStep::CreateTable { columns } => out.push(create_table(dialect, &t, columns)),
            MigrationStep::AddColumn(column) => out.push(format!(
                "ALTER TABLE {t} ADD COLUMN {}",
                column_sql(dialect, column)
            )),
            MigrationStep::HideColumn { column } | MigrationStep::DropNotNull { column } if pg => {
                out.push(format!(
                    "ALTER TABLE {t} ALTER COLUMN {} DROP NOT NULL",
                    quote_ident(column)
                ));
            }
            MigrationStep::SetNotNull { column } if pg => out.push(format!(
                "ALTER TABLE {t} ALTER COLUMN {} SET NOT NULL",
                quote_ident(column)
            )),
            MigrationStep::WidenColumn {
                column, from, to, ..
            }
            | MigrationStep::NarrowColumn { column, from, to }
                if pg =>
            {
                let new_type = column_type(dialect, to);
                if column_type(dialect, from) != new_type {
                    out.push(format!(
                        "ALTER TABLE {t} ALTER COLUMN {} TYPE {new_type}",
                        quote_ident(column)
                    ));
                }
            }
            MigrationStep::WidenColumn {
                column,
                from,
                to,
                indexes,
            } if column_type(dialect, from) != column_type(dialect, to) => {
                sqlite_rebuild_column(&mut out, &t, column, to, indexes);
            }
            MigrationStep::WidenColumn {
                column, from, to, ..
            }
            | MigrationStep::NarrowColumn { column, from, to }
                if to.field_type == FieldType::Decimal && from.scale != to.scale =>
            {
                // SQLite keeps decimals as text with exactly `scale` digits after the point.
                let q = quote_ident(column);
                let scale = to.scale.unwrap_or(metaengine_core::DEFAULT_DECIMAL_SCALE);
                out.push(format!(
                    "UPDATE {t} SET {q} = {}",
                    sqlite_decimal_text(&q, scale)
                ));
            }
            MigrationStep::CreateIndex(index) => out.push(create_index(dialect, &t, index)),
            MigrationStep::DropIndex { name } => out.push(format!(
                "DROP INDEX IF EXISTS {}",
                qualified_table(dialect, name)
            )),
            MigrationStep::HideColumn { .. }
            | MigrationStep::UnhideColumn { .. }
            | MigrationStep::DropNotNull { .. }
            | MigrationStep::SetNotNull { .. }
            | MigrationStep::WidenColumn { .. }
            | MigrationStep::NarrowColumn { .. } => {}
        }
    }
    out
}

/// SQLite cannot change a column's type: a column whose storage changes (INTEGER → TEXT, for
/// integer → decimal) is rebuilt as a new column filled from the old one, which then replaces
/// it; the indexes over it are dropped first and made again.
fn sqlite_rebuild_column(
    out: &mut Vec<String>,
    table: &str,
    column: &str,
    to: &ColumnDef,
    indexes: &[CompiledIndex],
) {
    let q = quote_ident(column);
    // Field columns are snake_case names starting with a letter: this one is never a field's.
    let tmp_name = format!("_retype_{column}");
    let tmp = quote_ident(&tmp_name);
    let dialect = Dialect::Sqlite;
    for index in indexes {
        out.push(format!(
            "DROP INDEX IF EXISTS {}",
            qualified_table(dialect, &index.name)
        ));
    }
    let new_column = ColumnDef {
        name: tmp_name.clone(),
        ..to.clone()
    };
    out.push(format!(
        "ALTER TABLE {table} ADD COLUMN {}",
        column_sql(dialect, &new_column)
    ));
    let value = match to.field_type {
        FieldType::Decimal => sqlite_decimal_text(
            &q,
            to.scale.unwrap_or(metaengine_core::DEFAULT_DECIMAL_SCALE),
        ),
        _ => q.clone(),
    };
    out.push(format!("UPDATE {table} SET {tmp} = {value}"));
    out.push(format!("ALTER TABLE {table} DROP COLUMN {q}"));
    out.push(format!("ALTER TABLE {table} RENAME COLUMN {tmp} TO {q}"));
    for index in indexes {
        out.push(create_index(dialect, table, index));
    }
}

/// `"col" type [NOT NULL] [DEFAULT literal]`.
fn column_sql(dialect: Dialect, column: &ColumnDef) -> String {
    let mut sql = format!(
        "{} {}",
        quote_ident(&column.name),
        column_type(dialect, column)
    );
    if !column.nullable && dialect == Dialect::Postgres {
        sql.push_str(" NOT NULL");
    }
    if let Some(default) = &column.default {
        sql.push_str(" DEFAULT ");
        sql.push_str(&literal(dialect, column.field_type, default));
    }
    sql
}

fn create_table(dialect: Dialect, table: &str, columns: &[ColumnDef]) -> String {
    let (text, uuid, ts, int) = match dialect {
        Dialect::Postgres => ("text", "uuid", "timestamptz(3)", "bigint"),
        Dialect::Sqlite => ("TEXT", "TEXT", "TEXT", "INTEGER"),
    };
    let mut lines: Vec<String> = SYSTEM
        .iter()
        .map(|f| {
            let (ty, extra) = match f.field_type {
                FieldType::Reference => (uuid, ""),
                FieldType::Datetime => (ts, ""),
                // The row version starts at 1 (an insert need not name it).
                FieldType::Integer => (int, " DEFAULT 1"),
                _ => (text, ""),
            };
            format!("{} {ty} NOT NULL{extra}", quote_ident(f.column))
        })
        .collect();
    lines.extend(columns.iter().map(|c| column_sql(dialect, c)));
    lines.push(format!(
        "PRIMARY KEY ({}, {})",
        quote_ident("tenant_id"),
        quote_ident("id")
    ));
    format!("CREATE TABLE {table} (\n  {}\n)", lines.join(",\n  "))
}

/// `CREATE INDEX`. Nulls sort as the smallest value (first ascending, last descending), which is
/// SQLite's only order; a PostgreSQL index says so for each field column (`NULLS FIRST`, or
/// `DESC NULLS LAST`), so that it serves the list's ORDER BY in both directions (a backward scan
/// for the other). System columns are `NOT NULL` and keep the default.
fn create_index(dialect: Dialect, table: &str, index: &CompiledIndex) -> String {
    let unique = if index.unique { "UNIQUE " } else { "" };
    let columns: Vec<String> = index
        .columns
        .iter()
        .map(|(c, desc)| {
            let q = quote_ident(c);
            let field = !SYSTEM_COLUMNS.contains(&c.as_str());
            match (dialect, *desc) {
                (Dialect::Postgres, false) if field => format!("{q} NULLS FIRST"),
                (Dialect::Postgres, true) if field => format!("{q} DESC NULLS LAST"),
                (_, true) => format!("{q} DESC"),
                (_, false) => q,
            }
        })
        .collect();
    // PostgreSQL puts an index in its table's schema: the index name is never qualified here.
    format!(
        "CREATE {unique}INDEX IF NOT EXISTS {} ON {table} ({})",
        quote_ident(&index.name),
        columns.join(", ")
    )
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
