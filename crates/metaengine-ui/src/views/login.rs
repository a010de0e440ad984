//! Signing in (the printed one-time URL or a pasted token) and out.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metaengine_runtime::Actor;
use metaengine_server::extract::audit_auth_failure;

use crate::Ctx;
use crate::form::{FormData, Query};
use crate::page::{self, Layout, Shown};
use crate::session::{LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL, Session, random_token, unix_now};
use crate::signed::{cookie, set_cookie};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    expired: bool,
    error: Option<Shown>,
}

/// Where to go after signing in: a UI path of this site, never another host.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/_/") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/_/".to_owned(),
    }
}

/// The sign-in form, with a fresh nonce cookie its CSRF token is bound to.
fn login_form(
    ctx: &Ctx,
    headers: &HeaderMap,
    status: StatusCode,
    next: String,
    expired: bool,
    error: Option<Shown>,
    notice: Option<&str>,
) -> Response {
    let (nonce, fresh) = match cookie(headers, LOGIN_COOKIE) {
        Some(n) if n.len() >= 32 => (n.to_owned(), false),
        _ => (random_token(), true),
    };
    let page = LoginPage {
        layout: Layout::anonymous(ctx.ui.keys.csrf(&nonce)).with_notice(notice),
        next,
        expired,
        error,
    };
    let mut response = page::html(status, &page);
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &nonce, "/_/login", 3600),
        );
    }
    response
}

/// Signs `actor` in until `exp` and goes to `next`.
fn sign_in(ctx: &Ctx, actor: &Actor, exp: i64, next: &str) -> Response {
    let session = Session::new(actor, exp);
    let mut response = page::see_other(next);
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &ctx.ui.keys.seal(&session),
            "/",
            exp.saturating_sub(unix_now()),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/_/login", 0),
    );
    response
}

fn ttl() -> i64 {
    i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX)
}

/// `GET /_/login[?code=…][&next=…][&expired=1]`: uses a printed code, else shows the form.
pub async fn show(State(ctx): State<Ctx>, headers: HeaderMap, Query(q): Query) -> Response {
    let next = safe_next(q.get("next"));
    if let Some(code) = q.get("code") {
        if ctx.ui.codes.redeem(code) {
            let access = ctx.app.registry.access();
            let admin = Actor {
                user_id: "admin".to_owned(),
                tenant_id: access.platform_tenant.clone(),
                realm_id: "default".to_owned(),
                roles: vec![access.admin_role.clone()],
            };
            return sign_in(&ctx, &admin, unix_now().saturating_add(ttl()), &next);
        }
        audit_auth_failure(
            &ctx.app,
            "GET",
            "/_/login",
            None,
            "an unknown, used or expired sign-in code",
        )
        .await;
        let error = Shown {
            status: 401,
            detail: "This sign-in link is not valid: it was used already, has expired (links last 10 minutes) or was never issued. Restart `metaengine serve` for a new one, or paste a token.".to_owned(),
            problems: Vec::new(),
        };
        return login_form(
            &ctx,
            &headers,
            StatusCode::UNAUTHORIZED,
            next,
            false,
            Some(error),
            None,
        );
    }
    login_form(
        &ctx,
        &headers,
        StatusCode::OK,
        next,
        q.get("expired").is_some(),
        None,
        q.get("notice"),
    )
}

/// `POST /_/login` with a token: signs in as the token's identity until the token expires (at
/// most [`SESSION_TTL`]).
pub async fn token(State(ctx): State<Ctx>, headers: HeaderMap, form: FormData) -> Response {
    let next = safe_next(form.get("next"));
    let token = form.text("token").unwrap_or("");
    let claims = match ctx.app.verifier.verify(token) {
        Ok(c) => c,
        Err(e) => {
            audit_auth_failure(&ctx.app, "POST", "/_/login", None, &e.to_string()).await;
            let error = Shown {
                status: 401,
                detail: format!("This token cannot sign you in: {e}"),
                problems: vec![("/token".to_owned(), e.to_string())],
            };
            return login_form(
                &ctx,
                &headers,
                StatusCode::UNAUTHORIZED,
                next,
                false,
                Some(error),
                None,
            );
        }
    };
    let exp = claims.exp.min(unix_now().saturating_add(ttl()));
    let actor = claims.into_actor();
    if let Err(e) = ctx.app.tenants.check_active(&actor.tenant_id).await {
        let error = Shown {
            status: 403,
            detail: e.to_string(),
            problems: Vec::new(),
        };
        return login_form(
            &ctx,
            &headers,
            StatusCode::FORBIDDEN,
            next,
            false,
            Some(error),
            None,
        );
    }
    sign_in(&ctx, &actor, exp, &next)
}

/// `POST /_/logout`: ends the session in this browser.
pub async fn logout() -> Response {
    let mut response = page::see_other("/_/login?notice=signed-out");
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", 0));
    response.into_response()
}
