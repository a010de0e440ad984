//! `/api/meta/*`: entities, versions, fields, activation, compiled models, the cache, schema
//! validation and the audit trail (SPEC §10). Access rules and audit rows are the registry's;
//! this module reads requests and shapes answers.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::State;

use crate::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metaengine_store::{AuditQuery, AuditResult, EventType, Page, PageRequest, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::extract::{Caller, JsonBody, QueryPairs};
use crate::problem::{ApiError, ApiResult};
use crate::state::SharedState;
use metaengine_core::ErrorCode;

/// A list answer: `{ "data": [...], "meta": { page, pageSize, total, totalPages, nextCursor } }`.
/// Metadata lists are small and offset-paged, so `nextCursor` is always `null`.
pub fn list_response<T: Serialize>(page: &Page<T>) -> Response {
    Json(page).into_response()
}

/// A whole (unpaged) list in the list shape.
pub fn whole_list<T: Serialize>(rows: Vec<T>) -> Response {
    let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    list_response(&Page::new(
        rows,
        PageRequest {
            page: 1,
            page_size: n.max(1),
        },
        u64::from(n),
    ))
}

/// 201 with the created object and its `Location`.
pub fn created<T: Serialize>(location: &str, body: &T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The page of a metadata list from `page` and `pageSize`.
pub fn page_request(query: &QueryPairs, max: u32) -> ApiResult<PageRequest> {
    let page = query.u32("page")?.unwrap_or(1);
    let size = query.u32("pageSize")?.unwrap_or(PageRequest::DEFAULT_SIZE);
    if page == 0 || size == 0 || size > max {
        return Err(ApiError::bad_request(
            "",
            format!("`page` must be ≥ 1 and `pageSize` between 1 and {max}"),
        ));
    }
    Ok(PageRequest::new(page, size))
}

/// A string member of a body: `Ok(None)` when absent or null, 422 when of another type.
pub(crate) fn string_member<'a>(
    body: &'a Value,
    key: &str,
) -> Result<Option<&'a str>, (String, String)> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err((format!("/{key}"), format!("`{key}` must be a string"))),
    }
}

/// Reads the members a change needs, refusing (and auditing the refusal of) a body of the wrong
/// shape with a 422 that points at the member.
async fn shape_error(
    state: &SharedState,
    caller: &Caller,
    event: EventType,
    resource: &str,
    (pointer, message): (String, String),
) -> ApiError {
    let error = metaengine_runtime::RegistryError::invalid(&pointer, message);
    state
        .registry
        .reject(&caller.0, event, resource, json!({}), error)
        .await
        .into()
}

/// `Err((pointer, message))` unless the body is a JSON object.
pub(crate) fn require_object(body: &Value) -> Result<(), (String, String)> {
    if body.is_object() {
        Ok(())
    } else {
        Err((String::new(), "the body must be a JSON object".to_owned()))
    }
}

// ---- entities ----

/// `POST /api/meta/entities` `{ "name", "description"? }` → 201.
pub async fn create_entity(
    State(state): State<SharedState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let read = require_object(&body).and_then(|()| {
        let name = string_member(&body, "name")?
            .ok_or_else(|| ("/name".to_owned(), "`name` is required".to_owned()))?;
        Ok((name, string_member(&body, "description")?))
    });
    let (name, description) = match read {
        Ok(v) => v,
        Err(e) => {
            let resource = body.get("name").and_then(Value::as_str).unwrap_or("");
            return Err(shape_error(&state, &caller, EventType::EntityCreate, resource, e).await);
        }
    };
    let entity = state
        .registry
        .create_entity(&caller.0, name, description)
        .await?;
    Ok(created(
        &format!("/api/meta/entities/{}", entity.name),
        &entity,
    ))
}

/// `GET /api/meta/entities`.
pub async fn list_entities(
    State(state): State<SharedState>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&["page", "pageSize"])?;
    let page = page_request(&query, state.limits.max_page_size)?;
    Ok(list_response(
        &state.registry.list_entities(&caller.0, page).await?,
    ))
}

/// `GET /api/meta/entities/{entity}`.
pub async fn get_entity(
    State(state): State<SharedState>,
    caller: Caller,
    Path(entity): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(state.registry.get_entity(&caller.0, &entity).await?).into_response())
}

/// `PATCH /api/meta/entities/{entity}` `{ "description" }`.
pub async fn update_entity(
    State(state): State<SharedState>,
    caller: Caller,
    Path(entity): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let description = match require_object(&body).and_then(|()| string_member(&body, "description"))
    {
        Ok(d) => d,
        Err(e) => {
            return Err(shape_error(&state, &caller, EventType::EntityUpdate, &entity, e).await);
        }
    };
    let row = state
        .registry
        .update_entity(&caller.0, &entity, description)
        .await?;
    Ok(Json(row).into_response())
}

/// `DELETE /api/meta/entities/{entity}?force=true` → 204.
pub async fn delete_entity(
    State(state): State<SharedState>,
    caller: Caller,
    Path(entity): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&["force"])?;
    let force = query.bool("force")?;
    state
        .registry
        .delete_entity(&caller.0, &entity, force)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- versions ----

/// `POST /api/meta/entities/{entity}/versions` `{ "version", "schema" }` → 201.
pub async fn create_version(
    State(state): State<SharedState>,
    caller: Caller,
    Path(entity): Path<String>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Response> {
    let read = require_object(&body).and_then(|()| {
        let version = string_member(&body, "version")?
            .ok_or_else(|| ("/version".to_owned(), "`version` is required".to_owned()))?;
        if body.get("schema").is_none() {
            return Err(("/schema".to_owned(), "`schema` is required".to_owned()));
        }
        Ok(version.to_owned())
    });
    let version = match read {
        Ok(v) => v,
        Err(e) => {
            return Err(shape_error(&state, &caller, EventType::VersionCreate, &entity, e).await);
        }
    };
    let schema = body
        .as_object_mut()
        .and_then(|o| o.remove("schema"))
        .unwrap_or(Value::Null);
    let row = state
        .registry
        .create_version(&caller.0, &entity, &version, schema)
        .await?;
    Ok(created(
        &format!("/api/meta/entities/{entity}/versions/{}", row.version),
        &row,
    ))
}

/// `GET /api/meta/entities/{entity}/versions`.
pub async fn list_versions(
    State(state): State<SharedState>,
    caller: Caller,
    Path(entity): Path<String>,
) -> ApiResult<Response> {
    Ok(whole_list(
        state.registry.list_versions(&caller.0, &entity).await?,
    ))
}

/// `GET /api/meta/entities/{entity}/versions/{version}`.
pub async fn get_version(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(Json(
        state
            .registry
            .get_version(&caller.0, &entity, &version)
            .await?,
    )
    .into_response())
}

/// `PUT /api/meta/entities/{entity}/versions/{version}` `{ "schema" }`: replaces the schema of a
/// version that has never been active.
pub async fn replace_version(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version)): Path<(String, String)>,
    JsonBody(mut body): JsonBody,
) -> ApiResult<Response> {
    let read = require_object(&body).and_then(|()| {
        match string_member(&body, "version")? {
            Some(v) if v != version => {
                return Err((
                    "/version".to_owned(),
                    format!("`version` is `{v}` but the path names `{version}`"),
                ));
            }
            _ => {}
        }
        if body.get("schema").is_none() {
            return Err(("/schema".to_owned(), "`schema` is required".to_owned()));
        }
        Ok(())
    });
    if let Err(e) = read {
        return Err(shape_error(&state, &caller, EventType::VersionUpdate, &entity, e).await);
    }
    let schema = body
        .as_object_mut()
        .and_then(|o| o.remove("schema"))
        .unwrap_or(Value::Null);
    let row = state
        .registry
        .update_version(&caller.0, &entity, &version, schema)
        .await?;
    Ok(Json(row).into_response())
}

/// `DELETE /api/meta/entities/{entity}/versions/{version}` → 204.
pub async fn delete_version(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    state
        .registry
        .delete_version(&caller.0, &entity, &version)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- fields ----

/// `POST .../versions/{version}/fields` with a whole field definition → 201 with the version.
pub async fn add_field(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version)): Path<(String, String)>,
    JsonBody(field): JsonBody,
) -> ApiResult<Response> {
    let name = field
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let row = state
        .registry
        .add_field(&caller.0, &entity, &version, field)
        .await?;
    Ok(created(
        &format!("/api/meta/entities/{entity}/versions/{version}/fields/{name}"),
        &row,
    ))
}

/// `PATCH .../fields/{field}` with a partial field definition → 200 with the version.
pub async fn update_field(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version, field)): Path<(String, String, String)>,
    JsonBody(patch): JsonBody,
) -> ApiResult<Response> {
    let row = state
        .registry
        .update_field(&caller.0, &entity, &version, &field, patch)
        .await?;
    Ok(Json(row).into_response())
}

/// `DELETE .../fields/{field}` → 204.
pub async fn remove_field(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version, field)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    state
        .registry
        .remove_field(&caller.0, &entity, &version, &field)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- activation ----

/// `POST .../versions/{version}/activate[?dryRun=true]` → 200 with the plan (applied or not).
pub async fn activate(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&["dryRun"])?;
    if query.bool("dryRun")? {
        let plan = state
            .registry
            .plan_activation(&caller.0, &entity, &version)
            .await?;
        return Ok(Json(json!({ "applied": false, "plan": plan })).into_response());
    }
    let activation = state
        .registry
        .activate(&caller.0, &entity, &version)
        .await?;
    Ok(Json(json!({
        "applied": true,
        "version": activation.version,
        "previous": activation.previous,
        "plan": activation.plan,
    }))
    .into_response())
}

/// `POST .../versions/{version}/deactivate` → 200 with the version.
pub async fn deactivate(
    State(state): State<SharedState>,
    caller: Caller,
    Path((entity, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let row = state
        .registry
        .deactivate(&caller.0, &entity, &version)
        .await?;
    Ok(Json(row).into_response())
}

/// `GET /api/meta/entities/{entity}/compiled[?version=v]`: the compiled model.
pub async fn compiled(
    State(state): State<SharedState>,
    caller: Caller,
    Path(entity): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&["version"])?;
    let model = state
        .registry
        .compiled(&caller.0, &entity, query.get("version"))
        .await?;
    Ok(Json(model).into_response())
}

/// `POST /api/meta/cache/clear` → 200 `{ "cleared": true }`.
pub async fn clear_cache(State(state): State<SharedState>, caller: Caller) -> ApiResult<Response> {
    state.registry.clear_cache(&caller.0).await?;
    Ok(Json(json!({ "cleared": true })).into_response())
}

/// `POST /api/meta/validate` `{ "schema", "entity"? }` → 200 `{ "valid", "errors" }`.
pub async fn validate(
    State(state): State<SharedState>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    state.registry.access().require_read(&caller.0)?;
    let Some(schema) = body.get("schema") else {
        return Err(
            ApiError::new(ErrorCode::ValidationFailed, "`schema` is required").with_problems(vec![
                metaengine_core::Problem {
                    pointer: "/schema".into(),
                    message: "`schema` is required".into(),
                },
            ]),
        );
    };
    let entity = match body.get("entity") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "/entity",
                "`entity` must be a string",
            ));
        }
    };
    let problems = state.registry.validate(entity, schema).await?;
    Ok(Json(json!({ "valid": problems.is_empty(), "errors": problems })).into_response())
}

// ---- audit ----

fn time_param(query: &QueryPairs, key: &str) -> ApiResult<Option<Timestamp>> {
    query
        .get(key)
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| Timestamp(t.with_timezone(&chrono::Utc)))
                .map_err(|_| {
                    ApiError::bad_request(
                        "",
                        format!("`{key}` must be an RFC 3339 time such as 2026-11-26T10:00:00Z, not `{v}`"),
                    )
                })
        })
        .transpose()
}

/// `GET /api/meta/audit/verify?tenantId=`: the audit hash chains of every tenant the caller may
/// read, or of one (SPEC §16).
pub async fn audit_verify(
    State(state): State<SharedState>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&["tenantId"])?;
    // Rows still in the batched writer are chained when written: verify what is written.
    state.audit.flush().await;
    let report = state
        .registry
        .verify_audit(&caller.0, query.get("tenantId"))
        .await?;
    Ok(Json(report).into_response())
}

/// `GET /api/meta/audit?eventType=a,b&userId=&tenantId=&resource=&result=&from=&to=&page=&pageSize=`.
pub async fn audit(
    State(state): State<SharedState>,
    caller: Caller,
    query: QueryPairs,
) -> ApiResult<Response> {
    query.only(&[
        "eventType",
        "userId",
        "tenantId",
        "resource",
        "result",
        "from",
        "to",
        "page",
        "pageSize",
    ])?;
    let result = query
        .get("result")
        .map(str::parse::<AuditResult>)
        .transpose()
        .map_err(|e| ApiError::bad_request("", format!("`result`: {e}")))?;
    let event_types = query
        .get("eventType")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::parse::<EventType>)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|e| ApiError::bad_request("", format!("`eventType`: {e}")))?
        .unwrap_or_default();
    let audit_query = AuditQuery {
        event_types,
        user_id: query.get("userId").map(str::to_owned),
        tenant_id: query.get("tenantId").map(str::to_owned),
        resource: query.get("resource").map(str::to_owned),
        result,
        from: time_param(&query, "from")?,
        to: time_param(&query, "to")?,
        page: page_request(&query, state.limits.max_page_size)?,
    };
    // Events waiting in the batched writer (data reads, denials) belong in the answer.
    state.audit.flush().await;
    Ok(list_response(
        &state.registry.audit(&caller.0, audit_query).await?,
    ))
}

/// `GET /api/meta/snapshot`: the entities, their versions, the active ones and the tenants as
/// one document (SPEC §17).
pub async fn snapshot(State(state): State<SharedState>, caller: Caller) -> ApiResult<Response> {
    let snapshot =
        metaengine_runtime::snapshot::export(&state.registry, &state.tenants, &caller.0).await?;
    Ok(Json(snapshot).into_response())
}

/// `POST /api/meta/snapshot/apply?dryRun=true|false` with a snapshot document: the steps done
/// (or, in a dry run, to do), each through the registry and audited (SPEC §17).
pub async fn apply_snapshot(
    State(state): State<SharedState>,
    caller: Caller,
    query: QueryPairs,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    query.only(&["dryRun"])?;
    let dry_run = query.bool("dryRun")?;
    let snapshot: metaengine_runtime::snapshot::Snapshot = serde_path_to_error::deserialize(body)
        .map_err(|e| {
        let pointer = json_pointer(e.path());
        let message = format!("the snapshot is invalid: {}", e.inner());
        ApiError::new(ErrorCode::ValidationFailed, message.clone())
            .with_problems(vec![metaengine_core::Problem { pointer, message }])
    })?;
    let report = metaengine_runtime::snapshot::apply(
        &state.registry,
        &state.tenants,
        &caller.0,
        &snapshot,
        dry_run,
    )
    .await?;
    Ok(Json(report).into_response())
}

/// The JSON pointer of a path serde walked (`entities[0].name` → `/entities/0/name`).
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(pointer, "/{index}");
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// `GET /api/meta/codegen/typescript`: one TypeScript module for the active versions (SPEC §19).
pub async fn codegen_typescript(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Response> {
    let module =
        metaengine_runtime::codegen::for_active_versions(&state.registry, &caller.0).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        module,
    )
        .into_response())
}
