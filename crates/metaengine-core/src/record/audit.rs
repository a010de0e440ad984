//! Helpers for audit details (SPEC §8): details carry field names, never the values of
//! `sensitive` fields.

use crate::compile::CompiledModel;
use crate::value::SqlValue;
use serde_json::{Map, Value};

/// `record` without its `sensitive` fields (system fields and unknown keys are kept).
pub fn redact(model: &CompiledModel, record: &Map<String, Value>) -> Map<String, Value> {
    record
        .iter()
        .filter(|(key, _)| !model.field(key).is_some_and(|f| f.sensitive))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// The field names of a write, in order (as returned by `prepare_create`/`prepare_update`).
pub fn changed_fields(values: &[(String, SqlValue)]) -> Vec<&str> {
    values.iter().map(|(name, _)| name.as_str()).collect()
}

/// The names of the model's fields whose value differs between two versions of a record (a key
/// absent on one side counts as `null`), in the model's field order. System fields are left out.
pub fn changed_between(
    model: &CompiledModel,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<String> {
    model
        .fields
        .iter()
        .filter(|f| {
            let old = before.get(&f.name).unwrap_or(&Value::Null);
            let new = after.get(&f.name).unwrap_or(&Value::Null);
            old != new
        })
        .map(|f| f.name.clone())
        .collect()
}
