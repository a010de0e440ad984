//! Batch inserts: exact SQL, one statement per shape, split at the bind limit, all-or-nothing
//! checks.

use super::tests::{ID1, invoice, lite, pg, scope, text};
use super::*;

const ID2: &str = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c7";
const NOW: &str = "2026-11-26T10:00:00.000Z";

fn full(amount: &str) -> Vec<(String, SqlValue)> {
    vec![
        ("status".into(), text("draft")),
        ("totalAmount".into(), text(amount)),
        ("dueDate".into(), text("2026-12-01")),
    ]
}

#[test]
fn rows_of_one_shape_share_one_statement() {
    let m = invoice();
    let (a, b) = (full("1.50"), full("2"));
    let rows = [
        NewRow {
            id: ID1,
            values: &a,
        },
        NewRow {
            id: ID2,
            values: &b,
        },
    ];
    let statements = pg(&m).insert_many(scope(), "u1", NOW, &rows).unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(
        statements[0].sql,
        r#"INSERT INTO "core"."ent_invoice" ("tenant_id", "realm_id", "id", "created_at", "updated_at", "created_by", "updated_by", "row_version", "status", "total_amount", "due_date") VALUES ($1, $2, $5::uuid, $3::timestamptz, $3::timestamptz, $4, $4, 1, $6, $7::numeric, $8::date), ($1, $2, $9::uuid, $3::timestamptz, $3::timestamptz, $4, $4, 1, $10, $11::numeric, $12::date)"#
    );
    assert_eq!(
        statements[0].binds,
        vec![
            text("acme"),
            text("main"),
            text(NOW),
            text("u1"),
            text(ID1),
            text("draft"),
            text("1.50"),
            text("2026-12-01"),
            text(ID2),
            text("draft"),
            text("2"),
            text("2026-12-01"),
        ]
    );
    let statements = lite(&m).insert_many(scope(), "u1", NOW, &rows).unwrap();
    assert_eq!(
        statements[0].sql,
        r#"INSERT INTO "ent_invoice" ("tenant_id", "realm_id", "id", "created_at", "updated_at", "created_by", "updated_by", "row_version", "status", "total_amount", "due_date") VALUES (?1, ?2, ?5, ?3, ?3, ?4, ?4, 1, ?6, ?7, ?8), (?1, ?2, ?9, ?3, ?3, ?4, ?4, 1, ?10, ?11, ?12)"#
    );
}

#[test]
fn rows_that_give_other_fields_get_their_own_statement_and_null_is_a_literal() {
    let m = invoice();
    let a = full("1");
    let b = vec![("totalAmount".to_owned(), text("2"))];
    let c = vec![
        ("totalAmount".to_owned(), text("3")),
        ("dueDate".to_owned(), SqlValue::Null),
    ];
    let rows = [
        NewRow {
            id: ID1,
            values: &a,
        },
        NewRow {
            id: ID2,
            values: &b,
        },
        NewRow {
            id: "0190f1a2-3b4c-7d5e-8f60-718293a4b5c8",
            values: &c,
        },
    ];
    let statements = pg(&m).insert_many(scope(), "u1", NOW, &rows).unwrap();
    assert_eq!(statements.len(), 3, "three shapes");
    assert!(statements[1].sql.ends_with(r#""total_amount") VALUES ($1, $2, $5::uuid, $3::timestamptz, $3::timestamptz, $4, $4, 1, $6::numeric)"#), "{}", statements[1].sql);
    assert!(
        statements[2].sql.ends_with("$6::numeric, NULL::date)"),
        "{}",
        statements[2].sql
    );
    assert_eq!(statements[2].binds.len(), 6);
}

#[test]
fn a_large_batch_is_split_at_the_bind_limit() {
    let m = invoice();
    let values = full("1");
    let ids: Vec<String> = (0..12_000)
        .map(|i| format!("0190f1a2-3b4c-7d5e-8f60-{i:012}"))
        .collect();
    let rows: Vec<NewRow<'_>> = ids
        .iter()
        .map(|id| NewRow {
            id,
            values: &values,
        })
        .collect();
    let statements = lite(&m).insert_many(scope(), "u1", NOW, &rows).unwrap();
    // 4 values per row: (32 000 - 4) / 4 = 7 999 rows per statement.
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0].binds.len(), 4 + 7_999 * 4);
    assert_eq!(statements[1].binds.len(), 4 + 4_001 * 4);
    assert!(statements.iter().all(|s| s.binds.len() <= MAX_BINDS));
    let placeholders = statements[1].sql.matches("), (").count() + 1;
    assert_eq!(placeholders, 4_001);
}

#[test]
fn one_bad_row_refuses_the_whole_batch() {
    let m = invoice();
    let good = full("1");
    let unknown = vec![("nope".to_owned(), text("x"))];
    let system = vec![("createdBy".to_owned(), text("x"))];
    let bad_value = vec![("totalAmount".to_owned(), text("1e3"))];
    for (id, values) in [
        (ID2, &unknown),
        (ID2, &system),
        (ID2, &bad_value),
        ("not-a-uuid", &good),
    ] {
        let rows = [
            NewRow {
                id: ID1,
                values: &good,
            },
            NewRow { id, values },
        ];
        assert!(
            pg(&m).insert_many(scope(), "u1", NOW, &rows).is_err(),
            "{values:?} {id}"
        );
    }
    let rows = [NewRow {
        id: ID1,
        values: &good,
    }];
    assert!(pg(&m).insert_many(scope(), "u1", "now", &rows).is_err());
    assert!(
        pg(&m)
            .insert_many(scope(), "u1", NOW, &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_field_given_twice_is_refused_in_a_wide_write_too() {
    use metaengine_core::{EntitySchema, compile};
    let fields: Vec<_> = (0..40)
        .map(|i| serde_json::json!({ "name": format!("f{i}"), "type": "integer" }))
        .collect();
    let schema: EntitySchema =
        serde_json::from_value(serde_json::json!({ "fields": fields })).unwrap();
    let m = compile("Wide", "v1", &schema, "admin", "2026-01-01T00:00:00.000Z");
    let mut values: Vec<(String, SqlValue)> = (0..40)
        .map(|i| (format!("f{i}"), SqlValue::Int(i)))
        .collect();
    let rows = [NewRow {
        id: ID1,
        values: &values,
    }];
    assert_eq!(
        pg(&m).insert_many(scope(), "u1", NOW, &rows).unwrap()[0]
            .binds
            .len(),
        4 + 1 + 40
    );
    values.push(("f7".into(), SqlValue::Int(1)));
    let rows = [NewRow {
        id: ID1,
        values: &values,
    }];
    assert_eq!(
        pg(&m).insert_many(scope(), "u1", NOW, &rows),
        Err(QueryError::DuplicateField { field: "f7".into() })
    );
}

#[test]
fn a_returning_batch_returns_each_record_and_its_id() {
    let m = invoice();
    let (a, b) = (full("1.50"), full("2"));
    let rows = [
        NewRow {
            id: ID1,
            values: &a,
        },
        NewRow {
            id: ID2,
            values: &b,
        },
    ];
    let plain = pg(&m).insert_many(scope(), "u1", NOW, &rows).unwrap();
    let returning = pg(&m)
        .insert_many_returning(scope(), "u1", NOW, &rows)
        .unwrap();
    assert_eq!(returning.len(), 1);
    assert!(returning[0].sql.starts_with(&plain[0].sql));
    assert!(
        returning[0]
            .sql
            .ends_with(r#""row_version"::int8 AS "__r_row_version", "id"::text AS "__id""#),
        "{}",
        returning[0].sql
    );
    assert_eq!(returning[0].binds, plain[0].binds);
    assert_eq!(plain[0].record, RecordColumns::None);
    assert!(matches!(&returning[0].record, RecordColumns::Columns(shape) if shape[0].key == "id"));
    let lite_returning = lite(&m)
        .insert_many_returning(scope(), "u1", NOW, &rows)
        .unwrap();
    assert!(
        lite_returning[0]
            .sql
            .ends_with(r#"'rowVersion', "row_version") AS "record", "id" AS "__id""#)
    );
}
