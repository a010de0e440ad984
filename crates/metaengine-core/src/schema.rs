//! The entity schema as Rust types (SPEC §4, §6). JSON is camelCase.
//!
//! Deserializing these types does not validate a document: use [`crate::validate_schema`], which
//! reports every problem with a JSON pointer and then returns the typed schema.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Most fields one entity schema may have.
pub const MAX_FIELDS: usize = 200;
/// Most policies one entity schema may have.
pub const MAX_POLICIES: usize = 50;
/// Most conditions one policy may have (each becomes a term of the row filter's SQL, whose
/// expression depth SQLite limits).
pub const MAX_CONDITIONS: usize = 50;
/// Most schema-level indexes one entity schema may have.
pub const MAX_INDEXES: usize = 50;
/// Precision of a `decimal` field that sets none.
pub const DEFAULT_DECIMAL_PRECISION: u32 = 18;
/// Scale of a `decimal` field that sets none.
pub const DEFAULT_DECIMAL_SCALE: u32 = 2;
/// Largest precision of a `decimal` field (PostgreSQL's `numeric` limit).
pub const MAX_DECIMAL_PRECISION: u32 = 1000;

/// Condition paths that do not name a record field. `record.<field>` paths are the others.
pub const CONTEXT_PATHS: &[&str] = &[
    "user.id",
    "user.role",
    "user.roles",
    "context.userId",
    "context.tenantId",
    "context.realmId",
    "context.roles",
];
/// Prefix of a condition path naming a field (or system field) of the record.
pub const RECORD_PATH_PREFIX: &str = "record.";

fn is_false(b: &bool) -> bool {
    !*b
}

/// Writes a whole bound as an integer (`"min": 0`, not `0.0`), so that a schema reads back as it
/// was written; other values as floats. Only called for `Some` (see `skip_serializing_if`).
fn serialize_bound<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    /// 2^53: every whole `f64` below it converts to `i64` exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match *value {
        Some(v) if v.fract() == 0.0 && v.abs() < EXACT => serializer.serialize_i64(v as i64),
        Some(v) => serializer.serialize_f64(v),
        None => serializer.serialize_none(),
    }
}

/// One version of an entity's definition: fields, policies and schema-level indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitySchema {
    /// Fields in column order (the order carries meaning).
    pub fields: Vec<FieldDef>,
    /// Allow/deny policies of the policy gate.
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
    /// Schema-level indexes (in addition to `indexed: true` on a field).
    #[serde(default)]
    pub indexes: Vec<IndexDef>,
}

impl EntitySchema {
    /// The field named `name`, if any.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One field of an entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDef {
    /// camelCase name; the column is its snake_case form.
    pub name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// A value is needed on create.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Unique within a tenant.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// Gets its own index.
    #[serde(default, skip_serializing_if = "is_false")]
    pub indexed: bool,
    /// Kept out of audit details and logs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sensitive: bool,
    /// Value used when a create gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Placeholder text for a form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Help text for a form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_text: Option<String>,
    /// Smallest value (integer, number, decimal).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_bound"
    )]
    pub min: Option<f64>,
    /// Largest value (integer, number, decimal).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_bound"
    )]
    pub max: Option<f64>,
    /// Fewest characters (string, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Most characters (string, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Regular expression (Rust `regex` syntax) a value must match (string, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<String>>,
    /// The entity a `reference` field points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_to: Option<String>,
    /// What deleting the referenced record does to this one (SPEC §13); `None` is `restrict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<OnDelete>,
    /// Total digits of a `decimal` field (default [`DEFAULT_DECIMAL_PRECISION`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Digits after the point of a `decimal` field (default [`DEFAULT_DECIMAL_SCALE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
}

impl FieldDef {
    /// A field with the given name and type and no options set.
    pub fn new(name: impl Into<String>, field_type: FieldType) -> Self {
        FieldDef {
            name: name.into(),
            field_type,
            required: false,
            unique: false,
            indexed: false,
            sensitive: false,
            default: None,
            label: None,
            description: None,
            placeholder: None,
            help_text: None,
            min: None,
            max: None,
            min_length: None,
            max_length: None,
            pattern: None,
            enum_values: None,
            reference_to: None,
            on_delete: None,
            precision: None,
            scale: None,
        }
    }

    /// Precision and scale of a decimal field with the defaults applied.
    pub fn decimal_precision_scale(&self) -> (u32, u32) {
        (
            self.precision.unwrap_or(DEFAULT_DECIMAL_PRECISION),
            self.scale.unwrap_or(DEFAULT_DECIMAL_SCALE),
        )
    }
}

/// Defines `as_str`, `parse`, `ALL` and `Display` for a unit enum with fixed JSON names.
macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            #[doc = concat!("Every ", $what, ", in declaration order.")]
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            #[doc = concat!("The JSON name of this ", $what, ".")]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            #[doc = concat!("The ", $what, " with this JSON name, if any (case-sensitive).")]
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What deleting a record does to the records that refer to it (a reference field's
/// `onDelete`, SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnDelete {
    /// The delete is refused while they exist (409 `still_referenced`).
    #[default]
    Restrict,
    /// Their reference is cleared (an optional field only).
    SetNull,
    /// They are deleted too.
    Cascade,
}

impl OnDelete {
    /// The rule named `name` (`restrict`, `setNull`, `cascade`).
    pub fn parse(name: &str) -> Option<OnDelete> {
        match name {
            "restrict" => Some(OnDelete::Restrict),
            "setNull" => Some(OnDelete::SetNull),
            "cascade" => Some(OnDelete::Cascade),
            _ => None,
        }
    }
}

/// Type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Short text (`varchar`-like).
    String,
    /// Long text.
    Text,
    /// 64-bit integer.
    Integer,
    /// Floating-point number.
    Number,
    /// Exact decimal with precision and scale.
    Decimal,
    /// true or false.
    Boolean,
    /// Calendar date `YYYY-MM-DD`.
    Date,
    /// RFC 3339 timestamp.
    Datetime,
    /// One of `enumValues`.
    Enum,
    /// Id of a record of the entity `referenceTo`.
    Reference,
    /// Any JSON value.
    Json,
}

named_enum!(FieldType, "field type", {
    String => "string",
    Text => "text",
    Integer => "integer",
    Number => "number",
    Decimal => "decimal",
    Boolean => "boolean",
    Date => "date",
    Datetime => "datetime",
    Enum => "enum",
    Reference => "reference",
    Json => "json",
});

/// A policy of the policy gate (SPEC §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDef {
    /// Name, unique among the entity's policies.
    pub name: String,
    /// Allow or deny.
    pub effect: Effect,
    /// The action it is about.
    pub action: PolicyAction,
    /// The entity it is about (when present, the entity's own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Priority (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Conditions, all of which must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The fields it is about (SPEC §15): an `allow` grants only these for its action, a `deny`
    /// withholds only these and leaves the action to the other policies. Absent: every field
    /// (an allow) or the whole action (a deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Effect of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allows the action.
    Allow,
    /// Denies the action (deny wins over allow).
    Deny,
}

named_enum!(Effect, "effect", { Allow => "allow", Deny => "deny" });

/// Action a policy is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyAction {
    /// Create a record.
    Create,
    /// Read records (get, list, count).
    Read,
    /// Update a record.
    Update,
    /// Delete a record.
    Delete,
    /// Every action (`*`).
    #[serde(rename = "*")]
    All,
}

named_enum!(PolicyAction, "policy action", {
    Create => "create",
    Read => "read",
    Update => "update",
    Delete => "delete",
    All => "*",
});

/// One condition of a policy: `field operator value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// A path: one of [`CONTEXT_PATHS`] or `record.<field>`.
    pub field: String,
    /// The comparison.
    pub operator: Operator,
    /// A literal, or a path when it is a string starting with `user.`, `context.` or `record.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// Operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// One of an array.
    In,
    /// None of an array.
    NotIn,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Contains (an element of a list, or a substring).
    Contains,
    /// Has a value (or has none, with value `false`).
    Exists,
}

named_enum!(Operator, "operator", {
    Eq => "eq",
    Ne => "ne",
    In => "in",
    NotIn => "not_in",
    Gt => "gt",
    Gte => "gte",
    Lt => "lt",
    Lte => "lte",
    Contains => "contains",
    Exists => "exists",
});

/// Whether a condition value is a path rather than a literal: a string starting with `user.`,
/// `context.` or `record.`.
pub fn is_path_value(value: &serde_json::Value) -> Option<&str> {
    value.as_str().filter(|s| {
        ["user.", "context.", RECORD_PATH_PREFIX]
            .iter()
            .any(|p| s.starts_with(p))
    })
}

/// A schema-level index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexDef {
    /// Field names (or system fields), each optionally prefixed with `-` for descending order.
    pub fields: Vec<String>,
    /// A unique index (within a tenant).
    #[serde(default)]
    pub unique: bool,
    /// Explicit index name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl IndexDef {
    /// The index's fields as `(field name, descending)`: `-dueDate` → `("dueDate", true)`.
    pub fn columns(&self) -> Vec<(&str, bool)> {
        self.fields.iter().map(|f| split_index_field(f)).collect()
    }
}

/// Splits an index field spec into name and descending flag: `-dueDate` → `("dueDate", true)`.
pub fn split_index_field(spec: &str) -> (&str, bool) {
    match spec.strip_prefix('-') {
        Some(name) => (name, true),
        None => (spec, false),
    }
}
