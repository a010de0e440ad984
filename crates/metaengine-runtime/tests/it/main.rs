//! Integration tests of metaengine-runtime against real SQLite and PostgreSQL databases, in one
//! test binary (one link instead of six: the build is most of the time on two cores).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

/// `crate::on_both_backends!(case, …)`: each case on a fresh SQLite and PostgreSQL database.
pub(crate) use metaengine_testing::on_both_backends;

mod audit_writer;
mod cache;
mod codegen;
mod data;
mod gate;
mod plans;
mod realtime;
mod registry;
mod relations;
mod row_filter;
mod snapshot;
mod tenants;
