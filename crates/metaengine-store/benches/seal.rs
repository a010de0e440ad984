//! What sealing an audit row costs on the writer's side: the canonical content its hash and seal
//! cover (`chain::content`), for a single create's row (its changes) and for a batch's
//! `data.create` row (the values of 100 records), then the seal itself.
//!
//! `cargo bench -p metaengine-store --bench seal`

#![expect(missing_docs, reason = "a benchmark")]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use metaengine_store::chain::{Content, SealKey, content};
use metaengine_store::{Id, Timestamp};
use serde_json::{Value, json};

/// One invoice's values, as a create's body gives them.
fn invoice(i: usize) -> Value {
    json!({
        "invoiceNumber": format!("INV-{i:06}"),
        "customerId": format!("customer-{}", i % 97),
        "totalAmount": "1234.50",
        "status": "sent",
        "dueDate": "2026-12-31",
        "notes": "Net 30; late fees apply \"after\" the due date.",
        "lines": 3,
    })
}

fn single_create() -> Value {
    let changes: Vec<Value> = invoice(7)
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| json!({ "field": k, "old": null, "new": v }))
                .collect()
        })
        .unwrap_or_default();
    json!({ "entity": "Invoice", "id": Id::new_v7().to_string(), "changes": changes })
}

fn batch_create() -> Value {
    let records: Vec<Value> = (0..100)
        .map(|i| json!({ "id": Id::new_v7().to_string(), "new": invoice(i) }))
        .collect();
    json!({ "entity": "Invoice", "count": 100, "records": records })
}

fn bench(c: &mut Criterion) {
    let id = Id::new_v7();
    let event_id = Id::new_v7().to_string();
    let key = SealKey::new(b"the bench's key");
    for (name, details) in [
        ("single create", single_create()),
        ("batch of 100 creates", batch_create()),
    ] {
        let row = Content {
            id: &id,
            event_id: &event_id,
            event_type: "data.create",
            timestamp: Timestamp::now(),
            user_id: "alice",
            tenant_id: "acme",
            realm_id: "main",
            action: "create",
            resource: "Invoice",
            details: Some(&details),
            result: "success",
            error_message: None,
        };
        c.bench_function(&format!("content of a {name}'s audit row"), |b| {
            b.iter(|| content(black_box(&row)))
        });
        let text = content(&row);
        c.bench_function(&format!("seal of a {name}'s audit row"), |b| {
            b.iter(|| key.seal(black_box(&text)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
