//! The error of data operations, one variant per answer a client can act on.

use metaengine_core::{ErrorCode, Problem};
use metaengine_store::StoreError;

use crate::cache::ActiveModel;

/// Why a data operation failed. Each variant carries or implies one [`ErrorCode`]
/// ([`DataError::code`]), which the HTTP layer maps to a status; only [`DataError::Store`] and
/// [`DataError::Internal`] hide their cause (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Unknown entity, missing record, or a record the caller may not read (404: the same answer,
    /// so nothing leaks whether it exists).
    #[error("{0}")]
    NotFound(String),
    /// The entity has no active version (409).
    #[error("entity `{0}` has no active version; activate one to use its data API")]
    Inactive(String),
    /// The request names an unknown field, operator or order, or carries a malformed value
    /// (`bad_request`, `unknown_field`, `invalid_filter` or `invalid_cursor`).
    #[error("{message}")]
    BadRequest {
        /// Which kind of bad request.
        code: ErrorCode,
        /// Summary.
        message: String,
        /// One entry per problem.
        errors: Vec<Problem>,
    },
    /// Field values break the field rules (422), every problem listed.
    #[error("the record is invalid ({} problem(s))", errors.len())]
    Invalid {
        /// One entry per problem, pointer `/<fieldName>`.
        errors: Vec<Problem>,
    },
    /// A policy denies the action (403).
    #[error("{0}")]
    Forbidden(String),
    /// The body writes fields the caller's policies do not let it write (403
    /// `field_forbidden`, SPEC §15); nothing is written.
    #[error("the record writes {} field(s) the caller may not write", errors.len())]
    FieldForbidden {
        /// One entry per field, pointer `/<fieldName>`.
        errors: Vec<Problem>,
    },
    /// A unique value is taken (`unique_violation`), or the record changed meanwhile
    /// (`conflict`).
    #[error("{message}")]
    Conflict {
        /// Which conflict.
        code: ErrorCode,
        /// What happened.
        message: String,
    },
    /// `If-Match` names another row version than the stored one (412).
    #[error("the record is at row version {current}, not {expected}")]
    PreconditionFailed {
        /// The version the client expected.
        expected: i64,
        /// The stored version.
        current: i64,
    },
    /// Operation `index` of a batch failed, so nothing of the batch was written; `error` is what
    /// its single route would have answered.
    #[error("operation {index} of the batch failed, nothing was written: {error}")]
    InBatch {
        /// The operation's position in the request.
        index: usize,
        /// Why it failed.
        error: Box<DataError>,
    },
    /// The service cannot take this now (503; the client retries later): the realtime feed is
    /// at `realtime_max_subscribers`.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error("the data store failed")]
    Store(#[source] StoreError),
    /// Something that should not happen did (a record that is not JSON, a cache that cannot be
    /// reached); the detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl DataError {
    /// A `bad_request` with a single problem.
    pub fn bad_request(pointer: &str, message: String) -> Self {
        Self::bad_request_with(ErrorCode::BadRequest, pointer, message)
    }

    /// A bad request of kind `code` with a single problem.
    pub fn bad_request_with(code: ErrorCode, pointer: &str, message: String) -> Self {
        Self::BadRequest {
            code,
            message: message.clone(),
            errors: vec![Problem {
                pointer: pointer.to_owned(),
                message,
            }],
        }
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Inactive(_) => ErrorCode::EntityInactive,
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } => *code,
            Self::Invalid { .. } => ErrorCode::ValidationFailed,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::FieldForbidden { .. } => ErrorCode::FieldForbidden,
            Self::PreconditionFailed { .. } => ErrorCode::StaleRowVersion,
            Self::InBatch { error, .. } => error.code(),
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for DataError {
    fn from(e: StoreError) -> Self {
        use metaengine_sql::query::QueryError;
        match e {
            StoreError::Unique(entity) => Self::Conflict {
                code: ErrorCode::UniqueViolation,
                message: format!(
                    "a record of `{entity}` with the same value of a unique field already exists"
                ),
            },
            StoreError::Query(QueryError::InvalidId { id }) => {
                Self::NotFound(format!("no record with id `{id}`"))
            }
            StoreError::Query(QueryError::RowFilterField { .. }) => Self::Store(e),
            StoreError::StillReferenced { entity, count } => Self::Conflict {
                code: ErrorCode::StillReferenced,
                message: if count > 0 {
                    format!(
                        "the `{entity}` record is still referenced by {count} record(s); delete \
                         or change them first"
                    )
                } else {
                    format!(
                        "the `{entity}` record is still referenced by other records; delete or \
                         change them first"
                    )
                },
            },
            StoreError::MissingReference(entity) => Self::Invalid {
                errors: vec![Problem::new(
                    "",
                    format!(
                        "a record this `{entity}` record refers to does not exist (it was \
                         deleted meanwhile)"
                    ),
                )],
            },
            StoreError::Query(q) => {
                let code = match q {
                    QueryError::UnknownField { .. } => ErrorCode::UnknownField,
                    QueryError::InvalidCursor { .. } => ErrorCode::InvalidCursor,
                    QueryError::OperatorNotApplicable { .. }
                    | QueryError::WrongValueKind { .. }
                    | QueryError::NullValue { .. }
                    | QueryError::InvalidValue { .. } => ErrorCode::InvalidFilter,
                    _ => ErrorCode::BadRequest,
                };
                Self::bad_request_with(code, "", q.to_string())
            }
            other => Self::Store(other),
        }
    }
}

/// Result of a data operation.
pub type DataResult<T> = Result<T, DataError>;

/// Where and how a write whose unique value is taken is refused, naming the entity's unique
/// fields: the pointer (the field, when only one is unique) and the message. One wording for
/// single writes, the batch route and import.
pub(crate) fn unique_violation(model: &ActiveModel) -> (String, String) {
    let mut unique: Vec<&str> = model
        .fields
        .iter()
        .filter(|f| f.unique)
        .map(|f| f.name.as_str())
        .collect();
    for index in model.indexes.iter().filter(|i| i.unique) {
        for (column, _) in &index.columns {
            if let Some(f) = model.fields.iter().find(|f| f.column_name == *column)
                && !unique.contains(&f.name.as_str())
            {
                unique.push(&f.name);
            }
        }
    }
    let pointer = match unique.as_slice() {
        [only] => format!("/{only}"),
        _ => String::new(),
    };
    let names: Vec<String> = unique.iter().map(|n| format!("`{n}`")).collect();
    let message = format!(
        "a record of `{}` with the same value of a unique field ({}) already exists",
        model.entity,
        names.join(", ")
    );
    (pointer, message)
}

/// A store failure of a write to `model`, as the data API answers it: a taken unique value
/// names the unique fields ([`unique_violation`]).
pub(crate) fn write_failed(model: &ActiveModel, e: StoreError) -> DataError {
    match e {
        StoreError::Unique(_) => DataError::Conflict {
            code: ErrorCode::UniqueViolation,
            message: unique_violation(model).1,
        },
        e => e.into(),
    }
}
