//! `/health`, `/ready`, `/metrics`, `/openapi.json`: no token needed (SPEC §9).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::openapi;
use crate::problem::ApiError;
use crate::state::SharedState;
use metaengine_core::ErrorCode;

/// `GET /health` → 200 `{"status":"ok"}` while the process runs.
pub async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /ready` → 200 when the database answers, migrations are applied and the cache is warm;
/// else 503 with the reason.
pub async fn ready(State(state): State<SharedState>) -> Response {
    let reason = match state.store.is_ready().await {
        Ok(true) if state.is_warm() => None,
        Ok(true) => Some("the compiled-model cache is warming up"),
        Ok(false) => Some("the database's migrations are not applied"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            Some("the database is unreachable")
        }
    };
    match reason {
        None => Json(json!({ "status": "ready" })).into_response(),
        Some(reason) => ApiError::new(ErrorCode::Unavailable, reason).into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    let text = state.metrics.render(&state);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /openapi.json`: the static routes plus each active entity's data routes and record schema.
pub async fn openapi_json(State(state): State<SharedState>) -> Response {
    match openapi::document(&state).await {
        Ok(doc) => Json(doc).into_response(),
        Err(e) => e.into_response(),
    }
}
