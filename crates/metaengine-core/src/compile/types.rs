//! Types of the compiled model (SPEC §4). JSON is camelCase.

use crate::record::Comparison;
use crate::schema::{Effect, FieldType, Operator, PolicyAction};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The runtime model of one entity version: everything the data API needs, computed once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledModel {
    /// Entity name (PascalCase).
    pub entity: String,
    /// Version label.
    pub version: String,
    /// Data table name (`ent_<snake_case>`), unquoted and without schema.
    pub table_name: String,
    /// Stable hash of the canonical schema ([`crate::hash::schema_hash`]).
    pub hash: String,
    /// When it was compiled (RFC 3339, given by the caller).
    pub compiled_at: String,
    /// Who compiled it.
    pub compiled_by: String,
    /// Fields in column order.
    pub fields: Vec<CompiledField>,
    /// Policies, by priority descending (stable for equal priorities).
    pub policies: Vec<CompiledPolicy>,
    /// Every index the data table should have (the primary key excepted).
    pub indexes: Vec<CompiledIndex>,
    /// Select list: system columns then field columns, each `"col" AS "camelName"`, joined by `, `.
    /// The same text on PostgreSQL and SQLite. Informative (SPEC §4 shows it to admins): the
    /// data statements select one JSON record expression per model instead
    /// (`metaengine_sql::query`).
    pub select_list: String,
}

impl CompiledModel {
    /// Whether `other` is the same compilation: equal in everything but its provenance
    /// (`compiled_at`, `compiled_by`). A model read from a shared cache is used only when it is
    /// the same compilation as the local one.
    pub fn same_compilation(&self, other: &CompiledModel) -> bool {
        let CompiledModel {
            entity,
            version,
            table_name,
            hash,
            compiled_at: _,
            compiled_by: _,
            fields,
            policies,
            indexes,
            select_list,
        } = self;
        *entity == other.entity
            && *version == other.version
            && *table_name == other.table_name
            && *hash == other.hash
            && *fields == other.fields
            && *policies == other.policies
            && *indexes == other.indexes
            && *select_list == other.select_list
    }

    /// The compiled field named `name`, if any.
    pub fn field(&self, name: &str) -> Option<&CompiledField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// One compiled field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledField {
    /// camelCase field name.
    pub name: String,
    /// snake_case column name (unquoted).
    pub column_name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// A value is needed on create.
    pub required: bool,
    /// Unique within a tenant and realm.
    pub unique: bool,
    /// Kept out of audit details and logs.
    pub sensitive: bool,
    /// Value used when a create gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Select fragment, e.g. `"total_amount" AS "totalAmount"` (informative, as
    /// [`CompiledModel::select_list`]).
    pub select_as: String,
    /// The checks a written value must pass.
    pub validator: FieldValidator,
}

/// The checks a value written to one field must pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldValidator {
    /// Expected type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// A value is needed on create.
    pub required: bool,
    /// Smallest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Fewest characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Most characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Source of the regular expression a value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Allowed values of an enum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<String>>,
    /// Entity a reference points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_to: Option<String>,
    /// Total digits of a decimal (defaults applied; `None` for other types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Digits after the point of a decimal (defaults applied; `None` for other types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
}

impl FieldValidator {
    /// The regular expression of a decimal's text as the API reads and writes it (digits that
    /// fit the precision and scale; no sign when the minimum is 0 or more), for the OpenAPI
    /// document and generated clients. The server checks the bounds itself.
    pub fn decimal_pattern(&self) -> String {
        let scale = self.scale.unwrap_or(0);
        let whole = self.precision.unwrap_or(18).saturating_sub(scale).max(1);
        let sign = if self.min.is_some_and(|m| m >= 0.0) {
            ""
        } else {
            "-?"
        };
        if scale == 0 {
            format!("^{sign}[0-9]{{1,{whole}}}$")
        } else {
            format!("^{sign}[0-9]{{1,{whole}}}(\\.[0-9]{{1,{scale}}})?$")
        }
    }
}

/// One compiled policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledPolicy {
    /// Policy name.
    pub name: String,
    /// Allow or deny.
    pub effect: Effect,
    /// The action it is about.
    pub action: PolicyAction,
    /// Priority (higher first).
    pub priority: i32,
    /// Conditions, all of which must hold.
    pub conditions: Vec<CompiledCondition>,
    /// The fields it grants (allow) or withholds (deny); `None`: all of them (an allow) or the
    /// action itself (a deny). See [`crate::policy::FieldAccess`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

impl CompiledPolicy {
    /// Whether this policy decides the action itself: every policy but a deny with `fields`,
    /// which only withholds fields.
    pub fn decides_action(&self) -> bool {
        self.effect == crate::schema::Effect::Allow || self.fields.is_none()
    }
}

/// One condition in typed form: `subject operator value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledCondition {
    /// What is tested.
    pub subject: ValuePath,
    /// The comparison.
    pub operator: Operator,
    /// What it is compared with.
    pub value: ConditionValue,
    /// How the values compare: by the type of the record field the condition names (its
    /// subject, else its value); [`Comparison::Json`] when it names none.
    #[serde(default, skip_serializing_if = "Comparison::is_json")]
    pub comparison: Comparison,
}

/// A path naming a value of the request or of the record (SPEC §6). JSON is the path text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ValuePath {
    /// `user.id`.
    UserId,
    /// `user.role`: any one of the user's roles.
    UserRole,
    /// `user.roles`: the whole list of roles.
    UserRoles,
    /// `context.userId`.
    ContextUserId,
    /// `context.tenantId`.
    ContextTenantId,
    /// `context.realmId`.
    ContextRealmId,
    /// `context.roles`.
    ContextRoles,
    /// `record.<field>`: a field (or system field) of the record, by camelCase name.
    Record(String),
    /// A path the compiler does not know (only in a schema that skipped validation). Evaluating a
    /// condition that uses it is an error, which denies (fail secure).
    Unknown(String),
}

impl ValuePath {
    /// The path for `text`; [`ValuePath::Unknown`] when it names nothing known.
    pub fn parse(text: &str) -> ValuePath {
        match text {
            "user.id" => ValuePath::UserId,
            "user.role" => ValuePath::UserRole,
            "user.roles" => ValuePath::UserRoles,
            "context.userId" => ValuePath::ContextUserId,
            "context.tenantId" => ValuePath::ContextTenantId,
            "context.realmId" => ValuePath::ContextRealmId,
            "context.roles" => ValuePath::ContextRoles,
            other => match other.strip_prefix(crate::schema::RECORD_PATH_PREFIX) {
                Some(field) if !field.is_empty() => ValuePath::Record(field.to_owned()),
                _ => ValuePath::Unknown(other.to_owned()),
            },
        }
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValuePath::UserId => f.write_str("user.id"),
            ValuePath::UserRole => f.write_str("user.role"),
            ValuePath::UserRoles => f.write_str("user.roles"),
            ValuePath::ContextUserId => f.write_str("context.userId"),
            ValuePath::ContextTenantId => f.write_str("context.tenantId"),
            ValuePath::ContextRealmId => f.write_str("context.realmId"),
            ValuePath::ContextRoles => f.write_str("context.roles"),
            ValuePath::Record(field) => write!(f, "record.{field}"),
            ValuePath::Unknown(text) => f.write_str(text),
        }
    }
}

impl From<String> for ValuePath {
    fn from(text: String) -> Self {
        ValuePath::parse(&text)
    }
}

impl From<ValuePath> for String {
    fn from(path: ValuePath) -> Self {
        path.to_string()
    }
}

/// The right-hand side of a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum ConditionValue {
    /// A literal JSON value.
    Literal(serde_json::Value),
    /// A path, resolved at evaluation time.
    Path(ValuePath),
    /// No value (e.g. `exists` without a value).
    None,
}

/// One index of the data table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompiledIndex {
    /// Index name: deterministic, at most 63 bytes.
    pub name: String,
    /// Columns in order, each with its descending flag; always led by `tenant_id, realm_id`.
    pub columns: Vec<(String, bool)>,
    /// A unique index.
    pub unique: bool,
}
