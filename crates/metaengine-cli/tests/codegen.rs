//! The generated TypeScript client (SPEC §19) as a user's code runs it: `metaengine serve` on
//! SQLite with the example Invoice, the module fetched from `GET /api/meta/codegen/typescript`,
//! compiled with the real `tsc`, then a Node script creates, lists with a filter, updates with
//! `If-Match`, catches a typed 412 and 422, and deletes (`tests/typescript/scenario.mjs`).
//! The tools come from `tests/typescript` (installed by `./scripts/test` with `npm ci`).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed step is a failed test"
)]

#[path = "support/server.rs"]
mod server;
mod support;

use std::path::PathBuf;
use std::process::Command;

use server::{call, serve};
use support::Cli;

/// `tests/typescript` of the repository, with its tools installed.
fn tools() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/typescript");
    if !dir.join("node_modules/.bin/tsc").exists() {
        panic!(
            "TypeScript is not installed in {}: run ./scripts/test (it runs `npm ci` there)",
            dir.display()
        );
    }
    dir
}

#[test]
fn the_generated_client_talks_to_the_server() {
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        url: format!("sqlite://{}/codegen.db", dir.path().display()),
        dir,
    };
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/invoice-v1.json");
    cli.ok(&["entity", "create", "Invoice"], None);
    cli.ok(
        &[
            "version",
            "create",
            "Invoice",
            "v1",
            examples.to_str().unwrap(),
        ],
        None,
    );
    cli.ok(&["version", "activate", "Invoice", "v1"], None);
    let entity = cli.json(&["entity", "show", "Invoice", "--json"]);
    assert_eq!(entity["entity"]["activeVersion"], "v1", "{entity}");
    let token = cli.ok(&["token", "--user", "dev", "--roles", "admin"], None);
    let token = token.trim();
    let log = cli.dir.path().join("server.log");
    let (mut server, port) = serve(&cli, &log);

    let (status, module) = call(port, "GET", "/api/meta/codegen/typescript", token, None);
    assert_eq!(status, 200, "{module}");
    // The command line writes the same module.
    let out = cli.dir.path().join("client.ts");
    cli.ok(
        &["codegen", "typescript", "--out", out.to_str().unwrap()],
        None,
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), module);

    let run = tools
        .join("run")
        .join(format!("codegen-{}", std::process::id()));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("client.ts"), &module).unwrap();
    let tsc = Command::new(tools.join("node_modules/.bin/tsc"))
        .args([
            "--strict",
            "--target",
            "es2022",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "--lib",
            "es2022,dom",
            "--skipLibCheck",
            "--outDir",
        ])
        .arg(&run)
        .arg(run.join("client.ts"))
        .output()
        .unwrap();
    assert!(
        tsc.status.success(),
        "tsc: {}{}",
        String::from_utf8_lossy(&tsc.stdout),
        String::from_utf8_lossy(&tsc.stderr)
    );
    let node = Command::new("node")
        .arg(tools.join("scenario.mjs"))
        .env("MODULE", run.join("client.js"))
        .env("BASE", format!("http://127.0.0.1:{port}"))
        .env("TOKEN", token)
        .output()
        .unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&run);
    let stdout = String::from_utf8_lossy(&node.stdout);
    assert!(
        node.status.success() && stdout.contains("ok"),
        "the scenario failed: {stdout}{}",
        String::from_utf8_lossy(&node.stderr)
    );
}
