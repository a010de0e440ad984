//! `metaengine data import` as a user runs it, on SQLite and PostgreSQL: NDJSON and CSV, rows
//! rejected with their line numbers while the good ones land, duplicates inside a batch, dry
//! runs that write nothing, one audit row per batch with every record's values, and
//! tenant/realm isolation of what was imported.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step is a failed test"
)]

mod support;

use metaengine_store_postgres::testing::TestDatabase;
use serde_json::Value;
use support::Cli;

/// What only this file asks of the binary.
trait ImportCli {
    fn rejects(&self, args: &[&str], stdin: Option<&str>) -> (String, String);
    fn file(&self, name: &str, text: &str) -> String;
    fn count(&self, tenant: &str, realm: &str) -> u64;
    fn records(&self, tenant: &str, realm: &str) -> Vec<Value>;
}

impl ImportCli for Cli {
    /// Runs an import that must exit with status 1; returns (stdout, stderr).
    fn rejects(&self, args: &[&str], stdin: Option<&str>) -> (String, String) {
        let out = self.run(args, stdin);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn count(&self, tenant: &str, realm: &str) -> u64 {
        self.ok(
            &[
                "data", "count", "Invoice", "--tenant", tenant, "--realm", realm,
            ],
            None,
        )
        .trim()
        .parse()
        .unwrap()
    }

    /// Records of a tenant and realm by invoice number.
    fn records(&self, tenant: &str, realm: &str) -> Vec<Value> {
        let page = self.json(&[
            "data",
            "list",
            "Invoice",
            "--tenant",
            tenant,
            "--realm",
            realm,
            "--order-by",
            "invoiceNumber",
            "--page-size",
            "100",
            "--json",
        ]);
        page["data"].as_array().unwrap().clone()
    }
}

const NDJSON: &str = r#"{"invoiceNumber": "N-1", "customerId": "c1", "totalAmount": "100.50", "dueDate": "2026-12-01"}

{"invoiceNumber": "N-3", "customerId": "c3", "totalAmount": -1}
{"invoiceNumber": "N-4", "customerId":
{"invoiceNumber": "N-5", "customerId": "c5", "totalAmount": 5, "status": "sent"}
{"invoiceNumber": "N-1", "customerId": "c6", "totalAmount": "6"}
{"invoiceNumber": "N-7", "customerId": "c7", "totalAmount": "7.25", "nope": 1}
{"invoiceNumber": "N-8", "customerId": "c8", "totalAmount": "8"}
"#;

const CSV: &str = "invoiceNumber,customerId,totalAmount,status,dueDate
C-1,c1,12.50,,
C-2,c2,20,paid,2026-12-31
C-3,c3,3,bogus,2026-02-30
\"C-4, with a comma\",c4,4,sent,
C-5,c5
";

fn setup(cli: &Cli) {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/invoice-v1.json"
    );
    cli.ok(&["entity", "create", "Invoice"], None);
    cli.ok(&["version", "create", "Invoice", "v1", example], None);
    cli.ok(&["version", "activate", "Invoice", "v1"], None);
}

fn import_story(cli: &Cli) {
    setup(cli);
    let ndjson = cli.file("invoices.ndjson", NDJSON);
    let a = ["--tenant", "acme", "--realm", "r1"];

    // NDJSON: the good rows land, every bad one is reported by line, exit status 1.
    let mut args = vec!["data", "import", "Invoice", ndjson.as_str()];
    args.extend(a);
    let (out, err) = cli.rejects(&args, None);
    assert!(out.contains("imported 3 rows (4 rejected) in "), "{out}");
    assert!(out.contains(" rows/s)"), "{out}");
    assert!(
        err.contains("line 3: /totalAmount: `totalAmount` must be at least 0"),
        "{err}"
    );
    assert!(err.contains("line 4: not valid JSON"), "{err}");
    assert!(
        err.contains("line 6: /invoiceNumber: a record of `Invoice` with the same value"),
        "the duplicate inside the batch is refused, not the first: {err}"
    );
    assert!(err.contains("line 7: /nope: unknown field `nope`"), "{err}");
    assert!(err.contains("4 rows were rejected"), "{err}");
    assert!(
        !err.contains("line 1:") && !err.contains("line 5:"),
        "{err}"
    );
    let records = cli.records("acme", "r1");
    let numbers: Vec<&str> = records
        .iter()
        .map(|r| r["invoiceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["N-1", "N-5", "N-8"]);
    assert_eq!(records[0]["customerId"], "c1", "the first N-1 won");
    assert_eq!(records[0]["totalAmount"], "100.50");
    assert_eq!(records[0]["status"], "draft", "the default applies");
    assert_eq!(records[0]["createdBy"], "tester");
    assert_eq!(records[1]["totalAmount"], "5.00");
    assert_eq!(records[1]["status"], "sent");
    let id = records[0]["id"].as_str().unwrap().to_owned();

    // Isolation: another tenant and another realm see nothing of it, and the unique values
    // are free for them.
    assert_eq!(cli.count("acme", "r1"), 3);
    assert_eq!(cli.count("globex", "r1"), 0);
    assert_eq!(cli.count("acme", "r2"), 0);
    let out = cli.run(
        &[
            "data", "get", "Invoice", &id, "--tenant", "globex", "--realm", "r1",
        ],
        None,
    );
    assert!(!out.status.success(), "another tenant cannot read it");
    for (tenant, realm) in [("globex", "r1"), ("acme", "r2")] {
        let (out, _) = cli.rejects(
            &[
                "data",
                "import",
                "Invoice",
                &ndjson,
                "--tenant",
                tenant,
                "--realm",
                realm,
                "--batch-size",
                "2",
            ],
            None,
        );
        assert!(out.contains("imported 3 rows (4 rejected)"), "{out}");
        assert_eq!(cli.count(tenant, realm), 3);
    }
    assert_eq!(cli.count("acme", "r1"), 3);
    let (out, err) = cli.rejects(&args, None);
    assert!(
        out.contains("imported 0 rows (7 rejected)"),
        "a second import of the same file collides with itself: {out} {err}"
    );

    // One audit row per written batch: its count, its ids and each record's values (SPEC §16).
    let audit = cli.json(&[
        "audit",
        "--json",
        "--event-type",
        "data.create",
        "--tenant",
        "acme",
        "--page-size",
        "100",
    ]);
    let rows = audit["data"].as_array().unwrap();
    let mut audited = Vec::new();
    let counted: u64 = rows
        .iter()
        .filter(|r| r["tenantId"] == "acme" && r["realmId"] == "r1")
        .map(|r| {
            assert_eq!(r["details"]["import"], true, "{r}");
            assert!(r["details"]["firstId"].is_string(), "{r}");
            audited.extend(r["details"]["records"].as_array().unwrap().iter().cloned());
            r["details"]["count"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(counted, 3);
    // Each imported record once, with the values its line gave (the default `status` is not
    // in the line, so not in its values).
    let mut ids: Vec<String> = audited.iter().map(|r| r["id"].to_string()).collect();
    ids.sort();
    let mut stored: Vec<String> = records.iter().map(|r| r["id"].to_string()).collect();
    stored.sort();
    assert_eq!(ids, stored);
    let first = audited
        .iter()
        .find(|r| r["id"] == records[0]["id"])
        .unwrap();
    assert_eq!(
        first["new"],
        serde_json::json!({ "invoiceNumber": "N-1", "customerId": "c1",
                            "totalAmount": "100.50", "dueDate": "2026-12-01" })
    );

    // CSV (by extension): cells typed by the model, empty cells absent, quoted commas kept.
    let csv = cli.file("invoices.csv", CSV);
    let (out, err) = cli.rejects(
        &[
            "data", "import", "Invoice", &csv, "--tenant", "acme", "--realm", "csv",
        ],
        None,
    );
    assert!(out.contains("imported 3 rows (2 rejected)"), "{out}");
    assert!(err.contains("line 4: /status:"), "{err}");
    assert!(
        err.contains("line 4: /dueDate:"),
        "every problem of a row: {err}"
    );
    assert!(err.contains("line 6: the row has 2 cells"), "{err}");
    let records = cli.records("acme", "csv");
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["invoiceNumber"], "C-1");
    assert_eq!(records[0]["totalAmount"], "12.50");
    assert_eq!(records[0]["status"], "draft");
    assert_eq!(records[0]["dueDate"], Value::Null);
    assert_eq!(records[1]["dueDate"], "2026-12-31");
    assert_eq!(records[2]["invoiceNumber"], "C-4, with a comma");

    // CSV from stdin needs --format; a header that does not fit refuses everything.
    let good_csv = "invoiceNumber,totalAmount,customerId\nS-1,1,c\nS-2,2,c\n";
    let out = cli.ok(
        &[
            "data", "import", "Invoice", "-", "--format", "csv", "--realm", "stdin",
        ],
        Some(good_csv),
    );
    assert!(out.contains("imported 2 rows (0 rejected)"), "{out}");
    assert_eq!(cli.count("default", "stdin"), 2);
    let out = cli.run(
        &["data", "import", "Invoice", "-", "--format", "csv"],
        Some("invoiceNumber,total,createdBy\nX,1,u\n"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("`total` is not a field") && err.contains("`createdBy` is a system field"),
        "{err}"
    );
    assert_eq!(cli.count("default", "default"), 0);

    // A dry run checks every row and writes nothing.
    let out = cli.run(
        &[
            "data",
            "import",
            "Invoice",
            &ndjson,
            "--dry-run",
            "--tenant",
            "dry",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dry run: would import 4 rows (3 rejected)"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3: /totalAmount"));
    assert_eq!(cli.count("dry", "default"), 0);

    // Policies apply: a plain user may not create (the seed lets admins do anything).
    let (out, err) = cli.rejects(
        &[
            "data", "import", "Invoice", &ndjson, "--tenant", "pol", "--user", "u1", "--roles",
            "user",
        ],
        None,
    );
    assert!(out.contains("imported 0 rows (7 rejected)"), "{out}");
    assert!(
        err.contains("line 1: denied: no policy allows `create` on `Invoice`"),
        "{err}"
    );
    assert_eq!(cli.count("pol", "default"), 0);

    // Unknown entity: refused before reading anything.
    let out = cli.run(&["data", "import", "Ghost", &ndjson], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`Ghost`"));
}

#[test]
fn import_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/import.db", dir.path().display());
    import_story(&Cli { url, dir });
}

#[tokio::test]
async fn import_on_postgres() {
    let db = TestDatabase::create().await;
    let cli = Cli {
        url: db.url().to_owned(),
        dir: tempfile::tempdir().unwrap(),
    };
    tokio::task::spawn_blocking(move || import_story(&cli))
        .await
        .unwrap();
}
