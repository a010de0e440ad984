//! Validation of the `policies` array (SPEC §6).

use super::{KnownFields, Problems, ValidationContext, describe, one_of, pointer};
use crate::record::Comparison;
use crate::schema::{
    CONTEXT_PATHS, Effect, MAX_CONDITIONS, MAX_POLICIES, Operator, PolicyAction,
    RECORD_PATH_PREFIX, is_path_value,
};
use serde_json::{Map, Value};

const POLICY_KEYS: &[&str] = &[
    "name",
    "effect",
    "action",
    "resource",
    "priority",
    "conditions",
    "fields",
    "description",
];
const CONDITION_KEYS: &[&str] = &["field", "operator", "value"];

/// Checks the optional `policies` array.
pub(super) fn check_policies(
    value: Option<&Value>,
    fields: &KnownFields<'_>,
    ctx: &ValidationContext<'_>,
    problems: &mut Problems,
) {
    let items = match value {
        None => return,
        Some(Value::Array(items)) => items,
        Some(other) => {
            let found = describe(other);
            problems.push(
                "/policies",
                format!("`policies` must be an array, found {found}"),
            );
            return;
        }
    };
    if items.len() > MAX_POLICIES {
        let n = items.len();
        let msg = format!("schema has {n} policies, more than the limit of {MAX_POLICIES}");
        problems.push("/policies", msg);
    }
    let mut names: Vec<(&str, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let base = pointer("/policies", &i.to_string());
        let Some(obj) = item.as_object() else {
            problems.push(
                base,
                format!("policy must be an object, found {}", describe(item)),
            );
            continue;
        };
        if let Some(name) = check_policy(obj, &base, fields, ctx, problems) {
            match names.iter().find(|(n, _)| *n == name) {
                Some((_, j)) => {
                    let msg =
                        format!("policy name `{name}` is used twice (first at `/policies/{j}`)");
                    problems.push(pointer(&base, "name"), msg);
                }
                None => names.push((name, i)),
            }
        }
    }
}

/// Checks one policy; returns its name when it is a usable string.
fn check_policy<'v>(
    obj: &'v Map<String, Value>,
    base: &str,
    fields: &KnownFields<'_>,
    ctx: &ValidationContext<'_>,
    problems: &mut Problems,
) -> Option<&'v str> {
    problems.unknown_keys(obj, POLICY_KEYS, base, "a policy");
    let name = problems.req_str(obj, "name", base, "policy");
    let name = name.filter(|n| {
        let blank = n.trim().is_empty();
        if blank {
            problems.push(pointer(base, "name"), "policy name must not be empty");
        }
        !blank
    });
    if let Some(effect) = problems.req_str(obj, "effect", base, "policy")
        && Effect::parse(effect).is_none()
    {
        let expected = one_of(Effect::ALL.iter());
        let msg = format!("unknown effect `{effect}`; expected {expected}");
        problems.push(pointer(base, "effect"), msg);
    }
    if let Some(action) = problems.req_str(obj, "action", base, "policy")
        && PolicyAction::parse(action).is_none()
    {
        let expected = one_of(PolicyAction::ALL.iter());
        let msg = format!("unknown action `{action}`; expected {expected}");
        problems.push(pointer(base, "action"), msg);
    }
    if let Some(resource) = problems.opt_str(obj, "resource", base)
        && let Some(entity) = ctx.entity_name
        && resource != entity
    {
        let msg = format!("policy resource `{resource}` must be this entity, `{entity}`");
        problems.push(pointer(base, "resource"), msg);
    }
    if let Some(priority) = obj.get("priority") {
        let fits = priority.as_i64().is_some_and(|p| i32::try_from(p).is_ok());
        if !fits {
            let msg = format!(
                "`priority` must be a whole number between {} and {}, found {}",
                i32::MIN,
                i32::MAX,
                describe(priority)
            );
            problems.push(pointer(base, "priority"), msg);
        }
    }
    problems.opt_str(obj, "description", base);
    match obj.get("conditions") {
        None => {}
        Some(Value::Array(conditions)) => {
            let at = pointer(base, "conditions");
            if conditions.len() > MAX_CONDITIONS {
                let n = conditions.len();
                let msg =
                    format!("policy has {n} conditions, more than the limit of {MAX_CONDITIONS}");
                problems.push(at.clone(), msg);
            }
            for (i, condition) in conditions.iter().enumerate() {
                check_condition(condition, &pointer(&at, &i.to_string()), fields, problems);
            }
        }
        Some(other) => {
            let msg = format!("`conditions` must be an array, found {}", describe(other));
            problems.push(pointer(base, "conditions"), msg);
        }
    }
    if let Some(value) = obj.get("fields") {
        check_policy_fields(obj, value, base, fields, problems);
    }
    name
}

/// Checks a policy's `fields` (SPEC §15): a non-empty array of distinct names of the schema's
/// own fields (system fields are always visible), on an action that has fields (not `delete`),
/// with conditions on the caller only (field access is decided per caller, not per record).
fn check_policy_fields(
    obj: &Map<String, Value>,
    value: &Value,
    base: &str,
    fields: &KnownFields<'_>,
    problems: &mut Problems,
) {
    let at = pointer(base, "fields");
    let Some(items) = value.as_array().filter(|items| !items.is_empty()) else {
        let msg = format!(
            "`fields` must be a non-empty array of field names, found {}",
            describe(value)
        );
        problems.push(at, msg);
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_at = pointer(&at, &i.to_string());
        let Some(name) = item.as_str() else {
            problems.push(
                item_at,
                format!("a field name must be a string, found {}", describe(item)),
            );
            continue;
        };
        if crate::ident::SYSTEM_FIELDS.contains(&name) {
            let msg =
                format!("system field `{name}` is always visible and cannot be named in `fields`");
            problems.push(item_at, msg);
        } else if !fields.contains(name) {
            problems.push(item_at, format!("unknown field `{name}`"));
        } else if seen.contains(&name) {
            problems.push(item_at, format!("field `{name}` is named twice"));
        } else {
            seen.push(name);
        }
    }
    if obj.get("action").and_then(Value::as_str) == Some("delete") {
        let msg = "`fields` does not apply to `delete`, which removes the whole record";
        problems.push(at, msg);
    }
    let conditions = obj.get("conditions").and_then(Value::as_array);
    for (i, condition) in conditions.into_iter().flatten().enumerate() {
        let names_record = ["field", "value"].into_iter().any(|key| {
            condition
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|path| path.starts_with(RECORD_PATH_PREFIX))
        });
        if names_record {
            let msg = "a policy with `fields` is decided per caller: its conditions may name \
                       `user.*` and `context.*`, not `record.*`";
            problems.push(pointer(&pointer(base, "conditions"), &i.to_string()), msg);
        }
    }
}

fn check_condition(value: &Value, base: &str, fields: &KnownFields<'_>, problems: &mut Problems) {
    let Some(obj) = value.as_object() else {
        problems.push(
            base,
            format!("condition must be an object, found {}", describe(value)),
        );
        return;
    };
    problems.unknown_keys(obj, CONDITION_KEYS, base, "a condition");
    let mut subject = None;
    if let Some(path) = problems.req_str(obj, "field", base, "condition") {
        if let Err(msg) = check_path(path, fields) {
            problems.push(pointer(base, "field"), msg);
        } else if let Some(msg) = unsupported_record_type(path, obj, fields) {
            problems.push(pointer(base, "field"), msg);
        } else {
            subject = Some(path);
        }
    }
    let operator = problems
        .req_str(obj, "operator", base, "condition")
        .and_then(|op| {
            let parsed = Operator::parse(op);
            if parsed.is_none() {
                let expected = one_of(Operator::ALL.iter());
                let msg = format!("unknown operator `{op}`; expected {expected}");
                problems.push(pointer(base, "operator"), msg);
            }
            parsed
        });
    let value = obj.get("value").filter(|v| !v.is_null());
    let at = pointer(base, "value");
    match (operator, value) {
        (Some(op @ (Operator::In | Operator::NotIn)), value) => {
            if !value.is_some_and(Value::is_array) {
                let found = value.map_or("no value".into(), describe);
                let msg = format!("operator `{op}` needs an array `value`, found {found}");
                problems.push(at, msg);
            }
        }
        (Some(Operator::Exists), Some(value)) if !value.is_boolean() => {
            let msg = format!(
                "operator `exists` takes no `value` or a boolean, found {}",
                describe(value)
            );
            problems.push(at, msg);
        }
        (Some(Operator::Exists), _) => {}
        (Some(op), None) => problems.push(at, format!("operator `{op}` needs a `value`")),
        (_, Some(value)) => {
            if let Some(path) = is_path_value(value) {
                if let Err(msg) = check_path(path, fields) {
                    problems.push(at, msg);
                    return;
                }
                if let Some(msg) = unsupported_record_type(path, obj, fields) {
                    problems.push(at, msg);
                    return;
                }
            }
        }
        (None, None) => {}
    }
    if let (Some(subject), Some(op)) = (subject, operator)
        && let Some(msg) = value_type_problem(subject, op, obj.get("value"), fields)
    {
        problems.push(pointer(base, "value"), msg);
    }
}

/// The kind of JSON value a field's record value is, as the policy evaluator compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole number (`integer`, `rowVersion`).
    Integer,
    /// Any number (`number`).
    Number,
    /// `true` / `false`.
    Boolean,
    /// A string (strings, texts, enums), compared byte by byte.
    Text,
    /// An exact decimal: a number or a numeric string.
    Decimal,
    /// A date `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 timestamp.
    Datetime,
    /// A UUID (`reference`, `id`).
    Uuid,
    /// Anything (`json`).
    Any,
}

impl Kind {
    fn of(name: &str, fields: &KnownFields<'_>) -> Option<Kind> {
        let ty = match crate::ident::system_field(name) {
            Some(system) => system.field_type.as_str(),
            None => fields.type_of(name)?,
        };
        Some(match ty {
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "decimal" => Kind::Decimal,
            "date" => Kind::Date,
            "datetime" => Kind::Datetime,
            "reference" => Kind::Uuid,
            "json" => Kind::Any,
            _ => Kind::Text,
        })
    }

    /// How values of this kind compare (SPEC §6; `record/compare.rs`).
    fn comparison(self) -> Option<Comparison> {
        match self {
            Kind::Decimal => Some(Comparison::Decimal),
            Kind::Date => Some(Comparison::Date),
            Kind::Datetime => Some(Comparison::Datetime),
            Kind::Uuid => Some(Comparison::Uuid),
            _ => None,
        }
    }

    fn accepts(self, value: &Value) -> bool {
        if let Some(comparison) = self.comparison() {
            return comparison.canonical(value).is_some();
        }
        match (self, value) {
            (Kind::Any, _) => true,
            (Kind::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Number, Value::Number(_)) | (Kind::Boolean, Value::Bool(_)) => true,
            (Kind::Text, Value::String(_)) => true,
            _ => false,
        }
    }

    fn comparable(self, other: Kind, op: Operator) -> bool {
        let numeric = |k| matches!(k, Kind::Integer | Kind::Number);
        (numeric(self) && numeric(other))
            || (self == Kind::Text && other == Kind::Text)
            || (self.comparison().is_some() && self == other)
            || (self == Kind::Boolean
                && other == Kind::Boolean
                && matches!(op, Operator::Eq | Operator::Ne))
    }

    /// Whether a request value (a string such as `user.id`) can equal a value of this kind.
    fn takes_request_strings(self) -> bool {
        matches!(self, Kind::Text | Kind::Uuid | Kind::Any)
    }

    fn needs(self) -> &'static str {
        match self {
            Kind::Integer => "a whole number",
            Kind::Number => "a number",
            Kind::Boolean => "`true` or `false`",
            Kind::Text => "a string",
            Kind::Decimal => {
                "a decimal (a number of at most 15 significant digits, or a numeric string such as `\"12.50\"`)"
            }
            Kind::Date => "a date (`YYYY-MM-DD`)",
            Kind::Datetime => "an RFC 3339 timestamp such as `2026-01-31T12:00:00Z`",
            Kind::Uuid => "a UUID",
            Kind::Any => "a JSON value",
        }
    }
}

/// Comparison operators, the only ones that take a `record.` path as their value.
const COMPARISONS: [Operator; 6] = [
    Operator::Eq,
    Operator::Ne,
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
];

/// Whether the condition's value can ever be compared with its subject: a literal of the
/// subject field's JSON type, another record field of a comparable type, or a request value
/// (a string) against a string field. Such a condition would otherwise never hold (an
/// evaluation error, which denies), and a row filter could not keep the evaluator's semantics.
fn value_type_problem(
    subject: &str,
    op: Operator,
    value: Option<&Value>,
    fields: &KnownFields<'_>,
) -> Option<String> {
    let value = value.filter(|v| !v.is_null())?;
    fn record(path: &str) -> Option<&str> {
        path.strip_prefix(RECORD_PATH_PREFIX)
    }
    let value_path = is_path_value(value);
    if let Some(right) = value_path.and_then(record)
        && !COMPARISONS.contains(&op)
    {
        return Some(format!(
            "`record.{right}` as a value works only with `eq`, `ne`, `gt`, `gte`, `lt` and `lte`, not `{op}`"
        ));
    }
    let field = match (record(subject), value_path.and_then(record)) {
        (Some(field), _) => field,
        // A request value compared with a record field: the field must hold strings.
        (None, Some(right)) => {
            let kind = Kind::of(right, fields)?;
            let array = matches!(subject, "user.roles" | "context.roles");
            return if array {
                Some(format!(
                    "`{subject}` is a list of roles: compare it with `record.{right}` through `contains` on the list instead"
                ))
            } else if !kind.takes_request_strings() {
                Some(format!(
                    "`{subject}` is a string and `record.{right}` holds {}: they never compare",
                    kind.needs()
                ))
            } else {
                None
            };
        }
        (None, None) => return None,
    };
    let kind = Kind::of(field, fields)?;
    if kind == Kind::Any || op == Operator::Exists {
        return None;
    }
    let ordering = matches!(
        op,
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte
    );
    if ordering && kind == Kind::Boolean {
        return Some(format!(
            "`{op}` does not apply to `{field}`, a boolean field; use `eq` or `ne`"
        ));
    }
    if op == Operator::Contains && kind != Kind::Text {
        return Some(format!(
            "`contains` applies to string fields; `{field}` holds {}",
            kind.needs()
        ));
    }
    match value_path {
        Some(path) => match record(path) {
            Some(right) => {
                let other = Kind::of(right, fields)?;
                (other != Kind::Any && !kind.comparable(other, op)).then(|| {
                    format!(
                        "`{field}` holds {} and `{right}` holds {}: they never compare",
                        kind.needs(),
                        other.needs()
                    )
                })
            }
            None => {
                let list = matches!(path, "user.roles" | "context.roles");
                let fits = kind.takes_request_strings()
                    && (list == matches!(op, Operator::In | Operator::NotIn) || !list);
                (!fits).then(|| {
                    format!(
                        "`{path}` holds strings and `{field}` holds {}: they never compare",
                        kind.needs()
                    )
                })
            }
        },
        None => {
            let wrong = match value {
                Value::Array(items) if matches!(op, Operator::In | Operator::NotIn) => {
                    items.iter().find(|v| !v.is_null() && !kind.accepts(v))
                }
                v if kind.accepts(v) => None,
                v => Some(v),
            };
            wrong.map(|v| {
                format!(
                    "a condition on `{field}` needs {} here, found {}",
                    kind.needs(),
                    describe(v)
                )
            })
        }
    }
}

/// A condition that names a JSON field other than with `exists`: JSON values have no order, and
/// the databases' equality of JSON (`jsonb` on PostgreSQL, text on SQLite) differs from each
/// other's and from the evaluator's, so the row filter and a single-record decision could
/// disagree. `path` is the subject, or `record.<field>` given as the value.
fn unsupported_record_type(
    path: &str,
    condition: &Map<String, Value>,
    fields: &KnownFields<'_>,
) -> Option<String> {
    let name = path.strip_prefix(RECORD_PATH_PREFIX)?;
    let ty = match crate::ident::system_field(name) {
        Some(system) => system.field_type.as_str(),
        None => fields.type_of(name)?,
    };
    let exists = condition.get("operator").and_then(Value::as_str) == Some("exists");
    (ty == "json" && !exists).then(|| {
        format!(
            "conditions on `{name}` (a `json` field) support only `exists`: JSON values have no order, and databases compare them differently"
        )
    })
}

/// A condition path must be one of [`CONTEXT_PATHS`] or `record.<field or system field>`.
pub(crate) fn check_path(path: &str, fields: &KnownFields<'_>) -> Result<(), String> {
    if CONTEXT_PATHS.contains(&path) {
        return Ok(());
    }
    match path.strip_prefix(RECORD_PATH_PREFIX) {
        Some(name) if fields.contains(name) => Ok(()),
        Some(name) => Err(format!(
            "condition path `{path}` names `{name}`, which is neither a field of this entity nor a system field"
        )),
        None => Err(format!(
            "unknown condition path `{path}`; expected {} or `record.<field>`",
            CONTEXT_PATHS
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
