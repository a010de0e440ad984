//! The server's router with the UI over a fresh database, driven in process (`oneshot`) by a
//! small browser: a cookie jar, forms posted with the page's CSRF token, redirects read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, header};
use metaengine_server::auth::{Claims, mint_hs256};
use metaengine_server::{AppState, ServerConfig, Settings, SharedState};
use metaengine_store::Store;
use metaengine_ui::Ui;
use serde_json::Value;
use tower::ServiceExt as _;

/// The HS256 secret of the test servers.
pub const SECRET: &str = "test-secret-test-secret-test-secret!";

/// The server's router (API and UI) over one database.
pub struct App {
    pub router: Router,
    pub ui: Arc<Ui>,
    pub state: SharedState,
    _data_dir: tempfile::TempDir,
}

impl App {
    pub async fn new(store: Arc<dyn Store>) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::resolve(Settings {
            jwt_secret: Some(SECRET.into()),
            data_dir: Some(data_dir.path().to_owned()),
            ..Settings::default()
        })
        .unwrap();
        let state = AppState::build(store, &config).await.unwrap();
        let ui = Ui::new(b"the audit key of the tests");
        let router = metaengine_server::router_with(
            state.clone(),
            metaengine_ui::routes(&state, ui.clone()),
        );
        Self {
            router,
            ui,
            state,
            _data_dir: data_dir,
        }
    }

    /// A browser with no cookie.
    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookies: BTreeMap::new(),
            csrf: String::new(),
        }
    }

    /// A browser signed in with the printed one-time link (the platform admin).
    pub async fn admin(&self) -> Browser<'_> {
        let mut b = self.browser();
        let url = self.ui.login_url("");
        let page = b.get(&url).await;
        assert_eq!(page.status, 303, "{}", page.body);
        b.get("/_/entities").await.ok();
        b
    }

    /// A browser signed in as the API tests' platform admin (`root`, realm `main`: the realm
    /// of [`admin_token`]'s records).
    pub async fn root(&self) -> Browser<'_> {
        self.signed_in_as("root", "default", &["admin"]).await
    }

    /// A browser signed in with a pasted token.
    pub async fn signed_in_as(&self, user: &str, tenant: &str, roles: &[&str]) -> Browser<'_> {
        let mut b = self.browser();
        b.get("/_/login").await.ok();
        let page = b
            .post(
                "/_/login",
                &[("token", &token(user, tenant, "main", roles))],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        b.get("/_/data").await.ok();
        b
    }

    /// An API call with a bearer token: status and JSON body.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A token signed with [`SECRET`].
pub fn token(user: &str, tenant: &str, realm: &str, roles: &[&str]) -> String {
    let claims = Claims::new(
        user,
        tenant,
        realm,
        roles.iter().map(|r| (*r).to_owned()).collect(),
        Duration::from_secs(600),
    );
    mint_hs256(SECRET, &claims).unwrap()
}

/// The platform admin's token.
pub fn admin_token() -> String {
    token("root", "default", "main", &["admin"])
}

/// An answer as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// Whether the page contains `text` (HTML as sent: `&`, `<`, `"` escaped).
    pub fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }

    /// The value of the first `name="_csrf"` input.
    pub fn csrf(&self) -> Option<String> {
        attr_after(&self.body, "name=\"_csrf\" value=\"")
    }

    /// Every `data-id` of the page's rows, in order.
    pub fn row_ids(&self) -> Vec<String> {
        self.body
            .split("<tr data-id=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next().map(str::to_owned))
            .collect()
    }

    /// Asserts the status and gives the page (with its body on failure).
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    pub fn ok(self) -> Self {
        self.expect(200)
    }
}

fn attr_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    body[start..].split('"').next().map(str::to_owned)
}

/// A browser: cookies, and the CSRF token of the last page that had one.
pub struct Browser<'a> {
    app: &'a App,
    pub cookies: BTreeMap<String, String>,
    pub csrf: String,
}

impl Browser<'_> {
    async fn send(&mut self, method: Method, path: &str, body: Option<String>) -> Page {
        let mut req = Request::builder().method(method).uri(path);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(b)
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for cookie in headers.get_all(header::SET_COOKIE) {
            let text = cookie.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let page = Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        };
        if let Some(csrf) = page.csrf().filter(|c| !c.is_empty()) {
            self.csrf = csrf;
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts a form with the CSRF token of the last page.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly `fields` (no CSRF token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(Method::POST, path, Some(body)).await
    }

    /// Posts a form, expects a redirect and follows it.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.post(path, fields).await;
        assert_eq!(page.status, 303, "POST {path}: {}", page.body);
        let to = page.location().to_owned();
        self.get(&to).await
    }
}

/// Defines `name` with `schema` as v1 and activates it through the API.
pub async fn define(app: &App, name: &str, schema: Value) {
    let admin = admin_token();
    let (s, b) = app
        .api(
            Method::POST,
            "/api/meta/entities",
            &admin,
            Some(serde_json::json!({ "name": name })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .api(
            Method::POST,
            &format!("/api/meta/entities/{name}/versions"),
            &admin,
            Some(serde_json::json!({ "version": "v1", "schema": schema })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .api(
            Method::POST,
            &format!("/api/meta/entities/{name}/versions/v1/activate"),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
}
