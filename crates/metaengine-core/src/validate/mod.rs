//! Validation of a raw schema document (SPEC §3, §4, §6).
//!
//! Every problem is reported at once, each with an RFC 6901 JSON pointer relative to the schema
//! document (`/fields/2/type`; `""` is the root). A missing required key is reported at the pointer
//! where it belongs (`/fields/0/type` for a field without `type`). Only a document without problems
//! is turned into an [`EntitySchema`].

mod field;
mod index;
mod policy;
mod values;

#[cfg(test)]
mod tests;

use crate::ident::SYSTEM_FIELDS;
use crate::schema::{EntitySchema, FieldDef, MAX_FIELDS};
use serde_json::{Map, Value};
use std::fmt;

/// One problem of a schema document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// RFC 6901 JSON pointer to the place in the schema document, `""` for the root.
    pub pointer: String,
    /// What is wrong (lowercase, no final period, user input in backticks).
    pub message: String,
}

impl Problem {
    /// A problem at `pointer`.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`: {}", self.pointer, self.message)
    }
}

/// What validation needs to know beyond the document itself.
pub struct ValidationContext<'a> {
    /// Name of the entity the schema belongs to (a `reference` may point to it, and a policy's
    /// `resource` must equal it); `None` when a schema is validated on its own, without an
    /// entity, and then no policy resource is checked against a name.
    pub entity_name: Option<&'a str>,
    /// Whether an entity of this name exists (for `referenceTo`).
    pub entity_exists: &'a dyn Fn(&str) -> bool,
}

impl fmt::Debug for ValidationContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationContext")
            .field("entity_name", &self.entity_name)
            .finish_non_exhaustive()
    }
}

/// Top-level keys of a schema document.
const SCHEMA_KEYS: &[&str] = &["fields", "policies", "indexes"];

/// Validates a raw JSON schema document, reporting EVERY problem at once (never stop at the
/// first), then returns the typed schema.
pub fn validate_schema(
    doc: &Value,
    ctx: &ValidationContext<'_>,
) -> Result<EntitySchema, Vec<Problem>> {
    let mut problems = Problems::default();
    let Some(obj) = doc.as_object() else {
        problems.push(
            "",
            format!("schema must be an object, found {}", describe(doc)),
        );
        return Err(problems.0);
    };
    problems.unknown_keys(obj, SCHEMA_KEYS, "", "the schema");
    let names = check_fields(obj.get("fields"), ctx, &mut problems);
    policy::check_policies(obj.get("policies"), &names, ctx, &mut problems);
    index::check_indexes(obj.get("indexes"), &names, &mut problems);
    problems.into_result(doc)
}

/// Convenience for the common case of validating a field definition on its own (`pointer_prefix`
/// is where the field sits, e.g. `/fields/3`). Rules that need the other fields (duplicates) are
/// not checked.
pub fn validate_field(
    doc: &Value,
    pointer_prefix: &str,
    ctx: &ValidationContext<'_>,
) -> Result<FieldDef, Vec<Problem>> {
    let mut problems = Problems::default();
    field::check_field(doc, pointer_prefix, ctx, &mut problems);
    problems.into_result(doc)
}

/// The names that `record.<name>` condition paths and index fields may use: the system fields
/// and the string names of the schema's fields (valid or not: a policy or index naming an invalid
/// field is not reported a second time). When `fields` itself is unusable nothing is known and
/// every name is accepted, again to avoid a cascade of problems.
pub(crate) struct KnownFields<'v>(Option<Vec<(&'v str, Option<&'v str>)>>);

impl KnownFields<'_> {
    fn contains(&self, name: &str) -> bool {
        SYSTEM_FIELDS.contains(&name)
            || self
                .0
                .as_ref()
                .is_none_or(|f| f.iter().any(|(n, _)| *n == name))
    }

    /// The declared `type` of a field of this schema, if known.
    fn type_of(&self, name: &str) -> Option<&str> {
        self.0
            .as_ref()?
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| *t)
    }
}

/// Checks the `fields` array and every field in it.
fn check_fields<'v>(
    value: Option<&'v Value>,
    ctx: &ValidationContext<'_>,
    problems: &mut Problems,
) -> KnownFields<'v> {
    let items = match value {
        None => {
            problems.push("/fields", "schema is missing `fields`");
            return KnownFields(None);
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            let found = describe(other);
            problems.push(
                "/fields",
                format!("`fields` must be an array, found {found}"),
            );
            return KnownFields(None);
        }
    };
    if items.is_empty() {
        problems.push("/fields", "schema must have at least one field");
    } else if items.len() > MAX_FIELDS {
        let n = items.len();
        let msg = format!("schema has {n} fields, more than the limit of {MAX_FIELDS}");
        problems.push("/fields", msg);
    }
    let mut names: Vec<(&str, Option<&str>)> = Vec::new();
    let mut columns: Vec<(String, &str, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let base = pointer("/fields", &i.to_string());
        field::check_field(item, &base, ctx, problems);
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            continue;
        };
        let column = crate::ident::column_name(name);
        let at = pointer(&base, "name");
        match columns.iter().find(|(c, _, _)| *c == column) {
            Some((_, first, j)) if *first == name => {
                let msg = format!("field name `{name}` is used twice (first at `/fields/{j}`)");
                problems.push(at, msg);
            }
            Some((_, first, j)) => {
                let msg = format!(
                    "field name `{name}` gives the column name `{column}`, already used by field `{first}` (`/fields/{j}`)"
                );
                problems.push(at, msg);
            }
            None => columns.push((column, name, i)),
        }
        names.push((name, item.get("type").and_then(Value::as_str)));
    }
    KnownFields(Some(names))
}

/// The problems found so far.
#[derive(Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(pointer, message));
    }

    /// `Ok` with the typed value when nothing was found, otherwise every problem.
    fn into_result<T: serde::de::DeserializeOwned>(self, doc: &Value) -> Result<T, Vec<Problem>> {
        if !self.0.is_empty() {
            return Err(self.0);
        }
        // The checks above cover every way the typed conversion can fail; this is a safety net.
        serde_json::from_value(doc.clone()).map_err(|e| {
            let msg = format!("document does not have the expected shape: {e}");
            vec![Problem::new("", msg)]
        })
    }

    /// Reports every key of `obj` that is not in `known`.
    fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &[&str], base: &str, what: &str) {
        for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            let mut msg = format!("unknown key `{key}` in {what}");
            if let Some(hint) = known.iter().find(|k| loose(k) == loose(key)) {
                msg.push_str(&format!(" (did you mean `{hint}`?)"));
            } else if known.len() <= 8 {
                msg.push_str(&format!("; expected {}", one_of(known.iter())));
            }
            self.push(pointer(base, key), msg);
        }
    }

    /// An optional boolean: absent is `None`; anything but a boolean (`null` included) is a problem.
    fn opt_bool(&mut self, obj: &Map<String, Value>, key: &str, base: &str) -> Option<bool> {
        match obj.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                let msg = format!("`{key}` must be a boolean, found {}", describe(other));
                self.push(pointer(base, key), msg);
                None
            }
        }
    }

    /// An optional string: absent or `null` is `None`.
    fn opt_str<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<&'v str> {
        match obj.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => {
                let msg = format!("`{key}` must be a string, found {}", describe(other));
                self.push(pointer(base, key), msg);
                None
            }
        }
    }

    /// A required string: missing, `null` or another type is a problem.
    fn req_str<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        base: &str,
        what: &str,
    ) -> Option<&'v str> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s),
            None => {
                self.push(pointer(base, key), format!("{what} is missing `{key}`"));
                None
            }
            Some(other) => {
                let msg = format!("`{key}` must be a string, found {}", describe(other));
                self.push(pointer(base, key), msg);
                None
            }
        }
    }
}

/// Lowercase without `_` and `-`, to suggest `minLength` for `min_length`.
fn loose(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `base` extended by one reference token, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
pub(crate) fn pointer(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

/// `` `a`, `b` or `c` ``.
pub(crate) fn one_of<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| format!("`{i}`")).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A short description of a JSON value for messages: `` the string `abc` ``, `an array`…
pub(crate) fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 40;
    match value {
        Value::Null => "`null`".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) if s.chars().count() > MAX_CHARS => {
            let head: String = s.chars().take(MAX_CHARS).collect();
            format!("the string `{head}…`")
        }
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
