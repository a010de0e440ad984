//! The record in a statement's rows: which columns carry it, in which order, selected how.
//!
//! Where the record's JSON is written depends on the database, for speed alone (the JSON is the
//! same; see the table in the module docs of `query`), each measured on this project's
//! benchmark (`docs/performance.md`):
//! - **PostgreSQL**: one plain column per key ([`RecordColumns::Columns`]); the store writes the
//!   JSON. Building it in SQL cost PostgreSQL about 6 µs per row, 40 % of a 20-row page's time
//!   in the database, while its binary columns decode in a fraction of that.
//! - **SQLite**: one text column, the JSON built by SQLite's `json_object`
//!   ([`RecordColumns::Json`]). sqlx's SQLite driver copies every column of every row into its
//!   own allocation, so one column per row is the cheapest, and SQLite's JSON functions are
//!   fast: the engine's page of 20 ran at 1.5× a hand-written sqlx server decoding columns.

use std::sync::Arc;

use super::column::Col;
use crate::Dialect;
use metaengine_core::FieldType;
use metaengine_core::ident::quote_ident;

/// One key of the record and the column that holds its value, on PostgreSQL: the row's column
/// at the same position as this entry in [`RecordShape`].
///
/// What the row holds, per type (`NULL` for a null value of any type):
///
/// | type | PostgreSQL column, selected as |
/// |---|---|
/// | string, text, enum | `col::text` |
/// | integer, `rowVersion` | `col::int8` |
/// | number | `col::float8` |
/// | decimal | `col::text` (all its digits) |
/// | boolean | `col::bool` |
/// | date | `col::date` |
/// | datetime, `createdAt`, `updatedAt` | `col::timestamptz` (milliseconds) |
/// | reference, `id` | `col::uuid` |
/// | json | `col::text` (the `jsonb` document's text) |
///
/// each named `__r_<column>` (see `pg_column` for why the casts and the names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordColumn {
    /// The record's key (camelCase; letters and digits, nothing to escape in JSON).
    pub key: String,
    /// The value's type (system columns: the field type with the same storage).
    pub ty: FieldType,
}

/// The record's columns, in record order: `id`, the fields (or the selected ones), then the
/// other system columns.
pub type RecordShape = Arc<[RecordColumn]>;

/// How the rows of a statement carry the record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecordColumns {
    /// The statement returns no record.
    #[default]
    None,
    /// The first column is the record's JSON text, built by the database (SQLite).
    Json,
    /// The first `shape.len()` columns are the record's values, one per key (PostgreSQL).
    Columns(RecordShape),
}

/// The shape of a record made of `cols` on PostgreSQL (see [`RecordColumn`]).
pub(super) fn shape_of(cols: &[Col<'_>]) -> RecordShape {
    cols.iter()
        .map(|c| RecordColumn {
            key: c.name.to_owned(),
            ty: c.ty,
        })
        .collect()
}

/// How a record made of `cols` is selected in `dialect`: the select list and what it holds.
pub(super) fn record_select(dialect: Dialect, cols: &[Col<'_>]) -> (String, RecordColumns) {
    match dialect {
        Dialect::Postgres => {
            let list = cols.iter().map(pg_column).collect::<Vec<_>>().join(", ");
            (list, RecordColumns::Columns(shape_of(cols)))
        }
        Dialect::Sqlite => (
            format!("{} AS \"record\"", sqlite_json(cols)),
            RecordColumns::Json,
        ),
    }
}

/// A PostgreSQL column of the record (see [`RecordColumn`]): cast to the SQL type of its field
/// type and named `__r_<column>`.
///
/// - The cast fixes the column's result type by the statement's text. sqlx keeps each
///   connection's statements prepared, and PostgreSQL refuses to run a prepared statement whose
///   result type changed under it (`cached plan must not change result type`), as it does when an
///   activation changes a column from `varchar(40)` to `varchar(20)`, or from `bigint` to
///   `double precision`, while the text of `SELECT "code"` stays the same. With `"code"::text`
///   the type stays; a new field type is a new cast, so a new statement. A cast to the column's
///   own type costs nothing (`varchar` to `text` is a relabel).
/// - The name: left with its column's name, the cast would be what `ORDER BY "<column>"` sorts
///   by (an output column wins over a table column). Columns never start with `_`, and a list's
///   other names are `__k` and `__id`.
fn pg_column(c: &Col<'_>) -> String {
    pg_column_as(c, &format!("__r_{}", c.column))
}

/// [`pg_column`] named `alias`.
pub(super) fn pg_column_as(c: &Col<'_>, alias: &str) -> String {
    let ty = match c.ty {
        FieldType::String
        | FieldType::Text
        | FieldType::Enum
        | FieldType::Decimal
        | FieldType::Json => "text",
        FieldType::Integer => "int8",
        FieldType::Number => "float8",
        FieldType::Boolean => "bool",
        FieldType::Date => "date",
        FieldType::Datetime => "timestamptz",
        FieldType::Reference => "uuid",
    };
    format!("{}::{ty} AS {}", quote_ident(c.column), quote_ident(alias))
}

/// Key/value pairs per SQLite `json_object` call (127 arguments by default).
const JSON_CHUNK: usize = 50;

/// The record as one JSON object on SQLite: `json_object` with at most [`JSON_CHUNK`] pairs per
/// call, later chunks added with `json_insert` (not `json_patch`, which would drop `null`
/// members).
pub(super) fn sqlite_json(cols: &[Col<'_>]) -> String {
    let object = |chunk: &[Col<'_>], key: &dyn Fn(&str) -> String| {
        chunk
            .iter()
            .map(|c| format!("{}, {}", key_literal(&key(c.name)), sqlite_value(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut chunks = cols.chunks(JSON_CHUNK);
    let first = chunks.next().unwrap_or_default();
    let mut sql = format!("json_object({})", object(first, &|n| n.to_owned()));
    for chunk in chunks {
        sql = format!(
            "json_insert({sql}, {})",
            object(chunk, &|n| format!("$.{n}"))
        );
    }
    sql
}

/// A SQLite column as a value of `json_object`: integral numbers below 2^53 as integers,
/// booleans (0 / 1) as `true` / `false`, a json field's text as the document it holds; every
/// other column as it is stored (text in the record's form, integers).
fn sqlite_value(c: &Col<'_>) -> String {
    let q = quote_ident(c.column);
    match c.ty {
        FieldType::Number => format!(
            "CASE WHEN {q} = CAST({q} AS INTEGER) AND abs({q}) < 9007199254740992 \
             THEN CAST({q} AS INTEGER) ELSE {q} END"
        ),
        FieldType::Boolean => {
            format!("json(CASE WHEN {q} IS NULL THEN NULL WHEN {q} THEN 'true' ELSE 'false' END)")
        }
        FieldType::Json => format!("json({q})"),
        _ => q,
    }
}

/// A string literal of a JSON key or path (names come from the model; quotes doubled all the
/// same).
fn key_literal(name: &str) -> String {
    format!("'{}'", name.replace('\'', "''"))
}
