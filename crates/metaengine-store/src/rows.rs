//! Row types of the engine's own tables (`meta.*`, `core.tenant`).
//!
//! The SQL migrations of each backend are the source of truth. Each row type here is declared with
//! `table_row!`, which derives its column list ([`TableRow::COLUMNS`]) from the struct's own field
//! names and types, so the drift test (`row_types_match_the_migrated_catalog` in each backend's
//! `tests/store.rs`) can compare the Rust type with the live catalog column by column: a column added to a migration and not here, or the
//! reverse, or a wrong type or nullability, fails the build's tests.

use serde::Serialize;
use serde_json::Value;

use crate::error::StoreError;
use crate::types::{Id, Timestamp};

/// The logical type of a column, as the drift test compares it with the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `uuid` (PostgreSQL) / `TEXT` (SQLite)
    Uuid,
    /// `text` / `TEXT`
    Text,
    /// `timestamptz(3)` / `TEXT` (RFC 3339)
    Timestamp,
    /// `boolean` / `INTEGER`
    Bool,
    /// `jsonb` / `TEXT`
    Json,
    /// `bigint` / `INTEGER`
    BigInt,
}

impl ColumnKind {
    /// The PostgreSQL `information_schema.columns.data_type` of this kind.
    pub fn postgres_type(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Text => "text",
            Self::Timestamp => "timestamp with time zone",
            Self::Bool => "boolean",
            Self::Json => "jsonb",
            Self::BigInt => "bigint",
        }
    }

    /// The declared SQLite column type of this kind (`PRAGMA table_info`).
    pub fn sqlite_type(self) -> &'static str {
        match self {
            Self::Uuid | Self::Text | Self::Timestamp | Self::Json => "TEXT",
            Self::Bool | Self::BigInt => "INTEGER",
        }
    }
}

/// One column of a table as the Rust row type declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name (the struct field's name).
    pub name: &'static str,
    /// Logical type.
    pub kind: ColumnKind,
    /// Whether the column accepts NULL (the field is an `Option`).
    pub nullable: bool,
}

/// Maps a Rust field type to its column kind and nullability.
pub trait SqlType {
    /// The column kind.
    const KIND: ColumnKind;
    /// Whether NULL is allowed.
    const NULLABLE: bool = false;
}

impl SqlType for Id {
    const KIND: ColumnKind = ColumnKind::Uuid;
}
impl SqlType for String {
    const KIND: ColumnKind = ColumnKind::Text;
}
impl SqlType for Timestamp {
    const KIND: ColumnKind = ColumnKind::Timestamp;
}
impl SqlType for bool {
    const KIND: ColumnKind = ColumnKind::Bool;
}
impl SqlType for Value {
    const KIND: ColumnKind = ColumnKind::Json;
}
impl SqlType for i64 {
    const KIND: ColumnKind = ColumnKind::BigInt;
}
impl SqlType for TenantStatus {
    const KIND: ColumnKind = ColumnKind::Text;
}
impl<T: SqlType> SqlType for Option<T> {
    const KIND: ColumnKind = T::KIND;
    const NULLABLE: bool = true;
}

/// A Rust type that mirrors one table of the migrations.
pub trait TableRow {
    /// PostgreSQL schema of the table (`meta` or `core`); SQLite has no schemas.
    const SCHEMA: &'static str;
    /// Table name.
    const TABLE: &'static str;
    /// Columns in declaration order.
    const COLUMNS: &'static [Column];
}

/// Declares a row struct and derives its [`TableRow`] description from its fields.
macro_rules! table_row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $schema:literal . $table:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty ),* }

        impl TableRow for $name {
            const SCHEMA: &'static str = $schema;
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [Column] = &[ $( Column {
                name: stringify!($field),
                kind: <$ty as SqlType>::KIND,
                nullable: <$ty as SqlType>::NULLABLE,
            } ),* ];
        }
    };
}

table_row! {
    /// An entity definition (`meta.meta_entities`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct EntityRow in "meta"."meta_entities" {
        /// Row id.
        pub id: Id,
        /// PascalCase entity name, unique.
        pub name: String,
        /// Free text.
        pub description: Option<String>,
        /// Label of the active version, if any.
        pub active_version: Option<String>,
        /// Creation time.
        pub created_at: Timestamp,
        /// Last change time.
        pub updated_at: Timestamp,
        /// User id of the creator.
        pub created_by: String,
    }
}

table_row! {
    /// One version of an entity's schema (`meta.meta_versions`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct VersionRow in "meta"."meta_versions" {
        /// Row id.
        pub id: Id,
        /// Owning entity.
        pub entity_name: String,
        /// Version label (`v1`, `1.2.0`).
        pub version: String,
        /// The whole entity schema document.
        pub schema: Value,
        /// Whether this is the entity's active version (at most one per entity).
        pub is_active: bool,
        /// Creation time.
        pub created_at: Timestamp,
        /// User id of the creator.
        pub created_by: String,
        /// Last activation time. Set once a version has been active, which makes it immutable
        /// for good; the latest one tells which version shaped the data table. Not in the seed's
        /// table: without it, "has been active" could only be read from the audit trail, which
        /// retention purges.
        pub activated_at: Option<Timestamp>,
    }
}

table_row! {
    /// One audit event (`meta.meta_audit`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AuditRow in "meta"."meta_audit" {
        /// Row id.
        pub id: Id,
        /// Unique event id.
        pub event_id: String,
        /// Event type such as `meta.entity.create`.
        pub event_type: String,
        /// When it happened.
        pub timestamp: Timestamp,
        /// Acting user.
        pub user_id: String,
        /// Acting user's tenant.
        pub tenant_id: String,
        /// Acting user's realm.
        pub realm_id: String,
        /// What was attempted (`create`, `activate`…).
        pub action: String,
        /// Entity name (meta, policy, data events) or tenant id (tenant events).
        pub resource: String,
        /// What changed.
        pub details: Option<Value>,
        /// `success` or `failure`.
        pub result: String,
        /// Why it failed.
        pub error_message: Option<String>,
        /// Position in the tenant's hash chain (SPEC §16), from 1. Not in the seed's table; with
        /// `prev_hash` and `hash`, `NULL` until the chainer appends the row to its chain (a row
        /// written by a request's transaction, sealed), or for good (a row inserted by hand,
        /// which `audit verify` finds).
        #[serde(skip)]
        pub seq: Option<i64>,
        /// Hash of the tenant's previous row (the chain's genesis for the first).
        pub prev_hash: Option<String>,
        /// `sha256(prev_hash ‖ canonical JSON of the other columns)` (`chain::content`).
        pub hash: Option<String>,
        /// `HMAC(audit key, content)` of a row written but not chained yet (`chain::SealKey`);
        /// `NULL` once chained. Not in the seed's table.
        #[serde(skip)]
        pub seal: Option<String>,
    }
}

table_row! {
    /// The end of a tenant's audit hash chain (`meta.meta_audit_heads`, not in the seed): every
    /// append locks it, which serializes a tenant's appends across transactions and instances.
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AuditHeadRow in "meta"."meta_audit_heads" {
        /// The chain's tenant.
        pub tenant_id: String,
        /// Position of the last row (0 before the first).
        pub seq: i64,
        /// The chain's hash before its last append (which may have added several rows): lets
        /// one SQL statement append rows and return the hash they chain from.
        pub before_hash: String,
        /// Hash of the last row.
        pub hash: String,
    }
}

table_row! {
    /// A tenant (`core.tenant`).
    #[derive(Debug, Clone, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TenantRow in "core"."tenant" {
        /// Tenant id chosen at creation (`^[a-z0-9][a-z0-9_-]{0,62}$`).
        pub id: String,
        /// Display name.
        pub name: String,
        /// Whether its requests are served.
        pub status: TenantStatus,
        /// Creation time.
        pub created_at: Timestamp,
    }
}

/// Whether a tenant's requests are served (`core.tenant.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// `active`: its requests are served.
    Active,
    /// `suspended`: its requests answer 403.
    Suspended,
}

impl TenantStatus {
    /// Every status, in the order messages list them.
    pub const ALL: [TenantStatus; 2] = [TenantStatus::Active, TenantStatus::Suspended];

    /// The stored and JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TenantStatus {
    type Err = crate::audit::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| crate::audit::UnknownName {
                what: "tenant status",
                name: s.to_owned(),
                known: Self::ALL.map(Self::as_str).join(", "),
            })
    }
}

impl VersionRow {
    /// The stored schema document as a schema; [`StoreError::CorruptSchema`] when it no longer
    /// reads as one (written by another engine version?).
    pub fn parse_schema(&self) -> Result<metaengine_core::EntitySchema, StoreError> {
        serde_json::from_value(self.schema.clone()).map_err(|_| StoreError::CorruptSchema {
            entity: self.entity_name.clone(),
            version: self.version.clone(),
        })
    }
}

/// Every engine table, for the drift test.
pub fn all_tables() -> [(&'static str, &'static str, &'static [Column]); 5] {
    fn t<R: TableRow>() -> (&'static str, &'static str, &'static [Column]) {
        (R::SCHEMA, R::TABLE, R::COLUMNS)
    }
    [
        t::<EntityRow>(),
        t::<VersionRow>(),
        t::<AuditRow>(),
        t::<AuditHeadRow>(),
        t::<TenantRow>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_struct() {
        let names: Vec<_> = EntityRow::COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "description",
                "active_version",
                "created_at",
                "updated_at",
                "created_by"
            ]
        );
        let description = EntityRow::COLUMNS[2];
        assert!(description.nullable);
        assert_eq!(description.kind, ColumnKind::Text);
        assert!(!EntityRow::COLUMNS[0].nullable);
    }
}
