//! RFC 9457 problem+json: the one shape of every error the server answers.
//!
//! Key decision: every error type of the layers below (registry, data service, tenants, identity,
//! request parsing) converts into [`ApiError`] here, in one place, so a status code means the same
//! thing on every route; causes that are not the client's business (database errors) are logged
//! with the request's id and answered as a bare 500 that says nothing of them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metaengine_core::Problem;
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

/// An error answer: status, title, detail and, for validation errors, every problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// A URI naming the kind of problem (`about:blank` plus the title, or one of ours).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, fixed summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Each problem with its JSON pointer (validation errors, refusals with reasons).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemEntry>,
}

impl ApiError {
    /// An error with `status` and `detail`; the type and title follow from the status.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let (kind, title) = kind_and_title(status);
        Self {
            kind: kind.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
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

    /// 400 with one problem at `pointer`.
    pub fn bad_request(pointer: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(StatusCode::BAD_REQUEST, detail.clone()).with_problems(vec![Problem {
            pointer: pointer.to_owned(),
            message: detail,
        }])
    }

    /// 401: the request carries no valid identity.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 500 whose cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to answer this request; the cause is in its log",
        )
    }

    /// The status as an axum type.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

fn kind_and_title(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("/problems/bad-request", "Bad request"),
        401 => ("/problems/unauthorized", "Unauthorized"),
        403 => ("/problems/forbidden", "Forbidden"),
        404 => ("/problems/not-found", "Not found"),
        405 => ("/problems/method-not-allowed", "Method not allowed"),
        408 => ("/problems/timeout", "Request timeout"),
        409 => ("/problems/conflict", "Conflict"),
        412 => ("/problems/precondition-failed", "Precondition failed"),
        413 => ("/problems/payload-too-large", "Payload too large"),
        415 => ("/problems/unsupported-media-type", "Unsupported media type"),
        422 => ("/problems/validation", "Validation failed"),
        429 => ("/problems/too-many-requests", "Too many requests"),
        503 => ("/problems/unavailable", "Service unavailable"),
        _ => ("/problems/internal", "Internal server error"),
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
        match e {
            RegistryError::Invalid { errors, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail).with_problems(errors)
            }
            RegistryError::NotFound(_) => Self::not_found(detail),
            RegistryError::Conflict { errors, .. } => {
                Self::new(StatusCode::CONFLICT, detail).with_problems(errors)
            }
            RegistryError::Forbidden(_) => Self::forbidden(detail),
            RegistryError::Store(cause) => Self::internal(&cause),
        }
    }
}

impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        let detail = e.to_string();
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match e {
            DataError::BadRequest { errors, .. } | DataError::Invalid { errors } => {
                Self::new(status, detail).with_problems(errors)
            }
            DataError::Store(cause) => Self::internal(&cause),
            DataError::Internal(cause) => Self::internal(&cause),
            _ => Self::new(status, detail),
        }
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(json["type"], "/problems/validation");
        assert_eq!(json["errors"][1]["pointer"], "/status");
    }

    #[test]
    fn store_failures_do_not_leak_their_cause() {
        let e: ApiError = DataError::Internal("relation core.ent_x does not exist".into()).into();
        assert_eq!(e.status, 500);
        assert!(!e.detail.contains("ent_x"));
    }
}
