//! [`SqlValue`]: the one shape in which a value reaches a data statement.

/// A value bound to a data statement. Every value a user supplies reaches SQL as a bound
/// parameter of one of these types, never as text of the statement; the statement casts it to the
/// column's type where the database needs that (PostgreSQL: `$3::numeric`, `$4::uuid`). Decimals,
/// dates, timestamps, uuids and JSON travel as `Text` (their canonical text form), which keeps every
/// digit of a decimal.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// Text: strings, enums, decimals, dates, timestamps (RFC 3339 UTC), uuids, JSON documents.
    Text(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean (`1`/`0` on SQLite).
    Bool(bool),
}
