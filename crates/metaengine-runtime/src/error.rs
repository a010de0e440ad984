//! The error of registry operations.

use metaengine_core::{ErrorCode, Problem};
use metaengine_store::StoreError;

/// How a registry operation failed. Each variant carries or implies one [`ErrorCode`]
/// ([`RegistryError::code`]) and one CLI exit message; only [`RegistryError::Store`] hides its
/// cause from users.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The input breaks a rule; `errors` lists every problem with a JSON pointer.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// One entry per problem.
        errors: Vec<Problem>,
    },
    /// The entity, version, field or tenant does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change is refused in the current state (duplicate, immutable, active…).
    #[error("{message}")]
    Conflict {
        /// Which refusal (`version_immutable`, `already_exists`, `breaking_changes`…).
        code: ErrorCode,
        /// Why.
        message: String,
        /// Details, when there are several reasons (such as breaking changes).
        errors: Vec<Problem>,
    },
    /// The caller lacks the role or tenant the operation needs.
    #[error("{0}")]
    Forbidden(String),
    /// The database failed; the cause is logged, never shown.
    #[error("the metadata store failed")]
    Store(#[source] StoreError),
}

impl RegistryError {
    /// A validation error with a single problem.
    pub fn invalid(pointer: &str, message: String) -> Self {
        Self::Invalid {
            message: message.clone(),
            errors: vec![Problem {
                pointer: pointer.to_owned(),
                message,
            }],
        }
    }

    /// A validation error listing several problems.
    pub fn invalid_schema(errors: Vec<Problem>) -> Self {
        let message = match errors.as_slice() {
            [one] => format!("the schema is invalid: {}", one.message),
            many => format!("the schema is invalid ({} problems)", many.len()),
        };
        Self::Invalid { message, errors }
    }

    /// A refusal without further details.
    pub fn conflict(code: ErrorCode, message: String) -> Self {
        Self::Conflict {
            code,
            message,
            errors: Vec::new(),
        }
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { .. } => ErrorCode::ValidationFailed,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict { code, .. } => *code,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Store(_) => ErrorCode::Internal,
        }
    }
}

/// "… needs breaking changes: <first>" or "… (N breaking changes)".
fn e_message(errors: &[Problem], text: &str) -> String {
    match errors {
        [one] => format!("{text}: {}", one.message),
        many => format!("{text} ({} breaking changes)", many.len()),
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        let e_text = e.to_string();
        match e {
            StoreError::EntityNotFound(_)
            | StoreError::VersionNotFound { .. }
            | StoreError::TenantNotFound(_) => Self::NotFound(e.to_string()),
            StoreError::Breaking { errors, .. } => Self::Conflict {
                code: ErrorCode::BreakingChanges,
                message: e_message(&errors, &e_text),
                errors,
            },
            StoreError::EntityExists(_)
            | StoreError::VersionExists { .. }
            | StoreError::TenantExists(_) => Self::conflict(ErrorCode::AlreadyExists, e_text),
            StoreError::Unique(_) => Self::conflict(ErrorCode::UniqueViolation, e_text),
            // The stored rows break the new version (a unique index over duplicate values): a
            // breaking change, listed like the planned ones.
            StoreError::RowsConflict { reason, .. } => Self::Conflict {
                code: ErrorCode::BreakingChanges,
                message: e_text,
                errors: vec![Problem::new("", reason)],
            },
            StoreError::HasRows(_) => Self::conflict(ErrorCode::HasRows, e_text),
            StoreError::VersionImmutable { .. } => {
                Self::conflict(ErrorCode::VersionImmutable, e_text)
            }
            StoreError::VersionActive { .. } => Self::conflict(ErrorCode::VersionActive, e_text),
            StoreError::VersionNotActive { .. } => {
                Self::conflict(ErrorCode::VersionNotActive, e_text)
            }
            StoreError::Concurrent(_) => Self::conflict(ErrorCode::Conflict, e_text),
            StoreError::StillReferenced { .. } => {
                Self::conflict(ErrorCode::StillReferenced, e_text)
            }
            StoreError::MissingReference(_) => Self::conflict(ErrorCode::Conflict, e_text),
            StoreError::Migrate(_)
            | StoreError::Database(_)
            | StoreError::Query(_)
            | StoreError::CorruptSchema { .. } => Self::Store(e),
        }
    }
}

/// Result of a registry operation.
pub type RegistryResult<T> = Result<T, RegistryError>;
