//! Columns of a data table as the builder sees them: resolution of a camelCase name, and the SQL
//! expressions that key, sort and compare a column and cast a parameter, per dialect.

use super::QueryError;
use crate::Dialect;
use metaengine_core::ident::{SYSTEM, SystemField, quote_ident, system_field};
use metaengine_core::{CompiledModel, FieldType, SqlValue};

/// One column: its camelCase name, its column name (unquoted) and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Col<'m> {
    /// camelCase name (the record's key).
    pub name: &'m str,
    /// Column name, unquoted.
    pub column: &'m str,
    /// Type; system columns map to the field type with the same storage.
    pub ty: FieldType,
    /// A system column (`NOT NULL` on both backends).
    pub system: bool,
}

/// The `id` column.
pub(super) const ID: Col<'static> = Col {
    name: "id",
    column: "id",
    ty: FieldType::Reference,
    system: true,
};

fn system_col(field: &'static SystemField) -> Col<'static> {
    Col {
        name: field.name,
        column: field.column,
        ty: field.field_type,
        system: true,
    }
}

/// The column of a field or system field, by camelCase name.
pub(super) fn resolve<'m>(model: &'m CompiledModel, name: &str) -> Result<Col<'m>, QueryError> {
    if let Some(field) = system_field(name) {
        return Ok(system_col(field));
    }
    model
        .field(name)
        .map(|f| Col {
            name: &f.name,
            column: &f.column_name,
            ty: f.field_type,
            system: false,
        })
        .ok_or_else(|| QueryError::UnknownField {
            field: name.to_owned(),
        })
}

/// Every column in record order: `id`, the fields, then the other system columns.
pub(super) fn record_columns(model: &CompiledModel) -> Vec<Col<'_>> {
    let mut out = vec![ID];
    out.extend(model.fields.iter().map(|f| Col {
        name: &f.name,
        column: &f.column_name,
        ty: f.field_type,
        system: false,
    }));
    for system in SYSTEM.iter().filter(|f| f.name != "id") {
        out.push(system_col(system));
    }
    out
}

/// Strings, texts and enums: compared with text operators, sorted in byte order.
pub(super) fn is_textual(ty: FieldType) -> bool {
    matches!(ty, FieldType::String | FieldType::Text | FieldType::Enum)
}

const PG_DATETIME: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#;

/// A date or datetime column as the API writes it, on PostgreSQL (`2026-11-26`,
/// `2026-11-26T21:24:42.123Z`): the text a cursor keeps for them.
pub(super) fn pg_date_text(col: &Col<'_>) -> String {
    let q = quote_ident(col.column);
    if col.ty == FieldType::Date {
        format!("to_char({q}, 'YYYY-MM-DD')")
    } else {
        format!("to_char({q} AT TIME ZONE 'UTC', {PG_DATETIME})")
    }
}

/// The column as the text a cursor keeps (`__k`): exact, and castable back to the column's type.
pub(super) fn key_text(dialect: Dialect, col: &Col<'_>) -> String {
    let q = quote_ident(col.column);
    match (dialect, col.ty) {
        (Dialect::Postgres, FieldType::Date | FieldType::Datetime) => pg_date_text(col),
        (Dialect::Postgres, t) if is_textual(t) => q,
        (Dialect::Postgres, _) => format!("{q}::text"),
        (Dialect::Sqlite, FieldType::Integer) => format!("CAST({q} AS TEXT)"),
        (Dialect::Sqlite, FieldType::Number) => {
            format!("CASE WHEN {q} IS NULL THEN NULL ELSE printf('%!.17g', {q}) END")
        }
        (Dialect::Sqlite, FieldType::Boolean) => {
            format!("CASE WHEN {q} IS NULL THEN NULL WHEN {q} THEN 'true' ELSE 'false' END")
        }
        (Dialect::Sqlite, _) => q,
    }
}

/// The column as sorted and compared by `gt`…`lte` and the keyset condition: text in byte order
/// on PostgreSQL (`COLLATE "C"`, SQLite's default); a decimal on SQLite (stored as text, which
/// byte order would compare `"9" > "10"`) by the engine's `decimal` collation, exactly as
/// PostgreSQL's `numeric` (see [`crate::SQLITE_DECIMAL_COLLATION`]).
pub(super) fn sort_expr(dialect: Dialect, col: &Col<'_>) -> String {
    let q = quote_ident(col.column);
    match dialect {
        Dialect::Postgres if is_textual(col.ty) => {
            format!("{q} COLLATE \"C\"")
        }
        Dialect::Sqlite if col.ty == FieldType::Decimal => {
            format!("{q} COLLATE \"{}\"", crate::SQLITE_DECIMAL_COLLATION)
        }
        _ => q,
    }
}

/// The column as compared by `eq`, `ne`, `in`, `nin`.
pub(super) fn eq_expr(dialect: Dialect, col: &Col<'_>) -> String {
    match dialect {
        Dialect::Sqlite if col.ty == FieldType::Decimal => sort_expr(dialect, col),
        _ => quote_ident(col.column),
    }
}

/// A placeholder as written to the column, and as compared with it (see [`sort_expr`] and
/// [`eq_expr`]): cast to the column's type on PostgreSQL.
pub(super) fn write_param(dialect: Dialect, ty: FieldType, placeholder: &str) -> String {
    format!("{placeholder}{}", param_cast(dialect, ty))
}

/// The cast [`write_param`] puts after a placeholder of a `ty` column (`""` for none).
pub(super) fn param_cast(dialect: Dialect, ty: FieldType) -> &'static str {
    match (dialect, ty) {
        (Dialect::Sqlite, _) => "",
        (Dialect::Postgres, FieldType::Decimal) => "::numeric",
        (Dialect::Postgres, FieldType::Date) => "::date",
        (Dialect::Postgres, FieldType::Datetime) => "::timestamptz",
        (Dialect::Postgres, FieldType::Reference) => "::uuid",
        (Dialect::Postgres, FieldType::Json) => "::jsonb",
        (Dialect::Postgres, _) => "",
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `-?digits[.digits]`.
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    match s.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(s),
    }
}

/// Whether `s` has the shape `pattern`, where `9` is a digit, `h` a lowercase hex digit and any
/// other byte itself.
fn shaped(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'9' => c.is_ascii_digit(),
            b'h' => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            _ => c == p,
        })
}

/// The number at `range` of an ASCII digit string.
fn number(s: &str, range: std::ops::Range<usize>) -> u32 {
    s.get(range)
        .and_then(|d| d.parse::<u32>().ok())
        .unwrap_or(u32::MAX)
}

/// `YYYY-MM-DD`, a day of the calendar (years 1 to 9999), as PostgreSQL accepts it: a cursor
/// key is checked here, and `0000-00-00` must be refused, not sent to the database.
pub(super) fn is_date(s: &str) -> bool {
    if !shaped(s, "9999-99-99") {
        return false;
    }
    let (year, month, day) = (number(s, 0..4), number(s, 5..7), number(s, 8..10));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    year >= 1 && (1..=days).contains(&day)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, a valid date and time of day (no leap second).
pub(super) fn is_datetime(s: &str) -> bool {
    shaped(s, "9999-99-99T99:99:99.999Z")
        && s.get(0..10).is_some_and(is_date)
        && number(s, 11..13) < 24
        && number(s, 14..16) < 60
        && number(s, 17..19) < 60
}

/// A lowercase hyphenated UUID.
pub(super) fn is_uuid(s: &str) -> bool {
    shaped(s, "hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh")
}

/// Whether a non-null `value` fits a column of type `ty` (see "Values" in the module docs).
pub(super) fn value_fits(ty: FieldType, value: &SqlValue) -> bool {
    match (ty, value) {
        (_, SqlValue::Null) => true,
        (FieldType::Integer, SqlValue::Int(_)) => true,
        (FieldType::Number, SqlValue::Int(_)) => true,
        (FieldType::Number, SqlValue::Float(f)) => f.is_finite(),
        (FieldType::Boolean, SqlValue::Bool(_)) => true,
        (FieldType::Decimal, SqlValue::Text(s)) => is_decimal(s),
        (FieldType::Date, SqlValue::Text(s)) => is_date(s),
        (FieldType::Datetime, SqlValue::Text(s)) => is_datetime(s),
        (FieldType::Reference, SqlValue::Text(s)) => is_uuid(s),
        (FieldType::Json, SqlValue::Text(s)) => {
            serde_json::from_str::<serde_json::Value>(s).is_ok()
        }
        (t, SqlValue::Text(_)) => is_textual(t),
        _ => false,
    }
}

/// `value` checked against `col`.
pub(super) fn checked(col: &Col<'_>, value: &SqlValue) -> Result<SqlValue, QueryError> {
    if value_fits(col.ty, value) {
        Ok(value.clone())
    } else {
        Err(QueryError::InvalidValue {
            field: col.name.to_owned(),
            field_type: col.ty,
        })
    }
}
