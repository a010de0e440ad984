//! The `metaengine` binary as a user runs it, against SQLite and PostgreSQL: exit codes, messages
//! on stderr, nothing changed on refusal, and the failure rows the audit trail keeps.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod support;

use std::process::Command;

use metaengine_store_postgres::testing::TestDatabase;
use serde_json::Value;
use support::Cli;

const INVOICE: &str = r#"{ "fields": [
  { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
  { "name": "customerId", "type": "string", "required": true },
  { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 },
  { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"], "default": "draft" },
  { "name": "dueDate", "type": "date" }
]}"#;

/// What only this file asks of the binary.
trait CliExt {
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String;
    fn failures(&self, event: &str) -> Vec<Value>;
}

impl CliExt for Cli {
    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn failures(&self, event: &str) -> Vec<Value> {
        let page = self.json(&[
            "audit",
            "--json",
            "--result",
            "failure",
            "--event-type",
            event,
        ]);
        page["data"].as_array().unwrap().clone()
    }
}

fn story(cli: &Cli) {
    assert!(cli.ok(&["migrate"], None).contains("6 migrations applied"));
    assert!(cli.ok(&["migrate"], None).contains("0 migrations applied"));

    // Invalid name: the rule is named, nothing is created, a failure row is kept.
    let err = cli.fails(&["entity", "create", "invoice"], None);
    assert!(
        err.contains("`invoice`") && err.contains("PascalCase"),
        "{err}"
    );
    assert_eq!(cli.json(&["entity", "list", "--json"])["meta"]["total"], 0);
    assert_eq!(cli.failures("meta.entity.create").len(), 1);

    cli.ok(
        &["entity", "create", "Invoice", "-d", "Customer invoices"],
        None,
    );
    let err = cli.fails(&["entity", "create", "Invoice"], None);
    assert!(err.contains("already exists"), "{err}");

    // Unknown entity, malformed JSON, invalid schema: refused and audited.
    let err = cli.fails(&["version", "create", "Ghost", "v1"], Some(INVOICE));
    assert!(err.contains("`Ghost`"), "{err}");
    let err = cli.fails(
        &["version", "create", "Invoice", "v1"],
        Some("{ \"fields\": ["),
    );
    assert!(err.contains("not valid JSON"), "{err}");
    let err = cli.fails(
        &["version", "create", "Invoice", "v1"],
        Some(r#"{"fields":[{"name":"Total","type":"money"}]}"#),
    );
    assert!(
        err.contains("/fields/0/name") && err.contains("/fields/0/type"),
        "{err}"
    );
    assert_eq!(cli.failures("meta.version.create").len(), 3);
    assert_eq!(
        cli.json(&["version", "list", "Invoice", "--json"]),
        Value::Array(vec![])
    );

    // The walkthrough: create, activate, then the version is immutable.
    cli.ok(&["version", "create", "Invoice", "v1"], Some(INVOICE));
    let err = cli.fails(&["version", "create", "Invoice", "v1"], Some(INVOICE));
    assert!(
        err.contains("`v1`") && err.contains("already exists"),
        "{err}"
    );
    assert!(
        cli.ok(&["version", "activate", "Invoice", "v1"], None)
            .contains("activated")
    );
    let err = cli.fails(
        &["field", "add", "Invoice", "v1"],
        Some(r#"{"name":"notes","type":"text"}"#),
    );
    assert!(err.contains("immutable"), "{err}");
    let err = cli.fails(&["version", "delete", "Invoice", "v1"], None);
    assert!(err.contains("is active"), "{err}");
    let shown = cli.json(&["version", "show", "Invoice"]);
    assert_eq!(shown["version"], "v1");
    assert_eq!(shown["isActive"], true);
    assert_eq!(shown["schema"]["fields"].as_array().unwrap().len(), 5);
    assert_eq!(cli.failures("meta.field.add").len(), 1);
    assert_eq!(cli.failures("meta.version.delete").len(), 1);

    // A second version adds a field: the dry run shows the migration and changes nothing.
    let v2 = INVOICE.replace(
        r#"{ "name": "dueDate", "type": "date" }"#,
        r#"{ "name": "dueDate", "type": "date" }, { "name": "notes", "type": "text" }"#,
    );
    cli.ok(&["version", "create", "Invoice", "v2"], Some(&v2));
    let dry = cli.ok(&["version", "activate", "Invoice", "v2", "--dry-run"], None);
    assert!(
        dry.contains("ADD COLUMN \"notes\"") && dry.contains("nothing changed"),
        "{dry}"
    );
    assert_eq!(cli.json(&["version", "show", "Invoice"])["version"], "v1");
    let applied = cli.ok(&["version", "activate", "Invoice", "v2"], None);
    assert!(
        applied.contains("was v1") && applied.contains("ADD COLUMN"),
        "{applied}"
    );
    let model = cli.json(&["compile", "Invoice"]);
    assert_eq!(model["version"], "v2");
    assert_eq!(model["tableName"], "ent_invoice");
    assert_eq!(model["fields"].as_array().unwrap().len(), 6);

    // Rolling back hides `notes`; pruning drops it once confirmed.
    assert!(
        cli.ok(&["version", "activate", "Invoice", "v1"], None)
            .contains("was v2")
    );
    let err = cli.fails(&["entity", "prune", "Invoice"], None);
    assert!(err.contains("not confirmed"), "{err}");
    let pruned = cli.ok(&["entity", "prune", "Invoice", "--yes"], None);
    assert!(pruned.contains("notes"), "{pruned}");
    assert!(
        cli.ok(&["entity", "prune", "Invoice"], None)
            .contains("no hidden columns")
    );

    // A type change is refused with the breaking change named.
    let v3 = INVOICE.replace(
        r#""name": "totalAmount", "type": "decimal""#,
        r#""name": "totalAmount", "type": "integer""#,
    );
    cli.ok(&["version", "create", "Invoice", "v3"], Some(&v3));
    let err = cli.fails(&["version", "activate", "Invoice", "v3"], None);
    assert!(err.contains("/fields/2/type"), "{err}");
    cli.fails(&["version", "activate", "Invoice", "v3", "--dry-run"], None);

    cli.ok(&["version", "activate", "Invoice", "v2"], None);
    cli.ok(&["version", "delete", "Invoice", "v1"], None);
    cli.ok(&["version", "delete", "Invoice", "v3"], None);
    let entity = cli.json(&["entity", "show", "Invoice", "--json"]);
    assert_eq!(entity["entity"]["activeVersion"], "v2");
    assert_eq!(entity["versions"], serde_json::json!(["v2"]));

    // The audit trail, filtered by resource, shows every step by the CLI user.
    let trail = cli.json(&[
        "audit",
        "--json",
        "--resource",
        "Invoice",
        "--page-size",
        "100",
    ]);
    let rows = trail["data"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["userId"] == "tester"));
    let successes: Vec<_> = rows
        .iter()
        .filter(|r| r["result"] == "success")
        .map(|r| r["eventType"].as_str().unwrap())
        .collect();
    let activations = successes
        .iter()
        .filter(|t| **t == "meta.version.activate")
        .count();
    assert_eq!(activations, 4, "{successes:?}");
    assert_eq!(
        successes.iter().filter(|t| **t == "meta.migrate").count(),
        5,
        "4 + prune"
    );
    assert_eq!(successes.last(), Some(&"meta.entity.create"));
    assert_eq!(successes.first(), Some(&"meta.version.delete"));
    let err = cli.fails(&["audit", "--from", "yesterday"], None);
    assert!(err.contains("RFC 3339"), "{err}");
    assert!(cli.ok(&["audit"], None).contains("meta.version.delete"));

    let deleted = cli.ok(&["entity", "delete", "Invoice"], None);
    assert!(
        deleted.contains("dropped its table ent_invoice"),
        "{deleted}"
    );
}

#[test]
fn cli_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/cli.db", dir.path().display());
    story(&Cli { url, dir });
}

#[tokio::test]
async fn cli_story_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    tokio::task::spawn_blocking(move || story(&cli))
        .await
        .unwrap();
}

#[test]
fn the_default_database_is_a_sqlite_file_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_metaengine"))
        .arg("migrate")
        .env_remove("METAENGINE_DATABASE_URL")
        .env("METAENGINE_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/metaengine.db").exists());
}

#[test]
fn policy_check_explains_the_seed_policies() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let cli = Cli { url, dir };
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/invoice-v1.json"
    );
    cli.ok(&["entity", "create", "Invoice"], None);
    cli.ok(&["version", "create", "Invoice", "v1", example], None);
    cli.ok(&["version", "activate", "Invoice", "v1"], None);
    let check = |args: &[&str]| {
        let mut all = vec!["policy", "check", "--entity", "Invoice"];
        all.extend_from_slice(args);
        cli.run(&all, None)
    };
    let out = check(&["--action", "read", "--user", "g1", "--roles", "guest"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("decision: allow") && text.contains("everyone-reads"),
        "{text}"
    );

    let out = check(&["--action", "delete", "--user", "g1", "--roles", "guest"]);
    assert!(!out.status.success(), "a guest may not delete");
    assert!(String::from_utf8_lossy(&out.stdout).contains("decision: deny"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no policy allows `delete` on `Invoice`")
    );

    let record = cli.dir.path().join("record.json");
    std::fs::write(
        &record,
        r#"{ "createdBy": "u1", "invoiceNumber": "INV-1" }"#,
    )
    .unwrap();
    let record = record.to_str().unwrap();
    let own = check(&[
        "--action", "update", "--user", "u1", "--roles", "user", "--record", record,
    ]);
    assert!(String::from_utf8_lossy(&own.stdout).contains("owners-update"));
    let other = check(&[
        "--action", "update", "--user", "u2", "--roles", "user", "--record", record,
    ]);
    assert!(!other.status.success());
    let bad = check(&["--action", "fly", "--user", "u1"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`fly`"));
}

fn data_story(cli: &Cli) {
    let schema = INVOICE.replace(
        "\n]}",
        r#"],
  "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }"#,
    );
    cli.ok(&["entity", "create", "Invoice"], None);
    cli.ok(&["version", "create", "Invoice", "v1"], Some(&schema));
    cli.ok(&["version", "activate", "Invoice", "v1"], None);

    let created = cli.ok(
        &["data", "create", "Invoice"],
        Some(r#"{ "invoiceNumber": "INV-1", "customerId": "c1", "totalAmount": "10.50" }"#),
    );
    assert!(created.starts_with("created "), "{created}");
    let id = created
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("created ")
        .to_owned();
    cli.ok(
        &["data", "create", "Invoice", "-"],
        Some(r#"{ "invoiceNumber": "INV-2", "customerId": "c2", "totalAmount": "20" }"#),
    );

    let list = cli.json(&["data", "list", "Invoice", "--json"]);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["meta"]["total"], 2);
    let other = cli.json(&["data", "list", "Invoice", "--tenant", "other", "--json"]);
    assert_eq!(other["meta"]["total"], 0);
    assert_eq!(other["data"].as_array().unwrap().len(), 0);
    let table = cli.ok(&["data", "list", "Invoice", "--page-size", "1"], None);
    assert!(
        table.contains("INV-1") && table.contains("page 1 of 2 (2 records); next: --after "),
        "{table}"
    );
    let one = cli.json(&[
        "data",
        "list",
        "Invoice",
        "--filter",
        "invoiceNumber:eq:INV-1",
        "--json",
    ]);
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["id"], id.as_str());

    let record = cli.json(&["data", "get", "Invoice", &id]);
    assert_eq!(record["invoiceNumber"], "INV-1");
    assert_eq!(record["rowVersion"], 1);

    let updated = cli.ok(
        &["data", "update", "Invoice", &id, "--if-match", "1"],
        Some(r#"{ "status": "sent" }"#),
    );
    assert!(updated.contains("\"sent\""), "{updated}");
    let err = cli.fails(
        &["data", "update", "Invoice", &id, "--if-match", "1"],
        Some(r#"{ "status": "paid" }"#),
    );
    assert!(err.contains("row version"), "{err}");

    let err = cli.fails(
        &["data", "create", "Invoice"],
        Some(r#"{ "invoiceNumber": "INV-3", "customerId": "c3", "totalAmount": "-1" }"#),
    );
    assert!(err.contains("/totalAmount"), "{err}");
    let err = cli.fails(&["data", "list", "Invoice", "--filter", "nope:eq:1"], None);
    assert!(err.contains("nope"), "{err}");

    let export = cli.ok(&["data", "export", "Invoice"], None);
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|r| r["invoiceNumber"].is_string()));

    assert!(
        cli.ok(&["data", "delete", "Invoice", &id], None)
            .contains("deleted")
    );
    let err = cli.fails(&["data", "get", "Invoice", &id], None);
    assert!(err.contains(&id), "{err}");
    let second = lines
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .find(|other| *other != id)
        .unwrap();
    cli.ok(&["data", "delete", "Invoice", second], None);
    assert_eq!(cli.ok(&["data", "count", "Invoice"], None).trim(), "0");

    cli.ok(
        &["data", "--tenant", "other", "create", "Invoice"],
        Some(r#"{ "invoiceNumber": "INV-9", "customerId": "c9", "totalAmount": "1" }"#),
    );
    assert_eq!(cli.ok(&["data", "count", "Invoice"], None).trim(), "0");
    assert_eq!(
        cli.ok(&["data", "count", "Invoice", "--tenant", "other"], None)
            .trim(),
        "1"
    );
    let reads = cli.json(&["audit", "--json", "--event-type", "data.read"]);
    assert!(reads["meta"]["total"].as_u64().unwrap() > 0, "{reads}");

    // Relations: a Note refers to an Invoice; `--expand` both ways.
    cli.ok(&["entity", "create", "Note"], None);
    cli.ok(
        &["version", "create", "Note", "v1"],
        Some(
            r#"{ "fields": [{ "name": "invoiceId", "type": "reference", "referenceTo": "Invoice" }],
                 "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }"#,
        ),
    );
    cli.ok(&["version", "activate", "Note", "v1"], None);
    let created = cli.ok(
        &["data", "create", "Invoice"],
        Some(r#"{ "invoiceNumber": "INV-9", "customerId": "c9", "totalAmount": "9" }"#),
    );
    let id = created
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("created ")
        .to_owned();
    let note = cli.ok(
        &["data", "create", "Note"],
        Some(&format!(r#"{{ "invoiceId": "{id}" }}"#)),
    );
    let note_id = note
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("created ")
        .to_owned();
    let notes = cli.json(&["data", "list", "Note", "--expand", "invoiceId", "--json"]);
    assert_eq!(
        notes["data"][0]["expand"]["invoiceId"]["invoiceNumber"],
        "INV-9"
    );
    let invoice = cli.json(&[
        "data",
        "get",
        "Invoice",
        &id,
        "--expand",
        "Note_via_invoiceId",
    ]);
    assert_eq!(
        invoice["expand"]["Note_via_invoiceId"][0]["id"],
        note_id.as_str()
    );
}

#[test]
fn data_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data.db", dir.path().display());
    data_story(&Cli { url, dir });
}

#[tokio::test]
async fn data_story_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    tokio::task::spawn_blocking(move || data_story(&cli))
        .await
        .unwrap();
}

/// `metaengine snapshot` as CI runs it: export on SQLite, `diff` against an empty PostgreSQL
/// database exits 2 and prints the plan, `apply` does it, `diff` then exits 0, an export there
/// writes the same files; a snapshot that cannot apply exits 1 with nothing of it changed.
#[tokio::test]
async fn snapshot_moves_metadata_from_sqlite_to_postgres() {
    let db = TestDatabase::create().await;
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Cli {
            url: format!("sqlite://{}/a.db", dir.path().display()),
            dir: tempfile::tempdir().unwrap(),
        };
        let postgres = Cli {
            url: db.url().to_owned(),
            dir: tempfile::tempdir().unwrap(),
        };
        sqlite.ok(&["entity", "create", "Invoice"], None);
        sqlite.ok(&["version", "create", "Invoice", "v1", "-"], Some(INVOICE));
        sqlite.ok(&["version", "activate", "Invoice", "v1"], None);
        let files = dir.path().join("meta");
        let files = files.to_str().unwrap();
        let out = sqlite.ok(&["snapshot", "export", files], None);
        assert!(out.contains("wrote 1 entities (1 versions)"), "{out}");

        let diff = postgres.run(&["snapshot", "diff", files], None);
        assert_eq!(diff.status.code(), Some(2));
        let text = String::from_utf8(diff.stdout).unwrap();
        assert!(text.contains("create entity Invoice"), "{text}");
        assert!(text.contains("activate Invoice v1"), "{text}");
        assert!(
            text.contains("CREATE TABLE \"core\".\"ent_invoice\""),
            "{text}"
        );
        assert!(
            postgres
                .fails(&["entity", "show", "Invoice"], None)
                .contains("does not exist")
        );

        let applied = postgres.ok(&["snapshot", "apply", files], None);
        assert!(applied.contains("applied 3 step(s)"), "{applied}");
        let diff = postgres.run(&["snapshot", "diff", files], None);
        assert_eq!(diff.status.code(), Some(0), "{diff:?}");
        assert!(
            postgres
                .ok(&["snapshot", "apply", files], None)
                .contains("nothing to change")
        );
        let again = dir.path().join("again");
        postgres.ok(&["snapshot", "export", again.to_str().unwrap()], None);
        for file in [
            "tenants.json",
            "entities/Invoice/entity.json",
            "entities/Invoice/versions/v1.json",
        ] {
            assert_eq!(
                std::fs::read_to_string(dir.path().join("meta").join(file)).unwrap(),
                std::fs::read_to_string(again.join(file)).unwrap(),
                "{file}"
            );
        }

        // An activated version rewritten in the files: exit 1, nothing changed.
        let v1 = dir.path().join("meta/entities/Invoice/versions/v1.json");
        let changed = std::fs::read_to_string(&v1)
            .unwrap()
            .replace("\"min\": 0", "\"min\": 1");
        std::fs::write(&v1, changed).unwrap();
        let out = postgres.run(&["snapshot", "diff", files], None);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("has been active with another schema"), "{err}");
        let err = postgres.fails(&["snapshot", "apply", files], None);
        assert!(err.contains("has been active with another schema"), "{err}");
        // Not a snapshot at all.
        let err = postgres.fails(
            &[
                "snapshot",
                "apply",
                dir.path().join("none").to_str().unwrap(),
            ],
            None,
        );
        assert!(err.contains("cannot read the snapshot"), "{err}");
    })
    .await
    .unwrap();
}
