//! The row filter's SQL: typed like the list filters, one parameter type per SQL text.

use super::tests::scope;
use super::*;
use metaengine_core::policy::{CompareOp, Predicate};
use metaengine_core::record::Comparison;
use metaengine_core::{EntitySchema, compile};
use serde_json::{Value, json};

fn model() -> CompiledModel {
    let schema: EntitySchema = serde_json::from_value(json!({ "fields": [
        { "name": "n", "type": "integer" },
        { "name": "x", "type": "number" },
        { "name": "b", "type": "boolean" },
        { "name": "s", "type": "string" },
        { "name": "t", "type": "string" }
    ]}))
    .unwrap();
    compile("Item", "v1", &schema, "admin", "2026-01-01T00:00:00.000Z")
}

fn cmp(field: &str, op: CompareOp, value: Value) -> Predicate {
    Predicate::Compare {
        field: field.to_owned(),
        op,
        value,
        comparison: Comparison::Json,
    }
}

/// The condition after the scope, and the binds after the tenant and realm.
fn render(dialect: Dialect, p: Predicate) -> (String, Vec<SqlValue>) {
    let m = model();
    let s = QueryBuilder::new(dialect, &m)
        .count(scope(), &RowFilter::Where(p), &[], &[])
        .unwrap();
    let at = s.sql.find("AND (").expect("a row filter");
    let end = s.sql.rfind(')').unwrap();
    (s.sql[at + 5..end].to_owned(), s.binds[2..].to_vec())
}

#[test]
fn a_number_is_bound_as_the_column_type() {
    // An integer literal on a `number` field binds a double: one parameter type per SQL text.
    let (sql, binds) = render(Dialect::Postgres, cmp("x", CompareOp::Gt, json!(5)));
    assert_eq!(sql, r#"("x" > $3 AND "x" IS NOT NULL)"#);
    assert_eq!(binds, [SqlValue::Float(5.0)]);
    let (sql5, binds) = render(Dialect::Postgres, cmp("n", CompareOp::Gt, json!(5)));
    assert_eq!(binds, [SqlValue::Int(5)]);
    // A non-integral number on an integer field: a different text, cast to a double.
    let (sql55, binds) = render(Dialect::Postgres, cmp("n", CompareOp::Gt, json!(5.5)));
    assert_eq!(binds, [SqlValue::Float(5.5)]);
    assert_ne!(sql5, sql55);
    assert_eq!(sql55, r#"("n" > $3::float8 AND "n" IS NOT NULL)"#);
    let (_, binds) = render(Dialect::Sqlite, cmp("n", CompareOp::Eq, json!(7.0)));
    assert_eq!(binds, [SqlValue::Int(7)]);
}

#[test]
fn text_orders_in_byte_order_on_postgres() {
    let (sql, _) = render(Dialect::Postgres, cmp("s", CompareOp::Lt, json!("m")));
    assert_eq!(sql, r#"("s" COLLATE "C" < $3 AND "s" IS NOT NULL)"#);
    let (sql, _) = render(Dialect::Sqlite, cmp("s", CompareOp::Lt, json!("m")));
    assert_eq!(sql, r#"("s" < ?3 AND "s" IS NOT NULL)"#);
}

#[test]
fn a_value_of_another_type_is_false_on_null_and_unknown_otherwise() {
    for (p, field) in [
        (cmp("n", CompareOp::Eq, json!("5")), "n"),
        (cmp("s", CompareOp::Eq, json!(10)), "s"),
        (cmp("b", CompareOp::Eq, json!("true")), "b"),
        (cmp("b", CompareOp::Gt, json!(true)), "b"),
        (
            Predicate::Contains {
                field: "n".into(),
                value: json!("1"),
                comparison: Comparison::Json,
            },
            "n",
        ),
    ] {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let (sql, binds) = render(dialect, p.clone());
            assert_eq!(sql, format!(r#"("{field}" IS NOT NULL AND NULL)"#), "{p:?}");
            assert!(binds.is_empty());
        }
    }
}

#[test]
fn in_lists_keep_the_values_that_can_be_equal() {
    let p = Predicate::In {
        field: "n".into(),
        values: vec![json!(1), json!("2"), json!(2.5), Value::Null, json!(3.0)],
        negated: false,
        comparison: Comparison::Json,
    };
    let (sql, binds) = render(Dialect::Postgres, p);
    assert_eq!(sql, r#"("n" IN ($3, $4) AND "n" IS NOT NULL)"#);
    assert_eq!(binds, [SqlValue::Int(1), SqlValue::Int(3)]);
    let p = Predicate::In {
        field: "n".into(),
        values: vec![json!("a")],
        negated: true,
        comparison: Comparison::Json,
    };
    assert_eq!(render(Dialect::Sqlite, p).0, r#""n" IS NOT NULL"#);
}

#[test]
fn two_fields_of_the_record() {
    let p = Predicate::CompareFields {
        left: "s".into(),
        op: CompareOp::Gte,
        right: "t".into(),
        comparison: Comparison::Json,
    };
    let (sql, binds) = render(Dialect::Postgres, p);
    assert_eq!(
        sql,
        r#"("s" COLLATE "C" >= "t" COLLATE "C" AND "s" IS NOT NULL AND "t" IS NOT NULL)"#
    );
    assert!(binds.is_empty());
    let p = Predicate::CompareFields {
        left: "n".into(),
        op: CompareOp::Eq,
        right: "s".into(),
        comparison: Comparison::Json,
    };
    assert_eq!(
        render(Dialect::Sqlite, p).0,
        r#"("n" IS NOT NULL AND "s" IS NOT NULL AND NULL)"#
    );
}

#[test]
fn an_unknown_field_is_an_error_never_text() {
    let m = model();
    let p = cmp(r#"x" = "x"#, CompareOp::Eq, json!(1));
    let err = QueryBuilder::new(Dialect::Postgres, &m)
        .count(scope(), &RowFilter::Where(p), &[], &[])
        .unwrap_err();
    assert!(matches!(err, QueryError::RowFilterField { .. }), "{err:?}");
}

#[test]
fn injection_stays_a_bound_value() {
    let evil = "x'; DROP TABLE ent_item; --";
    for dialect in [Dialect::Postgres, Dialect::Sqlite] {
        let (sql, binds) = render(dialect, cmp("s", CompareOp::Eq, json!(evil)));
        assert!(!sql.contains("DROP"), "{sql}");
        assert_eq!(binds, [SqlValue::Text(evil.to_owned())]);
    }
}
