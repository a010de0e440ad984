//! The error of data operations, one variant per answer a client can act on.

use metaengine_core::Problem;
use metaengine_store::StoreError;

/// Why a data operation failed. Each variant maps to one HTTP status; only
/// [`DataError::Store`] hides its cause (logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Unknown entity, missing record, or a record the caller may not read (404: the same answer,
    /// so nothing leaks whether it exists).
    #[error("{0}")]
    NotFound(String),
    /// The entity has no active version (409).
    #[error("entity `{0}` has no active version; activate one to use its data API")]
    Inactive(String),
    /// The request names an unknown field, operator or order, or carries a malformed value (400).
    #[error("{message}")]
    BadRequest {
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
    /// A unique value is taken, or the record changed meanwhile (409).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` names another row version than the stored one (412).
    #[error("the record is at row version {current}, not {expected}")]
    PreconditionFailed {
        /// The version the client expected.
        expected: i64,
        /// The stored version.
        current: i64,
    },
    /// The database failed.
    #[error("the data store failed")]
    Store(#[source] StoreError),
    /// Something that should not happen did (a record that is not JSON, a cache that cannot be
    /// reached); the detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl DataError {
    /// A 400 with a single problem.
    pub fn bad_request(pointer: &str, message: String) -> Self {
        Self::BadRequest {
            message: message.clone(),
            errors: vec![Problem {
                pointer: pointer.to_owned(),
                message,
            }],
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Inactive(_) | Self::Conflict(_) => 409,
            Self::BadRequest { .. } => 400,
            Self::Invalid { .. } => 422,
            Self::Forbidden(_) => 403,
            Self::PreconditionFailed { .. } => 412,
            Self::Store(_) | Self::Internal(_) => 500,
        }
    }
}

impl From<StoreError> for DataError {
    fn from(e: StoreError) -> Self {
        use metaengine_sql::query::QueryError;
        match e {
            StoreError::Unique(entity) => Self::Conflict(format!(
                "a record of `{entity}` with the same value of a unique field already exists"
            )),
            StoreError::Query(QueryError::InvalidId { id }) => {
                Self::NotFound(format!("no record with id `{id}`"))
            }
            StoreError::Query(QueryError::RowFilterField { .. }) => Self::Store(e),
            StoreError::Query(q) => Self::bad_request("", q.to_string()),
            other => Self::Store(other),
        }
    }
}

/// Result of a data operation.
pub type DataResult<T> = Result<T, DataError>;
