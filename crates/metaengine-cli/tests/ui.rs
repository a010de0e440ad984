//! `metaengine serve` and its admin UI as a newcomer meets them: the banner prints a one-time
//! sign-in link, the link signs in once, and `--no-ui` serves no UI.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step is a failed test"
)]

#[path = "support/server.rs"]
#[expect(dead_code, reason = "the shared helpers this file does not use")]
mod server;
#[expect(dead_code, reason = "the shared helpers this file does not use")]
mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use server::serve_with;
use support::Cli;

/// A GET without credentials: the status line and the headers.
fn head(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split("\r\n\r\n").next().unwrap().to_owned()
}

fn cli() -> Cli {
    let dir = tempfile::tempdir().unwrap();
    Cli {
        url: format!("sqlite://{}/ui.db", dir.path().display()),
        dir,
    }
}

#[test]
fn serve_prints_a_sign_in_link_that_works_once() {
    let cli = cli();
    let log = cli.dir.path().join("serve.log");
    let (mut child, port) = serve_with(&cli, &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let link = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if let Some(at) = text.find("/_/login?code=") {
            break text[at..].split_whitespace().next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no sign-in link in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}{link}")),
        "{text}"
    );
    let first = head(port, &link);
    assert!(first.starts_with("HTTP/1.1 303"), "{first}");
    assert!(first.contains("set-cookie: metaengine_session="), "{first}");
    let again = head(port, &link);
    assert!(again.starts_with("HTTP/1.1 401"), "{again}");
    // The server's address leads to the UI, whose start page sends a stranger to sign in.
    let root = head(port, "/");
    assert!(
        root.starts_with("HTTP/1.1 303") && root.contains("location: /_/"),
        "{root}"
    );
    let start = head(port, "/_/entities");
    assert!(
        start.starts_with("HTTP/1.1 303") && start.contains("location: /_/login"),
        "{start}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn no_ui_serves_no_ui() {
    let cli = cli();
    let log = cli.dir.path().join("serve.log");
    let (mut child, port) = serve_with(&cli, &log, &["--no-ui"]);
    let answer = head(port, "/_/login");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(head(port, "/health").starts_with("HTTP/1.1 200"));
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap()
            .contains("/_/login?code=")
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
