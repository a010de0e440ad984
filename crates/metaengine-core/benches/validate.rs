//! Benchmark of [`RecordValidator`]: a create of a 20-field record (every common type, with the
//! rules a real schema has: lengths, a pattern, bounds, enums, precision), valid, so every rule
//! runs and every value is converted; and the same record with three broken values, which collects
//! every problem with its pointer.

#![expect(
    missing_docs,
    clippy::unreachable,
    clippy::indexing_slicing,
    reason = "a benchmark: a broken fixture stops it"
)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use metaengine_core::record::RecordValidator;
use metaengine_core::{EntitySchema, compile};
use serde_json::{Value, json};

fn schema() -> EntitySchema {
    let doc = json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "maxLength": 32, "pattern": "^INV-[0-9]+$" },
        { "name": "customerId", "type": "string", "required": true, "minLength": 3, "maxLength": 64 },
        { "name": "customerName", "type": "string", "maxLength": 200 },
        { "name": "email", "type": "string", "maxLength": 254, "pattern": "^[^@\\s]+@[^@\\s]+$" },
        { "name": "notes", "type": "text", "maxLength": 10000 },
        { "name": "totalAmount", "type": "decimal", "precision": 12, "scale": 2, "required": true, "min": 0 },
        { "name": "taxAmount", "type": "decimal", "precision": 12, "scale": 2, "min": 0 },
        { "name": "discount", "type": "number", "min": 0, "max": 100 },
        { "name": "quantity", "type": "integer", "min": 1, "max": 100000 },
        { "name": "lineCount", "type": "integer", "min": 0 },
        { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid", "void"], "default": "draft" },
        { "name": "currency", "type": "enum", "enumValues": ["EUR", "USD", "GBP", "CHF", "JPY"] },
        { "name": "paid", "type": "boolean" },
        { "name": "archived", "type": "boolean", "default": false },
        { "name": "issueDate", "type": "date", "required": true },
        { "name": "dueDate", "type": "date" },
        { "name": "sentAt", "type": "datetime" },
        { "name": "paidAt", "type": "datetime" },
        { "name": "reference", "type": "string", "maxLength": 64 },
        { "name": "metadata", "type": "json" }
    ]});
    match serde_json::from_value(doc) {
        Ok(schema) => schema,
        Err(e) => unreachable!("bench schema: {e}"),
    }
}

fn valid_record() -> Value {
    json!({
        "invoiceNumber": "INV-000042",
        "customerId": "CUST-01234",
        "customerName": "Acme Corporation",
        "email": "billing@acme.example",
        "notes": "Payment by bank transfer within 30 days of the issue date.",
        "totalAmount": "12345.67",
        "taxAmount": "2469.13",
        "discount": 5.5,
        "quantity": 12,
        "lineCount": 3,
        "status": "sent",
        "currency": "EUR",
        "paid": false,
        "archived": false,
        "issueDate": "2026-11-01",
        "dueDate": "2026-12-01",
        "sentAt": "2026-11-01T09:30:00.000Z",
        "paidAt": null,
        "reference": "PO-7781",
        "metadata": { "source": "import", "batch": 7 }
    })
}

fn bench_validate(c: &mut Criterion) {
    let model = compile(
        "Invoice",
        "v1",
        &schema(),
        "admin",
        "2026-01-01T00:00:00.000Z",
    );
    let validator = RecordValidator::new(&model);
    let record = valid_record();
    if let Err(e) = validator.prepare_create(&record) {
        unreachable!("the bench record must be valid: {e}");
    }
    c.bench_function("validate a 20-field record (create, valid)", |b| {
        b.iter(|| validator.prepare_create(black_box(&record)))
    });

    let mut invalid = record.clone();
    invalid["invoiceNumber"] = json!("42");
    invalid["totalAmount"] = json!("-1");
    invalid["status"] = json!("lost");
    if validator.prepare_create(&invalid).is_ok() {
        unreachable!("the broken bench record must be refused");
    }
    c.bench_function("validate a 20-field record (create, 3 problems)", |b| {
        b.iter(|| validator.prepare_create(black_box(&invalid)))
    });

    let patch = json!({ "status": "paid", "paid": true, "paidAt": "2026-11-20T10:00:00.000Z" });
    c.bench_function("validate an update of 3 fields", |b| {
        b.iter(|| validator.prepare_update(black_box(&patch)))
    });
}

criterion_group!(benches, bench_validate);
criterion_main!(benches);
