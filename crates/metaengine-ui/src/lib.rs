//! The admin UI of metaengine (SPEC §18): server-rendered pages at `/_/` for entities, versions
//! and their activation plans, data, policies with explanations, the audit trail and tenants.
//!
//! Key decisions:
//! - Every page is HTML rendered on the server from compile-checked templates (askama), every
//!   action a plain form post answered with a redirect (or the form again, with its errors at
//!   their fields). No client framework and no build step: the one stylesheet and the one
//!   script (live rows, the theme switch) are embedded in the binary under content-hashed
//!   names. Forms are generated from the compiled model, and every action calls the same
//!   services as the HTTP API, so validation, policies and audit rows are the API's.
//! - htmx, which the issue suggested, is left out: full-page forms already give every screen, work
//!   without script, are tested with the router alone, and keep the UI's static files near 10 KB.
//! - Sign-in sets a signed session cookie (see [`session`]); every state-changing request must
//!   carry the session's CSRF token, checked in one middleware before any handler runs.
#![deny(missing_docs)]

pub mod assets;
mod form;
mod page;
pub mod session;
mod signed;
mod views;

use std::sync::Arc;

use axum::Router;
use metaengine_server::SharedState;

pub use page::NOTICES;

/// The UI's own state: the session key and the sign-in codes this process printed.
#[derive(Debug)]
pub struct Ui {
    keys: session::Keys,
    codes: session::LoginCodes,
}

impl Ui {
    /// The UI with sessions signed under a key derived from `secret` (the audit key, which every
    /// instance of one database shares).
    pub fn new(secret: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            keys: session::Keys::derive(secret),
            codes: session::LoginCodes::default(),
        })
    }

    /// A one-time sign-in URL for the platform admin under `base` (`http://host:port`), valid
    /// for ten minutes and usable once.
    pub fn login_url(&self, base: &str) -> String {
        format!("{base}/_/login?code={}", self.codes.issue())
    }
}

/// What every UI handler receives: the server's state and the UI's.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) app: SharedState,
    pub(crate) ui: Arc<Ui>,
}

/// The UI's routes, to merge into the server's router ([`metaengine_server::router_with`]).
/// Registers the UI's sessions with the server, so that the realtime streams accept the session
/// cookie (live rows).
pub fn routes(state: &SharedState, ui: Arc<Ui>) -> Router<SharedState> {
    // Set once per server state; a second UI over the same state keeps the first's sessions.
    let _ = state.sessions.set(ui.clone());
    views::router(Ctx {
        app: state.clone(),
        ui,
    })
}

impl metaengine_server::extract::SessionAuth for Ui {
    fn actor(&self, headers: &axum::http::HeaderMap) -> Option<metaengine_runtime::Actor> {
        let value = signed::cookie(headers, session::SESSION_COOKIE)?;
        self.keys
            .open(value, session::unix_now())
            .ok()
            .map(|s| s.actor())
    }
}
