//! RFC 9457 problem+json: the one shape of every error the server answers.
//!
//! Key decision: every error type of the layers below (registry, data service, tenants, identity,
//! request parsing) converts into [`ApiError`] here, in one place, so a status code means the same
//! thing on every route; causes that are not the client's business (database errors) are logged
//! with the request's id and answered as a bare 500 that says nothing of them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metaengine_core::{ErrorCode, Problem};
use metaengine_runtime::{DataError, RegistryError};
use serde::Serialize;

/// Media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem of a validation error, as clients read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProblemEntry {
    /// JSON pointer into the request body (or the schema document).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// An error answer: type, title, status, stable code, detail and, for validation errors, every
/// problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// A URI naming the kind of problem (`/problems/<code>`, see [`problem_type`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, fixed summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code (SPEC §11), such as `unique_violation`.
    #[schema(example = "unique_violation")]
    pub code: &'static str,
    /// What went wrong in this request.
    pub detail: String,
    /// Each problem with its JSON pointer (validation errors, refusals with reasons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemEntry>,
}

/// THE table of error codes: each code's problem `type`, title and HTTP status. Every error
/// answer of the server takes these three from here, so a code means the same on every route.
pub fn problem_type(code: ErrorCode) -> (&'static str, &'static str, StatusCode) {
    use ErrorCode as C;
    match code {
        C::BadRequest => (
            "/problems/bad-request",
            "Bad request",
            StatusCode::BAD_REQUEST,
        ),
        C::UnknownField => (
            "/problems/unknown-field",
            "Unknown field",
            StatusCode::BAD_REQUEST,
        ),
        C::InvalidFilter => (
            "/problems/invalid-filter",
            "Invalid filter",
            StatusCode::BAD_REQUEST,
        ),
        C::InvalidCursor => (
            "/problems/invalid-cursor",
            "Invalid cursor",
            StatusCode::BAD_REQUEST,
        ),
        C::ValidationFailed => (
            "/problems/validation-failed",
            "Validation failed",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        C::Unauthenticated => (
            "/problems/unauthenticated",
            "Unauthenticated",
            StatusCode::UNAUTHORIZED,
        ),
        C::Forbidden => ("/problems/forbidden", "Forbidden", StatusCode::FORBIDDEN),
        C::FieldForbidden => (
            "/problems/field-forbidden",
            "Field forbidden",
            StatusCode::FORBIDDEN,
        ),
        C::NotFound => ("/problems/not-found", "Not found", StatusCode::NOT_FOUND),
        C::MethodNotAllowed => (
            "/problems/method-not-allowed",
            "Method not allowed",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        C::RequestTimeout => (
            "/problems/request-timeout",
            "Request timeout",
            StatusCode::REQUEST_TIMEOUT,
        ),
        C::UniqueViolation => (
            "/problems/unique-violation",
            "Unique value taken",
            StatusCode::CONFLICT,
        ),
        C::AlreadyExists => (
            "/problems/already-exists",
            "Already exists",
            StatusCode::CONFLICT,
        ),
        C::VersionImmutable => (
            "/problems/version-immutable",
            "Version is immutable",
            StatusCode::CONFLICT,
        ),
        C::VersionActive => (
            "/problems/version-active",
            "Version is active",
            StatusCode::CONFLICT,
        ),
        C::VersionNotActive => (
            "/problems/version-not-active",
            "Version is not active",
            StatusCode::CONFLICT,
        ),
        C::EntityInactive => (
            "/problems/entity-inactive",
            "Entity has no active version",
            StatusCode::CONFLICT,
        ),
        C::HasRows => (
            "/problems/has-rows",
            "Entity has records",
            StatusCode::CONFLICT,
        ),
        C::StillReferenced => (
            "/problems/still-referenced",
            "Record is still referenced",
            StatusCode::CONFLICT,
        ),
        C::BreakingChanges => (
            "/problems/breaking-changes",
            "Breaking changes",
            StatusCode::CONFLICT,
        ),
        C::StaleRowVersion => (
            "/problems/stale-row-version",
            "Record changed",
            StatusCode::PRECONDITION_FAILED,
        ),
        C::Conflict => ("/problems/conflict", "Conflict", StatusCode::CONFLICT),
        C::PayloadTooLarge => (
            "/problems/payload-too-large",
            "Payload too large",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        C::UnsupportedMediaType => (
            "/problems/unsupported-media-type",
            "Unsupported media type",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        C::TooManyRequests => (
            "/problems/too-many-requests",
            "Too many requests",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        C::Unavailable => (
            "/problems/unavailable",
            "Service unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        C::Internal => (
            "/problems/internal",
            "Internal server error",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

impl ApiError {
    /// An error of `code` with `detail`; type, title and status come from [`problem_type`].
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let (kind, title, status) = problem_type(code);
        Self {
            kind: kind.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            code: code.as_str(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// The same error listing `problems`.
    pub fn with_problems(mut self, problems: Vec<Problem>) -> Self {
        self.errors = problems
            .into_iter()
            .map(|p| ProblemEntry {
                pointer: p.pointer,
                message: p.message,
            })
            .collect();
        self
    }

    /// `bad_request` with one problem at `pointer`.
    pub fn bad_request(pointer: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(ErrorCode::BadRequest, detail.clone()).with_problems(vec![Problem {
            pointer: pointer.to_owned(),
            message: detail,
        }])
    }

    /// `unauthenticated`: the request carries no valid identity.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail)
    }

    /// `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    /// 500 whose cause is logged (with the request's span, which names its id), never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::internal_answer()
    }

    /// 500 whose cause and the whole chain of its sources are logged, never shown.
    pub fn internal_error(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::internal_answer()
    }

    fn internal_answer() -> Self {
        Self::new(
            ErrorCode::Internal,
            "the server failed to answer this request; the cause is in its log",
        )
    }

    /// The status as an axum type.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let detail = e.to_string();
        let code = e.code();
        match e {
            RegistryError::Invalid { errors, .. } | RegistryError::Conflict { errors, .. } => {
                Self::new(code, detail).with_problems(errors)
            }
            RegistryError::Store(cause) => Self::internal_error(&cause),
            RegistryError::NotFound(_) | RegistryError::Forbidden(_) => Self::new(code, detail),
        }
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        let detail = e.to_string();
        let code = e.code();
        match e {
            DataError::BadRequest { errors, .. }
            | DataError::Invalid { errors }
            | DataError::FieldForbidden { errors } => Self::new(code, detail).with_problems(errors),
            DataError::InBatch { index, error } => match *error {
                DataError::Store(cause) => Self::internal_error(&cause),
                DataError::Internal(cause) => Self::internal(&cause),
                inner => {
                    Self::new(code, detail).with_problems(DataError::batch_problems(index, &inner))
                }
            },
            DataError::Store(cause) => Self::internal_error(&cause),
            DataError::Internal(cause) => Self::internal(&cause),
            _ => Self::new(code, detail),
        }
    }
}

/// Path parameters that fail to parse answer problem+json (axum's own rejection is text).
impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        Self::bad_request("", format!("invalid path parameter: {}", e.body_text()))
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_type() {
        let mut types = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let (kind, title, status) = problem_type(*code);
            assert!(types.insert(kind), "{kind} twice");
            assert_eq!(
                kind,
                format!("/problems/{}", code.as_str().replace('_', "-"))
            );
            assert!(!title.is_empty() && (status.is_client_error() || status.is_server_error()));
        }
    }

    #[test]
    fn validation_errors_list_every_problem() {
        let e: ApiError = DataError::Invalid {
            errors: vec![
                Problem {
                    pointer: "/totalAmount".into(),
                    message: "must be ≥ 0".into(),
                },
                Problem {
                    pointer: "/status".into(),
                    message: "must be one of draft, paid".into(),
                },
            ],
        }
        .into();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["status"], 422);
        assert_eq!(json["type"], "/problems/validation-failed");
        assert_eq!(json["code"], "validation_failed");
        assert_eq!(json["errors"][1]["pointer"], "/status");
    }

    #[test]
    fn store_failures_do_not_leak_their_cause() {
        let e: ApiError = DataError::Internal("relation core.ent_x does not exist".into()).into();
        assert_eq!(e.status, 500);
        assert!(!e.detail.contains("ent_x"));
    }
}
