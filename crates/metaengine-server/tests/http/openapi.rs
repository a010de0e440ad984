//! `/openapi.json` is a valid OpenAPI 3.1 document (checked against the official schema) that
//! describes each active entity's data routes with a record schema real records satisfy.

use metaengine_store::Store;
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

crate::on_both_backends!(the_document_is_valid_and_describes_entities);
