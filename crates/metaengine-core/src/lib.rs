//! The pure domain of metaengine: identifiers, entity schemas and their validation, and the
//! stable schema hash.
//!
//! Administrators define entities (Invoice, Order…) at run time as JSON schemas; this crate says
//! what a valid schema is ([`validate_schema`], every problem at once, each with a JSON pointer),
//! what it looks like as Rust types ([`EntitySchema`]), how its names become SQL identifiers
//! ([`ident`]) and what its stable hash is ([`hash::schema_hash`]). It compiles a schema into the
//! runtime model ([`compile()`]) and plans the migration of a data table from one schema to the
//! next ([`plan_migration`]).
//!
//! The crate is pure: no IO, no async, no database driver. Everything the other crates decide
//! about a schema without a database is decided, and tested, here.

#![deny(missing_docs)]

pub mod compile;
pub mod error_code;
pub mod hash;
pub mod ident;
pub mod plan;
pub mod policy;
pub mod record;
pub mod schema;
pub mod validate;
pub mod value;

pub use compile::{CompiledModel, compile};
pub use error_code::ErrorCode;
pub use plan::{MigrationPlan, TableState, plan_migration};
pub use schema::*;
pub use validate::{Problem, ValidationContext, validate_field, validate_schema};
pub use value::SqlValue;
