//! Benchmark of [`metaengine_core::compile`] on a 20-field schema with 5 policies of 3 conditions.

#![expect(missing_docs, reason = "benchmark and test code")]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use metaengine_core::{EntitySchema, compile};
use serde_json::json;

fn schema() -> EntitySchema {
    let types = ["string", "integer", "decimal", "date", "enum"];
    let fields: Vec<serde_json::Value> = (0..20)
        .zip(types.iter().cycle())
        .map(|(i, t)| {
            let values = (*t == "enum").then(|| json!(["a", "b", "c"]));
            json!({ "name": format!("field{i}"), "type": t, "indexed": i % 4 == 0, "enumValues": values })
        })
        .collect();
    let policies: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            json!({
                "name": format!("policy{i}"),
                "effect": if i == 0 { "deny" } else { "allow" },
                "action": "read",
                "priority": i,
                "conditions": [
                    { "field": "user.role", "operator": "eq", "value": "admin" },
                    { "field": "record.field0", "operator": "eq", "value": "context.userId" },
                    { "field": "record.field1", "operator": "gte", "value": 10 }
                ]
            })
        })
        .collect();
    let doc = json!({ "fields": fields, "policies": policies, "indexes": [{ "fields": ["field0", "-field3"] }] });
    // A schema that does not parse benchmarks an empty one: the assertion in `bench_compile` stops it.
    serde_json::from_value(doc).unwrap_or(EntitySchema {
        fields: Vec::new(),
        policies: Vec::new(),
        indexes: Vec::new(),
    })
}

fn bench_compile(c: &mut Criterion) {
    let schema = schema();
    assert_eq!(schema.fields.len(), 20, "the bench schema must parse");
    c.bench_function("compile 20 fields 5 policies", |b| {
        b.iter(|| {
            compile(
                black_box("Invoice"),
                "v1",
                black_box(&schema),
                "admin",
                "2024-01-01T00:00:00.000Z",
            )
        })
    });
}

criterion_group!(benches, bench_compile);
criterion_main!(benches);
