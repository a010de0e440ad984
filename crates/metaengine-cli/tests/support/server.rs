//! `metaengine serve` run by a test, and plain HTTP/1.1 requests to it (for the test files that
//! start a server: `#[path = "support/server.rs"] mod server;`).

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::Cli;

/// `metaengine serve` on a free port logging at debug level into `log`, once it answers.
pub fn serve(cli: &Cli, log: &std::path::Path) -> (Child, u16) {
    serve_with(cli, log, &[])
}

/// [`serve`] with more arguments.
pub fn serve_with(cli: &Cli, log: &std::path::Path, more: &[&str]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_metaengine"))
        .args(["serve", "--listen", &listen])
        .args(more)
        .env("METAENGINE_DATABASE_URL", &cli.url)
        .env("METAENGINE_DATA_DIR", cli.dir.path())
        .env("METAENGINE_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// One HTTP/1.1 request; the status and the body.
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}
