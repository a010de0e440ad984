//! References enforced by the database (SPEC §13): a record's reference names a record of the
//! target entity in the same tenant, however writes and deletes interleave.
//!
//! - **PostgreSQL**: a foreign key `("tenant_id", <column>)` → target `("tenant_id", "id")` (the
//!   target's primary key), named `fk_<hash>`; `NO ACTION`, so deleting a referenced record
//!   fails (`23503`) and the engine answers 409 `still_referenced`. An index on `("tenant_id",
//!   <column>, "id")` on the referring table (one of the model's indexes, see the compiler) keeps
//!   that check and reverse expansions off a scan.
//! - **SQLite**: a composite foreign key can only be declared when a table is created, and a
//!   reference may be added later (a new version, a target activated after its referrers). Three
//!   triggers do the same job and can come and go with activations: before an insert and before
//!   an update of the column on the referring table (the target must exist), before a delete on
//!   the target (no referring row may remain). They raise [`SQLITE_MISSING`] and
//!   [`SQLITE_STILL_REFERENCED`], which the store recognises. SQLite runs one writer at a time,
//!   so a check and the write it guards cannot interleave with another writer's.
//!
//! A reference is identified by its referring table and column; its constraint or triggers are
//! named from a hash of both (`fk_<16 hex>`), within PostgreSQL's 63 bytes for any names.

use crate::{Dialect, ddl::qualified_table};
use metaengine_core::ident::quote_ident;
use sha2::{Digest, Sha256};

/// The message of the SQLite trigger that refuses a write naming a missing target.
pub const SQLITE_MISSING: &str = "metaengine: referenced record does not exist";

/// The message of the SQLite trigger that refuses deleting a referenced record.
pub const SQLITE_STILL_REFERENCED: &str = "metaengine: record is still referenced";

/// One reference between two data tables: `table.column` holds ids of `target`'s records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferenceLink {
    /// The referring data table.
    pub table: String,
    /// Its reference column.
    pub column: String,
    /// The target's data table.
    pub target: String,
}

impl ReferenceLink {
    /// The name of its constraint (PostgreSQL), or the stem of its triggers' names (SQLite).
    pub fn name(&self) -> String {
        let digest = Sha256::digest(format!("{}\u{0}{}", self.table, self.column).as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("fk_{hex}")
    }

    /// Statements that make the database enforce it.
    pub fn create(&self, dialect: Dialect) -> Vec<String> {
        let table = qualified_table(dialect, &self.table);
        let target = qualified_table(dialect, &self.target);
        let column = quote_ident(&self.column);
        let name = self.name();
        match dialect {
            Dialect::Postgres => vec![format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} FOREIGN KEY (\"tenant_id\", {column}) \
                 REFERENCES {target} (\"tenant_id\", \"id\")",
                quote_ident(&name)
            )],
            Dialect::Sqlite => {
                let missing = format!(
                    "WHEN NEW.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {target} \
                     WHERE \"tenant_id\" = NEW.\"tenant_id\" AND \"id\" = NEW.{column}) \
                     BEGIN SELECT RAISE(ABORT, '{SQLITE_MISSING}'); END"
                );
                vec![
                    format!(
                        "CREATE TRIGGER {} BEFORE INSERT ON {table} FOR EACH ROW {missing}",
                        quote_ident(&format!("{name}_i"))
                    ),
                    format!(
                        "CREATE TRIGGER {} BEFORE UPDATE OF {column} ON {table} FOR EACH ROW \
                         {missing}",
                        quote_ident(&format!("{name}_u"))
                    ),
                    format!(
                        "CREATE TRIGGER {} BEFORE DELETE ON {target} FOR EACH ROW \
                         WHEN EXISTS (SELECT 1 FROM {table} WHERE \"tenant_id\" = \
                         OLD.\"tenant_id\" AND {column} = OLD.\"id\") \
                         BEGIN SELECT RAISE(ABORT, '{SQLITE_STILL_REFERENCED}'); END",
                        quote_ident(&format!("{name}_d"))
                    ),
                ]
            }
        }
    }

    /// `SELECT count(*)` of the referring rows whose target does not exist: the rows that keep
    /// the reference from being enforced.
    pub fn dangling_count(&self, dialect: Dialect) -> String {
        let column = quote_ident(&self.column);
        format!(
            "SELECT count(*) FROM {} AS \"c\" WHERE \"c\".{column} IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM {} AS \"t\" WHERE \"t\".\"tenant_id\" = \"c\".\"tenant_id\" AND \
             \"t\".\"id\" = \"c\".{column})",
            qualified_table(dialect, &self.table),
            qualified_table(dialect, &self.target),
        )
    }

    /// The ids (as text) of the referring rows of record `$2` of tenant `$1`.
    pub fn referrer_ids(&self, dialect: Dialect) -> String {
        format!(
            "SELECT \"id\"{} FROM {} WHERE \"tenant_id\" = $1 AND {} = $2{}",
            text_cast(dialect),
            qualified_table(dialect, &self.table),
            quote_ident(&self.column),
            uuid_cast(dialect)
        )
    }

    /// `onDelete: setNull`: clears the reference of the referring rows of record `$2` of tenant
    /// `$1` (a new row version, `updatedAt` `$3`, `updatedBy` `$4`); their ids.
    pub fn set_null(&self, dialect: Dialect) -> String {
        let ts = if dialect == Dialect::Postgres {
            "::timestamptz"
        } else {
            ""
        };
        let column = quote_ident(&self.column);
        format!(
            "UPDATE {} SET {column} = NULL, \"updated_at\" = $3{ts}, \"updated_by\" = $4, \
             \"row_version\" = \"row_version\" + 1 WHERE \"tenant_id\" = $1 AND {column} = $2{} \
             RETURNING \"id\"{}",
            qualified_table(dialect, &self.table),
            uuid_cast(dialect),
            text_cast(dialect)
        )
    }

    /// `onDelete: cascade`: deletes the referring row `$2` of tenant `$1`.
    pub fn delete_referrer(&self, dialect: Dialect) -> String {
        format!(
            "DELETE FROM {} WHERE \"tenant_id\" = $1 AND \"id\" = $2{}",
            qualified_table(dialect, &self.table),
            uuid_cast(dialect)
        )
    }

    /// `SELECT count(*)` of the referring rows of the record `$2` of tenant `$1`.
    pub fn referrers_count(&self, dialect: Dialect) -> String {
        format!(
            "SELECT count(*) FROM {} WHERE \"tenant_id\" = $1 AND {} = $2{}",
            qualified_table(dialect, &self.table),
            quote_ident(&self.column),
            uuid_cast(dialect)
        )
    }
}

/// `::uuid` on PostgreSQL, where ids are uuids; nothing on SQLite.
fn uuid_cast(dialect: Dialect) -> &'static str {
    if dialect == Dialect::Postgres {
        "::uuid"
    } else {
        ""
    }
}

/// `::text` on PostgreSQL; nothing on SQLite, where ids are text.
fn text_cast(dialect: Dialect) -> &'static str {
    if dialect == Dialect::Postgres {
        "::text"
    } else {
        ""
    }
}

/// The references the database enforces now: `(name, referring table)` rows, the name being
/// [`ReferenceLink::name`]: constraints named `fk_…` of the engine's schema (PostgreSQL), the
/// stems of triggers named `fk_…_i` (SQLite).
pub fn enforced_references(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "SELECT c.conname::text, r.relname::text FROM pg_constraint c \
             JOIN pg_namespace n ON n.oid = c.connamespace JOIN pg_class r ON r.oid = c.conrelid \
             WHERE c.contype = 'f' AND n.nspname = 'core' AND c.conname LIKE 'fk\\_%'"
        }
        Dialect::Sqlite => {
            "SELECT substr(name, 1, length(name) - 2), tbl_name FROM sqlite_master \
             WHERE type = 'trigger' AND name LIKE 'fk\\_%\\_i' ESCAPE '\\'"
        }
    }
}

/// Statements that stop enforcing the reference `name` of referring table `table` (each a
/// no-op when it is not there).
pub fn drop_reference(dialect: Dialect, table: &str, name: &str) -> Vec<String> {
    match dialect {
        Dialect::Postgres => vec![format!(
            "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
            qualified_table(dialect, table),
            quote_ident(name)
        )],
        Dialect::Sqlite => ["i", "u", "d"]
            .iter()
            .map(|s| {
                format!(
                    "DROP TRIGGER IF EXISTS {}",
                    quote_ident(&format!("{name}_{s}"))
                )
            })
            .collect(),
    }
}

/// SQLite: the reference triggers that name data table `$1` (`%"<table>"%` bound), on it or on
/// another table: to drop before the table itself.
pub const SQLITE_TRIGGERS_NAMING: &str = "SELECT name FROM sqlite_master WHERE type = 'trigger' \
     AND name LIKE 'fk\\_%' ESCAPE '\\' AND sql LIKE $1";
