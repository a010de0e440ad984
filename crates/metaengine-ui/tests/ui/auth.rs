//! Signing in and out, sessions, CSRF, the security headers, and what a non-admin sees.

use std::sync::Arc;

use axum::http::Method;
use metaengine_store::Store;
use serde_json::json;

use crate::support::{App, admin_token, define, token};

crate::on_both_backends!(
    a_printed_link_signs_in_once,
    a_pasted_token_signs_in_and_a_bad_one_is_refused,
    a_state_changing_request_needs_its_sessions_csrf_token,
    an_expired_or_forged_session_goes_back_to_sign_in,
    signing_out_ends_the_session,
    every_page_sends_the_security_headers,
    a_non_admin_sees_only_what_its_policies_allow,
    a_suspended_tenants_session_is_refused,
    the_static_files_are_small_and_sent_compressed,
    the_session_cookie_opens_the_event_streams_only,
);

async fn a_printed_link_signs_in_once(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let url = app.ui.login_url("");
    let mut b = app.browser();
    // Before signing in, a page sends to the sign-in form, remembering where it was going.
    let page = b.get("/_/tenants").await.expect(303);
    assert_eq!(page.location(), "/_/login?next=%2F_%2Ftenants");
    let page = b.get(&format!("{url}&next=/_/tenants")).await.expect(303);
    assert_eq!(page.location(), "/_/tenants");
    let cookie = page.header("set-cookie");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    let page = b.get("/_/tenants").await.ok();
    assert!(page.has("admin @ default/default"), "{}", page.body);
    // The same link again, in another browser: refused.
    let mut other = app.browser();
    let page = other.get(&url).await.expect(401);
    assert!(page.has("not valid"), "{}", page.body);
    assert!(other.get("/_/entities").await.status == 303);
    // A link going elsewhere is not followed off the site.
    let page = app
        .browser()
        .get(&format!("{}&next=//evil.example/", app.ui.login_url("")))
        .await;
    assert_eq!(page.location(), "/_/");
}

async fn a_pasted_token_signs_in_and_a_bad_one_is_refused(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.browser();
    b.get("/_/login").await.ok();
    let page = b
        .post("/_/login", &[("token", "not-a-token")])
        .await
        .expect(401);
    assert!(page.has("This token cannot sign you in"), "{}", page.body);
    // Audited as the API audits a refused token.
    let (_, rows) = app
        .api(
            Method::GET,
            "/api/meta/audit?eventType=auth.failure",
            &admin_token(),
            None,
        )
        .await;
    assert_eq!(rows["data"][0]["resource"], "/_/login", "{rows}");
    assert_eq!(rows["data"][0]["result"], "failure");
    let page = b
        .post("/_/login", &[("token", &admin_token())])
        .await
        .expect(303);
    assert_eq!(page.location(), "/_/");
    let page = b.get("/_/entities").await.ok();
    assert!(page.has("root @ default/main"));
}

async fn a_state_changing_request_needs_its_sessions_csrf_token(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    // No token, a wrong one, and another session's: all refused, nothing created.
    let page = b
        .post_raw("/_/entities", &[("name", "Invoice")])
        .await
        .expect(403);
    assert!(page.has("This form has expired or did not come from this site"));
    b.post_raw("/_/entities", &[("_csrf", "bm90IGl0"), ("name", "Invoice")])
        .await
        .expect(403);
    let other = app.admin().await;
    b.post_raw(
        "/_/entities",
        &[("_csrf", &other.csrf), ("name", "Invoice")],
    )
    .await
    .expect(403);
    let (_, list) = app
        .api(Method::GET, "/api/meta/entities", &admin_token(), None)
        .await;
    assert_eq!(list["data"], json!([]));
    // With its own token it goes through.
    let page = b.submit("/_/entities", &[("name", "Invoice")]).await.ok();
    assert!(page.has("Entity created"), "{}", page.body);
    // The sign-in form's own token is bound to its nonce cookie.
    let mut c = app.browser();
    c.get("/_/login").await.ok();
    c.post_raw("/_/login", &[("token", &admin_token())])
        .await
        .expect(403);
}

async fn an_expired_or_forged_session_goes_back_to_sign_in(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.browser();
    b.get("/_/login").await.ok();
    // A token that expires in a second signs in until then.
    let claims = metaengine_server::auth::Claims {
        exp: metaengine_ui::session::unix_now() + 1,
        ..metaengine_server::auth::Claims::new(
            "ann",
            "default",
            "main",
            vec!["admin".into()],
            std::time::Duration::from_secs(1),
        )
    };
    let short = metaengine_server::auth::mint_hs256(crate::support::SECRET, &claims).unwrap();
    b.post("/_/login", &[("token", &short)]).await.expect(303);
    b.get("/_/entities").await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let page = b.get("/_/entities").await.expect(303);
    assert_eq!(page.location(), "/_/login?next=%2F_%2Fentities&expired=1");
    let page = b.get(page.location()).await.ok();
    assert!(page.has("Your session has expired"), "{}", page.body);
    // A cookie changed by hand is no session at all.
    let mut forged = app.admin().await;
    let cookie = forged.cookies.get("metaengine_session").unwrap().clone();
    forged
        .cookies
        .insert("metaengine_session".into(), cookie.replacen('e', "f", 1));
    let page = forged.get("/_/entities").await.expect(303);
    assert!(!page.location().contains("expired"));
}

async fn signing_out_ends_the_session(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    let page = b.submit("/_/logout", &[]).await.ok();
    assert!(page.has("You are signed out"));
    assert!(!b.cookies.contains_key("metaengine_session"));
    b.get("/_/entities").await.expect(303);
}

async fn every_page_sends_the_security_headers(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let mut b = app.admin().await;
    for path in ["/_/login", "/_/entities", "/_/audit", "/_/no-such-page"] {
        let page = b.get(path).await;
        let csp = page.header("content-security-policy");
        assert!(
            csp.contains("script-src 'self'")
                && !csp.contains("unsafe-inline")
                && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(page.header("cache-control"), "no-store", "{path}");
        // No inline script or style anywhere.
        assert!(
            !page.has("<script>") && !page.has("style=") && !page.has(" onclick="),
            "{path}"
        );
    }
    assert_eq!(b.get("/_/no-such-page").await.status, 404);
    // The static files: content-hashed names, cached for a year.
    for asset in metaengine_ui::assets::all() {
        let page = b.get(&asset.path).await.ok();
        assert_eq!(
            page.header("cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(page.header("content-type"), asset.content_type);
        let entities = b.get("/_/entities").await;
        assert!(entities.has(&asset.path), "{}", asset.path);
    }
    b.get("/_/static/ui.00000000.css").await.expect(404);
}

async fn a_non_admin_sees_only_what_its_policies_allow(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    define(
        &app,
        "Note",
        json!({ "fields": [
            { "name": "title", "type": "string", "required": true },
            { "name": "secret", "type": "string" }
          ],
          "policies": [
            { "name": "viewers-read", "effect": "allow", "action": "read", "priority": 10,
              "conditions": [{ "field": "user.role", "operator": "eq", "value": "viewer" }],
              "fields": ["title"] }
          ] }),
    )
    .await;
    define(
        &app,
        "Hidden",
        json!({ "fields": [{ "name": "x", "type": "string" }] }),
    )
    .await;
    let (s, _) = app
        .api(
            Method::POST,
            "/api/admin/tenants",
            &admin_token(),
            Some(json!({ "id": "acme", "name": "Acme" })),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .api(
            Method::POST,
            "/api/data/Note",
            &token("root", "acme", "main", &["admin"]),
            Some(json!({ "title": "Hello", "secret": "s3" })),
        )
        .await;
    assert_eq!(s, 201);
    let mut viewer = app.signed_in_as("vera", "acme", &["viewer"]).await;
    let page = viewer.get("/_/data").await.ok();
    assert!(
        page.has("/_/data/Note") && !page.has("/_/data/Hidden"),
        "{}",
        page.body
    );
    assert!(
        !page.has("href=\"/_/entities\""),
        "no admin sections in the navigation"
    );
    // Metadata pages answer as the API does: 403.
    let page = viewer.get("/_/entities").await.expect(403);
    assert!(page.has("needs the `admin` role"), "{}", page.body);
    // The grid shows the granted field only, and no "New record" (no create policy).
    let page = viewer.get("/_/data/Note").await.ok();
    assert!(
        page.has("Hello") && !page.has("s3") && !page.has("data-sort=\"secret\""),
        "{}",
        page.body
    );
    assert!(!page.has("id=\"new-record\""));
    // A create posted anyway is refused by the gate, as through the API.
    let page = viewer
        .post("/_/data/Note/new", &[("field.title", "x")])
        .await
        .expect(403);
    assert!(page.has("data-status=\"403\""));
    let page = viewer.get("/_/data/Hidden").await.expect(403);
    assert!(
        page.has("no policy allows `read` on `Hidden`"),
        "{}",
        page.body
    );
}

async fn a_suspended_tenants_session_is_refused(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    let (s, _) = app
        .api(
            Method::POST,
            "/api/admin/tenants",
            &admin_token(),
            Some(json!({ "id": "acme", "name": "Acme" })),
        )
        .await;
    assert_eq!(s, 201);
    let mut user = app.signed_in_as("ann", "acme", &["admin"]).await;
    user.get("/_/data").await.ok();
    let mut admin = app.admin().await;
    admin.get("/_/tenants").await.ok();
    let page = admin
        .submit("/_/tenants/acme/status", &[("status", "suspended")])
        .await
        .ok();
    assert!(
        page.has("Tenant updated") && page.has("suspended"),
        "{}",
        page.body
    );
    let page = user.get("/_/data").await.expect(403);
    assert!(page.has("suspended"), "{}", page.body);
}

async fn the_static_files_are_small_and_sent_compressed(store: Arc<dyn Store>) {
    use tower::ServiceExt as _;
    let app = App::new(store).await;
    let mut total = 0;
    for asset in metaengine_ui::assets::all() {
        let req = axum::http::Request::get(&asset.path)
            .header("accept-encoding", "gzip")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(
            response.headers()["content-encoding"],
            "gzip",
            "{}",
            asset.path
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(bytes.len() < asset.body.len(), "{}", asset.path);
        total += bytes.len();
    }
    // The budget: the whole UI under 100 KB compressed.
    assert!(total < 100 * 1024, "{total} bytes");
}

async fn the_session_cookie_opens_the_event_streams_only(store: Arc<dyn Store>) {
    use tower::ServiceExt as _;
    let app = App::new(store).await;
    define(
        &app,
        "Note",
        json!({ "fields": [{ "name": "title", "type": "string" }] }),
    )
    .await;
    let b = app.admin().await;
    let cookie = format!("metaengine_session={}", b.cookies["metaengine_session"]);
    let get = |path: &str| {
        axum::http::Request::get(path)
            .header("cookie", &cookie)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    // A stream: the cookie stands for the signed-in admin (SPEC §14).
    let response = app
        .router
        .clone()
        .oneshot(get("/api/data/Note/events"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // Any other API route wants its bearer token: the cookie is not one.
    for path in ["/api/meta/entities", "/api/data/Note"] {
        let response = app.router.clone().oneshot(get(path)).await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    // A forged cookie opens no stream.
    let forged = axum::http::Request::get("/api/data/Note/events")
        .header("cookie", "metaengine_session=e30.AAAA")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        app.router.clone().oneshot(forged).await.unwrap().status(),
        401
    );
}
