//! Benchmark of filter → SQL building on the seed's Invoice (PostgreSQL dialect): the list
//! statement the data API builds for a page with three filters and an order, from typed filters
//! and from the raw `filter[<field>][<op>]=<value>` parameters (parsed by the record rules first);
//! the get-by-id statement; and the SQLite list for comparison.

#![expect(
    missing_docs,
    clippy::unreachable,
    reason = "a benchmark: a broken fixture stops it"
)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use metaengine_core::policy::RowFilter;
use metaengine_core::record::{Filter, RecordValidator};
use metaengine_core::{CompiledModel, EntitySchema, compile};
use metaengine_sql::Dialect;
use metaengine_sql::query::{ListQuery, Order, QueryBuilder, Scope};

const INVOICE: &str = include_str!("../../../examples/invoice-v1.json");

const SCOPE: Scope<'static> = Scope {
    tenant_id: "t001",
    realm_id: "r1",
};

/// `filter[status][in]=sent,paid&filter[totalAmount][gte]=100.50&filter[dueDate][lt]=2027-01-01`.
const RAW: [(&str, &str, &str); 3] = [
    ("status", "in", "sent,paid"),
    ("totalAmount", "gte", "100.50"),
    ("dueDate", "lt", "2027-01-01"),
];

fn model() -> CompiledModel {
    let schema: EntitySchema = match serde_json::from_str(INVOICE) {
        Ok(s) => s,
        Err(e) => unreachable!("examples/invoice-v1.json: {e}"),
    };
    compile(
        "Invoice",
        "v1",
        &schema,
        "admin",
        "2026-01-01T00:00:00.000Z",
    )
}

fn parse(validator: &RecordValidator) -> Vec<Filter> {
    RAW.iter()
        .map(
            |(field, op, value)| match validator.filter(field, op, value) {
                Ok(f) => f,
                Err(p) => unreachable!("bench filter {field} {op}: {p}"),
            },
        )
        .collect()
}

fn list<'a>(filters: &'a [Filter], order: &'a Order) -> ListQuery<'a> {
    ListQuery {
        scope: SCOPE,
        row_filter: &RowFilter::All,
        filters,
        order: Some(order),
        fields: None,
        limit: 20,
        offset: 0,
        after: None,
        expand: &[],
        related: &[],
    }
}

fn bench_query(c: &mut Criterion) {
    let model = model();
    let validator = RecordValidator::new(&model);
    let filters = parse(&validator);
    let order = Order {
        field: "createdAt".to_owned(),
        descending: true,
    };
    let pg = QueryBuilder::new(Dialect::Postgres, &model);
    let lite = QueryBuilder::new(Dialect::Sqlite, &model);
    if pg.list(&list(&filters, &order)).is_err() {
        unreachable!("the bench list must build");
    }

    c.bench_function("list statement, 3 typed filters + order (postgres)", |b| {
        b.iter(|| pg.list(black_box(&list(&filters, &order))))
    });
    c.bench_function(
        "list statement, 3 raw filters parsed + order (postgres)",
        |b| {
            b.iter(|| {
                let filters = parse(black_box(&validator));
                pg.list(&list(&filters, &order)).map(|s| s.sql.len())
            })
        },
    );
    c.bench_function("list statement, 3 typed filters + order (sqlite)", |b| {
        b.iter(|| lite.list(black_box(&list(&filters, &order))))
    });
    c.bench_function("get statement (postgres)", |b| {
        b.iter(|| {
            pg.get(
                black_box(SCOPE),
                black_box("0190f1a2-3b4c-7d5e-8f60-718293a4b5c6"),
                None,
                &[],
            )
        })
    });
}

criterion_group!(benches, bench_query);
criterion_main!(benches);
