use super::*;
use metaengine_core::plan::{TableState, plan_migration};
use metaengine_core::{EntitySchema, FieldDef};
use serde_json::json;

fn invoice() -> EntitySchema {
    serde_json::from_value(json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "customerId", "type": "string", "required": true },
        { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 },
        { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"], "default": "draft" },
        { "name": "dueDate", "type": "date" }
    ]}))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn create(dialect: Dialect) -> Vec<String> {
    let plan = plan_migration("ent_invoice", None, &invoice(), &TableState::default());
    render_plan(dialect, "ent_invoice", &plan)
}

#[test]
fn create_invoice_postgres() {
    assert_eq!(
        create(Dialect::Postgres),
        vec![
            r#"CREATE TABLE "core"."ent_invoice" (
  "tenant_id" text NOT NULL,
  "realm_id" text NOT NULL,
  "id" uuid NOT NULL,
  "created_at" timestamptz(3) NOT NULL,
  "updated_at" timestamptz(3) NOT NULL,
  "created_by" text NOT NULL,
  "updated_by" text NOT NULL,
  "row_version" bigint NOT NULL DEFAULT 1,
  "invoice_number" text COLLATE "C" NOT NULL,
  "customer_id" text COLLATE "C" NOT NULL,
  "total_amount" numeric(18,2) NOT NULL,
  "status" text COLLATE "C" DEFAULT 'draft',
  "due_date" date,
  PRIMARY KEY ("tenant_id", "id")
)"#
            .to_owned(),
            r#"CREATE UNIQUE INDEX IF NOT EXISTS "ent_invoice_invoice_number_key" ON "core"."ent_invoice" ("tenant_id", "realm_id", "invoice_number" NULLS FIRST)"#.to_owned(),
            r#"CREATE INDEX IF NOT EXISTS "ent_invoice_created_at_id_idx" ON "core"."ent_invoice" ("tenant_id", "realm_id", "created_at", "id")"#.to_owned(),
        ]
    );
}

#[test]
fn create_invoice_sqlite() {
    assert_eq!(
        create(Dialect::Sqlite),
        vec![
            r#"CREATE TABLE "ent_invoice" (
  "tenant_id" TEXT NOT NULL,
  "realm_id" TEXT NOT NULL,
  "id" TEXT NOT NULL,
  "created_at" TEXT NOT NULL,
  "updated_at" TEXT NOT NULL,
  "created_by" TEXT NOT NULL,
  "updated_by" TEXT NOT NULL,
  "row_version" INTEGER NOT NULL DEFAULT 1,
  "invoice_number" TEXT,
  "customer_id" TEXT,
  "total_amount" TEXT,
  "status" TEXT DEFAULT 'draft',
  "due_date" TEXT,
  PRIMARY KEY ("tenant_id", "id")
)"#
            .to_owned(),
            r#"CREATE UNIQUE INDEX IF NOT EXISTS "ent_invoice_invoice_number_key" ON "ent_invoice" ("tenant_id", "realm_id", "invoice_number")"#.to_owned(),
            r#"CREATE INDEX IF NOT EXISTS "ent_invoice_created_at_id_idx" ON "ent_invoice" ("tenant_id", "realm_id", "created_at", "id")"#.to_owned(),
        ]
    );
}

fn migrate(dialect: Dialect, next: &EntitySchema) -> Vec<String> {
    let state = TableState {
        exists: true,
        has_rows: true,
        ..TableState::default()
    };
    let plan = plan_migration("ent_invoice", Some(&invoice()), next, &state);
    assert!(!plan.is_breaking(), "{:?}", plan.breaking);
    render_plan(dialect, "ent_invoice", &plan)
}

#[test]
fn alter_statements() {
    let mut next = invoice();
    next.fields.remove(1); // customerId hidden
    next.fields[0].max_length = Some(40); // string without limit -> with limit is breaking: undo
    next.fields[0].max_length = None;
    next.fields[3].required = false;
    let mut note = FieldDef::new("note", FieldType::String);
    note.required = true;
    note.max_length = Some(20);
    note.default = Some(json!("it's"));
    next.fields.push(note);
    let mut flag = FieldDef::new("paid", FieldType::Boolean);
    flag.default = Some(json!(true));
    next.fields.push(flag);
    let mut idx = FieldDef::new("rank", FieldType::Integer);
    idx.indexed = true;
    next.fields.push(idx);
    assert_eq!(
        migrate(Dialect::Postgres, &next),
        vec![
            r#"ALTER TABLE "core"."ent_invoice" ADD COLUMN "note" varchar(20) COLLATE "C" NOT NULL DEFAULT 'it''s'"#,
            r#"ALTER TABLE "core"."ent_invoice" ADD COLUMN "paid" boolean DEFAULT true"#,
            r#"ALTER TABLE "core"."ent_invoice" ADD COLUMN "rank" bigint"#,
            r#"ALTER TABLE "core"."ent_invoice" ALTER COLUMN "customer_id" DROP NOT NULL"#,
            r#"CREATE INDEX IF NOT EXISTS "ent_invoice_rank_id_idx" ON "core"."ent_invoice" ("tenant_id", "realm_id", "rank" NULLS FIRST, "id")"#,
        ]
    );
    assert_eq!(
        migrate(Dialect::Sqlite, &next),
        vec![
            r#"ALTER TABLE "ent_invoice" ADD COLUMN "note" TEXT DEFAULT 'it''s'"#,
            r#"ALTER TABLE "ent_invoice" ADD COLUMN "paid" INTEGER DEFAULT 1"#,
            r#"ALTER TABLE "ent_invoice" ADD COLUMN "rank" INTEGER"#,
            r#"CREATE INDEX IF NOT EXISTS "ent_invoice_rank_id_idx" ON "ent_invoice" ("tenant_id", "realm_id", "rank", "id")"#,
        ]
    );
}

#[test]
fn widen_and_drop_index() {
    let mut prev = invoice();
    prev.fields[0].max_length = Some(20);
    prev.fields[4].indexed = true;
    let mut next = prev.clone();
    next.fields[0].max_length = Some(80);
    next.fields[2].precision = Some(20);
    next.fields[4].indexed = false;
    next.fields[3].enum_values = Some(vec![
        "draft".into(),
        "sent".into(),
        "paid".into(),
        "void".into(),
    ]);
    let state = TableState {
        exists: true,
        has_rows: true,
        ..TableState::default()
    };
    let plan = plan_migration("ent_invoice", Some(&prev), &next, &state);
    assert!(!plan.is_breaking(), "{:?}", plan.breaking);
    assert_eq!(
        render_plan(Dialect::Postgres, "ent_invoice", &plan),
        vec![
            r#"DROP INDEX IF EXISTS "core"."ent_invoice_due_date_id_idx""#,
            r#"ALTER TABLE "core"."ent_invoice" ALTER COLUMN "invoice_number" TYPE varchar(80) COLLATE "C""#,
            r#"ALTER TABLE "core"."ent_invoice" ALTER COLUMN "total_amount" TYPE numeric(20,2)"#,
        ]
    );
    assert_eq!(
        render_plan(Dialect::Sqlite, "ent_invoice", &plan),
        vec![r#"DROP INDEX IF EXISTS "ent_invoice_due_date_id_idx""#]
    );
}

#[test]
fn literals_are_safe() {
    let l = |v| literal(Dialect::Postgres, FieldType::String, &v);
    assert_eq!(l(json!("a'; DROP TABLE x; --")), "'a''; DROP TABLE x; --'");
    assert_eq!(l(json!(null)), "NULL");
    assert_eq!(l(json!(12.5)), "12.5");
    assert_eq!(l(json!(-3)), "-3");
    assert_eq!(l(json!({ "k": "it's" })), r#"'{"k":"it''s"}'"#);
    // A backslash: an escape string on PostgreSQL, safe whatever standard_conforming_strings.
    assert_eq!(l(json!(r"a\' OR 1=1 --")), r"E'a\\'' OR 1=1 --'");
    assert_eq!(
        literal(Dialect::Sqlite, FieldType::String, &json!(r"a\'b")),
        r"'a\''b'"
    );
    assert_eq!(
        literal(Dialect::Sqlite, FieldType::Decimal, &json!(1.25)),
        "'1.25'"
    );
    assert_eq!(
        literal(Dialect::Sqlite, FieldType::Boolean, &json!(false)),
        "0"
    );
}

#[test]
fn column_types() {
    let col = |t: FieldType| metaengine_core::plan::ColumnDef::of(&FieldDef::new("x", t), true);
    let pg: Vec<String> = FieldType::ALL
        .iter()
        .map(|t| column_type(Dialect::Postgres, &col(*t)))
        .collect();
    assert_eq!(
        pg,
        [
            "text COLLATE \"C\"",
            "text COLLATE \"C\"",
            "bigint",
            "double precision",
            "numeric(18,2)",
            "boolean",
            "date",
            "timestamptz(3)",
            "text COLLATE \"C\"",
            "uuid",
            "jsonb"
        ]
    );
    let lite: Vec<String> = FieldType::ALL
        .iter()
        .map(|t| column_type(Dialect::Sqlite, &col(*t)))
        .collect();
    assert_eq!(
        lite,
        [
            "TEXT", "TEXT", "INTEGER", "REAL", "TEXT", "INTEGER", "TEXT", "TEXT", "TEXT", "TEXT",
            "TEXT"
        ]
    );
}

#[test]
fn table_maintenance_statements_quote_every_identifier() {
    use crate::{drop_column, drop_table, has_rows};
    assert_eq!(
        drop_table(Dialect::Postgres, "ent_invoice"),
        r#"DROP TABLE IF EXISTS "core"."ent_invoice" CASCADE"#
    );
    assert_eq!(
        drop_column(Dialect::Sqlite, "ent_invoice", "notes"),
        r#"ALTER TABLE "ent_invoice" DROP COLUMN "notes""#
    );
    assert_eq!(
        has_rows(Dialect::Postgres, "ent_invoice"),
        r#"SELECT EXISTS (SELECT 1 FROM "core"."ent_invoice")"#
    );
}

#[test]
fn sqlite_rebuilds_an_integer_column_that_becomes_a_decimal() {
    let mut prev = invoice();
    let mut qty = FieldDef::new("qty", FieldType::Integer);
    qty.indexed = true;
    prev.fields.push(qty);
    let mut next = prev.clone();
    let last = next.fields.len() - 1;
    next.fields[last].field_type = FieldType::Decimal;
    next.fields[last].precision = Some(30);
    next.fields[last].scale = Some(2);
    let state = TableState {
        exists: true,
        has_rows: true,
        ..TableState::default()
    };
    let plan = plan_migration("ent_invoice", Some(&prev), &next, &state);
    assert!(!plan.is_breaking(), "{:?}", plan.breaking);
    let sqlite = render_plan(Dialect::Sqlite, "ent_invoice", &plan);
    assert_eq!(sqlite.len(), 6, "{sqlite:#?}");
    assert_eq!(
        sqlite[0],
        r#"DROP INDEX IF EXISTS "ent_invoice_qty_id_idx""#
    );
    assert_eq!(
        sqlite[1],
        r#"ALTER TABLE "ent_invoice" ADD COLUMN "_retype_qty" TEXT"#
    );
    assert!(
        sqlite[2]
            .starts_with(r#"UPDATE "ent_invoice" SET "_retype_qty" = CASE WHEN "qty" IS NULL"#)
    );
    assert_eq!(sqlite[3], r#"ALTER TABLE "ent_invoice" DROP COLUMN "qty""#);
    assert_eq!(
        sqlite[4],
        r#"ALTER TABLE "ent_invoice" RENAME COLUMN "_retype_qty" TO "qty""#
    );
    assert!(sqlite[5].starts_with(r#"CREATE INDEX IF NOT EXISTS "ent_invoice_qty_id_idx""#));
    assert_eq!(
        render_plan(Dialect::Postgres, "ent_invoice", &plan),
        [r#"ALTER TABLE "core"."ent_invoice" ALTER COLUMN "qty" TYPE numeric(30,2)"#]
    );
}

#[test]
fn data_checks_bind_their_values() {
    use crate::data_check;
    use metaengine_core::plan::{DataCheck, RowsThat};
    let check = |rows| DataCheck {
        pointer: "/fields/0/enumValues".into(),
        message: "m".into(),
        column: "status".into(),
        rows,
    };
    let (sql, binds) = data_check(
        Dialect::Postgres,
        "ent_invoice",
        &check(RowsThat::UseValues {
            values: vec!["a'b".into(), "c".into()],
        }),
    );
    assert_eq!(
        sql,
        r#"SELECT EXISTS (SELECT 1 FROM "core"."ent_invoice" WHERE "status" IN ($1, $2))"#
    );
    assert_eq!(binds, ["a'b", "c"]);
    let (sql, binds) = data_check(
        Dialect::Sqlite,
        "ent_invoice",
        &check(RowsThat::AreLongerThan { max_length: 7 }),
    );
    assert_eq!(
        sql,
        r#"SELECT EXISTS (SELECT 1 FROM "ent_invoice" WHERE length("status") > 7)"#
    );
    assert!(binds.is_empty());
}
