//! The admin UI through the server's router, in process: every page and action, sign-in,
//! sessions and CSRF, on real SQLite and PostgreSQL databases; and the walk through every screen
//! in a real browser (`browser`). One test binary: one link on two cores.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod support;

pub(crate) use metaengine_testing::on_both_backends;

mod auth;
mod browser;
mod data;
mod governance;
mod metadata;
