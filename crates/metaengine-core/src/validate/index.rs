//! Validation of the `indexes` array (SPEC §4).

use super::{KnownFields, Problems, describe, pointer};
use crate::ident::{MAX_IDENT_BYTES, RESERVED_PREFIXES};
use crate::schema::{MAX_INDEXES, split_index_field};
use serde_json::{Map, Value};

const INDEX_KEYS: &[&str] = &["fields", "unique", "name"];

/// Checks the optional `indexes` array.
pub(super) fn check_indexes(
    value: Option<&Value>,
    fields: &KnownFields<'_>,
    problems: &mut Problems,
) {
    let items = match value {
        None => return,
        Some(Value::Array(items)) => items,
        Some(other) => {
            let found = describe(other);
            problems.push(
                "/indexes",
                format!("`indexes` must be an array, found {found}"),
            );
            return;
        }
    };
    if items.len() > MAX_INDEXES {
        let n = items.len();
        let msg = format!("schema has {n} indexes, more than the limit of {MAX_INDEXES}");
        problems.push("/indexes", msg);
    }
    let mut names: Vec<(&str, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let base = pointer("/indexes", &i.to_string());
        let Some(obj) = item.as_object() else {
            problems.push(
                base,
                format!("index must be an object, found {}", describe(item)),
            );
            continue;
        };
        problems.unknown_keys(obj, INDEX_KEYS, &base, "an index");
        check_index_fields(obj, &base, fields, problems);
        problems.opt_bool(obj, "unique", &base);
        let Some(name) = problems.opt_str(obj, "name", &base) else {
            continue;
        };
        let at = pointer(&base, "name");
        if let Err(msg) = check_index_name(name) {
            problems.push(at, msg);
        } else if let Some((_, j)) = names.iter().find(|(n, _)| *n == name) {
            problems.push(
                at,
                format!("index name `{name}` is used twice (first at `/indexes/{j}`)"),
            );
        } else {
            names.push((name, i));
        }
    }
}

fn check_index_fields(
    obj: &Map<String, Value>,
    base: &str,
    fields: &KnownFields<'_>,
    problems: &mut Problems,
) {
    let at = pointer(base, "fields");
    let items = match obj.get("fields") {
        None => {
            problems.push(at, "index is missing `fields`");
            return;
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            let msg = format!("index `fields` must be an array, found {}", describe(other));
            problems.push(at, msg);
            return;
        }
    };
    if items.is_empty() {
        problems.push(at.clone(), "index must list at least one field");
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_at = pointer(&at, &i.to_string());
        let Some(spec) = item.as_str() else {
            let msg = format!("index field must be a string, found {}", describe(item));
            problems.push(item_at, msg);
            continue;
        };
        let (name, _) = split_index_field(spec);
        if !fields.contains(name) {
            let msg = format!(
                "index field `{spec}` names `{name}`, which is neither a field of this entity nor a system field"
            );
            problems.push(item_at, msg);
        } else if seen.contains(&name) {
            problems.push(item_at, format!("index lists field `{name}` twice"));
        } else {
            seen.push(name);
        }
    }
}

/// An explicit index name: `^[a-z][a-z0-9_]*$`, at most 63 bytes, no `pg_`/`sqlite_` prefix.
fn check_index_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let shape_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !shape_ok {
        return Err(format!(
            "index name `{name}` must match `^[a-z][a-z0-9_]*$`"
        ));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(format!(
            "index name `{name}` is {} bytes long, longer than PostgreSQL's limit of 63 bytes",
            name.len()
        ));
    }
    match RESERVED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        Some(prefix) => Err(format!(
            "index name `{name}` starts with the reserved prefix `{prefix}`"
        )),
        None => Ok(()),
    }
}
