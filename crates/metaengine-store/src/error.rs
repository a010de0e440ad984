//! The error of every [`Store`](crate::Store) operation.

/// What a store operation can fail with. Domain refusals are distinct variants so callers can
/// answer them precisely (404, 409); everything else is an opaque database error whose text is
/// logged, never shown to users.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No entity with that name.
    #[error("entity `{0}` does not exist")]
    EntityNotFound(String),
    /// An entity with that name already exists.
    #[error("entity `{0}` already exists")]
    EntityExists(String),
    /// No such version of the entity.
    #[error("version `{version}` of entity `{entity}` does not exist")]
    VersionNotFound {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// That version label is taken for this entity.
    #[error("version `{version}` of entity `{entity}` already exists")]
    VersionExists {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// The version has been active once and can no longer change.
    #[error(
        "version `{version}` of entity `{entity}` has been active and is immutable; create a new version to change the schema"
    )]
    VersionImmutable {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// The version is the active one.
    #[error(
        "version `{version}` of entity `{entity}` is active; deactivate it or activate another version first"
    )]
    VersionActive {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// The version is not the active one.
    #[error("version `{version}` of entity `{entity}` is not the active version")]
    VersionNotActive {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// Deleting the record is refused: `count` records of other entities (or of its own)
    /// refer to it (SPEC §13, `onDelete: restrict`).
    #[error("the `{entity}` record is still referenced by {count} record(s)")]
    StillReferenced {
        /// The deleted record's entity.
        entity: String,
        /// How many records refer to it.
        count: u64,
    },
    /// A write is refused by the database: a record it refers to does not exist (deleted since
    /// the engine checked it).
    #[error("a record that `{0}` refers to does not exist")]
    MissingReference(String),
    /// Someone else changed the row between read and write.
    #[error("`{0}` was changed concurrently; read it again and retry")]
    Concurrent(String),
    /// No tenant with that id.
    #[error("tenant `{0}` does not exist")]
    TenantNotFound(String),
    /// A tenant with that id already exists.
    #[error("tenant `{0}` already exists")]
    TenantExists(String),
    /// The activation would break the data table; nothing was changed.
    #[error("activating version `{version}` of entity `{entity}` needs breaking changes")]
    Breaking {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
        /// One entry per breaking change, with a pointer into the new schema.
        errors: Vec<metaengine_core::Problem>,
    },
    /// Applying the planned DDL failed on the existing rows (such as a new unique index over
    /// duplicate values); nothing was changed.
    #[error(
        "activating version `{version}` of entity `{entity}` failed on existing rows: {reason}"
    )]
    RowsConflict {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
        /// What the rows violate.
        reason: String,
    },
    /// The entity's table holds rows and `force` was not given.
    #[error(
        "entity `{0}` has data rows; delete them first or force the deletion, which drops its table"
    )]
    HasRows(String),
    /// A stored schema no longer reads as a schema (written by another engine version?).
    #[error("the stored schema of version `{version}` of entity `{entity}` cannot be read")]
    CorruptSchema {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// A data statement could not be built from the request (unknown field, misfit value…).
    #[error(transparent)]
    Query(#[from] metaengine_sql::query::QueryError),
    /// A write would duplicate the value of a unique field (or set of fields).
    #[error("a record of `{0}` with the same value of a unique field already exists")]
    Unique(String),
    /// Applying the engine's migrations failed.
    #[error("applying migrations failed")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other database failure (connection, I/O, constraint we did not expect); the driver's
    /// error is the source, logged with a 500, never shown to users.
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;
