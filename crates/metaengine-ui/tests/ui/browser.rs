//! The admin UI in a real browser: Debian's `chromium`, headless, driven over WebDriver by
//! `chromedriver`, against `metaengine_server::serve` with the UI on a real port. One scenario
//! walks every screen as a person would: sign in with the printed link, create Invoice, add
//! fields, see a validation error at its field, activate with the plan shown, create and edit
//! records, get a 412 on a concurrent edit, watch a live row arrive, see a guest denied, ask
//! for an explanation, and find all of it in the audit trail.
//!
//! `chromium` and `chromedriver` must be installed (`./scripts/test` installs them): the test
//! fails, never skips, without them. With `METAENGINE_SCREENSHOTS=<dir>` it saves a PNG of each
//! screen there (`./scripts/screenshots`).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use metaengine_server::auth::{Claims, mint_hs256};
use metaengine_server::{AppState, ServerConfig, Settings};
use metaengine_store::Store;
use serde_json::json;

const SECRET: &str = "test-secret-test-secret-test-secret!";

crate::on_both_backends!(every_screen_in_a_real_browser);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `chromedriver` on a free port, killed when dropped.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run ./scripts/test (it installs chromium and chromium-driver)");
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium with a fresh profile and no traffic of its own.
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("cannot start chromium through chromedriver")
}

/// The browser and what the scenario needs around it.
struct Walk {
    c: Client,
    base: String,
    shots: Option<std::path::PathBuf>,
}

impl Walk {
    async fn go(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let page = self.c.source().await.unwrap_or_default();
                panic!("no `{css}`: {e}\n{page}")
            }
        }
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap();
    }

    /// Clicks `css` and waits for the next page to load.
    async fn click(&self, css: &str) {
        let old = self.c.find(Locator::Css("html")).await.unwrap();
        self.find(css).await.click().await.unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while old.tag_name().await.is_ok() {
            assert!(
                Instant::now() < until,
                "clicking `{css}` did not load a page"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.find("body").await;
    }

    async fn has(&self, text: &str) -> bool {
        self.c.source().await.unwrap().contains(text)
    }

    async fn shot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            let png = self.c.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }
}

fn token(user: &str, roles: &[&str]) -> String {
    let claims = Claims::new(
        user,
        "default",
        "default",
        roles.iter().map(|r| (*r).to_owned()).collect(),
        Duration::from_secs(600),
    );
    mint_hs256(SECRET, &claims).unwrap()
}

async fn every_screen_in_a_real_browser(store: Arc<dyn Store>) {
    let data_dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::resolve(Settings {
        jwt_secret: Some(SECRET.into()),
        data_dir: Some(data_dir.path().to_owned()),
        ..Settings::default()
    })
    .unwrap();
    let state = AppState::build(store, &config).await.unwrap();
    let ui = metaengine_ui::Ui::new(b"browser test audit key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let routes = metaengine_ui::routes(&state, ui.clone());
    let server = tokio::spawn(metaengine_server::serve(
        listener,
        state,
        routes,
        async move {
            let _ = stopped.await;
        },
    ));
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let shots = std::env::var_os("METAENGINE_SCREENSHOTS").map(std::path::PathBuf::from);
    let w = Walk {
        c: browser(&driver, profile.path()).await,
        base: base.clone(),
        shots,
    };
    let api = reqwest::Client::new();
    let admin = token("admin", &["admin"]);

    // Sign in with the link `serve` prints.
    w.c.goto(&ui.login_url(&base)).await.unwrap();
    assert_eq!(w.text("#who").await, "admin @ default/default");
    // The script runs under the strict CSP: the theme switch works.
    w.find("[data-theme-toggle]").await.click().await.unwrap();
    let theme =
        w.c.execute(
            "return document.documentElement.dataset.theme || ''",
            vec![],
        )
        .await
        .unwrap();
    assert!(theme == json!("dark") || theme == json!("light"), "{theme}");
    w.find("[data-theme-toggle]").await.click().await.unwrap();

    // Entities: create Invoice.
    w.fill("#new-entity #name", "Invoice").await;
    w.fill("#new-entity #description", "Bills we send").await;
    w.shot("entities").await;
    w.click("#new-entity button").await;
    assert!(w.has("Entity created").await);

    // A version from the starter field, then fields from the field form.
    w.fill("#new-version input[name=version]", "v1").await;
    w.click("#new-version button").await;
    w.find("#add-field").await;
    w.fill("#add-field input[name=name]", "status").await;
    w.select("#add-field select[name=type]", "enum").await;
    w.fill("#add-field input[name=enumValues]", "draft, sent, paid")
        .await;
    w.find("#add-field input[name=required]")
        .await
        .click()
        .await
        .unwrap();
    w.click("#add-field button[type=submit]").await;
    assert!(w.has("Field added").await);
    w.fill("#add-field input[name=name]", "total").await;
    w.select("#add-field select[name=type]", "decimal").await;
    w.fill("#add-field input[name=precision]", "12").await;
    w.fill("#add-field input[name=scale]", "2").await;
    w.fill("#add-field input[name=min]", "0").await;
    w.click("#add-field button[type=submit]").await;
    // A field with a problem: shown in the field form, at the field it points to.
    w.fill("#add-field input[name=name]", "level").await;
    w.select("#add-field select[name=type]", "enum").await;
    w.click("#add-field button[type=submit]").await;
    assert!(
        w.text("#add-field-panel .field-error")
            .await
            .contains("needs `enumValues`")
    );
    w.shot("version-editor").await;
    // The plan, then activate.
    assert!(w.text("#plan").await.contains("Activation plan"));
    assert!(w.has("CREATE TABLE").await);
    w.c.execute("document.getElementById('plan').scrollIntoView()", vec![])
        .await
        .unwrap();
    w.shot("activation-plan").await;
    w.click("#activate button").await;
    assert!(w.has("Version activated").await);
    w.shot("entity").await;

    // Data: a record refused at its field, then created, then edited.
    w.go("/_/data/Invoice").await;
    w.click("#new-record").await;
    w.fill("#field-name", "Invoice 1").await;
    w.fill("#field-total", "-5").await;
    w.click("#save-record").await;
    assert!(
        w.text(".input[data-field=total] .field-error")
            .await
            .contains("at least 0")
    );
    assert!(
        w.text(".input[data-field=status] .field-error")
            .await
            .contains("required")
    );
    w.shot("record-errors").await;
    w.select("#field-status", "draft").await;
    w.fill("#field-total", "120.5").await;
    w.click("#save-record").await;
    assert!(w.has("Record created").await);
    let url = w.c.current_url().await.unwrap();
    let id = url.path().rsplit('/').next().unwrap().to_owned();
    w.select("#field-status", "sent").await;
    w.click("#save-record").await;
    assert!(w.has("Record saved").await);
    // Someone else changes it while the form is open: 412, said in words.
    let r = api
        .patch(format!("{base}/api/data/Invoice/{id}"))
        .bearer_auth(&admin)
        .json(&json!({ "status": "paid" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    w.fill("#field-name", "Invoice 1 (mine)").await;
    w.click("#save-record").await;
    assert!(
        w.text("[role=alert] .detail")
            .await
            .contains("Someone else changed this record")
    );
    w.shot("record-conflict").await;

    // The grid, live: a record created elsewhere shows up while it is open.
    w.go("/_/data/Invoice").await;
    let until = Instant::now() + Duration::from_secs(10);
    while w.text("#live").await != "live" {
        assert!(Instant::now() < until, "the live feed did not connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = api
        .post(format!("{base}/api/data/Invoice"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Invoice 2", "status": "draft", "total": "3.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(w.text("#live-new").await.contains("1 new record"));
    w.click("#live-new").await;
    assert_eq!(
        w.c.find_all(Locator::Css("#records tbody tr[data-id]"))
            .await
            .unwrap()
            .len(),
        2
    );
    w.shot("grid").await;
    w.find("[data-theme-toggle]").await.click().await.unwrap();
    w.shot("grid-dark").await;
    w.find("[data-theme-toggle]").await.click().await.unwrap();

    // Policies: the explanation for a guest.
    w.go("/_/policies/Invoice?explain=1&action=read&user=guest&roles=guest")
        .await;
    assert_eq!(w.text("#decision-value").await, "deny");
    w.shot("policies").await;

    // A guest, signed in with a pasted token, is denied the data.
    w.click("#sign-out").await;
    assert!(w.has("You are signed out").await);
    w.fill("#token", &token("guest", &["guest"])).await;
    w.click("#sign-in").await;
    w.go("/_/data/Invoice").await;
    assert!(
        w.text("[role=alert] .detail")
            .await
            .contains("no policy allows `read` on `Invoice`")
    );
    w.shot("guest-denied").await;

    // Back as the admin: all of it is in the audit trail, and the chain verifies.
    w.click("#sign-out").await;
    w.fill("#token", &admin).await;
    w.click("#sign-in").await;
    w.go("/_/audit").await;
    for event in [
        "meta.entity.create",
        "meta.field.add",
        "meta.version.activate",
        "data.create",
        "data.update",
        "policy.deny",
    ] {
        assert!(
            w.has(&format!("data-event=\"{event}\"")).await,
            "{event} missing from the audit page"
        );
    }
    w.shot("audit").await;
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        w.click("#verify").await;
        let report = w.text("#verify-report").await;
        if report.starts_with("Verified") {
            break;
        }
        assert!(Instant::now() < until, "{report}");
    }
    w.go("/_/tenants").await;
    w.shot("tenants").await;

    w.c.close().await.unwrap();
    drop(driver);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
