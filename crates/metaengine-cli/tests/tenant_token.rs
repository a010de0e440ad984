//! `metaengine token` and `metaengine tenant` as a user runs them: the token alone on stdout and
//! accepted by the server's verifier with the data directory's secret (created once, then
//! reused, no database needed), and tenants managed on SQLite and PostgreSQL.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};

use metaengine_server::auth::{Claims, KeySource, SECRET_FILE, Verifier};
use metaengine_store_postgres::testing::TestDatabase;
use serde_json::Value;

/// Runs the binary with a clean environment of metaengine variables plus `env`.
fn metaengine(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metaengine"));
    cmd.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("METAENGINE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("METAENGINE_USER", "tester");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

fn ok(out: Output, what: &str) -> (String, String) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn verify_with(secret: &str, token: &str) -> Claims {
    Verifier::new(&KeySource::Hs256Secret(secret.to_owned()))
        .unwrap()
        .verify(token)
        .unwrap()
}

fn secret_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(SECRET_FILE))
        .unwrap()
        .trim()
        .to_owned()
}

/// The token is the only thing on stdout, one line, with nothing around it.
fn the_token(stdout: &str) -> &str {
    assert!(stdout.ends_with('\n'), "{stdout:?}");
    let token = stdout.trim_end_matches('\n');
    assert!(!token.contains(char::is_whitespace), "{stdout:?}");
    assert_eq!(token.split('.').count(), 3, "{stdout:?}");
    token
}

#[test]
fn a_token_is_printed_alone_and_verifies_with_the_data_dirs_secret() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let data_dir = data.to_str().unwrap();
    let args = [
        "token",
        "--user",
        "alice",
        "--tenant",
        "acme",
        "--realm",
        "eu",
        "--roles",
        "admin,user",
        "--ttl",
        "600",
    ];
    // No database is needed: neither the default SQLite file nor an unreachable server is opened.
    let (stdout, stderr) = ok(
        metaengine(&args, &[("METAENGINE_DATA_DIR", data_dir)]),
        "token",
    );
    assert!(stderr.contains("created a new JWT secret"), "{stderr}");
    assert!(!data.join("metaengine.db").exists());
    let secret = secret_in(&data);
    assert!(secret.len() >= 32, "{secret}");
    let claims = verify_with(&secret, the_token(&stdout));
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.tenant_id.as_str(),
            claims.realm_id.as_str()
        ),
        ("alice", "acme", "eu")
    );
    assert_eq!(claims.roles, ["admin", "user"]);
    assert_eq!(claims.exp - claims.iat.unwrap(), 600);

    // Second run, with an unreachable database configured: the same secret, reused quietly.
    let (stdout, stderr) = ok(
        metaengine(
            &["token", "--user", "bob"],
            &[
                ("METAENGINE_DATA_DIR", data_dir),
                (
                    "METAENGINE_DATABASE_URL",
                    "postgres://nobody@127.0.0.1:1/none",
                ),
            ],
        ),
        "token again",
    );
    assert!(!stderr.contains("created"), "{stderr}");
    assert_eq!(secret_in(&data), secret);
    let claims = verify_with(&secret, the_token(&stdout));
    // The defaults: tenant and realm `default`, no roles, one hour.
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.tenant_id.as_str(),
            claims.realm_id.as_str()
        ),
        ("bob", "default", "default")
    );
    assert!(claims.roles.is_empty());
    assert_eq!(claims.exp - claims.iat.unwrap(), 3600);

    // `--data-dir` names the same directory as the variable.
    let (stdout, _) = ok(
        metaengine(&["token", "--user", "carol", "--data-dir", data_dir], &[]),
        "token --data-dir",
    );
    assert_eq!(verify_with(&secret, the_token(&stdout)).sub, "carol");
}

#[test]
fn the_configured_secret_wins_over_the_data_dir() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().to_str().unwrap();
    let secret = "a-configured-secret-of-thirty-two-bytes+";
    let (stdout, _) = ok(
        metaengine(
            &["token", "--user", "alice", "--roles", "admin"],
            &[
                ("METAENGINE_DATA_DIR", data_dir),
                ("METAENGINE_JWT_SECRET", secret),
            ],
        ),
        "token",
    );
    let token = the_token(&stdout);
    assert_eq!(verify_with(secret, token).roles, ["admin"]);
    assert!(!root.path().join(SECRET_FILE).exists());
    // A verifier with any other secret refuses it.
    let other = Verifier::new(&KeySource::Hs256Secret("x".repeat(40))).unwrap();
    assert!(other.verify(token).is_err());
}

#[test]
fn token_needs_a_user() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().to_str().unwrap();
    let out = metaengine(&["token"], &[("METAENGINE_DATA_DIR", data_dir)]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user"));
    let out = metaengine(
        &["token", "--user", "alice", "--tenant", ""],
        &[("METAENGINE_DATA_DIR", data_dir)],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant"));
}

struct Cli {
    url: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        metaengine(
            args,
            &[
                ("METAENGINE_DATABASE_URL", &self.url),
                ("METAENGINE_DATA_DIR", self.dir.path().to_str().unwrap()),
            ],
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.run(args), &format!("{args:?}")).0
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn tenants(&self) -> Vec<(String, String, String)> {
        let list: Value = serde_json::from_str(&self.ok(&["tenant", "list", "--json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap().to_owned();
                (s("id"), s("name"), s("status"))
            })
            .collect()
    }

    fn audit(&self, event: &str, result: &str) -> Vec<Value> {
        let page: Value = serde_json::from_str(&self.ok(&[
            "audit",
            "--json",
            "--event-type",
            event,
            "--result",
            result,
        ]))
        .unwrap();
        page["data"].as_array().unwrap().clone()
    }
}

fn t(id: &str, name: &str, status: &str) -> (String, String, String) {
    (id.to_owned(), name.to_owned(), status.to_owned())
}

fn tenant_story(cli: &Cli) {
    assert_eq!(cli.tenants(), [t("default", "Default tenant", "active")]);

    let out = cli.ok(&["tenant", "create", "acme", "--name", "Acme Corp"]);
    assert!(out.contains("created tenant acme"), "{out}");
    cli.ok(&["tenant", "create", "globex"]);
    assert_eq!(
        cli.tenants(),
        [
            t("acme", "Acme Corp", "active"),
            t("default", "Default tenant", "active"),
            t("globex", "globex", "active"),
        ]
    );
    let table = cli.ok(&["tenant", "list"]);
    assert!(
        table.contains("Acme Corp") && table.contains("3 tenants"),
        "{table}"
    );

    // Refusals: a bad id, a duplicate, an unknown tenant; nothing changes.
    let err = cli.fails(&["tenant", "create", "Acme Corp"]);
    assert!(err.contains("`Acme Corp`") && err.contains("/id"), "{err}");
    let err = cli.fails(&["tenant", "create", "acme", "--name", "Again"]);
    assert!(err.contains("already exists"), "{err}");
    let err = cli.fails(&["tenant", "suspend", "ghost"]);
    assert!(err.contains("tenant `ghost` does not exist"), "{err}");
    let err = cli.fails(&["tenant", "suspend", "default"]);
    assert!(err.contains("cannot be suspended"), "{err}");

    let out = cli.ok(&["tenant", "suspend", "acme"]);
    assert!(out.contains("suspended tenant acme"), "{out}");
    assert_eq!(cli.tenants()[0], t("acme", "Acme Corp", "suspended"));
    cli.ok(&["tenant", "activate", "acme"]);
    assert_eq!(cli.tenants()[0], t("acme", "Acme Corp", "active"));

    // The audit trail: who did what to which tenant, refusals included.
    let created = cli.audit("tenant.create", "success");
    let resources: Vec<_> = created.iter().map(|r| r["resource"].clone()).collect();
    assert_eq!(resources, ["globex", "acme"]);
    assert!(
        created.iter().all(|r| r["userId"] == "tester"),
        "{created:?}"
    );
    assert_eq!(cli.audit("tenant.create", "failure").len(), 2);
    let updated = cli.audit("tenant.update", "success");
    assert_eq!(updated.len(), 2);
    assert_eq!(updated[0]["details"]["status"], "active");
    assert_eq!(updated[1]["details"]["status"], "suspended");
    assert_eq!(cli.audit("tenant.update", "failure").len(), 2);
}

#[test]
fn tenants_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/metaengine.db", dir.path().display());
    tenant_story(&Cli { url, dir });
}

#[tokio::test]
async fn tenants_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    tokio::task::spawn_blocking(move || tenant_story(&cli))
        .await
        .unwrap();
}
