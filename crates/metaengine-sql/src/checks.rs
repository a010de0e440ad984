//! What activation asks the live table before it migrates it (SPEC §5): whether any row holds a
//! value a change would not keep ([`data_check`]), and which storage type a field column has
//! ([`storage_type`], in the spelling of the database's catalog, to compare with the live column).

use crate::Dialect;
use crate::ddl::{column_type, qualified_table};
use metaengine_core::FieldType;
use metaengine_core::ident::quote_ident;
use metaengine_core::plan::{ColumnDef, DataCheck, RowsThat};

/// `SELECT EXISTS (SELECT 1 FROM table WHERE …)` for `check`, with its bound values in order
/// (the enum values of [`RowsThat::UseValues`]; no other value reaches the text but the
/// schema's own integers).
pub fn data_check(dialect: Dialect, table: &str, check: &DataCheck) -> (String, Vec<String>) {
    let c = quote_ident(&check.column);
    let mut binds = Vec::new();
    let condition = match &check.rows {
        RowsThat::HaveNoValue => format!("{c} IS NULL"),
        RowsThat::RepeatValues { .. } => String::new(),
        RowsThat::UseValues { values } => {
            let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
            binds.clone_from(values);
            format!("{c} IN ({})", placeholders.join(", "))
        }
        RowsThat::AreLongerThan { max_length } => match dialect {
            Dialect::Postgres => format!("char_length({c}) > {max_length}"),
            Dialect::Sqlite => format!("length({c}) > {max_length}"),
        },
        RowsThat::DoNotFitDecimal { precision, scale } => {
            let int = precision.saturating_sub(*scale);
            match dialect {
                Dialect::Postgres => format!(
                    "{c} IS NOT NULL AND (abs({c}::numeric) >= 1e{int} \
                     OR {c}::numeric <> round({c}::numeric, {scale}))"
                ),
                // Decimals are text (integers, before an integer → decimal change, are cast to
                // text): count the digits before the point without leading zeros and after it
                // without trailing ones.
                Dialect::Sqlite => {
                    let (int_part, frac_part) =
                        sqlite_decimal_parts(&format!("ltrim(CAST({c} AS TEXT), '-')"));
                    format!(
                        "{c} IS NOT NULL AND (length(ltrim({int_part}, '0')) > {int} \
                         OR length(rtrim({frac_part}, '0')) > {scale})"
                    )
                }
            }
        }
    };
    let t = qualified_table(dialect, table);
    let sql = match &check.rows {
        RowsThat::RepeatValues { columns } => {
            let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            let not_null: Vec<String> = quoted.iter().map(|c| format!("{c} IS NOT NULL")).collect();
            format!(
                "SELECT EXISTS (SELECT 1 FROM {t} WHERE {} \
                 GROUP BY \"tenant_id\", \"realm_id\", {} HAVING count(*) > 1)",
                not_null.join(" AND "),
                quoted.join(", ")
            )
        }
        _ => format!("SELECT EXISTS (SELECT 1 FROM {t} WHERE {condition})"),
    };
    (sql, binds)
}

/// The storage type of a field column as the catalog spells it: PostgreSQL's
/// `format_type(atttypid, atttypmod)` (`bigint`, `character varying(20)`, `numeric(12,2)`…),
/// SQLite's declared type (`INTEGER`, `REAL`, `TEXT`).
pub fn storage_type(dialect: Dialect, column: &ColumnDef) -> String {
    use FieldType as T;
    match dialect {
        Dialect::Sqlite => column_type(dialect, column),
        Dialect::Postgres => match column.field_type {
            T::String => match column.max_length {
                Some(n) => format!("character varying({n})"),
                None => "text".to_owned(),
            },
            T::Text | T::Enum => "text".to_owned(),
            T::Integer => "bigint".to_owned(),
            T::Number => "double precision".to_owned(),
            T::Decimal => column_type(dialect, column),
            T::Boolean => "boolean".to_owned(),
            T::Date => "date".to_owned(),
            T::Datetime => "timestamp with time zone".to_owned(),
            T::Reference => "uuid".to_owned(),
            T::Json => "jsonb".to_owned(),
        },
    }
}

/// Whether a live column of type `live` (as the catalog spells it) stores what `column` needs.
/// Lengths and digits count (`character varying(n)`, `numeric(p,s)`); a timestamp's fractional
/// precision does not, so tables of older releases still match.
pub fn stores_as(dialect: Dialect, live: &str, column: &ColumnDef) -> bool {
    let want = storage_type(dialect, column);
    let live = live.trim();
    match dialect {
        // A number column widened from an integer before SQLite columns were rebuilt kept its
        // INTEGER affinity, which stores reals as they are.
        Dialect::Sqlite if column.field_type == FieldType::Number => {
            live.eq_ignore_ascii_case("REAL") || live.eq_ignore_ascii_case("INTEGER")
        }
        Dialect::Sqlite => live.eq_ignore_ascii_case(&want),
        Dialect::Postgres if column.field_type == FieldType::Datetime => {
            live.starts_with("timestamp") && live.ends_with("with time zone")
        }
        Dialect::Postgres => live == want,
    }
}

/// SQLite: `expr` (a decimal as text, or an integer) as decimal text with exactly `scale` digits
/// after the point, as the engine writes decimals.
pub(crate) fn sqlite_decimal_text(expr: &str, scale: u32) -> String {
    let (int, frac) = sqlite_decimal_parts(&format!("CAST({expr} AS TEXT)"));
    if scale == 0 {
        return format!("CASE WHEN {expr} IS NULL THEN NULL ELSE {int} END");
    }
    let zeros = "0".repeat(usize::try_from(scale).unwrap_or(0));
    format!(
        "CASE WHEN {expr} IS NULL THEN NULL ELSE {int} || '.' || substr({frac} || '{zeros}', 1, {scale}) END"
    )
}

/// SQLite: the digits of the decimal text `x` before its point and after it, as two SQL
/// expressions (the second is empty text when `x` has no point).
fn sqlite_decimal_parts(x: &str) -> (String, String) {
    let dot = format!("instr({x}, '.')");
    (
        format!("CASE WHEN {dot} > 0 THEN substr({x}, 1, {dot} - 1) ELSE {x} END"),
        format!("CASE WHEN {dot} > 0 THEN substr({x}, {dot} + 1) ELSE '' END"),
    )
}
