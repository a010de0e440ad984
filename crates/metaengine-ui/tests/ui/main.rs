//! The admin UI through the server's router, in process: every page and action, sign-in,
//! sessions and CSRF, on real SQLite and PostgreSQL databases.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod support;

pub(crate) use metaengine_testing::on_both_backends;

mod auth;
mod data;
mod governance;
mod metadata;
