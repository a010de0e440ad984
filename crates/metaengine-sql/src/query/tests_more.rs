//! Wide models, value rendering per type, cursors.

use super::tests::{ID1, list_query, lite, pg};
use super::*;
use metaengine_core::{EntitySchema, compile};
use serde_json::json;

fn wide(n: usize) -> CompiledModel {
    let fields: Vec<_> = (0..n)
        .map(|i| json!({ "name": format!("f{i}"), "type": "integer" }))
        .collect();
    let schema: EntitySchema = serde_json::from_value(json!({ "fields": fields })).unwrap();
    compile("Wide", "v1", &schema, "admin", "2026-01-01T00:00:00.000Z")
}

#[test]
fn a_wide_record_is_chunked_on_sqlite_and_one_column_per_key_on_postgres() {
    let m = wide(120); // 128 keys: SQLite chunks of 50, 50, 28
    let rf = RowFilter::All;
    let s = pg(&m).list(&list_query(&rf)).unwrap();
    assert!(
        s.sql.starts_with(
            r#"SELECT "id"::uuid AS "__r_id", "f0"::int8 AS "__r_f0", "f1"::int8 AS "__r_f1", "#
        ),
        "{}",
        s.sql
    );
    assert!(
        s.sql
            .contains(r#""f119"::int8 AS "__r_f119", "tenant_id"::text AS "__r_tenant_id", "#),
        "{}",
        s.sql
    );
    let RecordColumns::Columns(shape) = &s.record else {
        panic!("{:?}", s.record)
    };
    assert_eq!(shape.len(), 128);
    assert_eq!(
        (shape[1].key.as_str(), shape[1].ty),
        ("f0", FieldType::Integer)
    );
    assert_eq!(shape[127].key, "rowVersion");
    let s = lite(&m).list(&list_query(&rf)).unwrap();
    assert_eq!(s.record, RecordColumns::Json);
    let s = s.sql;
    assert_eq!(s.matches("json_object(").count(), 1);
    assert_eq!(s.matches("json_insert(").count(), 2);
    assert!(
        s.starts_with(r#"SELECT json_insert(json_insert(json_object('id', "id", 'f0', "f0", "#),
        "{s}"
    );
    assert!(s.contains(r#"'f48', "f48"), '$.f49', "f49", "#), "{s}");
    assert!(
        s.contains(r#"'$.rowVersion', "row_version") AS "record""#),
        "{s}"
    );
    let small = wide(42); // 50 keys: one call
    let s = lite(&small)
        .get(
            Scope {
                tenant_id: "t",
                realm_id: "r",
            },
            ID1,
            None,
            &[],
        )
        .unwrap()
        .sql;
    assert_eq!(s.matches("json_object(").count(), 1);
    assert!(!s.contains("json_insert("));
}

#[test]
fn values_render_per_type() {
    let schema: EntitySchema = serde_json::from_value(json!({ "fields": [
        { "name": "n", "type": "number" },
        { "name": "b", "type": "boolean" },
        { "name": "j", "type": "json" },
        { "name": "r", "type": "reference", "referenceTo": "Customer" },
        { "name": "t", "type": "datetime" }
    ]}))
    .unwrap();
    let m = compile("T", "v1", &schema, "a", "2026-01-01T00:00:00.000Z");
    let rf = RowFilter::All;
    let fields: Vec<String> = ["n", "b", "j", "r", "t"].map(str::to_owned).to_vec();
    let q = ListQuery {
        fields: Some(&fields),
        ..list_query(&rf)
    };
    let s = pg(&m).list(&q).unwrap().sql;
    // PostgreSQL: native values, but the jsonb document as its text.
    assert!(
        s.starts_with(r#"SELECT "id"::uuid AS "__r_id", "n"::float8 AS "__r_n", "b"::bool AS "__r_b", "j"::text AS "__r_j", "r"::uuid AS "__r_r", "t"::timestamptz AS "__r_t", "#),
        "{s}"
    );
    let s = lite(&m).list(&q).unwrap().sql;
    assert!(s.starts_with(r#"SELECT json_object('id', "id", 'n', CASE WHEN "n" = CAST("n" AS INTEGER) AND abs("n") < 9007199254740992 THEN CAST("n" AS INTEGER) ELSE "n" END, 'b', json(CASE WHEN "b" IS NULL THEN NULL WHEN "b" THEN 'true' ELSE 'false' END), 'j', json("j"), 'r', "r", 't', "t") AS "record""#), "{s}");
    let RecordColumns::Columns(shape) = pg(&m).list(&q).unwrap().record else {
        panic!("PostgreSQL carries the record in columns")
    };
    let types: Vec<FieldType> = shape.iter().map(|c| c.ty).collect();
    assert_eq!(
        types,
        [
            FieldType::Reference,
            FieldType::Number,
            FieldType::Boolean,
            FieldType::Json,
            FieldType::Reference,
            FieldType::Datetime
        ]
    );
    let order = Order {
        field: "j".to_owned(),
        descending: false,
    };
    let q = ListQuery {
        order: Some(&order),
        ..list_query(&rf)
    };
    assert_eq!(
        pg(&m).list(&q).unwrap_err().to_string(),
        "cannot order by field `j` of type `json`"
    );
    let filters = [Filter {
        field: "j".to_owned(),
        op: FilterOp::Eq,
        value: FilterValue::One(SqlValue::Text("1".to_owned())),
    }];
    assert!(
        lite(&m)
            .count(
                Scope {
                    tenant_id: "t",
                    realm_id: "r"
                },
                &rf,
                &filters,
                &[],
            )
            .is_err()
    );
}

#[test]
fn cursor_round_trip() {
    let cursors = [
        Cursor::from_row(Some("2026-11-26T21:24:42.123Z".to_owned()), ID1.to_owned()),
        Cursor::from_row(None, ID1.to_owned()),
        Cursor {
            values: vec![
                SqlValue::Int(-5),
                SqlValue::Float(1.5),
                SqlValue::Bool(true),
            ],
        },
        Cursor::from_row(Some("é/+?&=\"'".to_owned()), String::new()),
    ];
    for c in cursors {
        let text = encode_cursor(&c);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        if c.values.len() == 2 {
            assert_eq!(decode_cursor(&text).unwrap(), c);
        }
    }
}

#[test]
fn garbage_cursors_are_refused() {
    for garbage in [
        "",
        "!!!!",
        "a",
        "e30",
        "WzFd",
        "WzEsMiwzXQ",
        "W1tdLDFd",
        &"A".repeat(5000),
        "WzEsMl0x",
    ] {
        let err = decode_cursor(garbage).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`after` is not a valid cursor: "),
            "{garbage}: {err}"
        );
    }
}

#[test]
fn cursors_that_do_not_fit_the_order_are_refused() {
    let m = super::tests::invoice();
    let rf = RowFilter::All;
    let order = Order {
        field: "rowVersion".to_owned(),
        descending: false,
    };
    let run = |c: Cursor| {
        let q = ListQuery {
            order: Some(&order),
            after: Some(&c),
            expand: &[],
            related: &[],
            ..list_query(&rf)
        };
        pg(&m).list(&q)
    };
    let ok = run(Cursor::from_row(Some("12".to_owned()), ID1.to_owned())).unwrap();
    assert!(ok.binds.contains(&SqlValue::Int(12)));
    assert!(!ok.sql.contains("OFFSET"));
    for bad in [
        Cursor::from_row(Some("twelve".to_owned()), ID1.to_owned()),
        Cursor::from_row(None, ID1.to_owned()),
        Cursor::from_row(Some("12".to_owned()), "not-an-id".to_owned()),
        Cursor {
            values: vec![SqlValue::Int(1)],
        },
    ] {
        assert!(matches!(run(bad), Err(QueryError::InvalidCursor { .. })));
    }
}

#[test]
fn a_page_size_is_written_and_a_first_page_has_no_offset_so_postgres_keeps_a_generic_plan() {
    let m = wide(2);
    let rf = RowFilter::All;
    for builder in [pg(&m), lite(&m)] {
        let first = builder.list(&list_query(&rf)).unwrap();
        assert!(first.sql.ends_with(" LIMIT 21"), "{}", first.sql);
        assert_eq!(first.binds.len(), 2, "the scope only");
        let third = builder
            .list(&ListQuery {
                offset: 40,
                ..list_query(&rf)
            })
            .unwrap();
        assert!(
            third.sql.ends_with(" LIMIT 21 OFFSET $3")
                || third.sql.ends_with(" LIMIT 21 OFFSET ?3"),
            "{}",
            third.sql
        );
        assert_eq!(third.binds.last(), Some(&SqlValue::Int(40)));
    }
}
