//! `/openapi.json` is a valid OpenAPI 3.1 document (checked against the official schema) that
//! describes each active entity's data routes with a record schema real records satisfy.

use metaengine_store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::support::{admin, invoice_v1, start};

fn openapi_validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/openapi-3.1.schema.json")).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

async fn the_document_is_valid_and_describes_entities(store: Arc<dyn Store>) {
    let server = start(store).await;
    let validator = openapi_validator();
    // No token needed; valid with no entity.
    let empty = server
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body["openapi"], "3.1.0");
    assert_valid(&validator, &empty.body);
    // The validator does reject a broken document.
    let mut broken = empty.body.clone();
    broken["paths"]["/health"]["get"]["responses"] = json!("nope");
    assert!(validator.iter_errors(&broken).next().is_some());

    invoice_v1(&server).await;
    let doc = server.get("/openapi.json", &admin()).await.body;
    assert_valid(&validator, &doc);
    for path in [
        "/api/data/Invoice",
        "/api/data/Invoice/{id}",
        "/api/data/Invoice/count",
        "/api/meta/entities",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let record_schema = &doc["components"]["schemas"]["Invoice"];
    let input_schema = &doc["components"]["schemas"]["InvoiceInput"];
    assert_eq!(
        input_schema["required"],
        json!(["invoiceNumber", "customerId", "totalAmount"])
    );
    // A real record satisfies the record schema; a wrong one does not.
    let input = json!({ "invoiceNumber": "INV-1", "customerId": "c", "totalAmount": "12.30", "dueDate": "2026-01-31" });
    assert!(jsonschema::is_valid(input_schema, &input));
    let record = server.post("/api/data/Invoice", &admin(), input).await.body;
    let record_validator = jsonschema::draft202012::new(record_schema).unwrap();
    assert!(record_validator.is_valid(&record), "{record:#}");
    let mut wrong = record.clone();
    wrong["totalAmount"] = json!(12.3);
    assert!(!record_validator.is_valid(&wrong));
    server.stop().await;
}

/// Where the checked-in document lives (the example Invoice active, default settings).
const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/openapi.snapshot.json"
);

/// The document is what was reviewed: a change to it shows up as a diff of the checked-in
/// snapshot (`UPDATE_SNAPSHOTS=1` rewrites it), and both backends give the same document.
async fn the_document_matches_its_snapshot(store: Arc<dyn Store>) {
    let server = start(store).await;
    invoice_v1(&server).await;
    let doc = server.get("/openapi.json", &admin()).await.body;
    server.stop().await;
    let text = format!("{}\n", serde_json::to_string_pretty(&doc).unwrap());
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &text).unwrap();
    }
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    if text != expected {
        let first = text
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| text.lines().count().min(expected.lines().count()));
        let at = |t: &str| t.lines().skip(first).take(3).collect::<Vec<_>>().join("\n");
        panic!(
            "the OpenAPI document differs from {SNAPSHOT} at line {}:\n--- now\n{}\n--- snapshot\n{}\n\
             Review the change, then run `UPDATE_SNAPSHOTS=1 cargo test -p metaengine-server \
             --test http snapshot` and commit the file.",
            first + 1,
            at(&text),
            at(&expected)
        );
    }
}

/// Every operation the document names is served by the router, and every other method on a
/// documented path is a 405: the document and the routes agree.
async fn the_document_and_the_router_agree(store: Arc<dyn Store>) {
    let server = start(store).await;
    invoice_v1(&server).await;
    let token = admin();
    let doc = server.get("/openapi.json", &token).await.body;
    let paths = doc["paths"].as_object().unwrap().clone();
    assert!(paths.len() > 20, "{}", paths.len());
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    for (path, item) in &paths {
        let concrete = path
            .replace("{entity}", "Invoice")
            .replace("{version}", "v1")
            .replace("{field}", "status")
            .replace("{id}", "00000000-0000-4000-8000-000000000000");
        for method in &methods {
            let documented = item.get(method.as_str().to_ascii_lowercase()).is_some();
            let body = (*method != Method::GET && *method != Method::DELETE).then(|| json!({}));
            let r = server
                .call(method.clone(), &concrete, Some(&token), body)
                .await;
            let unrouted = r.status == 404
                && r.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("no route"));
            if documented {
                assert!(
                    r.status != 405 && !unrouted,
                    "{method} {path} is documented but not routed: {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    r.status, 405,
                    "{method} {path} is routed but not documented: {}",
                    r.body
                );
            }
        }
    }
    server.stop().await;
}

crate::on_both_backends!(
    the_document_is_valid_and_describes_entities,
    the_document_matches_its_snapshot,
    the_document_and_the_router_agree
);
