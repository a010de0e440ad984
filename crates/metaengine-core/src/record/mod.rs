//! Records of the generic data API (SPEC §7, §10, §11): a client's JSON record becomes validated,
//! typed column values ([`RecordValidator::prepare_create`], [`RecordValidator::prepare_update`]),
//! a `filter[<field>][<op>]=<value>` query parameter becomes a typed [`Filter`], and audit details
//! are kept free of sensitive values ([`redact`], [`changed_fields`]).
//!
//! Every problem of a write is reported at once, each with the JSON pointer `/<fieldName>`. A body
//! that is not an object, an unknown field or a system field is a [`WriteRejected::BadRequest`]
//! (400); field rules that fail are [`WriteRejected::Invalid`] (422).
//!
//! Values come out as [`SqlValue`]s, the only shape in which a value reaches a data statement:
//! string, text and enum as `Text`; integer as `Int`; number as `Float`; boolean as `Bool`; and as
//! `Text` in canonical form: decimal (`-?digits[.digits]`, no exponent, no trailing zero after the
//! point), date (`YYYY-MM-DD`), datetime (UTC, milliseconds, `Z`), reference (lowercase hyphenated
//! UUID) and json (its serialized text). JSON `null` means SQL `NULL`, also for a json field.
//!
//! Whether a referenced record exists in the caller's tenant needs the database: the data service
//! checks the pairs given by [`RecordValidator::references`].
//!
//! Limits: a decimal sent as a JSON number (not an integer) is read as an `f64` by `serde_json`
//! (without `arbitrary_precision`), so one with more than [`MAX_DECIMAL_NUMBER_DIGITS`]
//! significant digits is refused with a message asking for a string; digits written by the
//! client beyond what an `f64` keeps cannot be seen here. Datetimes keep milliseconds: further
//! digits are dropped.

mod audit;
mod convert;
mod decimal;
mod filter;

mod compare;
mod csv;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_filter;
#[cfg(test)]
mod tests_types;

pub use audit::{changed_between, changed_fields, changes, created_record, redact};
pub use compare::{Comparison, decimal_text_order};
pub use convert::MAX_DECIMAL_NUMBER_DIGITS;
pub use csv::CsvColumns;
pub use filter::{
    Filter, FilterOp, FilterRejected, FilterValue, MAX_LIST_VALUES, filter_value, parse_filter_key,
    unknown_filter_field,
};

use crate::compile::{CompiledField, CompiledModel};
use crate::ident::SYSTEM_FIELDS;
use crate::schema::FieldType;
use crate::validate::{Problem, describe, pointer};
use crate::value::SqlValue;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Largest compiled size of a `pattern` (the same limit as schema validation).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Why a write was refused. Both variants carry every problem found, each with the pointer
/// `/<fieldName>` (`""` for the body itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteRejected {
    /// The body is not an object, or names an unknown or system field (`bad_request`).
    #[error("bad request: {}", join(.0))]
    BadRequest(Vec<Problem>),
    /// Field values break the field rules (`validation_failed`).
    #[error("invalid record: {}", join(.0))]
    Invalid(Vec<Problem>),
}

impl WriteRejected {
    /// The problems, whichever the variant.
    pub fn problems(&self) -> &[Problem] {
        match self {
            WriteRejected::BadRequest(p) | WriteRejected::Invalid(p) => p,
        }
    }
}

fn join(problems: &[Problem]) -> String {
    let items: Vec<String> = problems.iter().map(ToString::to_string).collect();
    items.join("; ")
}

/// A reference value of a write: the data service checks that the record `id` of `entity` exists
/// in the caller's tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The reference field.
    pub field: &'a str,
    /// The entity it points to (`referenceTo`).
    pub entity: &'a str,
    /// The referenced id (lowercase hyphenated UUID).
    pub id: &'a str,
}

/// The rules of one field, ready to check (patterns compiled, decimal bounds in canonical text).
#[derive(Debug, Clone)]
pub(crate) struct FieldRule {
    pub(crate) name: String,
    pub(crate) field_type: FieldType,
    pub(crate) required: bool,
    pub(crate) sensitive: bool,
    pub(crate) default: Option<Value>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    /// `min` as a canonical decimal (decimal fields).
    pub(crate) min_text: Option<String>,
    /// `max` as a canonical decimal (decimal fields).
    pub(crate) max_text: Option<String>,
    pub(crate) min_length: Option<u32>,
    pub(crate) max_length: Option<u32>,
    /// Source and compiled form (`None` if it does not compile: every value is then refused).
    pub(crate) pattern: Option<(String, Option<Regex>)>,
    pub(crate) enum_values: Option<Vec<String>>,
    pub(crate) reference_to: Option<String>,
    pub(crate) precision: u32,
    pub(crate) scale: u32,
}

/// Checks a field's `default` exactly as a written value of the field is checked (type, bounds,
/// length, pattern, enum, decimal precision and scale, calendar, NUL); the error is the message.
/// Schema validation calls it so that a default the data API would refuse never reaches a table.
pub(crate) fn check_default(field: &crate::schema::FieldDef) -> Result<(), String> {
    let Some(default) = field.default.as_ref().filter(|d| !d.is_null()) else {
        return Ok(());
    };
    let mut rule = FieldRule::new(&crate::compile::compile_field(field));
    // The default's own value is shown in the schema already: name it plainly.
    rule.sensitive = true;
    convert::from_json(&rule, default).map(|_| ())
}

impl FieldRule {
    fn new(field: &CompiledField) -> FieldRule {
        let v = &field.validator;
        let decimal = field.field_type == FieldType::Decimal;
        let bound = |b: Option<f64>| b.filter(|_| decimal).and_then(decimal::bound_text);
        let pattern = v.pattern.as_ref().map(|source| {
            let re = RegexBuilder::new(source)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .ok();
            (source.clone(), re)
        });
        FieldRule {
            name: field.name.clone(),
            field_type: field.field_type,
            required: field.required,
            sensitive: field.sensitive,
            default: field.default.clone().filter(|d| !d.is_null()),
            min: v.min,
            max: v.max,
            min_text: bound(v.min),
            max_text: bound(v.max),
            min_length: v.min_length,
            max_length: v.max_length,
            pattern,
            enum_values: v.enum_values.clone(),
            reference_to: v.reference_to.clone(),
            precision: v
                .precision
                .unwrap_or(crate::schema::DEFAULT_DECIMAL_PRECISION),
            scale: v.scale.unwrap_or(crate::schema::DEFAULT_DECIMAL_SCALE),
        }
    }

    /// `, found …` describing a wrong value, or nothing for a sensitive field (its value is
    /// never echoed).
    pub(crate) fn found(&self, value: &Value) -> String {
        if self.sensitive {
            String::new()
        } else {
            format!(", found {}", describe(value))
        }
    }
}

/// The write rules of one compiled model, built once per model (patterns compiled once) and kept
/// by the data API for as long as the model is active.
#[derive(Debug, Clone)]
pub struct RecordValidator {
    fields: Vec<FieldRule>,
    by_name: HashMap<String, usize>,
}

impl RecordValidator {
    /// Builds the validator of `model`.
    pub fn new(model: &CompiledModel) -> RecordValidator {
        let fields: Vec<FieldRule> = model.fields.iter().map(FieldRule::new).collect();
        let by_name = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        RecordValidator { fields, by_name }
    }

    fn rule(&self, name: &str) -> Option<&FieldRule> {
        self.by_name.get(name).and_then(|i| self.fields.get(*i))
    }

    /// The field type of `name`, if the model has such a field.
    /// A field's type and whether it is `sensitive`.
    pub(crate) fn field_kind(&self, name: &str) -> Option<(FieldType, bool)> {
        self.rule(name).map(|r| (r.field_type, r.sensitive))
    }

    /// The values of a create, in the model's field order: every given field converted; absent
    /// fields with a default get the default; absent optional fields are not listed (the column
    /// default or `NULL` applies). A required field must be given and not `null`, unless it has a
    /// default, which then applies. `null` on an optional field is `NULL`.
    pub fn prepare_create(&self, input: &Value) -> Result<Vec<(String, SqlValue)>, WriteRejected> {
        let obj = self.check_keys(input)?;
        let mut values = Vec::with_capacity(self.fields.len());
        let mut problems = Vec::new();
        for rule in &self.fields {
            let given = obj.get(&rule.name).filter(|v| !v.is_null());
            let result = match (given, &rule.default) {
                (Some(value), _) => convert::from_json(rule, value),
                (None, Some(default)) => convert::from_json(rule, default)
                    .map_err(|why| format!("default of `{}` is invalid: {why}", rule.name)),
                (None, None) if rule.required => Err(format!("`{}` is required", rule.name)),
                (None, None) if obj.contains_key(&rule.name) => Ok(SqlValue::Null),
                (None, None) => continue,
            };
            match result {
                Ok(value) => values.push((rule.name.clone(), value)),
                Err(message) => problems.push(Problem::new(pointer("", &rule.name), message)),
            }
        }
        finish(values, problems)
    }

    /// The values of a partial update, in the order given: only the given fields; `null` on a
    /// required field is invalid, on an optional field it sets `NULL`. No default applies.
    pub fn prepare_update(&self, input: &Value) -> Result<Vec<(String, SqlValue)>, WriteRejected> {
        let obj = self.check_keys(input)?;
        let mut values = Vec::with_capacity(obj.len());
        let mut problems = Vec::new();
        for (key, value) in obj {
            let Some(rule) = self.rule(key) else {
                continue; // refused by `check_keys`
            };
            let result = match value {
                Value::Null if rule.required => Err(format!("`{key}` is required")),
                Value::Null => Ok(SqlValue::Null),
                value => convert::from_json(rule, value),
            };
            match result {
                Ok(value) => values.push((key.clone(), value)),
                Err(message) => problems.push(Problem::new(pointer("", key), message)),
            }
        }
        finish(values, problems)
    }

    /// The object of a write, or every bad-request problem: not an object, unknown fields,
    /// system fields.
    fn check_keys<'v>(&self, input: &'v Value) -> Result<&'v Map<String, Value>, WriteRejected> {
        let Some(obj) = input.as_object() else {
            let msg = format!("record must be an object, found {}", describe(input));
            return Err(WriteRejected::BadRequest(vec![Problem::new("", msg)]));
        };
        let problems: Vec<Problem> = obj
            .keys()
            .filter(|k| !self.by_name.contains_key(k.as_str()))
            .map(|key| {
                let msg = if SYSTEM_FIELDS.contains(&key.as_str()) {
                    format!("system field `{key}` cannot be written")
                } else {
                    format!("unknown field `{key}`")
                };
                Problem::new(pointer("", key), msg)
            })
            .collect();
        if problems.is_empty() {
            Ok(obj)
        } else {
            Err(WriteRejected::BadRequest(problems))
        }
    }

    /// The reference values among `values` (as returned by `prepare_*`), `NULL`s left out: the
    /// data service checks that each exists in the caller's tenant.
    pub fn references<'a>(&'a self, values: &'a [(String, SqlValue)]) -> Vec<Reference<'a>> {
        values
            .iter()
            .filter_map(|(name, value)| {
                let rule = self.rule(name)?;
                match (rule.field_type, &rule.reference_to, value) {
                    (FieldType::Reference, Some(entity), SqlValue::Text(id)) => Some(Reference {
                        field: name,
                        entity,
                        id,
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// Parses one filter (see [`filter_value`]).
    pub fn filter(&self, field: &str, op: &str, raw: &str) -> Result<Filter, FilterRejected> {
        filter::parse(self, field, op, raw)
    }
}

fn finish(
    values: Vec<(String, SqlValue)>,
    problems: Vec<Problem>,
) -> Result<Vec<(String, SqlValue)>, WriteRejected> {
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(WriteRejected::Invalid(problems))
    }
}

/// [`RecordValidator::prepare_create`] with a validator built for this call only (patterns are
/// compiled each time: keep a [`RecordValidator`] per model for repeated writes).
pub fn prepare_create(
    model: &CompiledModel,
    input: &Value,
) -> Result<Vec<(String, SqlValue)>, WriteRejected> {
    RecordValidator::new(model).prepare_create(input)
}

/// [`RecordValidator::prepare_update`] with a validator built for this call only (patterns are
/// compiled each time: keep a [`RecordValidator`] per model for repeated writes).
pub fn prepare_update(
    model: &CompiledModel,
    input: &Value,
) -> Result<Vec<(String, SqlValue)>, WriteRejected> {
    RecordValidator::new(model).prepare_update(input)
}
