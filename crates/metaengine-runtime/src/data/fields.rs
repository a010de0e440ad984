//! Field-level permissions in the data API (SPEC §15): a field the caller may not read is left out
//! of its records and answers exactly like a field that does not exist wherever a request names
//! it (filters, `orderBy`, `fields`, `expand`); writing a field the caller may not write is
//! `403 field_forbidden` at each such field's pointer.

use metaengine_core::Problem;
use metaengine_core::ident::SYSTEM_FIELDS;
use metaengine_core::policy::FieldAccess;
use metaengine_sql::query::QueryError;
use metaengine_store::StoreError;
use serde_json::{Map, Value};

use super::DataError;

/// The answer for a name that is no field of the entity, as the query builder gives it: also the
/// answer for a field the caller may not read.
pub(crate) fn unknown_field(name: &str) -> DataError {
    DataError::from(StoreError::Query(QueryError::UnknownField {
        field: name.to_owned(),
    }))
}

/// Refuses a name the caller may not read as an unknown field.
pub(crate) fn readable(access: &FieldAccess<'_>, name: &str) -> Result<(), DataError> {
    if access.allows(name) {
        Ok(())
    } else {
        Err(unknown_field(name))
    }
}

/// The record's own fields a list selects: the caller's `fields=` (each one readable), or
/// [`readable_columns`]; `None` selects the whole record.
pub(crate) fn selection(
    access: &FieldAccess<'_>,
    asked: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, DataError> {
    match asked {
        Some(asked) => {
            for name in &asked {
                readable(access, name)?;
            }
            Ok(Some(asked))
        }
        None => Ok(readable_columns(access)),
    }
}

/// Every readable field and the system fields when some fields are hidden (what a list or an
/// expansion selects: the query builder keeps only `id` and the names it is given); `None` when
/// nothing is hidden.
pub(crate) fn readable_columns(access: &FieldAccess<'_>) -> Option<Vec<String>> {
    access.visible().map(|mut names| {
        names.extend(SYSTEM_FIELDS.iter().map(|s| (*s).to_owned()));
        names
    })
}

/// `record` without the fields `access` hides.
pub(crate) fn strip(access: &FieldAccess<'_>, record: &mut Map<String, Value>) {
    for field in access.hidden() {
        record.remove(field);
    }
}

/// `403 field_forbidden` when `input` writes fields the caller may not write, one problem per
/// field at its pointer (names that are no field of the entity are the validator's to refuse).
pub(crate) fn writable(access: &FieldAccess<'_>, input: &Value) -> Result<(), DataError> {
    let Some(input) = input.as_object() else {
        return Ok(());
    };
    let errors: Vec<Problem> = access
        .hidden()
        .filter(|field| input.contains_key(*field))
        .map(|field| {
            Problem::new(
                format!("/{field}"),
                format!("`{field}` is a field the caller may not write"),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DataError::FieldForbidden { errors })
    }
}
