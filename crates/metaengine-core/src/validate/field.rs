//! Validation of one field definition.

use super::values::{is_date, is_decimal_string, is_rfc3339, is_uuid};
use super::{Problems, ValidationContext, describe, one_of, pointer};
use crate::ident::validate_field_name;
use crate::schema::{
    DEFAULT_DECIMAL_PRECISION, FieldDef, FieldType, MAX_DECIMAL_PRECISION, OnDelete,
};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

/// Keys a field definition may have.
const FIELD_KEYS: &[&str] = &[
    "name",
    "type",
    "required",
    "unique",
    "indexed",
    "sensitive",
    "default",
    "label",
    "description",
    "placeholder",
    "helpText",
    "min",
    "max",
    "minLength",
    "maxLength",
    "pattern",
    "enumValues",
    "referenceTo",
    "onDelete",
    "precision",
    "scale",
];

const NUMERIC: &[FieldType] = &[FieldType::Integer, FieldType::Number, FieldType::Decimal];
const TEXTUAL: &[FieldType] = &[FieldType::String, FieldType::Text];

/// Options that make sense only for some types.
const TYPED_OPTIONS: &[(&str, &[FieldType])] = &[
    ("min", NUMERIC),
    ("max", NUMERIC),
    ("minLength", TEXTUAL),
    ("maxLength", TEXTUAL),
    ("pattern", TEXTUAL),
    ("enumValues", &[FieldType::Enum]),
    ("referenceTo", &[FieldType::Reference]),
    ("onDelete", &[FieldType::Reference]),
    ("precision", &[FieldType::Decimal]),
    ("scale", &[FieldType::Decimal]),
];

/// Largest compiled size of a `pattern`, so that a hostile pattern cannot exhaust memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The constraints a `default` must satisfy.
struct Bounds<'v> {
    min: Option<f64>,
    max: Option<f64>,
    min_length: Option<u32>,
    max_length: Option<u32>,
    pattern: Option<Regex>,
    enum_values: Option<Vec<&'v str>>,
}

/// Checks one field definition sitting at `base`.
pub(super) fn check_field(
    value: &Value,
    base: &str,
    ctx: &ValidationContext<'_>,
    problems: &mut Problems,
) {
    let Some(obj) = value.as_object() else {
        problems.push(
            base,
            format!("field must be an object, found {}", describe(value)),
        );
        return;
    };
    problems.unknown_keys(obj, FIELD_KEYS, base, "a field");
    match obj.get("name") {
        None => problems.push(pointer(base, "name"), "field is missing `name`"),
        Some(Value::String(name)) => {
            if let Err(e) = validate_field_name(name) {
                problems.push(pointer(base, "name"), e.to_string());
            }
        }
        Some(other) => {
            let msg = format!("field name must be a string, found {}", describe(other));
            problems.push(pointer(base, "name"), msg);
        }
    }
    let field_type = check_type(obj, base, problems);
    for key in ["required", "unique", "indexed", "sensitive"] {
        problems.opt_bool(obj, key, base);
    }
    for key in ["label", "description", "placeholder", "helpText"] {
        problems.opt_str(obj, key, base);
    }
    let bounds = Bounds {
        min: opt_number(obj, "min", base, problems),
        max: opt_number(obj, "max", base, problems),
        min_length: opt_u32(obj, "minLength", base, problems),
        max_length: opt_u32(obj, "maxLength", base, problems),
        pattern: check_pattern(obj, base, problems),
        enum_values: check_enum_values(obj, base, problems),
    };
    let reference_to = problems.opt_str(obj, "referenceTo", base);
    if let Some(rule) = problems.opt_str(obj, "onDelete", base) {
        let required = obj.get("required").and_then(Value::as_bool) == Some(true);
        match OnDelete::parse(rule) {
            None => problems.push(
                pointer(base, "onDelete"),
                format!(
                    "unknown `onDelete` rule `{rule}`; expected `restrict`, `setNull` or `cascade`"
                ),
            ),
            Some(OnDelete::SetNull) if required => problems.push(
                pointer(base, "onDelete"),
                "`onDelete: setNull` needs an optional field (this one is `required`)",
            ),
            Some(_) => {}
        }
    }
    let precision = opt_u32(obj, "precision", base, problems);
    let scale = opt_u32(obj, "scale", base, problems);

    if let Some(field_type) = field_type {
        check_applicable(obj, field_type, base, problems);
        check_required_options(obj, field_type, reference_to, base, ctx, problems);
        if field_type == FieldType::Integer {
            for (key, bound) in [("min", bounds.min), ("max", bounds.max)] {
                if let Some(b) = bound.filter(|b| b.fract() != 0.0) {
                    let msg = format!(
                        "`{key}` of a field of type `integer` must be a whole number, found `{b}`"
                    );
                    problems.push(pointer(base, key), msg);
                }
            }
        }
    }
    if let (Some(min), Some(max)) = (bounds.min, bounds.max)
        && min > max
    {
        let msg = format!("`min` ({min}) must not be greater than `max` ({max})");
        problems.push(pointer(base, "max"), msg);
    }
    if let (Some(min), Some(max)) = (bounds.min_length, bounds.max_length)
        && min > max
    {
        let msg = format!("`minLength` ({min}) must not be greater than `maxLength` ({max})");
        problems.push(pointer(base, "maxLength"), msg);
    }
    check_precision_scale(precision, scale, base, problems);
    let default = obj.get("default").filter(|d| !d.is_null());
    if let (Some(field_type), Some(default)) = (field_type, default) {
        let checked = check_default(field_type, default, &bounds).and_then(|()| {
            // The shape checks passed: the default must also pass every rule a written value
            // passes (precision and scale included), or a table could get a default its own
            // API refuses.
            match serde_json::from_value::<FieldDef>(value.clone()) {
                Ok(field) => crate::record::check_default(&field)
                    .map_err(|msg| format!("default is not a valid value: {msg}")),
                Err(_) => Ok(()), // another problem of this field is reported already
            }
        });
        if let Err(msg) = checked {
            problems.push(pointer(base, "default"), msg);
        }
    }
}

fn check_type(obj: &Map<String, Value>, base: &str, problems: &mut Problems) -> Option<FieldType> {
    let name = problems.req_str(obj, "type", base, "field")?;
    let parsed = FieldType::parse(name);
    if parsed.is_none() {
        let expected = one_of(FieldType::ALL.iter());
        let msg = format!("unknown field type `{name}`; expected {expected}");
        problems.push(pointer(base, "type"), msg);
    }
    parsed
}

/// Reports options that make no sense for the field's type (`pattern` on an integer…).
fn check_applicable(
    obj: &Map<String, Value>,
    field_type: FieldType,
    base: &str,
    problems: &mut Problems,
) {
    for (key, types) in TYPED_OPTIONS {
        let present = obj.get(*key).is_some_and(|v| !v.is_null());
        if present && !types.contains(&field_type) {
            let msg = format!(
                "`{key}` does not apply to a field of type `{field_type}`; it applies to {}",
                one_of(types.iter())
            );
            problems.push(pointer(base, key), msg);
        }
    }
}

/// `enum` needs `enumValues`, `reference` needs `referenceTo` naming an existing entity.
fn check_required_options(
    obj: &Map<String, Value>,
    field_type: FieldType,
    reference_to: Option<&str>,
    base: &str,
    ctx: &ValidationContext<'_>,
    problems: &mut Problems,
) {
    let absent = |key: &str| obj.get(key).is_none_or(Value::is_null);
    match field_type {
        FieldType::Enum if absent("enumValues") => {
            let msg = "a field of type `enum` needs `enumValues`";
            problems.push(pointer(base, "enumValues"), msg);
        }
        FieldType::Reference if absent("referenceTo") => {
            let msg = "a field of type `reference` needs `referenceTo`";
            problems.push(pointer(base, "referenceTo"), msg);
        }
        FieldType::Reference => {
            let target =
                reference_to.filter(|t| Some(*t) != ctx.entity_name && !(ctx.entity_exists)(t));
            if let Some(target) = target {
                let msg =
                    format!("`referenceTo` names `{target}`, which is not an existing entity");
                problems.push(pointer(base, "referenceTo"), msg);
            }
        }
        _ => {}
    }
}

fn check_precision_scale(
    precision: Option<u32>,
    scale: Option<u32>,
    base: &str,
    problems: &mut Problems,
) {
    let valid = 1..=MAX_DECIMAL_PRECISION;
    if let Some(p) = precision.filter(|p| !valid.contains(p)) {
        let msg = format!("`precision` must be between 1 and {MAX_DECIMAL_PRECISION}, found `{p}`");
        problems.push(pointer(base, "precision"), msg);
    }
    let Some(scale) = scale else { return };
    let msg = match precision {
        Some(p) if valid.contains(&p) && scale > p => {
            format!("`scale` ({scale}) must not be greater than `precision` ({p})")
        }
        None if scale > DEFAULT_DECIMAL_PRECISION => format!(
            "`scale` ({scale}) must not be greater than the default `precision` ({DEFAULT_DECIMAL_PRECISION})"
        ),
        _ => return,
    };
    problems.push(pointer(base, "scale"), msg);
}

/// An optional number: absent or `null` is `None`.
fn opt_number(
    obj: &Map<String, Value>,
    key: &str,
    base: &str,
    problems: &mut Problems,
) -> Option<f64> {
    match obj.get(key)? {
        Value::Null => None,
        Value::Number(n) => n.as_f64(),
        other => {
            let msg = format!("`{key}` must be a number, found {}", describe(other));
            problems.push(pointer(base, key), msg);
            None
        }
    }
}

/// An optional non-negative integer that fits 32 bits: absent or `null` is `None`.
fn opt_u32(
    obj: &Map<String, Value>,
    key: &str,
    base: &str,
    problems: &mut Problems,
) -> Option<u32> {
    let value = obj.get(key)?;
    if value.is_null() {
        return None;
    }
    let parsed = value.as_u64().and_then(|n| u32::try_from(n).ok());
    if parsed.is_none() {
        let msg = format!(
            "`{key}` must be a whole number between 0 and {}, found {}",
            u32::MAX,
            describe(value)
        );
        problems.push(pointer(base, key), msg);
    }
    parsed
}

fn check_pattern(obj: &Map<String, Value>, base: &str, problems: &mut Problems) -> Option<Regex> {
    let pattern = problems.opt_str(obj, "pattern", base)?;
    match RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
    {
        Ok(regex) => Some(regex),
        Err(e) => {
            let reason = match &e {
                regex::Error::Syntax(text) => text
                    .lines()
                    .last()
                    .map(|l| l.trim_start_matches("error: ").to_string())
                    .unwrap_or_default(),
                regex::Error::CompiledTooBig(limit) => {
                    format!("it compiles to more than {limit} bytes")
                }
                other => other.to_string(),
            };
            let msg = format!("`pattern` `{pattern}` is not a valid regular expression: {reason}");
            problems.push(pointer(base, "pattern"), msg);
            None
        }
    }
}

/// `enumValues`: a non-empty array of distinct, non-empty strings. Returns the strings found.
fn check_enum_values<'v>(
    obj: &'v Map<String, Value>,
    base: &str,
    problems: &mut Problems,
) -> Option<Vec<&'v str>> {
    let at = pointer(base, "enumValues");
    let items = match obj.get("enumValues")? {
        Value::Null => return None,
        Value::Array(items) => items,
        other => {
            let msg = format!(
                "`enumValues` must be an array of strings, found {}",
                describe(other)
            );
            problems.push(at, msg);
            return None;
        }
    };
    if items.is_empty() {
        problems.push(at.clone(), "`enumValues` must not be empty");
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_at = pointer(&at, &i.to_string());
        match item {
            Value::String(s) if s.is_empty() => {
                problems.push(item_at, "enum value must not be the empty string");
            }
            Value::String(s) if seen.contains(&s.as_str()) => {
                problems.push(item_at, format!("enum value `{s}` is listed twice"));
            }
            Value::String(s) => seen.push(s),
            other => {
                let msg = format!("enum value must be a string, found {}", describe(other));
                problems.push(item_at, msg);
            }
        }
    }
    Some(seen)
}

/// Checks that `default` fits the field's type and constraints; the error is the message.
fn check_default(
    field_type: FieldType,
    default: &Value,
    bounds: &Bounds<'_>,
) -> Result<(), String> {
    let wrong = |expected: &str| {
        Err(format!(
            "default of a field of type `{field_type}` must be {expected}, found {}",
            describe(default)
        ))
    };
    match field_type {
        FieldType::String | FieldType::Text => match default.as_str() {
            Some(s) => check_text_default(s, bounds),
            None => wrong("a string"),
        },
        FieldType::Enum => match (default.as_str(), &bounds.enum_values) {
            (None, _) => wrong("a string"),
            (Some(s), Some(values)) if !values.contains(&s) => Err(format!(
                "default `{s}` is not one of `enumValues` ({})",
                one_of(values.iter())
            )),
            _ => Ok(()),
        },
        FieldType::Integer => match default.as_i64() {
            Some(n) => check_range(n as f64, &default.to_string(), bounds),
            None => wrong("an integer between -2^63 and 2^63-1"),
        },
        FieldType::Number => match default.as_f64() {
            Some(n) => check_range(n, &default.to_string(), bounds),
            None => wrong("a number"),
        },
        FieldType::Decimal => match default {
            Value::Number(n) => check_range(n.as_f64().unwrap_or(0.0), &n.to_string(), bounds),
            Value::String(s) if is_decimal_string(s) => {
                check_range(s.parse().unwrap_or(0.0), s, bounds)
            }
            _ => wrong("a number or a numeric string such as `12.50`"),
        },
        FieldType::Boolean if default.is_boolean() => Ok(()),
        FieldType::Boolean => wrong("a boolean"),
        FieldType::Date if default.as_str().is_some_and(is_date) => Ok(()),
        FieldType::Date => wrong("a date `YYYY-MM-DD`"),
        FieldType::Datetime if default.as_str().is_some_and(is_rfc3339) => Ok(()),
        FieldType::Datetime => wrong("an RFC 3339 timestamp such as `2026-01-31T12:00:00Z`"),
        FieldType::Reference if default.as_str().is_some_and(is_uuid) => Ok(()),
        FieldType::Reference => wrong("a UUID string"),
        FieldType::Json => Ok(()),
    }
}

fn check_text_default(s: &str, bounds: &Bounds<'_>) -> Result<(), String> {
    let chars = u32::try_from(s.chars().count()).unwrap_or(u32::MAX);
    if let Some(min) = bounds.min_length.filter(|min| chars < *min) {
        return Err(format!(
            "default `{s}` has {chars} characters, fewer than `minLength` ({min})"
        ));
    }
    if let Some(max) = bounds.max_length.filter(|max| chars > *max) {
        return Err(format!(
            "default `{s}` has {chars} characters, more than `maxLength` ({max})"
        ));
    }
    match &bounds.pattern {
        Some(re) if !re.is_match(s) => Err(format!("default `{s}` does not match `pattern`")),
        _ => Ok(()),
    }
}

fn check_range(n: f64, shown: &str, bounds: &Bounds<'_>) -> Result<(), String> {
    if let Some(min) = bounds.min.filter(|min| n < *min) {
        return Err(format!("default `{shown}` is less than `min` ({min})"));
    }
    if let Some(max) = bounds.max.filter(|max| n > *max) {
        return Err(format!("default `{shown}` is greater than `max` ({max})"));
    }
    Ok(())
}
