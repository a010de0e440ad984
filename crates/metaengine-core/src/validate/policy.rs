//! Validation of the `policies` array (SPEC §6).

use super::{KnownFields, Problems, ValidationContext, describe, one_of, pointer};
use crate::schema::{
    CONTEXT_PATHS, Effect, MAX_POLICIES, Operator, PolicyAction, RECORD_PATH_PREFIX, is_path_value,
};
use serde_json::{Map, Value};

const POLICY_KEYS: &[&str] = &[
    "name",
    "effect",
    "action",
    "resource",
    "priority",
    "conditions",
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
        && resource != ctx.entity_name
    {
        let entity = ctx.entity_name;
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
            for (i, condition) in conditions.iter().enumerate() {
                check_condition(condition, &pointer(&at, &i.to_string()), fields, problems);
            }
        }
        Some(other) => {
            let msg = format!("`conditions` must be an array, found {}", describe(other));
            problems.push(pointer(base, "conditions"), msg);
        }
    }
    name
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
    if let Some(path) = problems.req_str(obj, "field", base, "condition") {
        if let Err(msg) = check_path(path, fields) {
            problems.push(pointer(base, "field"), msg);
        } else if let Some(msg) = unsupported_record_type(path, obj, fields) {
            problems.push(pointer(base, "field"), msg);
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
            if let Some(path) = is_path_value(value)
                && let Err(msg) = check_path(path, fields)
            {
                problems.push(at, msg);
            }
        }
        (None, None) => {}
    }
}

/// Field types whose record conditions are refused for now: their stored form (decimals as text,
/// dates and timestamps, uuids, JSON) compares differently in SQL and in the in-memory evaluator,
/// and the row filter and a single-record decision must never disagree. `exists` is fine.
const UNCOMPARABLE_TYPES: &[&str] = &["decimal", "date", "datetime", "reference", "json"];

fn unsupported_record_type(
    path: &str,
    condition: &Map<String, Value>,
    fields: &KnownFields<'_>,
) -> Option<String> {
    let name = path.strip_prefix(RECORD_PATH_PREFIX)?;
    let ty = match name {
        "id" => "reference",
        "createdAt" | "updatedAt" => "datetime",
        _ => fields.type_of(name)?,
    };
    let exists = condition.get("operator").and_then(Value::as_str) == Some("exists");
    (UNCOMPARABLE_TYPES.contains(&ty) && !exists).then(|| {
        format!(
            "conditions on `{name}` (a `{ty}` field) support only `exists` for now; compare a string, number or boolean field instead"
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
