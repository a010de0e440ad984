//! `/api/admin/tenants`: platform admins create, list, rename and suspend tenants (SPEC §9).

use axum::Json;
use axum::extract::State;

use crate::extract::Path;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::extract::{Caller, JsonBody};
use crate::problem::{ApiError, ApiResult};
use crate::routes::meta::{created, require_object, string_member, whole_list};
use crate::state::SharedState;

/// A string member of a body, 422 at its pointer when of another type (or the body is not an
/// object).
fn member<'a>(body: &'a Value, key: &str) -> ApiResult<Option<&'a str>> {
    require_object(body)
        .and_then(|()| string_member(body, key))
        .map_err(|(pointer, message)| {
            ApiError::from(metaengine_runtime::RegistryError::invalid(
                &pointer, message,
            ))
        })
}

fn invalid(key: &str, message: String) -> ApiError {
    ApiError::from(metaengine_runtime::RegistryError::invalid(
        &format!("/{key}"),
        message,
    ))
}

/// `POST /api/admin/tenants` `{ "id", "name" }` → 201.
pub async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let id = member(&body, "id")?.ok_or_else(|| invalid("id", "`id` is required".into()))?;
    let name = member(&body, "name")?.unwrap_or(id);
    let tenant = state.tenants.create(&actor, id, name).await?;
    Ok(created(
        &format!("/api/admin/tenants/{}", tenant.id),
        &tenant,
    ))
}

/// `GET /api/admin/tenants`.
pub async fn list(State(state): State<SharedState>, Caller(actor): Caller) -> ApiResult<Response> {
    Ok(whole_list(state.tenants.list(&actor).await?))
}

/// `GET /api/admin/tenants/{id}`.
pub async fn get(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(state.tenants.get(&actor, &id).await?).into_response())
}

/// `PATCH /api/admin/tenants/{id}` `{ "name"?, "status"? }` → 200 with the tenant.
pub async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let name = member(&body, "name")?;
    let status = member(&body, "status")?;
    let tenant = state.tenants.update(&actor, &id, name, status).await?;
    Ok(Json(tenant).into_response())
}
