//! The HTTP API end to end: a real server on a real port over real SQLite and PostgreSQL
//! databases, spoken to with a real HTTP client (one test binary: one link on two cores).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod support;

/// `crate::on_both_backends!(case, …)`: each case on a fresh SQLite and PostgreSQL database.
pub(crate) use metaengine_testing::on_both_backends;

mod audit_chain;
mod auth;
mod batch;
mod connections;
mod errors;
mod fields;
mod migrations;
mod openapi;
mod ops;
mod pages;
mod policies;
mod races;
mod realtime;
mod relations;
mod scenario;
mod snapshot;
mod tenants;
