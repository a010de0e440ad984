//! The migration planner (SPEC §5): compares the schema a data table has with the schema being
//! activated and plans the steps, or lists the breaking changes that refuse the activation.
//!
//! Data is never dropped: a removed field's column is hidden (a separate, explicit `prune` drops
//! it) and comes back when its field does. Safe widenings are integer → number or decimal,
//! string → text, a larger or removed `maxLength`, more enum values, and a decimal with no fewer
//! digits before or after the point. Changes that some values survive (an enum value removed, a
//! shorter `maxLength`, fewer decimal digits, integer → a decimal with fewer than 19 integer
//! digits, a field becoming required) are planned with a [`DataCheck`]: the store asks the rows,
//! and refuses the activation only when a row holds a value the change would not keep. Other type
//! changes are breaking. Steps are ordered: index drops, column changes, index creations. The
//! planner is pure; the dialect layer (`metaengine-sql`) turns a plan into statements.

mod types;

#[cfg(test)]
mod tests;

pub use types::*;

use crate::compile::compile_indexes;
use crate::ident::{column_name, field_column};
use crate::schema::{EntitySchema, FieldDef, FieldType};
use crate::validate::Problem;

/// Plans the migration of the data table `table` (unquoted, e.g. `ent_invoice`) from `previous`
/// (the schema the table currently reflects: the last activated version; `None` when no version
/// has shaped the table, then only `hidden_columns` are taken as present) to `next`.
pub fn plan_migration(
    table: &str,
    previous: Option<&EntitySchema>,
    next: &EntitySchema,
    state: &TableState,
) -> MigrationPlan {
    let next_indexes = compile_indexes(table, next);
    let mut planner = Planner {
        state,
        indexes: &next_indexes,
        plan: MigrationPlan::default(),
    };
    if !state.exists {
        let columns = next
            .fields
            .iter()
            .map(|f| ColumnDef::of(f, !f.required))
            .collect();
        planner
            .plan
            .steps
            .push(MigrationStep::CreateTable { columns });
        planner
            .plan
            .steps
            .extend(next_indexes.iter().cloned().map(MigrationStep::CreateIndex));
        return planner.plan;
    }
    let prev_indexes = previous
        .map(|p| compile_indexes(table, p))
        .unwrap_or_default();
    for old in prev_indexes.iter().filter(|i| !next_indexes.contains(i)) {
        let name = old.name.clone();
        planner.plan.steps.push(MigrationStep::DropIndex { name });
    }
    let prev_fields: &[FieldDef] = previous.map(|p| p.fields.as_slice()).unwrap_or_default();
    for (i, field) in next.fields.iter().enumerate() {
        let at = format!("/fields/{i}");
        match prev_fields.iter().find(|f| f.name == field.name) {
            Some(old) => planner.changed_field(&at, old, field),
            None => planner.added_field(&at, field),
        }
    }
    for old in prev_fields {
        if next.field(&old.name).is_none() {
            let column = column_name(&old.name);
            planner
                .plan
                .steps
                .push(MigrationStep::HideColumn { column });
        }
    }
    for index in next_indexes.iter().filter(|i| !prev_indexes.contains(i)) {
        if index.unique {
            planner.unique_index(next, index);
        }
        planner.step(MigrationStep::CreateIndex(index.clone()));
    }
    planner.plan
}

/// Most decimal digits of a 64-bit integer: an integer column becomes a decimal with at least
/// this many integer digits without looking at the rows.
const INTEGER_DIGITS: u32 = 19;

struct Planner<'a> {
    state: &'a TableState,
    /// The new schema's indexes.
    indexes: &'a [crate::compile::CompiledIndex],
    plan: MigrationPlan,
}

impl Planner<'_> {
    fn breaking(&mut self, pointer: String, message: String) {
        self.plan.breaking.push(Problem::new(pointer, message));
    }

    /// A change that breaks if a row matches `rows` (only asked when the table has rows).
    fn check(&mut self, pointer: String, message: String, column: &str, rows: RowsThat) {
        if self.state.has_rows {
            self.plan.checks.push(DataCheck {
                pointer,
                message,
                column: column.to_owned(),
                rows,
            });
        }
    }

    fn step(&mut self, step: MigrationStep) {
        self.plan.steps.push(step);
    }

    /// A field that is in `next` but not in `previous`: a new column, or a hidden one coming back.
    fn added_field(&mut self, at: &str, field: &FieldDef) {
        let column = column_name(&field.name);
        if self.state.hidden_columns.contains(&column) {
            self.step(MigrationStep::UnhideColumn {
                column: column.clone(),
            });
            let old = self
                .state
                .hidden_fields
                .iter()
                .find(|f| column_name(&f.name) == column);
            // The column stays nullable: rows written while it was hidden have no value in it.
            if let Some(old) = old {
                let old = FieldDef {
                    required: false,
                    ..old.clone()
                };
                let new = FieldDef {
                    required: false,
                    ..field.clone()
                };
                self.changed_type(at, &old, &new);
            }
            return;
        }
        let name = &field.name;
        let has_rows = self.state.has_rows;
        if field.required && field.default.is_none() && has_rows {
            self.breaking(
                format!("{at}/required"),
                format!(
                    "new field `{name}` is required and has no default, but the table has rows \
                     that would have no value; give it a default or make it optional"
                ),
            );
            return;
        }
        let not_null = field.required && (field.default.is_some() || !has_rows);
        self.step(MigrationStep::AddColumn(ColumnDef::of(field, !not_null)));
    }

    /// A field in both schemas.
    fn changed_field(&mut self, at: &str, old: &FieldDef, new: &FieldDef) {
        self.changed_type(at, old, new);
        let name = &new.name;
        let column = column_name(name);
        if !old.required && new.required {
            self.check(
                format!("{at}/required"),
                format!("field `{name}` becomes required, but rows have no value for it"),
                &column,
                RowsThat::HaveNoValue,
            );
            self.step(MigrationStep::SetNotNull { column });
        } else if old.required && !new.required {
            self.step(MigrationStep::DropNotNull { column });
        }
    }

    /// Type, length, enum values and decimal digits of a field in both schemas.
    fn changed_type(&mut self, at: &str, old: &FieldDef, new: &FieldDef) {
        let name = &new.name;
        let (from, to) = (old.field_type, new.field_type);
        if from != to {
            if is_widening(from, to) {
                let (p, s) = new.decimal_precision_scale();
                if to == FieldType::Decimal && p.saturating_sub(s) < INTEGER_DIGITS {
                    self.check(
                        format!("{at}/precision"),
                        format!(
                            "field `{name}` becomes decimal({p},{s}), but rows hold integers \
                             with more than {} digits",
                            p.saturating_sub(s)
                        ),
                        &column_name(name),
                        RowsThat::DoNotFitDecimal {
                            precision: p,
                            scale: s,
                        },
                    );
                }
                self.widen(old, new);
            } else {
                self.breaking(
                    format!("{at}/type"),
                    format!(
                        "field `{name}` changes type from `{from}` to `{to}`, which is not a safe \
                         widening; existing values may not convert"
                    ),
                );
            }
            return;
        }
        match to {
            FieldType::String | FieldType::Text => self.changed_length(at, old, new),
            FieldType::Enum => self.changed_enum(at, old, new),
            FieldType::Decimal => self.changed_decimal(at, old, new),
            _ => {}
        }
    }

    fn changed_length(&mut self, at: &str, old: &FieldDef, new: &FieldDef) {
        let name = &new.name;
        let message = match (old.max_length, new.max_length) {
            (a, b) if a == b => return,
            (Some(a), Some(b)) if b < a => {
                format!("maxLength of field `{name}` shrinks from {a} to {b}, but rows are longer")
            }
            (None, Some(b)) => {
                format!("field `{name}` gains a maxLength of {b}, but rows are longer")
            }
            _ => {
                if new.field_type == FieldType::String {
                    self.widen(old, new);
                }
                return;
            }
        };
        if let Some(max_length) = new.max_length {
            self.check(
                format!("{at}/maxLength"),
                message,
                &column_name(name),
                RowsThat::AreLongerThan { max_length },
            );
        }
        if new.field_type == FieldType::String {
            self.narrow(old, new);
        }
    }

    fn changed_enum(&mut self, at: &str, old: &FieldDef, new: &FieldDef) {
        let name = &new.name;
        let old_values = old.enum_values.as_deref().unwrap_or_default();
        let new_values = new.enum_values.as_deref().unwrap_or_default();
        let removed: Vec<&String> = old_values
            .iter()
            .filter(|v| !new_values.contains(v))
            .collect();
        if !removed.is_empty() {
            let list = removed
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            self.check(
                format!("{at}/enumValues"),
                format!("enum values {list} of field `{name}` are removed, but rows use them"),
                &column_name(name),
                RowsThat::UseValues {
                    values: removed.into_iter().cloned().collect(),
                },
            );
        }
        if new_values.iter().any(|v| !old_values.contains(v)) {
            self.widen(old, new);
        }
    }

    fn changed_decimal(&mut self, at: &str, old: &FieldDef, new: &FieldDef) {
        let name = &new.name;
        let (p0, s0) = old.decimal_precision_scale();
        let (p1, s1) = new.decimal_precision_scale();
        if (p0, s0) == (p1, s1) {
            return;
        }
        let int0 = p0.saturating_sub(s0);
        let int1 = p1.saturating_sub(s1);
        if s1 >= s0 && int1 >= int0 {
            self.widen(old, new);
        } else {
            let key = if s1 < s0 { "scale" } else { "precision" };
            self.check(
                format!("{at}/{key}"),
                format!(
                    "field `{name}` narrows from decimal({p0},{s0}) to decimal({p1},{s1}), but \
                     rows hold values that do not fit"
                ),
                &column_name(name),
                RowsThat::DoNotFitDecimal {
                    precision: p1,
                    scale: s1,
                },
            );
            self.narrow(old, new);
        }
    }

    fn widen(&mut self, old: &FieldDef, new: &FieldDef) {
        let from = ColumnDef::of(old, !old.required);
        let to = ColumnDef::of(new, !new.required);
        let indexes = self
            .indexes
            .iter()
            .filter(|i| i.columns.iter().any(|(c, _)| *c == to.name))
            .cloned()
            .collect();
        self.step(MigrationStep::WidenColumn {
            column: to.name.clone(),
            from,
            to,
            indexes,
        });
    }

    /// A new unique index: refused if rows already repeat its values (pointer: the field's
    /// `unique`, or the schema's index).
    fn unique_index(&mut self, next: &EntitySchema, index: &crate::compile::CompiledIndex) {
        let columns: Vec<String> = index
            .columns
            .iter()
            .map(|(c, _)| c.clone())
            .filter(|c| c != "tenant_id" && c != "realm_id")
            .collect();
        let Some(first) = columns.first().cloned() else {
            return;
        };
        let field = next
            .fields
            .iter()
            .position(|f| f.unique && columns == [column_name(&f.name)]);
        let pointer = match field {
            Some(i) => format!("/fields/{i}/unique"),
            None => next
                .indexes
                .iter()
                .position(|d| {
                    d.unique && {
                        let cols: Vec<String> = d
                            .columns()
                            .into_iter()
                            .map(|(n, _)| field_column(n))
                            .filter(|c| c != "tenant_id" && c != "realm_id")
                            .collect();
                        cols == columns
                    }
                })
                .map_or_else(String::new, |j| format!("/indexes/{j}")),
        };
        let names = columns
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        self.check(
            pointer,
            format!("a unique index over {names} is added, but rows repeat the same values"),
            &first,
            RowsThat::RepeatValues { columns },
        );
    }

    fn narrow(&mut self, old: &FieldDef, new: &FieldDef) {
        let from = ColumnDef::of(old, !old.required);
        let to = ColumnDef::of(new, !new.required);
        self.step(MigrationStep::NarrowColumn {
            column: to.name.clone(),
            from,
            to,
        });
    }
}

/// Type changes that keep every value: integer → number or decimal, string → text.
pub fn is_widening(from: FieldType, to: FieldType) -> bool {
    matches!(
        (from, to),
        (FieldType::Integer, FieldType::Number)
            | (FieldType::Integer, FieldType::Decimal)
            | (FieldType::String, FieldType::Text)
    )
}
