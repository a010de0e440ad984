//! Exact SQL of every statement, on both dialects.

use super::*;
use metaengine_core::policy::{CompareOp, Predicate, RowFilter};
use metaengine_core::record::Comparison;
use metaengine_core::{EntitySchema, compile};
use serde_json::json;

pub(super) const ID1: &str = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6";

/// Invoice: `status` enum, `totalAmount` decimal, `dueDate` date (nullable).
pub(super) fn invoice() -> CompiledModel {
    let schema: EntitySchema = serde_json::from_value(json!({ "fields": [
        { "name": "status", "type": "enum", "enumValues": ["draft", "paid"] },
        { "name": "totalAmount", "type": "decimal", "required": true },
        { "name": "dueDate", "type": "date" }
    ]}))
    .unwrap();
    compile(
        "Invoice",
        "v1",
        &schema,
        "admin",
        "2026-01-01T00:00:00.000Z",
    )
}

pub(super) fn scope() -> Scope<'static> {
    Scope {
        tenant_id: "acme",
        realm_id: "main",
    }
}

pub(super) fn pg(model: &CompiledModel) -> QueryBuilder<'_> {
    QueryBuilder::new(Dialect::Postgres, model)
}

pub(super) fn lite(model: &CompiledModel) -> QueryBuilder<'_> {
    QueryBuilder::new(Dialect::Sqlite, model)
}

pub(super) fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

pub(super) fn list_query<'a>(row_filter: &'a RowFilter) -> ListQuery<'a> {
    ListQuery {
        scope: scope(),
        row_filter,
        filters: &[],
        order: None,
        fields: None,
        limit: 20,
        offset: 0,
        after: None,
        expand: &[],
        related: &[],
    }
}

const PG_RECORD: &str = r#""id"::uuid AS "__r_id", "status"::text AS "__r_status", "total_amount"::text AS "__r_total_amount", "due_date"::date AS "__r_due_date", "tenant_id"::text AS "__r_tenant_id", "realm_id"::text AS "__r_realm_id", "created_at"::timestamptz AS "__r_created_at", "updated_at"::timestamptz AS "__r_updated_at", "created_by"::text AS "__r_created_by", "updated_by"::text AS "__r_updated_by", "row_version"::int8 AS "__r_row_version""#;

const LITE_RECORD: &str = r#"json_object('id', "id", 'status', "status", 'totalAmount', "total_amount", 'dueDate', "due_date", 'tenantId', "tenant_id", 'realmId', "realm_id", 'createdAt', "created_at", 'updatedAt', "updated_at", 'createdBy', "created_by", 'updatedBy', "updated_by", 'rowVersion', "row_version") AS "record""#;

fn filters() -> Vec<Filter> {
    vec![
        Filter {
            field: "status".to_owned(),
            op: FilterOp::Eq,
            value: FilterValue::One(text("paid")),
        },
        Filter {
            field: "totalAmount".to_owned(),
            op: FilterOp::Gte,
            value: FilterValue::One(text("100.50")),
        },
    ]
}

fn mine() -> RowFilter {
    RowFilter::Where(Predicate::Compare {
        field: "createdBy".to_owned(),
        op: CompareOp::Eq,
        value: json!("u1"),
        comparison: Comparison::Json,
    })
}

#[test]
fn list_with_scope_row_filter_filters_order_and_offset() {
    let m = invoice();
    let rf = mine();
    let filters = filters();
    let order = Order {
        field: "dueDate".to_owned(),
        descending: true,
    };
    let q = ListQuery {
        filters: &filters,
        order: Some(&order),
        limit: 20,
        offset: 40,
        ..list_query(&rf)
    };
    let s = pg(&m).list(&q).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"SELECT {PG_RECORD}, to_char("due_date", 'YYYY-MM-DD') AS "__k", "id"::text AS "__id" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND (("created_by" = $3 AND "created_by" IS NOT NULL)) AND "status" = $4 AND "total_amount" >= $5::numeric ORDER BY "due_date" DESC NULLS LAST, "id" DESC LIMIT 21 OFFSET $6"#
        )
    );
    assert_eq!(
        s.binds,
        [
            text("acme"),
            text("main"),
            text("u1"),
            text("paid"),
            text("100.50"),
            SqlValue::Int(40)
        ]
    );
    let s = lite(&m).list(&q).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"SELECT {LITE_RECORD}, "due_date" AS "__k", "id" AS "__id" FROM "ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND (("created_by" = ?3 AND "created_by" IS NOT NULL)) AND "status" = ?4 AND "total_amount" COLLATE "decimal" >= ?5 ORDER BY "due_date" DESC, "id" DESC LIMIT 21 OFFSET ?6"#
        )
    );
    assert_eq!(s.binds.len(), 6);
}

#[test]
fn row_filter_all_and_nothing() {
    let m = invoice();
    let s = pg(&m)
        .count(scope(), &RowFilter::Nothing, &[], &[])
        .unwrap();
    assert_eq!(
        s.sql,
        r#"SELECT COUNT(*) AS "count" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND FALSE"#
    );
    let s = lite(&m)
        .count(scope(), &RowFilter::Nothing, &[], &[])
        .unwrap();
    assert!(s.sql.ends_with(r#""realm_id" = ?2 AND 0"#), "{}", s.sql);
    let s = lite(&m).count(scope(), &RowFilter::All, &[], &[]).unwrap();
    assert!(s.sql.ends_with(r#""realm_id" = ?2"#), "{}", s.sql);
}

#[test]
fn count_with_filters() {
    let m = invoice();
    let s = pg(&m).count(scope(), &mine(), &filters(), &[]).unwrap();
    assert_eq!(
        s.sql,
        r#"SELECT COUNT(*) AS "count" FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND (("created_by" = $3 AND "created_by" IS NOT NULL)) AND "status" = $4 AND "total_amount" >= $5::numeric"#
    );
    let s = lite(&m).count(scope(), &mine(), &filters(), &[]).unwrap();
    assert_eq!(
        s.sql,
        r#"SELECT COUNT(*) AS "count" FROM "ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND (("created_by" = ?3 AND "created_by" IS NOT NULL)) AND "status" = ?4 AND "total_amount" COLLATE "decimal" >= ?5"#
    );
}

fn keyset(dialect: Dialect, field: &str, descending: bool, key: Option<&str>) -> Statement {
    let m = invoice();
    let rf = RowFilter::All;
    let order = Order {
        field: field.to_owned(),
        descending,
    };
    let cursor = Cursor::from_row(key.map(str::to_owned), ID1.to_owned());
    let q = ListQuery {
        order: Some(&order),
        fields: Some(&[]),
        offset: 99,
        after: Some(&cursor),
        expand: &[],
        related: &[],
        ..list_query(&rf)
    };
    QueryBuilder::new(dialect, &m).list(&q).unwrap()
}

/// The part of a list after `FROM`.
fn tail(s: &Statement) -> &str {
    s.sql.split_once(" FROM ").map(|(_, t)| t).unwrap()
}

#[test]
fn keyset_ascending_on_a_system_column() {
    let s = keyset(
        Dialect::Postgres,
        "createdAt",
        false,
        Some("2026-11-26T21:24:42.123Z"),
    );
    assert_eq!(
        tail(&s),
        r#""core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND ("created_at" > $3::timestamptz OR ("created_at" = $4::timestamptz AND "id" > $5::uuid)) ORDER BY "created_at", "id" LIMIT 21"#
    );
    assert_eq!(s.binds.get(4), Some(&text(ID1)));
    let s = keyset(
        Dialect::Sqlite,
        "createdAt",
        false,
        Some("2026-11-26T21:24:42.123Z"),
    );
    assert_eq!(
        tail(&s),
        r#""ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND ("created_at" > ?3 OR ("created_at" = ?4 AND "id" > ?5)) ORDER BY "created_at", "id" LIMIT 21"#
    );
}

#[test]
fn keyset_descending_and_by_id() {
    let s = keyset(
        Dialect::Sqlite,
        "updatedAt",
        true,
        Some("2026-11-26T21:24:42.123Z"),
    );
    assert_eq!(
        tail(&s),
        r#""ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND ("updated_at" < ?3 OR ("updated_at" = ?4 AND "id" < ?5)) ORDER BY "updated_at" DESC, "id" DESC LIMIT 21"#
    );
    let s = keyset(Dialect::Postgres, "id", true, Some(ID1));
    assert_eq!(
        tail(&s),
        r#""core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" < $3::uuid ORDER BY "id" DESC LIMIT 21"#
    );
}

#[test]
fn keyset_on_a_nullable_column() {
    let day = Some("2026-11-26");
    let s = keyset(Dialect::Postgres, "dueDate", false, day);
    assert_eq!(
        tail(&s),
        r#""core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND ("due_date" > $3::date OR ("due_date" = $4::date AND "id" > $5::uuid)) ORDER BY "due_date" NULLS FIRST, "id" LIMIT 21"#
    );
    let s = keyset(Dialect::Sqlite, "dueDate", true, day);
    assert_eq!(
        tail(&s),
        r#""ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND ("due_date" < ?3 OR ("due_date" = ?4 AND "id" < ?5) OR "due_date" IS NULL) ORDER BY "due_date" DESC, "id" DESC LIMIT 21"#
    );
    let s = keyset(Dialect::Sqlite, "dueDate", false, None);
    assert_eq!(
        tail(&s),
        r#""ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND ("due_date" IS NOT NULL OR "id" > ?3) ORDER BY "due_date", "id" LIMIT 21"#
    );
    let s = keyset(Dialect::Postgres, "dueDate", true, None);
    assert!(
        tail(&s).contains(r#"AND ("due_date" IS NULL AND "id" < $3::uuid) ORDER BY"#),
        "{}",
        s.sql
    );
    let s = keyset(Dialect::Postgres, "status", false, Some("draft"));
    assert!(
        tail(&s).contains(r#"("status" COLLATE "C" > $3 OR ("status" COLLATE "C" = $4 AND "id" > $5::uuid)) ORDER BY "status" COLLATE "C" NULLS FIRST, "id""#),
        "{}",
        s.sql
    );
}

#[test]
fn get_exists_and_delete() {
    let m = invoice();
    let s = pg(&m).get(scope(), ID1, None, &[]).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"SELECT {PG_RECORD} FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" = $3::uuid"#
        )
    );
    assert_eq!(s.binds, [text("acme"), text("main"), text(ID1)]);
    // The plain get's prebuilt text and values are exactly the ones written per request.
    for b in [pg(&m), lite(&m)] {
        let other = Scope {
            tenant_id: "globex",
            realm_id: "eu",
        };
        assert_eq!(
            b.get(other, ID1, None, &[]).unwrap(),
            b.get_written(other, ID1, None, &[]).unwrap()
        );
    }
    let s = lite(&m).get(scope(), ID1, Some(&mine()), &[]).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"SELECT {LITE_RECORD} FROM "ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND "id" = ?3 AND (("created_by" = ?4 AND "created_by" IS NOT NULL))"#
        )
    );
    let s = pg(&m).exists(scope(), ID1, &RowFilter::All).unwrap();
    assert_eq!(
        s.sql,
        r#"SELECT 1 FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" = $3::uuid"#
    );
    let s = lite(&m).delete(scope(), ID1, Some(7)).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"DELETE FROM "ent_invoice" WHERE "tenant_id" = ?1 AND "realm_id" = ?2 AND "id" = ?3 AND "row_version" = ?4 RETURNING {LITE_RECORD}"#
        )
    );
    assert_eq!(s.binds.last(), Some(&SqlValue::Int(7)));
    let s = pg(&m).delete(scope(), ID1, None).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"DELETE FROM "core"."ent_invoice" WHERE "tenant_id" = $1 AND "realm_id" = $2 AND "id" = $3::uuid RETURNING {PG_RECORD}"#
        )
    );
}

#[test]
fn a_malformed_id_is_an_error() {
    let m = invoice();
    for id in [
        "1",
        "'; DROP TABLE x; --",
        "0190F1A2-3B4C-7D5E-8F60-718293A4B5C6",
    ] {
        let err = pg(&m).get(scope(), id, None, &[]).unwrap_err();
        assert_eq!(err, QueryError::InvalidId { id: id.to_owned() });
        assert!(lite(&m).exists(scope(), id, &RowFilter::All).is_err());
        assert!(lite(&m).delete(scope(), id, None).is_err());
    }
}

const NOW: &str = "2026-11-26T21:24:42.123Z";

fn values() -> Vec<(String, SqlValue)> {
    vec![
        ("totalAmount".to_owned(), text("100.50")),
        ("dueDate".to_owned(), SqlValue::Null),
    ]
}

#[test]
fn insert() {
    let m = invoice();
    let s = pg(&m).insert(scope(), ID1, "u1", NOW, &values()).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"INSERT INTO "core"."ent_invoice" ("tenant_id", "realm_id", "id", "created_at", "updated_at", "created_by", "updated_by", "row_version", "total_amount", "due_date") VALUES ($1, $2, $3::uuid, $4::timestamptz, $5::timestamptz, $6, $7, 1, $8::numeric, NULL::date) RETURNING {PG_RECORD}"#
        )
    );
    assert_eq!(
        s.binds,
        [
            text("acme"),
            text("main"),
            text(ID1),
            text(NOW),
            text(NOW),
            text("u1"),
            text("u1"),
            text("100.50"),
        ]
    );
    let s = lite(&m).insert(scope(), ID1, "u1", NOW, &values()).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"INSERT INTO "ent_invoice" ("tenant_id", "realm_id", "id", "created_at", "updated_at", "created_by", "updated_by", "row_version", "total_amount", "due_date") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, NULL) RETURNING {LITE_RECORD}"#
        )
    );
}

#[test]
fn update_with_and_without_row_version() {
    let m = invoice();
    let s = pg(&m)
        .update(scope(), ID1, "u2", NOW, &values(), Some(3))
        .unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"UPDATE "core"."ent_invoice" SET "total_amount" = $1::numeric, "due_date" = NULL::date, "row_version" = "row_version" + 1, "updated_at" = $2::timestamptz, "updated_by" = $3 WHERE "tenant_id" = $4 AND "realm_id" = $5 AND "id" = $6::uuid AND "row_version" = $7 RETURNING {PG_RECORD}"#
        )
    );
    assert_eq!(
        s.binds,
        [
            text("100.50"),
            text(NOW),
            text("u2"),
            text("acme"),
            text("main"),
            text(ID1),
            SqlValue::Int(3)
        ]
    );
    let s = lite(&m).update(scope(), ID1, "u2", NOW, &[], None).unwrap();
    assert_eq!(
        s.sql,
        format!(
            r#"UPDATE "ent_invoice" SET "row_version" = "row_version" + 1, "updated_at" = ?1, "updated_by" = ?2 WHERE "tenant_id" = ?3 AND "realm_id" = ?4 AND "id" = ?5 RETURNING {LITE_RECORD}"#
        )
    );
}

#[test]
fn writes_refuse_system_unknown_repeated_and_misfit_fields() {
    let m = invoice();
    let b = pg(&m);
    let write = |values: Vec<(&str, SqlValue)>| {
        let values: Vec<(String, SqlValue)> =
            values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        b.insert(scope(), ID1, "u1", NOW, &values)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        write(vec![("tenantId", text("evil"))]),
        "field `tenantId` cannot be written"
    );
    assert_eq!(write(vec![("nope", text("x"))]), "unknown field `nope`");
    assert_eq!(
        write(vec![("status", text("a")), ("status", text("b"))]),
        "field `status` is given more than once"
    );
    assert_eq!(
        write(vec![("totalAmount", text("1e5"))]),
        "a value for field `totalAmount` is not a valid `decimal`"
    );
    assert_eq!(
        write(vec![("dueDate", SqlValue::Int(3))]),
        "a value for field `dueDate` is not a valid `date`"
    );
    assert!(
        b.update(scope(), ID1, "u1", "yesterday", &[], None)
            .is_err()
    );
}

#[test]
fn field_selection() {
    let m = invoice();
    let rf = RowFilter::All;
    let fields = ["totalAmount".to_owned(), "createdAt".to_owned()];
    let q = ListQuery {
        fields: Some(&fields),
        ..list_query(&rf)
    };
    let s = lite(&m).list(&q).unwrap();
    assert!(
        s.sql.starts_with(
            r#"SELECT json_object('id', "id", 'totalAmount', "total_amount", 'createdAt', "created_at") AS "record", "#
        ),
        "{}",
        s.sql
    );
    assert_eq!(s.record, RecordColumns::Json);
    let s = pg(&m).list(&q).unwrap();
    assert!(
        s.sql.starts_with(
            r#"SELECT "id"::uuid AS "__r_id", "total_amount"::text AS "__r_total_amount", "created_at"::timestamptz AS "__r_created_at", "#
        ),
        "{}",
        s.sql
    );
    let RecordColumns::Columns(shape) = &s.record else {
        panic!("{:?}", s.record)
    };
    let keys: Vec<&str> = shape.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["id", "totalAmount", "createdAt"]);
    let fields = ["total_amount".to_owned()];
    let q = ListQuery {
        fields: Some(&fields),
        ..list_query(&rf)
    };
    assert_eq!(
        pg(&m).list(&q).unwrap_err().to_string(),
        "unknown field `total_amount`"
    );
    let order = Order {
        field: "nope".to_owned(),
        descending: false,
    };
    let q = ListQuery {
        order: Some(&order),
        ..list_query(&rf)
    };
    assert_eq!(
        pg(&m).list(&q).unwrap_err().to_string(),
        "unknown field `nope`"
    );
}

/// Issue 12 item 13: a crafted cursor whose key has the shape of a date or timestamp but is no
/// day of the calendar is refused here, never sent to the database (PostgreSQL answered 500).
#[test]
fn cursor_keys_are_checked_like_filter_values() {
    let m = invoice();
    let rf = RowFilter::All;
    for (field, key) in [
        ("dueDate", "0000-00-00"),
        ("dueDate", "2026-02-30"),
        ("dueDate", "2026-13-01"),
        ("createdAt", "2026-11-26T24:00:00.000Z"),
        ("createdAt", "2026-11-26T23:59:60.000Z"),
    ] {
        let order = Order {
            field: field.to_owned(),
            descending: false,
        };
        let cursor = Cursor::from_row(Some(key.to_owned()), ID1.to_owned());
        let q = ListQuery {
            order: Some(&order),
            after: Some(&cursor),
            expand: &[],
            related: &[],
            ..list_query(&rf)
        };
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let err = QueryBuilder::new(dialect, &m).list(&q).unwrap_err();
            assert!(
                matches!(err, QueryError::InvalidCursor { .. }),
                "{key}: {err:?}"
            );
        }
    }
    let ok = keyset(Dialect::Postgres, "dueDate", false, Some("2024-02-29"));
    assert!(ok.sql.contains("::date"));
}
