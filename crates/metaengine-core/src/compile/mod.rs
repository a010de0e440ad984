//! The compiler (SPEC §4): a validated [`EntitySchema`] becomes a [`CompiledModel`], the runtime
//! model the data API works from.
//!
//! The pipeline has named stages, each a plain function: fields (column names, select fragments,
//! validators), policies (conditions parsed into [`CompiledCondition`]s, sorted by priority),
//! indexes ([`compile_indexes`]) and the select list. The compiler is pure and deterministic: the
//! same input gives an identical model (the caller passes `compiled_at`).
//!
//! It expects a schema that passed [`crate::validate_schema`]; it never fails, and whatever
//! validation would have refused is carried along as is (an unknown condition path becomes
//! [`ValuePath::Unknown`], which denies at evaluation).

mod index;
mod types;

#[cfg(test)]
mod tests;

pub use index::{compile_indexes, index_name};
pub use types::*;

use crate::hash::schema_hash;
use crate::ident::{SYSTEM_COLUMNS, SYSTEM_FIELDS, column_name, quote_ident, table_name};
use crate::record::Comparison;
use crate::schema::{Condition, EntitySchema, FieldDef, FieldType, PolicyDef, is_path_value};

/// Compiles one version of an entity into its runtime model.
pub fn compile(
    entity: &str,
    version: &str,
    schema: &EntitySchema,
    compiled_by: &str,
    compiled_at: &str,
) -> CompiledModel {
    let table = table_name(entity);
    let fields: Vec<CompiledField> = schema.fields.iter().map(compile_field).collect();
    let select_list = select_list(&fields);
    CompiledModel {
        entity: entity.to_owned(),
        version: version.to_owned(),
        hash: schema_hash(schema),
        compiled_at: compiled_at.to_owned(),
        compiled_by: compiled_by.to_owned(),
        policies: compile_policies(&schema.policies, &fields),
        indexes: compile_indexes(&table, schema),
        table_name: table,
        fields,
        select_list,
    }
}

/// `"col" AS "name"`.
pub fn select_as(column: &str, name: &str) -> String {
    format!("{} AS {}", quote_ident(column), quote_ident(name))
}

/// The select list: system columns, then the fields' `select_as` fragments, joined by `, `.
fn select_list(fields: &[CompiledField]) -> String {
    SYSTEM_COLUMNS
        .iter()
        .zip(SYSTEM_FIELDS)
        .map(|(column, name)| select_as(column, name))
        .chain(fields.iter().map(|f| f.select_as.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stage "fields": one field's column, select fragment and validator.
pub(crate) fn compile_field(field: &FieldDef) -> CompiledField {
    let column = column_name(&field.name);
    let decimal = (field.field_type == FieldType::Decimal).then(|| field.decimal_precision_scale());
    let validator = FieldValidator {
        field_type: field.field_type,
        required: field.required,
        min: field.min,
        max: field.max,
        min_length: field.min_length,
        max_length: field.max_length,
        pattern: field.pattern.clone(),
        enum_values: field.enum_values.clone(),
        reference_to: field.reference_to.clone(),
        precision: decimal.map(|(p, _)| p),
        scale: decimal.map(|(_, s)| s),
    };
    CompiledField {
        name: field.name.clone(),
        select_as: select_as(&column, &field.name),
        column_name: column,
        field_type: field.field_type,
        required: field.required,
        unique: field.unique,
        sensitive: field.sensitive,
        default: field.default.clone(),
        validator,
    }
}

/// Stage "policies": conditions parsed, sorted by priority descending (stable), each knowing how
/// the record field it names compares.
fn compile_policies(policies: &[PolicyDef], fields: &[CompiledField]) -> Vec<CompiledPolicy> {
    let mut out: Vec<CompiledPolicy> = policies
        .iter()
        .map(|p| CompiledPolicy {
            name: p.name.clone(),
            effect: p.effect,
            action: p.action,
            priority: p.priority,
            fields: p.fields.clone(),
            conditions: p
                .conditions
                .iter()
                .map(|c| {
                    let mut compiled = compile_condition(c);
                    compiled.comparison = comparison(&compiled, fields);
                    compiled
                })
                .collect(),
        })
        .collect();
    // `sort_by_key` is stable: equal priorities keep their schema order.
    out.sort_by_key(|p| std::cmp::Reverse(p.priority));
    out
}

/// How the values of a condition compare: by the type of the record field it names, its subject
/// first (a validated schema compares a record field only with one of the same comparison).
fn comparison(condition: &CompiledCondition, fields: &[CompiledField]) -> Comparison {
    let value = match &condition.value {
        ConditionValue::Path(path) => Some(path),
        _ => None,
    };
    [Some(&condition.subject), value]
        .into_iter()
        .flatten()
        .find_map(|path| match path {
            ValuePath::Record(name) => crate::ident::system_field(name)
                .map(|system| system.field_type)
                .or_else(|| {
                    fields
                        .iter()
                        .find(|f| f.name == *name)
                        .map(|f| f.field_type)
                }),
            _ => None,
        })
        .map_or(Comparison::Json, Comparison::of)
}

/// Parses one condition: the `field` is a path; a string value starting with `user.`,
/// `context.` or `record.` is a path too, any other value a literal. Its comparison is
/// [`Comparison::Json`]: the compiler sets the record field's when it compiles the policies.
pub fn compile_condition(condition: &Condition) -> CompiledCondition {
    let value = match &condition.value {
        None => ConditionValue::None,
        Some(v) => match is_path_value(v) {
            Some(path) => ConditionValue::Path(ValuePath::parse(path)),
            None => ConditionValue::Literal(v.clone()),
        },
    };
    CompiledCondition {
        subject: ValuePath::parse(&condition.field),
        operator: condition.operator,
        value,
        comparison: Comparison::Json,
    }
}
