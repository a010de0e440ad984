//! Types of a migration plan (SPEC §5). JSON is camelCase.

use crate::compile::CompiledIndex;
use crate::schema::{FieldDef, FieldType};
use crate::validate::Problem;
use serde::{Deserialize, Serialize};

/// What the database says about the data table before the migration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableState {
    /// The table exists.
    pub exists: bool,
    /// The table has at least one row.
    pub has_rows: bool,
    /// Columns present in the table but in no field of the active schema (hidden by an earlier
    /// field removal).
    #[serde(default)]
    pub hidden_columns: Vec<String>,
    /// The last known definitions of the hidden columns' fields (from older versions), when the
    /// caller knows them. A field that comes back is checked against its old definition; a hidden
    /// column without one is taken as compatible.
    #[serde(default)]
    pub hidden_fields: Vec<FieldDef>,
}

/// The steps that take a data table from one schema to the next, or why it cannot be done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationPlan {
    /// The steps, in the order they are applied.
    pub steps: Vec<MigrationStep>,
    /// Breaking changes, each with a pointer into the new schema; any makes activation refused.
    pub breaking: Vec<Problem>,
    /// Changes that break only if some row holds a value they would not keep: the store looks
    /// at the rows and turns each check that finds one into a breaking change (SPEC §5 refuses
    /// only what would break rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<DataCheck>,
}

/// A question to the table's rows: does any row hold a value that this change would not keep?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataCheck {
    /// Where in the new schema the change is.
    pub pointer: String,
    /// The breaking change, if a row is found.
    pub message: String,
    /// The column looked at.
    pub column: String,
    /// Which rows break the change.
    pub rows: RowsThat,
}

/// Rows a change cannot keep (see [`DataCheck`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RowsThat {
    /// The column is NULL (a field becomes required).
    HaveNoValue,
    /// The column holds one of these values (enum values removed).
    UseValues {
        /// The values.
        values: Vec<String>,
    },
    /// The column holds text longer than this many characters (a `maxLength` shrinks or appears).
    AreLongerThan {
        /// The new `maxLength`.
        max_length: u32,
    },
    /// Two rows of one tenant and realm hold the same values in all these columns, none NULL (a
    /// new unique index). The check's `column` is the first of them.
    RepeatValues {
        /// The columns of the index after `tenant_id, realm_id`.
        columns: Vec<String>,
    },
    /// The column holds a number with more digits before or after the point than the decimal
    /// allows (a decimal narrows, or an integer becomes a decimal with few integer digits).
    DoNotFitDecimal {
        /// Total digits.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
}

impl MigrationPlan {
    /// At least one breaking change: the plan must not be applied.
    pub fn is_breaking(&self) -> bool {
        !self.breaking.is_empty()
    }

    /// Nothing to do and nothing refused.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty() && self.breaking.is_empty()
    }
}

/// One step of a migration plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "step",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum MigrationStep {
    /// Create the table with the system columns and these field columns.
    CreateTable {
        /// Field columns in order.
        columns: Vec<ColumnDef>,
    },
    /// Add a field column.
    AddColumn(ColumnDef),
    /// A field was removed: its column and data are kept, out of sight. On PostgreSQL its `NOT
    /// NULL` is dropped so that new rows can leave it empty.
    HideColumn {
        /// The column.
        column: String,
    },
    /// A hidden column's field is back: its data shows again.
    UnhideColumn {
        /// The column.
        column: String,
    },
    /// A safe widening of a column's type.
    WidenColumn {
        /// The column.
        column: String,
        /// The column before.
        from: ColumnDef,
        /// The column after.
        to: ColumnDef,
        /// The new schema's indexes over the column: a dialect that rebuilds the column to change
        /// its storage (SQLite: INTEGER → TEXT for integer → decimal) drops and recreates them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        indexes: Vec<CompiledIndex>,
    },
    /// A narrowing of a column's type (shorter `maxLength`, fewer decimal digits) that the data
    /// checks of the plan allow: no row holds a value the narrower column cannot keep.
    NarrowColumn {
        /// The column.
        column: String,
        /// The column before.
        from: ColumnDef,
        /// The column after.
        to: ColumnDef,
    },
    /// A field became required (on an empty table, or one whose rows all have a value).
    SetNotNull {
        /// The column.
        column: String,
    },
    /// A field is no longer required.
    DropNotNull {
        /// The column.
        column: String,
    },
    /// Create an index (a new unique index is refused by the database if rows have duplicates).
    CreateIndex(CompiledIndex),
    /// Drop an index.
    DropIndex {
        /// The index name.
        name: String,
    },
}

/// A field column as DDL needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnDef {
    /// Column name (unquoted).
    pub name: String,
    /// Field name.
    pub field: String,
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The column accepts NULL.
    pub nullable: bool,
    /// Default value of the column (fills existing rows when the column is added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Total digits of a decimal (defaults applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Digits after the point of a decimal (defaults applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Most characters of a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

impl ColumnDef {
    /// The column of `field`, nullable as given.
    pub fn of(field: &FieldDef, nullable: bool) -> Self {
        let decimal =
            (field.field_type == FieldType::Decimal).then(|| field.decimal_precision_scale());
        ColumnDef {
            name: crate::ident::column_name(&field.name),
            field: field.name.clone(),
            field_type: field.field_type,
            nullable,
            default: field.default.clone(),
            precision: decimal.map(|(p, _)| p),
            scale: decimal.map(|(_, s)| s),
            max_length: match field.field_type {
                FieldType::String => field.max_length,
                _ => None,
            },
        }
    }
}
