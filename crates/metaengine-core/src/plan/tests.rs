use super::*;
use serde_json::json;

fn schema(fields: serde_json::Value) -> EntitySchema {
    serde_json::from_value(json!({ "fields": fields })).unwrap_or_else(|e| panic!("{e}"))
}

fn state(has_rows: bool) -> TableState {
    TableState {
        exists: true,
        has_rows,
        ..TableState::default()
    }
}

fn base() -> EntitySchema {
    schema(json!([
        { "name": "title", "type": "string", "maxLength": 50 },
        { "name": "count", "type": "integer" },
        { "name": "status", "type": "enum", "enumValues": ["a", "b"] },
        { "name": "amount", "type": "decimal", "precision": 10, "scale": 2 }
    ]))
}

fn with(change: impl FnOnce(&mut EntitySchema)) -> EntitySchema {
    let mut s = base();
    change(&mut s);
    s
}

fn plan(next: &EntitySchema, rows: bool) -> MigrationPlan {
    plan_migration("ent_t", Some(&base()), next, &state(rows))
}

fn pointers(plan: &MigrationPlan) -> Vec<&str> {
    plan.breaking.iter().map(|p| p.pointer.as_str()).collect()
}

/// The data checks of a plan: pointer and the rows that would break it.
fn checks(plan: &MigrationPlan) -> Vec<(&str, &RowsThat)> {
    plan.checks
        .iter()
        .map(|c| (c.pointer.as_str(), &c.rows))
        .collect()
}

#[test]
fn new_table() {
    let p = plan_migration("ent_t", None, &base(), &TableState::default());
    assert!(!p.is_breaking());
    let MigrationStep::CreateTable { columns } = &p.steps[0] else {
        panic!("expected create table, got {:?}", p.steps[0]);
    };
    assert_eq!(columns.len(), 4);
    assert_eq!(columns[3].precision, Some(10));
    assert_eq!(columns[0].max_length, Some(50));
    assert!(
        matches!(&p.steps[1], MigrationStep::CreateIndex(i) if i.name == "ent_t_created_at_id_idx")
    );
    assert_eq!(p.steps.len(), 2);
}

#[test]
fn same_schema_is_noop() {
    assert!(plan(&base(), true).is_noop());
}

#[test]
fn field_added_optional() {
    let next = with(|s| s.fields.push(FieldDef::new("note", FieldType::Text)));
    let p = plan(&next, true);
    assert_eq!(
        p.steps,
        vec![MigrationStep::AddColumn(ColumnDef::of(
            &next.fields[4],
            true
        ))]
    );
}

#[test]
fn field_added_required_with_default() {
    let mut f = FieldDef::new("note", FieldType::Text);
    f.required = true;
    f.default = Some(json!("none"));
    let next = with(|s| s.fields.push(f.clone()));
    let p = plan(&next, true);
    let MigrationStep::AddColumn(col) = &p.steps[0] else {
        panic!("{:?}", p.steps);
    };
    assert!(!col.nullable);
    assert_eq!(col.default, Some(json!("none")));
}

#[test]
fn field_added_required_without_default() {
    let mut f = FieldDef::new("note", FieldType::Text);
    f.required = true;
    let next = with(|s| s.fields.push(f.clone()));
    let p = plan(&next, true);
    assert!(p.is_breaking());
    assert_eq!(pointers(&p), ["/fields/4/required"]);
    assert!(p.breaking[0].message.contains("`note`"));
    let p = plan(&next, false);
    assert!(!p.is_breaking());
    assert!(matches!(&p.steps[0], MigrationStep::AddColumn(c) if !c.nullable));
}

#[test]
fn field_removed_is_hidden_and_comes_back() {
    let next = with(|s| {
        s.fields.remove(1);
    });
    let p = plan(&next, true);
    assert_eq!(
        p.steps,
        vec![MigrationStep::HideColumn {
            column: "count".into()
        }]
    );

    // Rollback: the previous table state has `count` hidden.
    let mut st = state(true);
    st.hidden_columns = vec!["count".into()];
    st.hidden_fields = vec![FieldDef::new("count", FieldType::Integer)];
    let p = plan_migration("ent_t", Some(&next), &base(), &st);
    assert_eq!(
        p.steps,
        vec![MigrationStep::UnhideColumn {
            column: "count".into()
        }]
    );

    // Back with a widened type: unhide then widen.
    let widened = with(|s| s.fields[1].field_type = FieldType::Number);
    let p = plan_migration("ent_t", Some(&next), &widened, &st);
    assert!(!p.is_breaking());
    assert!(matches!(&p.steps[1], MigrationStep::WidenColumn { column, .. } if column == "count"));

    // Back with an incompatible type: breaking.
    let changed = with(|s| s.fields[1].field_type = FieldType::Boolean);
    let p = plan_migration("ent_t", Some(&next), &changed, &st);
    assert_eq!(pointers(&p), ["/fields/1/type"]);
}

fn widened_column(p: &MigrationPlan) -> &str {
    assert!(!p.is_breaking(), "{:?}", p.breaking);
    assert_eq!(p.steps.len(), 1, "{:?}", p.steps);
    match &p.steps[0] {
        MigrationStep::WidenColumn { column, .. } => column,
        other => panic!("expected widen, got {other:?}"),
    }
}

#[test]
fn safe_widenings() {
    let to_number = with(|s| s.fields[1].field_type = FieldType::Number);
    assert_eq!(widened_column(&plan(&to_number, true)), "count");
    let to_decimal = with(|s| s.fields[1].field_type = FieldType::Decimal);
    assert_eq!(widened_column(&plan(&to_decimal, true)), "count");
    let longer = with(|s| s.fields[0].max_length = Some(100));
    assert_eq!(widened_column(&plan(&longer, true)), "title");
    let unlimited = with(|s| s.fields[0].max_length = None);
    assert_eq!(widened_column(&plan(&unlimited, true)), "title");
    let to_text = with(|s| s.fields[0].field_type = FieldType::Text);
    assert_eq!(widened_column(&plan(&to_text, true)), "title");
    let more = with(|s| s.fields[2].enum_values = Some(vec!["a".into(), "b".into(), "c".into()]));
    assert_eq!(widened_column(&plan(&more, true)), "status");
    let digits = with(|s| {
        s.fields[3].precision = Some(14);
        s.fields[3].scale = Some(4);
    });
    let p = plan(&digits, true);
    assert_eq!(widened_column(&p), "amount");
    let MigrationStep::WidenColumn { from, to, .. } = &p.steps[0] else {
        panic!("widen");
    };
    assert_eq!(
        (from.precision, from.scale, to.precision, to.scale),
        (Some(10), Some(2), Some(14), Some(4))
    );
}

#[test]
fn narrowings_are_checked_against_the_rows() {
    let shorter = with(|s| s.fields[0].max_length = Some(10));
    let p = plan(&shorter, true);
    assert!(!p.is_breaking());
    assert_eq!(
        checks(&p),
        [(
            "/fields/0/maxLength",
            &RowsThat::AreLongerThan { max_length: 10 }
        )]
    );
    assert!(
        matches!(&p.steps[..], [MigrationStep::NarrowColumn { column, .. }] if column == "title")
    );
    let scale = with(|s| s.fields[3].scale = Some(1));
    assert_eq!(
        checks(&plan(&scale, true)),
        [(
            "/fields/3/scale",
            &RowsThat::DoNotFitDecimal {
                precision: 10,
                scale: 1
            }
        )]
    );
    let digits = with(|s| s.fields[3].scale = Some(4));
    assert_eq!(checks(&plan(&digits, true))[0].0, "/fields/3/precision");
    // An empty table has no row to ask.
    assert!(plan(&shorter, false).checks.is_empty());
    let limited = with(|s| s.fields[1] = FieldDef::new("count", FieldType::Integer));
    assert!(plan(&limited, true).is_noop());
}

#[test]
fn an_integer_becomes_a_decimal_if_its_values_fit() {
    let narrow = with(|s| {
        s.fields[1].field_type = FieldType::Decimal;
        s.fields[1].precision = Some(6);
        s.fields[1].scale = Some(2);
    });
    let p = plan(&narrow, true);
    assert_eq!(
        checks(&p),
        [(
            "/fields/1/precision",
            &RowsThat::DoNotFitDecimal {
                precision: 6,
                scale: 2
            }
        )]
    );
    let wide = with(|s| {
        s.fields[1].field_type = FieldType::Decimal;
        s.fields[1].precision = Some(21);
        s.fields[1].scale = Some(2);
    });
    assert!(plan(&wide, true).checks.is_empty());
}

#[test]
fn type_change_is_breaking() {
    let next = with(|s| s.fields[1].field_type = FieldType::String);
    let p = plan(&next, false);
    assert_eq!(pointers(&p), ["/fields/1/type"]);
    assert!(p.breaking[0].message.contains("from `integer` to `string`"));
    let back = with(|s| s.fields[0].field_type = FieldType::Integer);
    assert_eq!(pointers(&plan(&back, false)), ["/fields/0/type"]);
}

#[test]
fn enum_value_removed() {
    let next = with(|s| s.fields[2].enum_values = Some(vec!["a".into()]));
    let p = plan(&next, true);
    assert!(!p.is_breaking());
    assert_eq!(
        checks(&p),
        [(
            "/fields/2/enumValues",
            &RowsThat::UseValues {
                values: vec!["b".into()]
            }
        )]
    );
    assert!(p.checks[0].message.contains("`b`"));
    assert!(plan(&next, false).checks.is_empty());
}

#[test]
fn required_changes() {
    let required = with(|s| s.fields[1].required = true);
    let p = plan(&required, true);
    assert_eq!(checks(&p), [("/fields/1/required", &RowsThat::HaveNoValue)]);
    assert_eq!(p.steps, plan(&required, false).steps);
    assert_eq!(
        plan(&required, false).steps,
        vec![MigrationStep::SetNotNull {
            column: "count".into()
        }]
    );
    let p = plan_migration("ent_t", Some(&required), &base(), &state(true));
    assert_eq!(
        p.steps,
        vec![MigrationStep::DropNotNull {
            column: "count".into()
        }]
    );
}

#[test]
fn indexes_added_and_removed() {
    let indexed = with(|s| s.fields[1].indexed = true);
    let p = plan(&indexed, true);
    assert!(!p.is_breaking());
    assert!(
        matches!(&p.steps[..], [MigrationStep::CreateIndex(i)] if i.name == "ent_t_count_id_idx")
    );
    let p = plan_migration("ent_t", Some(&indexed), &base(), &state(true));
    assert_eq!(
        p.steps,
        vec![MigrationStep::DropIndex {
            name: "ent_t_count_id_idx".into()
        }]
    );
    let unique = with(|s| s.fields[0].unique = true);
    let p = plan(&unique, true);
    assert!(
        matches!(&p.steps[..], [MigrationStep::CreateIndex(i)] if i.unique && i.name == "ent_t_title_key")
    );
}

#[test]
fn plan_json_is_camel_case() {
    let p = plan(&with(|s| s.fields[0].max_length = Some(100)), true);
    let v = serde_json::to_value(&p).unwrap_or_default();
    assert_eq!(v["steps"][0]["step"], json!("widenColumn"));
    assert_eq!(v["steps"][0]["to"]["maxLength"], json!(100));
    let back: MigrationPlan = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, p);
}

#[test]
fn a_new_unique_index_asks_whether_rows_repeat_values() {
    let unique = with(|s| s.fields[0].unique = true);
    let p = plan(&unique, true);
    assert_eq!(
        checks(&p),
        [(
            "/fields/0/unique",
            &RowsThat::RepeatValues {
                columns: vec!["title".into()]
            }
        )]
    );
    assert!(plan(&unique, false).checks.is_empty());
}

#[test]
fn a_unique_index_over_system_fields_points_at_its_definition() {
    let mut next = base();
    next.indexes = serde_json::from_value(json!([
        { "fields": ["realmId", "title", "-createdAt"], "unique": true }
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = plan(&next, true);
    assert_eq!(
        checks(&p),
        [(
            "/indexes/0",
            &RowsThat::RepeatValues {
                columns: vec!["title".into(), "created_at".into()]
            }
        )]
    );
}
