//! The dialect layer of metaengine: what differs between PostgreSQL and SQLite, in one place.
//!
//! Pure: it turns plans from `metaengine-core` into SQL text and never talks to a database. Every
//! identifier goes through [`metaengine_core::ident::quote_ident`]; every value that reaches SQL
//! text is a typed JSON value rendered by [`literal`] (strings single-quoted with quotes doubled,
//! numbers as `serde_json` prints them), never raw user text.
//!
//! Decisions: PostgreSQL data tables live in schema `core`; SQLite has no schemas. An `enum` is
//! plain `text`/`TEXT` without a CHECK constraint: the engine validates values on write, and
//! adding a value then needs no DDL. On SQLite field columns carry no `NOT NULL` (SQLite cannot
//! drop one later, which hiding a column or relaxing `required` needs); `required` is enforced by
//! the engine's validator there.

#![deny(missing_docs)]

mod checks;
mod ddl;
pub mod query;
mod references;

pub use checks::{data_check, storage_type, stores_as};
pub use ddl::{
    VACUUM_DUE, analyze_table, analyzed_rows, column_type, drop_column, drop_table, has_rows,
    literal, qualified_table, render_plan,
};
pub use references::{
    ReferenceLink, SQLITE_MISSING, SQLITE_STILL_REFERENCED, SQLITE_TRIGGERS_NAMING, drop_reference,
    enforced_references,
};

/// The collation SQLite compares decimal columns with (they hold canonical text): numeric order,
/// exactly as PostgreSQL's `numeric`. Every SQLite connection the engine opens registers it with
/// [`decimal_text_order`]; a statement that compares a decimal column needs it.
pub const SQLITE_DECIMAL_COLLATION: &str = "decimal";

pub use metaengine_core::record::decimal_text_order;

/// An SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}
