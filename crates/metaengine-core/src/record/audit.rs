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

/// `details.changes` of a data write (SPEC §16): one `{"field", "old", "new"}` per field of
/// `fields` whose value differs between `before` and `after` (a missing record or key counts
/// as `null`), in the order of `fields`; a `sensitive` field is named only (`{"field"}`).
/// Names that are not fields of the model are left out.
pub fn changes<'a>(
    model: &CompiledModel,
    fields: impl IntoIterator<Item = &'a str>,
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
) -> Value {
    let value = |record: Option<&Map<String, Value>>, name: &str| {
        record
            .and_then(|r| r.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let changes = fields
        .into_iter()
        .filter_map(|name| model.field(name))
        .filter_map(|field| {
            let (old, new) = (value(before, &field.name), value(after, &field.name));
            if old == new {
                return None;
            }
            let mut change = Map::new();
            change.insert("field".to_owned(), Value::String(field.name.clone()));
            if !field.sensitive {
                change.insert("old".to_owned(), old);
                change.insert("new".to_owned(), new);
            }
            Some(Value::Object(change))
        })
        .collect();
    Value::Array(changes)
}

/// One created record in an audit row that covers many creates (a batch's or an import's one
/// `data.create` row per entity, `details.records`): `{"id", "new": {field: value}}` with the
/// non-null values `input` (the create's body, already validated) gives for the model's
/// fields (a create's `old` is `null` for every field, so `new` says all that [`changes`]
/// would), and `"sensitive": [names]` for the `sensitive` fields it gives, named only. Takes
/// the body, so that no value is copied: at a million imported rows, this row is most of the
/// audit's cost. A body that is not an object gives no values.
pub fn created_record(model: &CompiledModel, id: &str, input: Value) -> Value {
    let Value::Object(mut input) = input else {
        return created_record(model, id, Value::Object(Map::new()));
    };
    let mut sensitive = Vec::new();
    input.retain(|name, value| match model.field(name) {
        None => false,
        Some(_) if value.is_null() => false,
        Some(field) if field.sensitive => {
            sensitive.push(Value::String(name.clone()));
            false
        }
        Some(_) => true,
    });
    let mut record = Map::new();
    record.insert("id".to_owned(), Value::String(id.to_owned()));
    record.insert("new".to_owned(), Value::Object(input));
    if !sensitive.is_empty() {
        record.insert("sensitive".to_owned(), Value::Array(sensitive));
    }
    Value::Object(record)
}
