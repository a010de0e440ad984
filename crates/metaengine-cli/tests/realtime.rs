//! The realtime feed from the command line and across a crash, on SQLite and PostgreSQL:
//! `metaengine data watch` prints the changes other processes make (single writes and an
//! import), and a change committed just before the server is killed with SIGKILL reaches a
//! subscriber that resumes from its last event id on the restarted server.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metaengine_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use support::Cli;

const INVOICE: &str = r#"{ "fields": [
  { "name": "number", "type": "string", "required": true },
  { "name": "status", "type": "enum", "enumValues": ["draft", "paid"], "default": "draft" }
], "policies": [{ "name": "everyone", "effect": "allow", "action": "*" }] }"#;

fn define(cli: &Cli) {
    let schema = cli.dir.path().join("invoice.json");
    std::fs::write(&schema, INVOICE).unwrap();
    cli.ok(&["entity", "create", "Invoice"], None);
    cli.ok(
        &[
            "version",
            "create",
            "Invoice",
            "v1",
            schema.to_str().unwrap(),
        ],
        None,
    );
    cli.ok(&["version", "activate", "Invoice", "v1"], None);
}

fn spawn(cli: &Cli, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_metaengine"))
        .args(args)
        .env("METAENGINE_DATABASE_URL", &cli.url)
        .env("METAENGINE_DATA_DIR", cli.dir.path())
        .env("METAENGINE_USER", "tester")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `data watch` from the first change on, while other processes write.
fn watch_story(cli: &Cli) {
    define(cli);
    let mut watch = spawn(
        cli,
        &[
            "data",
            "watch",
            "Invoice",
            "--filter",
            "status:eq:paid",
            "--last-event-id",
            "0",
            "--count",
            "4",
        ],
    );
    let out = cli.ok(
        &["data", "create", "Invoice", "-"],
        Some(r#"{"number": "1", "status": "paid"}"#),
    );
    let id = out
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("created ")
        .to_owned();
    cli.ok(
        &["data", "create", "Invoice", "-"],
        Some(r#"{"number": "2"}"#),
    );
    cli.ok(
        &["data", "update", "Invoice", &id, "-"],
        Some(r#"{"number": "1b"}"#),
    );
    let import = cli.dir.path().join("rows.ndjson");
    std::fs::write(
        &import,
        "{\"number\": \"3\", \"status\": \"paid\"}\n{\"number\": \"4\"}\n",
    )
    .unwrap();
    cli.ok(
        &["data", "import", "Invoice", import.to_str().unwrap()],
        None,
    );
    cli.ok(&["data", "delete", "Invoice", &id], None);

    let deadline = Instant::now() + Duration::from_secs(20);
    while watch.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if watch.try_wait().unwrap().is_none() {
        watch.kill().unwrap();
    }
    let output = watch.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["event"].as_str().unwrap(),
                l["data"]["record"]["number"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    // Only paid invoices: the draft and the imported draft never show.
    assert_eq!(
        seen,
        [
            ("create", "1"),
            ("update", "1b"),
            ("create", "3"),
            ("delete", "-")
        ]
    );
    assert_eq!(lines[3]["data"]["id"], id.as_str());
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[test]
fn data_watch_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/watch.db", dir.path().display());
    watch_story(&Cli { url, dir });
}

#[tokio::test]
async fn data_watch_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    tokio::task::spawn_blocking(move || watch_story(&cli))
        .await
        .unwrap();
}

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `metaengine serve` on `port`, once it answers.
fn serve(cli: &Cli, port: u16) -> Child {
    let listen = format!("127.0.0.1:{port}");
    // Its output is not read: nothing may fill a pipe and stall it.
    let child = Command::new(env!("CARGO_BIN_EXE_metaengine"))
        .args(["serve", "--listen", &listen])
        .env("METAENGINE_DATABASE_URL", &cli.url)
        .env("METAENGINE_DATA_DIR", cli.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A raw HTTP/1.1 request; the answer's head and body as they come.
fn request(port: u16, head: &str, body: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{head}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

fn create(port: u16, token: &str, record: &Value) -> Value {
    let body = record.to_string();
    let mut s = request(
        port,
        &format!("POST /api/data/Invoice HTTP/1.1\r\nAuthorization: Bearer {token}"),
        &body,
    );
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let json = answer.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(json).unwrap()
}

/// Opens the event stream (returns once it has begun), to read with [`next_event`].
fn events(port: u16, token: &str, last_event_id: Option<&str>) -> BufReader<std::net::TcpStream> {
    let resume = last_event_id
        .map(|id| format!("\r\nLast-Event-ID: {id}"))
        .unwrap_or_default();
    let s = request(
        port,
        &format!(
            "GET /api/realtime?entities=Invoice HTTP/1.1\r\nAuthorization: Bearer {token}{resume}"
        ),
        "",
    );
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    // Subscribed once the stream has begun (`retry:`): changes from then on are its own.
    let mut line = String::new();
    while !line.starts_with("retry:") {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "the stream ended at once"
        );
    }
    r
}

/// The next event's `(id, event, data)` (a chunked body's size lines and comments skipped).
fn next_event(r: &mut BufReader<std::net::TcpStream>) -> Option<(String, String, Value)> {
    let (mut id, mut event) = (String::new(), String::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if let Some(v) = l.strip_prefix("id: ") {
            id = v.to_owned();
        } else if let Some(v) = l.strip_prefix("event: ") {
            event = v.to_owned();
        } else if let Some(v) = l.strip_prefix("data: ") {
            return Some((id, event, serde_json::from_str(v).ok()?));
        }
    }
}

fn kill_story(cli: &Cli) {
    define(cli);
    let token = cli.ok(&["token", "--user", "u", "--roles", "admin"], None);
    let token = token.trim();
    let port = free_port();
    let mut server = serve(cli, port);
    let mut stream = events(port, token, None);
    create(port, token, &json!({ "number": "before" }));
    let (seen, event, _) = next_event(&mut stream).unwrap();
    assert_eq!(event, "create");
    // Committed (the 201 came back), then the server dies before the subscriber reads more.
    let after = create(port, token, &json!({ "number": "after" }));
    server.kill().unwrap();
    server.wait().unwrap();
    drop(stream);

    let port = free_port();
    let mut server = serve(cli, port);
    let mut resumed = events(port, token, Some(&seen));
    let (id, event, data) = next_event(&mut resumed).unwrap();
    assert_eq!(event, "create");
    assert_eq!(data["id"], after["id"]);
    assert!(id.parse::<i64>().unwrap() > seen.parse::<i64>().unwrap());
    server.kill().unwrap();
    server.wait().unwrap();
    // Both records were kept: the kill came after the commit.
    let list = cli.json(&["data", "list", "Invoice", "--json"]);
    assert_eq!(list["meta"]["total"], 2);
}

#[test]
fn a_change_committed_before_a_kill_reaches_a_resuming_subscriber_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/kill.db", dir.path().display());
    kill_story(&Cli { url, dir });
}

#[tokio::test]
async fn a_change_committed_before_a_kill_reaches_a_resuming_subscriber_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    tokio::task::spawn_blocking(move || kill_story(&cli))
        .await
        .unwrap();
}
