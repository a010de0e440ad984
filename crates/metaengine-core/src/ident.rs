//! Identifiers: entity and field names, version labels, and the one quoting function through which
//! every identifier reaches SQL (SPEC §3).
//!
//! Names are checked against their pattern, and the derived SQL name (`ent_<snake>` for an entity,
//! `<snake>` for a field) against PostgreSQL's 63-byte identifier limit: a longer name is rejected,
//! never truncated, because PostgreSQL would silently truncate it and two names could collide.

use crate::schema::FieldType;
use heck::ToSnakeCase;
use std::fmt;

/// PostgreSQL's identifier limit in bytes (`NAMEDATALEN - 1`).
pub const MAX_IDENT_BYTES: usize = 63;

/// Longest accepted version label, in bytes.
pub const MAX_VERSION_LABEL_BYTES: usize = 64;

/// Prefix of every entity data table.
pub const TABLE_PREFIX: &str = "ent_";

/// The entity-name rule as a regular expression (JSON Schema / ECMA-262 and Rust `regex` alike),
/// for documents such as OpenAPI: necessary, not sufficient (the length bound is the name's, while
/// the rule bounds the table name `ent_<snake>`; reserved prefixes are not expressed).
pub const ENTITY_NAME_PATTERN: &str = "^[A-Z][A-Za-z0-9]{0,58}$";

/// The field-name rule as a regular expression, necessary, not sufficient (system columns,
/// reserved keywords and prefixes, and the snake_case length are checked by
/// [`validate_field_name`] only).
pub const FIELD_NAME_PATTERN: &str = "^[a-z][A-Za-z0-9]{0,62}$";

/// The version-label rule as a regular expression: `v` and 1 to 6 digits, or a semantic version
/// 2.0 (the pattern of semver.org). With a length of at most [`MAX_VERSION_LABEL_BYTES`] it is
/// exactly [`validate_version_label`].
pub const VERSION_LABEL_PATTERN: &str = concat!(
    r"^(v[0-9]{1,6}|(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)",
    r"(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?",
    r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?)$"
);

/// The tenant-id rule, exactly: lowercase letters, digits, `_` and `-`, at most 63 characters.
pub const TENANT_ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";

/// Prefixes that no derived SQL name may start with (they belong to the database's own catalog).
pub const RESERVED_PREFIXES: &[&str] = &["pg_", "sqlite_"];

/// One system field of every record: its JSON name, its column and the type it is stored, read,
/// filtered and documented as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemField {
    /// camelCase name in a record (`createdAt`).
    pub name: &'static str,
    /// Column of the data table (`created_at`).
    pub column: &'static str,
    /// Its type.
    pub field_type: FieldType,
    /// Whether a list may filter on it (`tenantId` and `realmId` come from the caller's scope).
    pub filterable: bool,
}

const fn system(
    name: &'static str,
    column: &'static str,
    field_type: FieldType,
    filterable: bool,
) -> SystemField {
    SystemField {
        name,
        column,
        field_type,
        filterable,
    }
}

/// THE system fields of every entity data table, in table order: every other list of them is
/// derived from this one.
pub const SYSTEM: &[SystemField] = &[
    system("tenantId", "tenant_id", FieldType::String, false),
    system("realmId", "realm_id", FieldType::String, false),
    system("id", "id", FieldType::Reference, true),
    system("createdAt", "created_at", FieldType::Datetime, true),
    system("updatedAt", "updated_at", FieldType::Datetime, true),
    system("createdBy", "created_by", FieldType::String, true),
    system("updatedBy", "updated_by", FieldType::String, true),
    system("rowVersion", "row_version", FieldType::Integer, true),
];

/// System columns of every entity data table, in table order (from [`SYSTEM`]).
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of bounds fails the build"
)]
pub const SYSTEM_COLUMNS: [&str; SYSTEM.len()] = {
    let mut out = [""; SYSTEM.len()];
    let mut i = 0;
    while i < SYSTEM.len() {
        out[i] = SYSTEM[i].column;
        i += 1;
    }
    out
};

/// System columns as the camelCase names a record shows in JSON, in the order of
/// [`SYSTEM_COLUMNS`] (from [`SYSTEM`]).
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of bounds fails the build"
)]
pub const SYSTEM_FIELDS: [&str; SYSTEM.len()] = {
    let mut out = [""; SYSTEM.len()];
    let mut i = 0;
    while i < SYSTEM.len() {
        out[i] = SYSTEM[i].name;
        i += 1;
    }
    out
};

/// The system field named `name` (camelCase), if any.
pub fn system_field(name: &str) -> Option<&'static SystemField> {
    SYSTEM.iter().find(|f| f.name == name)
}

/// PostgreSQL keywords that cannot be used as a column name without quoting: the "reserved" and
/// "reserved (can be function or type)" entries of the PostgreSQL column in the documentation's
/// appendix "SQL Key Words". Sorted, for binary search.
const RESERVED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// What kind of name an [`IdentError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// An entity name (PascalCase).
    Entity,
    /// A field name (camelCase).
    Field,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Entity => "entity",
            NameKind::Field => "field",
        })
    }
}

/// A name or label that breaks one of the identifier rules. The `Display` form is the full message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    /// The entity name does not match `^[A-Z][A-Za-z0-9]*$`.
    #[error("entity name `{name}` must match `^[A-Z][A-Za-z0-9]*$` (PascalCase)")]
    EntityNamePattern {
        /// The offending name.
        name: String,
    },
    /// The field name does not match `^[a-z][A-Za-z0-9]*$`.
    #[error("field name `{name}` must match `^[a-z][A-Za-z0-9]*$` (camelCase)")]
    FieldNamePattern {
        /// The offending name.
        name: String,
    },
    /// The derived SQL name is longer than [`MAX_IDENT_BYTES`].
    #[error(
        "{kind} name `{name}` gives the SQL name `{sql_name}` of {bytes} bytes, longer than PostgreSQL's limit of 63 bytes"
    )]
    TooLong {
        /// Entity or field.
        kind: NameKind,
        /// The offending name.
        name: String,
        /// The derived table or column name.
        sql_name: String,
        /// Length of `sql_name` in bytes.
        bytes: usize,
    },
    /// The field's column name is one of [`SYSTEM_COLUMNS`].
    #[error("field name `{name}` gives the column name `{column}`, which is a system column")]
    SystemColumn {
        /// The offending name.
        name: String,
        /// The derived column name.
        column: String,
    },
    /// The field's column name is a reserved keyword of PostgreSQL.
    #[error(
        "field name `{name}` gives the column name `{column}`, which is a reserved keyword of PostgreSQL"
    )]
    ReservedKeyword {
        /// The offending name.
        name: String,
        /// The derived column name.
        column: String,
    },
    /// The snake_case form starts with `pg_` or `sqlite_`.
    #[error(
        "{kind} name `{name}` gives `{snake}`, which starts with the reserved prefix `{prefix}`"
    )]
    ReservedPrefix {
        /// Entity or field.
        kind: NameKind,
        /// The offending name.
        name: String,
        /// Its snake_case form.
        snake: String,
        /// The reserved prefix it starts with.
        prefix: &'static str,
    },
    /// The version label is neither `v<1 to 6 digits>` nor a semantic version.
    #[error(
        "version label `{label}` must match `^v[0-9]{{1,6}}$` or be a semantic version such as `1.2.3` or `1.0.0-rc.1`"
    )]
    VersionLabel {
        /// The offending label.
        label: String,
    },
    /// The version label is longer than [`MAX_VERSION_LABEL_BYTES`].
    #[error("version label `{label}` is {bytes} bytes long, longer than the limit of 64 bytes")]
    VersionLabelTooLong {
        /// The offending label.
        label: String,
        /// Its length in bytes.
        bytes: usize,
    },
}

/// `^[A-Z][A-Za-z0-9]*$` when `upper_first`, `^[a-z][A-Za-z0-9]*$` otherwise.
fn matches_name_pattern(name: &str, upper_first: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = match chars.next() {
        Some(c) if upper_first => c.is_ascii_uppercase(),
        Some(c) => c.is_ascii_lowercase(),
        None => false,
    };
    first_ok && chars.all(|c| c.is_ascii_alphanumeric())
}

fn reserved_prefix(snake: &str) -> Option<&'static str> {
    RESERVED_PREFIXES
        .iter()
        .copied()
        .find(|prefix| snake.starts_with(prefix))
}

/// Checks an entity name: `^[A-Z][A-Za-z0-9]*$`, table name `ent_<snake>` of at most 63 bytes,
/// snake_case form not starting with `pg_` or `sqlite_`.
pub fn validate_entity_name(name: &str) -> Result<(), IdentError> {
    if !matches_name_pattern(name, true) {
        return Err(IdentError::EntityNamePattern { name: name.into() });
    }
    let snake = snake_case(name);
    if let Some(prefix) = reserved_prefix(&snake) {
        return Err(IdentError::ReservedPrefix {
            kind: NameKind::Entity,
            name: name.into(),
            snake,
            prefix,
        });
    }
    let table = table_name(name);
    if table.len() > MAX_IDENT_BYTES {
        return Err(IdentError::TooLong {
            kind: NameKind::Entity,
            name: name.into(),
            bytes: table.len(),
            sql_name: table,
        });
    }
    Ok(())
}

/// Checks a field name: `^[a-z][A-Za-z0-9]*$`, column name (snake_case) of at most 63 bytes, not a
/// system column, not a reserved keyword of PostgreSQL, not starting with `pg_` or `sqlite_`.
pub fn validate_field_name(name: &str) -> Result<(), IdentError> {
    if !matches_name_pattern(name, false) {
        return Err(IdentError::FieldNamePattern { name: name.into() });
    }
    let column = column_name(name);
    if column.len() > MAX_IDENT_BYTES {
        return Err(IdentError::TooLong {
            kind: NameKind::Field,
            name: name.into(),
            bytes: column.len(),
            sql_name: column,
        });
    }
    if SYSTEM_COLUMNS.contains(&column.as_str()) {
        return Err(IdentError::SystemColumn {
            name: name.into(),
            column,
        });
    }
    if is_reserved_keyword(&column) {
        return Err(IdentError::ReservedKeyword {
            name: name.into(),
            column,
        });
    }
    if let Some(prefix) = reserved_prefix(&column) {
        return Err(IdentError::ReservedPrefix {
            kind: NameKind::Field,
            name: name.into(),
            snake: column,
            prefix,
        });
    }
    Ok(())
}

/// Checks a version label: `^v[0-9]{1,6}$` or a semantic version 2.0 (`1.2.3`, `1.0.0-rc.1+build`),
/// at most [`MAX_VERSION_LABEL_BYTES`] bytes.
pub fn validate_version_label(label: &str) -> Result<(), IdentError> {
    if label.len() > MAX_VERSION_LABEL_BYTES {
        return Err(IdentError::VersionLabelTooLong {
            label: label.into(),
            bytes: label.len(),
        });
    }
    let short = label
        .strip_prefix('v')
        .is_some_and(|digits| (1..=6).contains(&digits.len()) && all_digits(digits));
    if short || is_semver(label) {
        Ok(())
    } else {
        Err(IdentError::VersionLabel {
            label: label.into(),
        })
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A numeric identifier of semver: `0` or digits without a leading zero.
fn is_numeric_identifier(s: &str) -> bool {
    all_digits(s) && (s == "0" || !s.starts_with('0'))
}

fn is_alphanumeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Semantic versioning 2.0.0: `MAJOR.MINOR.PATCH[-pre.release][+build.meta]`.
fn is_semver(label: &str) -> bool {
    let (rest, build) = match label.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (label, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let core_ok = parts.len() == 3 && parts.iter().all(|p| is_numeric_identifier(p));
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.').all(|id| {
            is_alphanumeric_identifier(id) && (!all_digits(id) || is_numeric_identifier(id))
        })
    });
    let build_ok = build.is_none_or(|build| build.split('.').all(is_alphanumeric_identifier));
    core_ok && pre_ok && build_ok
}

/// snake_case form of a name: `totalAmount` → `total_amount`, `Invoice` → `invoice`,
/// `SalesOrder` → `sales_order`.
pub fn snake_case(name: &str) -> String {
    name.to_snake_case()
}

/// Table name of an entity: `ent_` + snake_case (`SalesOrder` → `ent_sales_order`).
pub fn table_name(entity: &str) -> String {
    format!("{TABLE_PREFIX}{}", snake_case(entity))
}

/// Column name of a field: its snake_case form (`totalAmount` → `total_amount`).
pub fn column_name(field: &str) -> String {
    snake_case(field)
}

/// THE one function through which every identifier reaches SQL: wraps it in double quotes and
/// doubles embedded double quotes (`a"b` → `"a""b"`). Valid for PostgreSQL and SQLite alike.
///
/// Identifiers passed here should already have been validated (they come from the compiled model);
/// the quoting makes even a hostile string inert as an identifier.
pub fn quote_ident(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    out.push('"');
    for c in ident.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether `word` (compared case-insensitively) is a reserved keyword of PostgreSQL, including
/// those that "can be function or type".
pub fn is_reserved_keyword(word: &str) -> bool {
    RESERVED_KEYWORDS
        .binary_search(&word.to_ascii_lowercase().as_str())
        .is_ok()
}

/// Whether `id` is a valid tenant id ([`TENANT_ID_PATTERN`]).
pub fn is_tenant_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The system column of a camelCase system field (`createdAt` → `created_at`), `None` for any
/// other name.
pub fn system_field_column(field: &str) -> Option<&'static str> {
    system_field(field).map(|f| f.column)
}

/// The column of any field a schema can name: a system field's column (`createdAt` →
/// `created_at`) or a schema field's (`totalAmount` → `total_amount`).
pub fn field_column(field: &str) -> String {
    system_field_column(field).map_or_else(|| column_name(field), str::to_owned)
}

#[cfg(test)]
mod tests;
