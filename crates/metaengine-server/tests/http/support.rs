//! A real server on an ephemeral port over a fresh database, and a client that speaks to it.

use std::sync::Arc;
use std::time::Duration;

use metaengine_server::auth::{Claims, mint_hs256};
use metaengine_server::{AppState, ServerConfig, Settings};
use metaengine_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

/// The HS256 secret the test servers use.
pub const SECRET: &str = "test-secret-test-secret-test-secret!";

pub use metaengine_testing::sqlite;

/// A running server.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

/// An answer: status, headers and body (JSON when it parses).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer of `status` and gives its body.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{:#}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        // Every problem carries its stable code (SPEC §11), and its type names it.
        let code = self.body["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {:#}", self.body));
        assert_eq!(
            self.body["type"].as_str(),
            Some(format!("/problems/{}", code.replace('_', "-")).as_str())
        );
        &self.body
    }
}

/// Starts a server over `store` with `extra` settings (HS256 with [`SECRET`] unless overridden).
pub async fn start_with(store: Arc<dyn Store>, extra: Settings) -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = extra.or(Settings {
        jwt_secret: Some(SECRET.into()),
        data_dir: Some(data_dir.path().to_owned()),
        ..Settings::default()
    });
    let config = ServerConfig::resolve(settings).unwrap();
    let state = AppState::build(store, &config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(metaengine_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    TestServer {
        base,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
        _data_dir: data_dir,
    }
}

/// Starts a server over `store` with the default test settings.
pub async fn start(store: Arc<dyn Store>) -> TestServer {
    start_with(store, Settings::default()).await
}

/// A token signed with [`SECRET`].
pub fn token(user: &str, tenant: &str, realm: &str, roles: &[&str]) -> String {
    let claims = Claims::new(
        user,
        tenant,
        realm,
        roles.iter().map(|r| r.to_string()).collect(),
        Duration::from_secs(600),
    );
    mint_hs256(SECRET, &claims).unwrap()
}

/// The platform admin's token.
pub fn admin() -> String {
    token("root", "default", "main", &["admin"])
}

impl TestServer {
    /// Sends a request; `body` as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        self.send(method, path, token, body, &[]).await
    }

    /// Sends a request with extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Stops the server gracefully and waits for it (the audit writer is flushed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Defines Invoice (examples/invoice-v1.json) and activates it, as the platform admin.
pub async fn invoice_v1(server: &TestServer) {
    let admin = admin();
    let schema: Value =
        serde_json::from_str(include_str!("../../../../examples/invoice-v1.json")).unwrap();
    let r = server
        .post(
            "/api/meta/entities",
            &admin,
            serde_json::json!({ "name": "Invoice", "description": "Customer invoices" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .post(
            "/api/meta/entities/Invoice/versions",
            &admin,
            serde_json::json!({ "version": "v1", "schema": schema }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .call(
            Method::POST,
            "/api/meta/entities/Invoice/versions/v1/activate",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
}
