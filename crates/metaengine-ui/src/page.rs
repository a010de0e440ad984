//! What every page shares: the layout's data, the notices shown after a redirect, the error
//! page, and the security headers of every answer.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use metaengine_server::problem::ApiError;

use crate::assets;
use crate::session::Session;

/// The notices a redirect may ask a page to show (`?notice=<key>`): fixed texts, so a link
/// cannot make the UI say anything else.
pub const NOTICES: &[(&str, &str)] = &[
    ("signed-out", "You are signed out."),
    (
        "entity-created",
        "Entity created. Add a version to give it fields.",
    ),
    ("entity-deleted", "Entity deleted."),
    ("version-created", "Version created."),
    ("version-saved", "Version saved."),
    ("version-deleted", "Version deleted."),
    ("field-added", "Field added."),
    ("field-removed", "Field removed."),
    ("activated", "Version activated: the table is migrated."),
    (
        "deactivated",
        "Version deactivated: the entity has no active version.",
    ),
    ("pruned", "Hidden columns dropped."),
    ("record-created", "Record created."),
    ("record-saved", "Record saved."),
    ("record-deleted", "Record deleted."),
    ("tenant-created", "Tenant created."),
    ("tenant-updated", "Tenant updated."),
];

/// The text of a notice key.
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    let key = key?;
    NOTICES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, text)| *text)
}

/// The layout's data: who is signed in, the CSRF token of the forms, the current section.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `user @ tenant/realm`, or `None` on the sign-in page.
    pub user: Option<String>,
    /// Whether the admin sections (entities, policies, audit, tenants) are shown.
    pub admin: bool,
    /// The session's CSRF token (or the sign-in form's).
    pub csrf: String,
    /// The section of the navigation to mark.
    pub nav: &'static str,
    /// A notice to show.
    pub notice: Option<&'static str>,
    /// The stylesheet's URL.
    pub css: &'static str,
    /// The script's URL.
    pub js: &'static str,
}

impl Layout {
    /// The layout of a signed-in page.
    pub fn new(session: &Session, csrf: String, admin: bool, nav: &'static str) -> Self {
        Self {
            user: Some(format!(
                "{} @ {}/{}",
                session.sub, session.tenant, session.realm
            )),
            admin,
            csrf,
            nav,
            notice: None,
            css: assets::CSS.path.as_str(),
            js: assets::JS.path.as_str(),
        }
    }

    /// The layout of the sign-in page.
    pub fn anonymous(csrf: String) -> Self {
        Self {
            user: None,
            admin: false,
            csrf,
            nav: "",
            notice: None,
            css: assets::CSS.path.as_str(),
            js: assets::JS.path.as_str(),
        }
    }

    /// With the notice a redirect asked for.
    pub fn with_notice(mut self, key: Option<&str>) -> Self {
        self.notice = notice(key);
        self
    }
}

/// An error as a page shows it: what went wrong and, for validation errors, each problem at its
/// JSON pointer.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    /// The status of the answer.
    pub status: u16,
    /// The summary line.
    pub detail: String,
    /// `(pointer, message)` of each problem.
    pub problems: Vec<(String, String)>,
}

impl Shown {
    /// The problems whose pointer is `pointer` or inside it.
    pub fn at(&self, pointer: &str) -> Vec<&str> {
        self.problems
            .iter()
            .filter(|(p, _)| {
                p == pointer
                    || p.strip_prefix(pointer)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .map(|(_, m)| m.as_str())
            .collect()
    }
}

impl From<ApiError> for Shown {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            detail: e.detail,
            problems: e
                .errors
                .into_iter()
                .map(|p| (p.pointer, p.message))
                .collect(),
        }
    }
}

impl Shown {
    /// An error with one problem at `pointer`.
    pub fn one(status: u16, pointer: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            detail: message.clone(),
            problems: vec![(pointer.to_owned(), message)],
        }
    }
}

/// The status of a page that shows `error`: its own, or 200 without one.
pub fn status_of(error: Option<&Shown>) -> StatusCode {
    error
        .and_then(|e| StatusCode::from_u16(e.status).ok())
        .unwrap_or(StatusCode::OK)
}

/// Any error of the runtime's services, as the API would answer it, to show on a page.
pub fn shown(e: impl Into<ApiError>) -> Shown {
    Shown::from(e.into())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    title: &'a str,
    error: Shown,
}

/// A page answer: the template rendered with `status`.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The error page: `error`'s status, its detail and problems.
pub fn error_page(layout: Layout, title: &str, error: Shown) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    html(
        status,
        &ErrorPage {
            layout,
            title,
            error,
        },
    )
}

/// 303 to `to` (after a form post, so that a reload does not post again).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The Content-Security-Policy of every UI answer: only this origin's files, no inline script or
/// style, no framing, forms posting only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every UI answer, and `no-store` to pages (they show data).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let static_file = req.uri().path().starts_with("/_/static/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !static_file {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
