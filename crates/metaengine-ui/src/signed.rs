//! The signed-in caller of a page ([`Signed`]) and the CSRF check every state-changing request
//! passes ([`csrf_guard`]).

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metaengine_runtime::Actor;

use crate::Ctx;
use crate::form::FormData;
use crate::page::{self, Layout, Shown, enc};
use crate::session::{LOGIN_COOKIE, SESSION_COOKIE, Session, SessionError, unix_now};

/// The name of the CSRF field of every form.
pub const CSRF_FIELD: &str = "_csrf";

/// The value of cookie `name` in `headers`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `path`, `max_age` seconds (0 clears it).
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict",
        max_age.max(0)
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

/// The session a request's cookie stands for.
fn session_of(ctx: &Ctx, headers: &HeaderMap) -> Result<Session, SessionError> {
    let value = cookie(headers, SESSION_COOKIE).ok_or(SessionError::Missing)?;
    ctx.ui.keys.open(value, unix_now())
}

/// The signed-in caller of a page: its session, the actor the services see, and whether it holds
/// the admin role. A request without a valid session is sent to the sign-in page (which says
/// when a session has expired), and one whose tenant is suspended is refused.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The session.
    pub session: Session,
    /// The caller the services see.
    pub actor: Actor,
    /// Whether the caller holds the admin role.
    pub admin: bool,
    csrf: String,
}

impl Signed {
    /// The layout of a page in `nav`'s section.
    pub fn layout(&self, nav: &'static str) -> Layout {
        Layout::new(&self.session, self.csrf.clone(), self.admin, nav)
    }
}

impl FromRequestParts<Ctx> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let session = match session_of(ctx, &parts.headers) {
            Ok(s) => s,
            Err(why) => {
                let here = parts.uri.path_and_query().map_or("/_/", |p| p.as_str());
                let next = if parts.method == Method::GET {
                    here
                } else {
                    "/_/"
                };
                let expired = if why == SessionError::Expired {
                    "&expired=1"
                } else {
                    ""
                };
                let mut r = page::see_other(&format!("/_/login?next={}{expired}", enc(next)));
                if why == SessionError::Expired {
                    r.headers_mut()
                        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", 0));
                }
                return Err(r);
            }
        };
        let csrf = ctx.ui.keys.csrf(&session.sid);
        let actor = session.actor();
        let admin = actor.has_role(&ctx.app.registry.access().admin_role);
        let signed = Self {
            session,
            actor,
            admin,
            csrf,
        };
        if let Err(e) = ctx.app.tenants.check_active(&signed.actor.tenant_id).await {
            let error = Shown {
                status: 403,
                detail: e.to_string(),
                problems: Vec::new(),
            };
            return Err(page::error_page(
                signed.layout(""),
                "Tenant not active",
                error,
            ));
        }
        Ok(signed)
    }
}

/// Refuses (403) a state-changing request whose form does not carry the CSRF token of its
/// session, or, on the sign-in form, of the nonce cookie the form was served with. Runs before
/// any handler, so none can forget it. The body is read here (forms are small; the server's body
/// limit applies) and handed on unchanged.
pub async fn csrf_guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ctx.app.limits.body_limit).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response();
    };
    let token = FormData::parse(&bytes)
        .get(CSRF_FIELD)
        .map(str::to_owned)
        .or_else(|| {
            parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let owner = if parts.uri.path() == "/_/login" {
        cookie(&parts.headers, LOGIN_COOKIE).map(str::to_owned)
    } else {
        match session_of(&ctx, &parts.headers) {
            Ok(session) => Some(session.sid),
            // No session: the handler's `Signed` sends the caller to sign in.
            Err(_) => {
                return next
                    .run(Request::from_parts(parts, Body::from(bytes)))
                    .await;
            }
        }
    };
    if !owner.is_some_and(|sid| ctx.ui.keys.csrf_matches(&sid, &token)) {
        let layout = Layout::anonymous(String::new());
        let error = Shown {
            status: 403,
            detail: "This form has expired or did not come from this site. Reload the page and try again."
                .to_owned(),
            problems: Vec::new(),
        };
        return page::error_page(layout, "Form refused", error);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
