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

pub use checks::{data_check, storage_type, stores_as};
pub use ddl::{
    analyze_table, column_type, drop_column, drop_table, has_rows, literal, qualified_table,
    render_plan,
};

/// An SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}
