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
    let task = tokio::spawn(metaengine_server::serve(
        listener,
        state,
        axum::Router::new(),
        async move {
            let _ = stopped.await;
        },
    ));
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

/// Creates entity `name` with `schema` as version v1 and activates it, as the platform admin.
pub async fn define_entity(server: &TestServer, name: &str, schema: Value) {
    let admin = admin();
    let r = server
        .post(
            "/api/meta/entities",
            &admin,
            serde_json::json!({ "name": name }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .post(
            &format!("/api/meta/entities/{name}/versions"),
            &admin,
            serde_json::json!({ "version": "v1", "schema": schema }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .call(
            reqwest::Method::POST,
            &format!("/api/meta/entities/{name}/versions/v1/activate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
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

/// One Server-Sent Event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    /// `id:`, if any.
    pub id: Option<String>,
    /// `event:` (`message` when absent).
    pub event: String,
    /// `data:`, parsed as JSON.
    pub data: Value,
}

/// An open `text/event-stream` answer, read event by event.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    ended: bool,
    /// Comment lines seen (`: ping`), in order.
    pub comments: Vec<String>,
    /// The `retry:` values seen.
    pub retries: Vec<String>,
}

impl TestServer {
    /// Opens an event stream; `Err` with the answer when it is not one (a refusal).
    pub async fn events(
        &self,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, Answer> {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await.unwrap();
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            == Some("text/event-stream");
        if response.status() != StatusCode::OK || !is_stream {
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Err(Answer {
                status,
                headers,
                body,
            });
        }
        Ok(EventStream {
            response,
            buffer: String::new(),
            ended: false,
            comments: Vec::new(),
            retries: Vec::new(),
        })
    }
}

impl EventStream {
    /// The next event (comments and `retry:` noted, not returned); `None` when none comes
    /// within `wait` or the stream ended.
    pub async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return Some(event);
                }
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// Whether the server ended the stream (waiting at most `wait` for the end).
    pub async fn ended(&mut self, wait: Duration) -> bool {
        while self.next(wait).await.is_some() {}
        self.ended
    }

    /// Every event until none comes for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Sse> {
        let mut out = Vec::new();
        while let Some(e) = self.next(quiet).await {
            out.push(e);
        }
        out
    }

    fn parse(&mut self, block: &str) -> Option<Sse> {
        let (mut id, mut event, mut data) = (None, None, Vec::new());
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "" => self.comments.push(value.to_owned()),
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                "retry" => self.retries.push(value.to_owned()),
                _ => {}
            }
        }
        if data.is_empty() {
            return None;
        }
        let text = data.join("\n");
        Some(Sse {
            id,
            event: event.unwrap_or_else(|| "message".to_owned()),
            data: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        })
    }
}
