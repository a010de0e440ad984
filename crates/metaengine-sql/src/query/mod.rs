//! THE query builder of the generic data API (SPEC §7, §10, §11): every data statement of the
//! product is built here, as SQL text with numbered placeholders (`$n` on PostgreSQL, `?n` on
//! SQLite) and the [`SqlValue`]s to bind, in placeholder order.
//!
//! Guarantees, by construction:
//! - **Scope.** No statement can be built without a [`Scope`]: every one carries
//!   `"tenant_id" = $1 AND "realm_id" = $2` (an insert writes both columns).
//! - **Identifiers** come only from the [`CompiledModel`] (or the system columns) and reach SQL
//!   through [`quote_ident`](metaengine_core::ident::quote_ident); a name the model does not know is a [`QueryError`], never SQL text.
//! - **Values** are bound parameters, checked against the column's type first (a bad shape is a
//!   [`QueryError`], not a database error). On PostgreSQL the placeholder is cast to the column's
//!   type where needed (`$3::numeric`, `::uuid`, `::date`, `::timestamptz`, `::jsonb`); SQLite
//!   gets no casts.
//!
//! # The record
//!
//! Every statement that returns records carries the record first in each row, as
//! [`Statement::record`] says ([`RecordColumns`]): on PostgreSQL one plain column per key
//! ([`RecordColumn`] has the table of what each type's column holds), from which the store
//! writes the JSON; on SQLite one text column `record`, the JSON built by `json_object` (at most
//! 50 key/value pairs per call, 127 arguments by default; later chunks added with `json_insert`,
//! not `json_patch`, which would drop `null` members). Which is faster differs per database; the
//! reasons and figures are in the `record` module's docs. Keys: `id`, the fields in model order
//! (or those a list selects), then `tenantId`, `realmId`, `createdAt`, `updatedAt`,
//! `createdBy`, `updatedBy`, `rowVersion`. Values, the same on both backends:
//!
//! | type | JSON |
//! |---|---|
//! | string, text, enum | string |
//! | integer, `rowVersion` | number `42` |
//! | number | number: `100` for an integral value below 2^53, else a decimal text of the double (`1.5`) |
//! | decimal | string, all digits `"100.50"` |
//! | boolean | `true` / `false` |
//! | date | `"2026-11-26"` |
//! | datetime, `createdAt`, `updatedAt` | `"2026-11-26T21:24:42.123Z"` |
//! | reference, `id` | string (lowercase uuid) |
//! | json | the JSON value itself |
//! | null (any type) | `null` |
//!
//! Known difference: very large or small `number`s (`1e20` vs `1.0e+20`): parse the text, do not
//! compare it byte for byte.
//!
//! # Lists, order and cursors
//!
//! A list row has the record, then `__k` (the sort key as text, the form the cursor keeps) and
//! `__id` (the id as text). The statement fetches `limit + 1` rows: an extra row means there
//! is a next page, whose cursor is [`Cursor::from_row`] of the last row kept. See [`Cursor`] for
//! the keyset condition and the order, which is explicit and identical on both backends: nulls
//! first ascending, last descending (nulls are the smallest keys, SQLite's own order, so that
//! the engine's indexes serve every list in index order on both backends, without a sort); text
//! in byte order (`COLLATE "C"` on PostgreSQL, SQLite's `BINARY`); ties broken by `id`. Default
//! order: `createdAt` ascending.
//!
//! # Filters
//!
//! | operator      | applies to                               | SQL                                                |
//! |---------------|------------------------------------------|----------------------------------------------------|
//! | `eq`, `ne`    | every type but json                      | `col = $n`, `col <> $n`                            |
//! | `gt` … `lte`  | strings, numbers, decimals, dates, datetimes | `col > $n` (text in byte order)                |
//! | `in`, `nin`   | every type but json                      | `col IN ($n, …)`; empty `in` is false, empty `nin` true |
//! | `contains`    | string, text, enum                       | `strpos(col, $n) > 0` / `instr(col, ?n) > 0`       |
//! | `startswith`  | string, text, enum                       | `starts_with(col, $n)` / `substr(col, 1, length(?n)) = ?n` |
//! | `isnull`      | every type                               | `col IS NULL` / `col IS NOT NULL`                  |
//!
//! SQL semantics are kept: `ne`, `nin`, `gt`… never match a row whose column is null (use
//! `isnull`). A null value in `eq`…`startswith`, `in` or `nin` is an error. `contains` and
//! `startswith` are case-sensitive on both backends. On SQLite a decimal (stored as text) is
//! compared and sorted exactly, as PostgreSQL's `numeric`, by the engine's `decimal` collation
//! ([`crate::SQLITE_DECIMAL_COLLATION`]).
//!
//! # Batch inserts
//!
//! [`QueryBuilder::insert_many`] writes an import's batch with multi-row `INSERT … VALUES (…),
//! (…)` statements: the tenant, realm, time and actor are bound once per statement and repeated
//! by placeholder in every row, rows that give the same fields share a statement, and a statement
//! holds as many rows as fit in [`MAX_BINDS`] values (SQLite accepts at most 32,766).
//!
//! # Prebuilt fragments
//!
//! The qualified table and the record's select list, most of a statement's text, depend only
//! on the model and the dialect: they are built once per model and reused by every statement
//! (a memo keyed by table, checked against the model's fields), so a request builds only its own
//! conditions.
//!
//! # Values
//!
//! Writes and filters take [`SqlValue`]s already converted for the column: integer `Int`, number
//! `Float` or `Int`, boolean `Bool`; every other type `Text` in its canonical form, which this
//! module checks: decimal `-?digits[.digits]`, date `YYYY-MM-DD`, datetime
//! `YYYY-MM-DDTHH:MM:SS.mmmZ` (the form SQLite stores and compares as text), uuid lowercase
//! `8-4-4-4-12` hex, json a JSON document. Record ids (get, update, delete, exists) are checked the
//! same way: [`QueryError::InvalidId`] should be answered like a missing record (404).

mod capture;
mod column;
mod copy;
mod cursor;
mod expand;
mod prebuilt;
mod record;
mod render;
mod row_filter;
mod statements;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_batch;
#[cfg(test)]
mod tests_expand;
#[cfg(test)]
mod tests_filters;
#[cfg(test)]
mod tests_more;
#[cfg(test)]
mod tests_row_filter;

pub use capture::{
    capture_installed, capture_probe_name, change_capture, changes_table, drop_change_capture,
};
pub use copy::CopyIn;
pub use cursor::{Cursor, decode_cursor, encode_cursor};
pub use expand::{Expansion, Link, MAX_EXPAND_DEPTH, REVERSE_LIMIT};
pub use record::{RecordColumn, RecordColumns, RecordShape};

use crate::Dialect;
use metaengine_core::policy::RowFilter;
use metaengine_core::{CompiledModel, FieldType, SqlValue};

/// The caller's tenant and realm: every data statement is restricted to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// Tenant id (from the token).
    pub tenant_id: &'a str,
    /// Realm id (from the token).
    pub realm_id: &'a str,
}

/// A statement ready to run: SQL text and the values of its placeholders, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// SQL text with `$n` (PostgreSQL) or `?n` (SQLite) placeholders.
    pub sql: String,
    /// Values of the placeholders `1..=binds.len()`.
    pub binds: Vec<SqlValue>,
    /// How each row carries the record, if the statement returns records.
    pub record: RecordColumns,
    /// PostgreSQL: the expansions (SPEC §13) in the columns right after the record's, in order,
    /// to be written under the record's `"expand"`. Empty on SQLite, whose record JSON holds its
    /// expansions already.
    pub expand: Vec<ExpandColumns>,
}

/// How a row carries one expansion (PostgreSQL), in columns after the record's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandColumns {
    /// One column: the expansion's JSON text, or `NULL`.
    Json {
        /// Its key under `"expand"`.
        key: String,
    },
    /// A forward expansion's record as plain columns, like the page's own record
    /// ([`RecordColumn`]): `shape.len()` columns, `id` first (`NULL` when there is no record to
    /// show), then one JSON text column (or `NULL`) per expansion of that record.
    Record {
        /// Its key under `"expand"`.
        key: String,
        /// The target record's columns.
        shape: RecordShape,
        /// The keys of the target record's own expansions.
        nested: Vec<String>,
    },
}

impl Statement {
    fn with_expand(mut self, expand: Vec<ExpandColumns>) -> Self {
        self.expand = expand;
        self
    }
}

/// The filters of a list or count are parsed (and their values converted) by the record rules of
/// `metaengine-core`; the builder takes them as they are.
pub use metaengine_core::record::{Filter, FilterOp, FilterValue};

/// The order of a list: one field (or `createdAt`, `updatedAt`, `id`…), ties broken by `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// A field or system field name (camelCase).
    pub field: String,
    /// Descending.
    pub descending: bool,
}

/// A list request.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    /// The caller's tenant and realm.
    pub scope: Scope<'a>,
    /// The rows the policies let the caller see.
    pub row_filter: &'a RowFilter,
    /// Filters, all of which must hold.
    pub filters: &'a [Filter],
    /// The order; `None` is `createdAt` ascending.
    pub order: Option<&'a Order>,
    /// Selection: the keys of the record (plus `id`, always); `None` for all.
    pub fields: Option<&'a [String]>,
    /// Page size: the statement fetches `limit + 1` rows.
    pub limit: u32,
    /// Rows to skip; ignored with a cursor.
    pub offset: u64,
    /// Continue after this cursor (keyset, no `OFFSET`).
    pub after: Option<&'a Cursor>,
    /// Records to expand under each record's `"expand"` (SPEC §13).
    pub expand: &'a [Expansion<'a>],
    /// Filters on the records the rows refer to (`filter[customerId.name][eq]=…`).
    pub related: &'a [Related<'a>],
}

/// Filters on the record a reference field points at (SPEC §13, `filter[customerId.name][eq]=…`):
/// a row matches when its reference names a record of `target` in the caller's scope that the
/// caller may read (`row_filter`) and that passes every one of `filters` (typed by the target's
/// validator).
#[derive(Debug, Clone)]
pub struct Related<'a> {
    /// The reference field of the listed entity.
    pub field: &'a str,
    /// The referenced entity's model.
    pub target: &'a CompiledModel,
    /// The target's rows the caller may read.
    pub row_filter: &'a RowFilter,
    /// Filters on the target's fields.
    pub filters: &'a [Filter],
}

/// One record of a batch insert ([`QueryBuilder::insert_many`]): its id (a new UUIDv7) and its
/// field values, already converted for their columns.
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    /// The record's id.
    pub id: &'a str,
    /// Field values by field name.
    pub values: &'a [(String, SqlValue)],
}

/// Why a data statement could not be built. Every variant but [`QueryError::RowFilterField`] is the
/// caller's fault (HTTP 400; [`QueryError::InvalidId`] is best answered 404).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The name is neither a field of the entity nor a system field.
    #[error("unknown field `{field}`")]
    UnknownField {
        /// The name.
        field: String,
    },
    /// The operator does not apply to the field's type.
    #[error("operator `{op}` does not apply to field `{field}` of type `{field_type}`")]
    OperatorNotApplicable {
        /// The field.
        field: String,
        /// The operator.
        op: FilterOp,
        /// The field's type.
        field_type: FieldType,
    },
    /// The filter value has the wrong shape for the operator (one value, a list, a flag).
    #[error("operator `{op}` on field `{field}` takes {expected}")]
    WrongValueKind {
        /// The field.
        field: String,
        /// The operator.
        op: FilterOp,
        /// What it takes.
        expected: &'static str,
    },
    /// A null value where a value is needed.
    #[error("operator `{op}` on field `{field}` takes no null value (use `isnull`)")]
    NullValue {
        /// The field.
        field: String,
        /// The operator.
        op: FilterOp,
    },
    /// A value of the wrong type or shape for the field's column.
    #[error("a value for field `{field}` is not a valid `{field_type}`")]
    InvalidValue {
        /// The field.
        field: String,
        /// The field's type.
        field_type: FieldType,
    },
    /// A list cannot be ordered by this field.
    #[error("cannot order by field `{field}` of type `{field_type}`")]
    NotOrderable {
        /// The field.
        field: String,
        /// The field's type.
        field_type: FieldType,
    },
    /// A system field cannot be written by the caller.
    #[error("field `{field}` cannot be written")]
    NotWritable {
        /// The field.
        field: String,
    },
    /// A field is given twice in one write.
    #[error("field `{field}` is given more than once")]
    DuplicateField {
        /// The field.
        field: String,
    },
    /// The id is not a lowercase UUID: no record has it.
    #[error("`{id}` is not a record id")]
    InvalidId {
        /// The id.
        id: String,
    },
    /// The cursor is not one this builder issued for this order.
    #[error("`after` is not a valid cursor: {reason}")]
    InvalidCursor {
        /// What is wrong.
        reason: &'static str,
    },
    /// The offset does not fit a signed 64-bit integer.
    #[error("offset `{offset}` is too large")]
    InvalidOffset {
        /// The offset.
        offset: u64,
    },
    /// The statement would need more bound values than the databases accept.
    #[error("the query needs {count} values, more than the limit of {MAX_BINDS}")]
    TooManyValues {
        /// Values needed.
        count: usize,
    },
    /// The policies' row filter names a field the model does not have (a policy problem, not the
    /// caller's).
    #[error("the policies' row filter names `{field}`, which is not a field of this entity")]
    RowFilterField {
        /// The field.
        field: String,
    },
}

/// Most values one statement may bind (SQLite's default limit is 32766).
pub const MAX_BINDS: usize = 32_000;

/// Builds the data statements of one entity (its compiled model) for one dialect.
#[derive(Debug, Clone, Copy)]
pub struct QueryBuilder<'m> {
    dialect: Dialect,
    model: &'m CompiledModel,
}

impl<'m> QueryBuilder<'m> {
    /// A builder for `model` in `dialect`.
    pub fn new(dialect: Dialect, model: &'m CompiledModel) -> Self {
        QueryBuilder { dialect, model }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The compiled model.
    pub fn model(&self) -> &'m CompiledModel {
        self.model
    }
}
