//! `--ui` (issue 17), in process over the server's own router with the admin UI: the server
//! time of the pages a person opens most (a grid of 20 rows with a filter, an entity's page,
//! an audit page of 50 rows) over an entity of 10,000 records, and the size of the UI's static
//! files and of those pages as gzip sends them.
//!
//! "Server time" is from the request entering the router to the last byte of the body: what a
//! page costs the server, without the network or the browser. The figures are printed and
//! written as JSON; none is a pass/fail.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use metaengine_runtime::Actor;
use metaengine_server::auth::{Claims, mint_hs256};
use metaengine_server::{AppState, ServerConfig, Settings};
use serde::Serialize;
use serde_json::json;
use tower::ServiceExt as _;

use crate::prepare::Target;

/// Records of the entity the pages show.
const RECORDS: u64 = 10_000;
/// Requests timed per page.
const REQUESTS: usize = 300;
const SECRET: &str = "bench-secret-bench-secret-bench-secret";

/// One page's figures.
#[derive(Debug, Serialize)]
pub struct PageFigures {
    /// What it is.
    pub page: &'static str,
    /// Its path.
    pub path: String,
    /// Median server time, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Bytes of HTML.
    pub bytes: usize,
    /// Bytes sent with gzip.
    pub gzip_bytes: usize,
}

/// The figures of one backend.
#[derive(Debug, Serialize)]
pub struct UiRun {
    /// `postgres` or `sqlite`.
    pub backend: &'static str,
    /// The pages.
    pub pages: Vec<PageFigures>,
    /// Bytes of the static files (stylesheet and script).
    pub static_bytes: usize,
    /// Their bytes with gzip.
    pub static_gzip_bytes: usize,
}

async fn get(app: &Router, path: &str, cookie: &str, gzip: bool) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut req = Request::get(path).header(header::COOKIE, cookie);
    if gzip {
        req = req.header(header::ACCEPT_ENCODING, "gzip");
    }
    let response = app.clone().oneshot(req.body(Body::empty())?).await?;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    Ok((status, body.to_vec()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Builds the data on `target` (recreated) and times the pages.
pub async fn run(target: &Target, data_dir: &std::path::Path) -> anyhow::Result<UiRun> {
    target.recreate().await?;
    let store = target.open_store().await?;
    let config = ServerConfig::resolve(Settings {
        jwt_secret: Some(SECRET.to_owned().into()),
        data_dir: Some(data_dir.to_owned()),
        ..Settings::default()
    })?;
    let state = AppState::build(store, &config).await?;
    let ui = metaengine_ui::Ui::new(b"bench audit key");
    let app = metaengine_server::router_with(state.clone(), metaengine_ui::routes(&state, ui));
    let admin = Actor {
        user_id: "bench".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    };
    let registry = &state.registry;
    registry
        .create_entity(&admin, "Invoice", Some("bills"))
        .await?;
    let schema = json!({ "fields": [
        { "name": "number", "type": "string", "required": true },
        { "name": "customer", "type": "string" },
        { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"], "required": true, "indexed": true },
        { "name": "total", "type": "decimal", "precision": 12, "scale": 2 },
        { "name": "dueDate", "type": "date" },
        { "name": "paid", "type": "boolean" },
        { "name": "notes", "type": "text" }
    ] });
    registry
        .create_version(&admin, "Invoice", "v1", schema.clone())
        .await?;
    registry.activate(&admin, "Invoice", "v1").await?;
    // A next version, not active: its page shows the diff and the activation plan.
    let mut next = schema;
    if let Some(fields) = next.get_mut("fields").and_then(|f| f.as_array_mut()) {
        fields.push(json!({ "name": "reference", "type": "string", "indexed": true }));
    }
    registry
        .create_version(&admin, "Invoice", "v2", next)
        .await?;
    let started = Instant::now();
    for i in 0..RECORDS {
        let status = match i % 3 {
            0 => "draft",
            1 => "sent",
            _ => "paid",
        };
        let record = json!({
            "number": format!("INV-{i:06}"), "customer": format!("Customer {}", i % 97),
            "status": status, "total": format!("{}.{:02}", i % 5000, i % 100),
            "dueDate": format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28), "paid": status == "paid",
            "notes": "net 30"
        });
        state.data.create(&admin, "Invoice", &record).await?;
    }
    state.audit.flush().await;
    eprintln!(
        "  {}: {RECORDS} invoices in {:.1} s",
        target.name(),
        started.elapsed().as_secs_f64()
    );
    // Sign in as a person would, with a pasted token.
    let claims = Claims::new(
        "bench",
        "default",
        "main",
        vec!["admin".into()],
        Duration::from_secs(3600),
    );
    let token = mint_hs256(SECRET, &claims)?;
    // The sign-in form's token is bound to its nonce cookie: take both from one answer.
    let response = app
        .clone()
        .oneshot(Request::get("/_/login").body(Body::empty())?)
        .await?;
    let nonce = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("no nonce cookie")?
        .to_owned();
    let body = String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await?
            .to_vec(),
    )?;
    let csrf = body
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .context("no CSRF token")?
        .to_owned();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("_csrf", csrf.as_str()), ("token", token.as_str())])
        .finish();
    let response = app
        .clone()
        .oneshot(
            Request::post("/_/login")
                .header(header::COOKIE, &nonce)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))?,
        )
        .await?;
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("metaengine_session="))
        .and_then(|v| v.split(';').next())
        .context("signing in set no session")?
        .to_owned();
    let pages = [
        (
            "grid of 20 (status = paid, newest first)",
            "/_/data/Invoice?f=status&o=eq&v=paid".to_owned(),
        ),
        ("entity page", "/_/entities/Invoice".to_owned()),
        (
            "next version: diff and activation plan",
            "/_/entities/Invoice/versions/v2".to_owned(),
        ),
        ("audit page of 50", "/_/audit".to_owned()),
    ];
    let mut figures = Vec::new();
    for (page, path) in pages {
        let (status, body) = get(&app, &path, &cookie, false).await?;
        ensure!(
            status == 200,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        let (_, zipped) = get(&app, &path, &cookie, true).await?;
        let mut times = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let started = Instant::now();
            let (status, _) = get(&app, &path, &cookie, false).await?;
            times.push(started.elapsed());
            ensure!(status == 200, "{path}: {status}");
        }
        times.sort();
        figures.push(PageFigures {
            page,
            path,
            p50_ms: percentile(&times, 0.5),
            p99_ms: percentile(&times, 0.99),
            bytes: body.len(),
            gzip_bytes: zipped.len(),
        });
    }
    let mut static_bytes = 0;
    let mut static_gzip_bytes = 0;
    for asset in metaengine_ui::assets::all() {
        let (status, body) = get(&app, &asset.path, &cookie, false).await?;
        ensure!(status == 200, "{}: {status}", asset.path);
        static_bytes += body.len();
        let (_, zipped) = get(&app, &asset.path, &cookie, true).await?;
        ensure!(
            zipped.len() < body.len(),
            "{} is not compressed",
            asset.path
        );
        static_gzip_bytes += zipped.len();
    }
    state.shutdown().await;
    Ok(UiRun {
        backend: target.name(),
        pages: figures,
        static_bytes,
        static_gzip_bytes,
    })
}

/// The table of the runs.
pub fn print(runs: &[UiRun]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "backend",
        "page",
        "p50 (ms)",
        "p99 (ms)",
        "HTML (bytes)",
        "gzip (bytes)",
    ]);
    for r in runs {
        for p in &r.pages {
            t.add_row([
                r.backend.to_owned(),
                p.page.to_owned(),
                format!("{:.2}", p.p50_ms),
                format!("{:.2}", p.p99_ms),
                p.bytes.to_string(),
                p.gzip_bytes.to_string(),
            ]);
        }
    }
    println!("{t}");
    if let Some(r) = runs.first() {
        println!(
            "static files (stylesheet + script): {} bytes, {} bytes with gzip",
            r.static_bytes, r.static_gzip_bytes
        );
    }
}
