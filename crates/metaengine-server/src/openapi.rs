//! `/openapi.json`: an OpenAPI 3.1 document of the static routes (metadata, tenants, audit,
//! operations) plus, for each active entity, its data routes and record schemas generated from
//! the compiled model, so that a client generator can use it.
//!
//! Key decision: the static part is a table of routes turned into JSON once; the entity part is
//! built per request from the cached compiled models (cheap: a few entities, no database query
//! beyond the entity list).

use metaengine_core::compile::{CompiledField, CompiledModel};
use metaengine_core::ident::{
    ENTITY_NAME_PATTERN, FIELD_NAME_PATTERN, MAX_VERSION_LABEL_BYTES, SYSTEM, TENANT_ID_PATTERN,
    VERSION_LABEL_PATTERN,
};
use metaengine_core::schema::FieldType;
use metaengine_runtime::{MAX_EXPAND_DEPTH, REVERSE_LIMIT};
use metaengine_store::PageRequest;
use serde_json::{Map, Value, json};
use utoipa::PartialSchema;

use crate::problem::{ApiError, ApiResult, ProblemEntry};
use crate::state::SharedState;

/// One static operation: method, path, tag, summary, request body schema, success status and
/// schema.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    status: &'static str,
    response: Option<&'static str>,
    query: &'static [&'static str],
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    status: &'static str,
    response: Option<&'static str>,
) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        body,
        status,
        response,
        query: &[],
    }
}

const ENTITY: &str = "/api/meta/entities/{entity}";
const VERSION: &str = "/api/meta/entities/{entity}/versions/{version}";

fn static_ops() -> Vec<Op> {
    let mut ops = vec![
        op(
            "post",
            "/api/meta/entities",
            "meta",
            "Create an entity",
            Some("EntityInput"),
            "201",
            Some("Entity"),
        ),
        Op {
            query: &["page", "pageSize"],
            ..op(
                "get",
                "/api/meta/entities",
                "meta",
                "List entities",
                None,
                "200",
                Some("EntityList"),
            )
        },
        op(
            "get",
            ENTITY,
            "meta",
            "Get an entity",
            None,
            "200",
            Some("Entity"),
        ),
        op(
            "patch",
            ENTITY,
            "meta",
            "Update an entity's description",
            Some("EntityPatch"),
            "200",
            Some("Entity"),
        ),
        Op {
            query: &["force"],
            ..op(
                "delete",
                ENTITY,
                "meta",
                "Delete an entity (force: even with rows)",
                None,
                "204",
                None,
            )
        },
        op(
            "post",
            "/api/meta/entities/{entity}/versions",
            "meta",
            "Create a version",
            Some("VersionInput"),
            "201",
            Some("Version"),
        ),
        op(
            "get",
            "/api/meta/entities/{entity}/versions",
            "meta",
            "List versions",
            None,
            "200",
            Some("VersionList"),
        ),
        op(
            "get",
            VERSION,
            "meta",
            "Get a version",
            None,
            "200",
            Some("Version"),
        ),
        op(
            "put",
            VERSION,
            "meta",
            "Replace the schema of a never-activated version",
            Some("VersionReplace"),
            "200",
            Some("Version"),
        ),
        op(
            "delete",
            VERSION,
            "meta",
            "Delete a version",
            None,
            "204",
            None,
        ),
        op(
            "post",
            "/api/meta/entities/{entity}/versions/{version}/fields",
            "meta",
            "Add a field",
            Some("Object"),
            "201",
            Some("Version"),
        ),
        op(
            "patch",
            "/api/meta/entities/{entity}/versions/{version}/fields/{field}",
            "meta",
            "Update a field",
            Some("Object"),
            "200",
            Some("Version"),
        ),
        op(
            "delete",
            "/api/meta/entities/{entity}/versions/{version}/fields/{field}",
            "meta",
            "Remove a field",
            None,
            "204",
            None,
        ),
        Op {
            query: &["dryRun"],
            ..op(
                "post",
                "/api/meta/entities/{entity}/versions/{version}/activate",
                "meta",
                "Activate a version (dryRun: show the plan)",
                None,
                "200",
                Some("Object"),
            )
        },
        op(
            "post",
            "/api/meta/entities/{entity}/versions/{version}/deactivate",
            "meta",
            "Deactivate a version",
            None,
            "200",
            Some("Version"),
        ),
        Op {
            query: &["version"],
            ..op(
                "get",
                "/api/meta/entities/{entity}/compiled",
                "meta",
                "The compiled model",
                None,
                "200",
                Some("Object"),
            )
        },
        op(
            "post",
            "/api/meta/cache/clear",
            "meta",
            "Clear the compiled-model cache",
            None,
            "200",
            Some("Object"),
        ),
        op(
            "post",
            "/api/data/batch",
            "data",
            "Write up to batch_max_operations records in one transaction, all or nothing",
            Some("BatchInput"),
            "200",
            Some("BatchResult"),
        ),
        op(
            "post",
            "/api/meta/validate",
            "meta",
            "Validate a schema document",
            Some("ValidateInput"),
            "200",
            Some("ValidateResult"),
        ),
        Op {
            query: &[
                "eventType",
                "userId",
                "tenantId",
                "resource",
                "result",
                "from",
                "to",
                "page",
                "pageSize",
            ],
            ..op(
                "get",
                "/api/meta/audit",
                "audit",
                "Query the audit trail, newest first",
                None,
                "200",
                Some("AuditList"),
            )
        },
        Op {
            query: &["tenantId"],
            ..op(
                "get",
                "/api/meta/audit/verify",
                "audit",
                "Verify the audit hash chains of every tenant the caller may read, or of one",
                None,
                "200",
                Some("AuditVerification"),
            )
        },
        op(
            "get",
            "/api/meta/snapshot",
            "meta",
            "The metadata as one document: entities, versions, active versions, tenants",
            None,
            "200",
            Some("Snapshot"),
        ),
        Op {
            query: &["dryRun"],
            ..op(
                "post",
                "/api/meta/snapshot/apply",
                "meta",
                "Apply a snapshot step by step (each step audited); idempotent",
                Some("Snapshot"),
                "200",
                Some("SnapshotApply"),
            )
        },
        op(
            "post",
            "/api/admin/tenants",
            "admin",
            "Create a tenant",
            Some("TenantInput"),
            "201",
            Some("Tenant"),
        ),
        op(
            "get",
            "/api/admin/tenants",
            "admin",
            "List tenants",
            None,
            "200",
            Some("TenantList"),
        ),
        op(
            "get",
            "/api/admin/tenants/{id}",
            "admin",
            "Get a tenant",
            None,
            "200",
            Some("Tenant"),
        ),
        op(
            "patch",
            "/api/admin/tenants/{id}",
            "admin",
            "Rename or suspend a tenant",
            Some("TenantPatch"),
            "200",
            Some("Tenant"),
        ),
    ];
    ops.sort_by_key(|o| o.path);
    ops
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": schema_ref("Problem") } }
    })
}

fn error_responses(codes: &[(&str, &str)]) -> Map<String, Value> {
    codes
        .iter()
        .map(|(code, text)| ((*code).to_owned(), problem_response(text)))
        .collect()
}

const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed request"),
    ("401", "Missing or invalid token"),
    ("403", "Forbidden"),
    ("404", "Not found"),
    ("409", "Conflict"),
    ("413", "Body too large"),
    ("415", "Body is not JSON"),
    ("422", "Validation failed"),
    ("429", "Too many requests"),
];

fn query_param(name: &str, max_page_size: u32) -> Value {
    let schema = match name {
        "page" => json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX }),
        "pageSize" => json!({ "type": "integer", "minimum": 1, "maximum": max_page_size }),
        "force" | "dryRun" => json!({ "type": "boolean" }),
        "count" => json!({ "type": "string", "enum": ["exact", "none"] }),
        "orderDir" => json!({ "type": "string", "enum": ["asc", "desc"] }),
        "result" => json!({ "type": "string", "enum": ["success", "failure"] }),
        "from" | "to" => json!({ "type": "string", "format": "date-time" }),
        _ => json!({ "type": "string", "minLength": 1 }),
    };
    json!({ "name": name, "in": "query", "required": false, "schema": schema })
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = match name {
                "entity" => entity_name_schema(),
                "version" => version_label_schema(),
                "field" => json!({ "type": "string", "pattern": FIELD_NAME_PATTERN }),
                _ => json!({ "type": "string" }),
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect()
}

/// An entity name, by the identifier rules (`metaengine_core::ident`).
fn entity_name_schema() -> Value {
    json!({ "type": "string", "pattern": ENTITY_NAME_PATTERN })
}

/// A version label, by the identifier rules: the pattern and the length are the whole rule.
fn version_label_schema() -> Value {
    json!({ "type": "string", "pattern": VERSION_LABEL_PATTERN, "maxLength": MAX_VERSION_LABEL_BYTES })
}

#[expect(
    clippy::too_many_arguments,
    reason = "one operation of the document: every part of it, named once"
)]
fn operation(
    max_page_size: u32,
    id: String,
    tag: &str,
    summary: &str,
    path: &str,
    query: &[&str],
    body: Option<Value>,
    status: &str,
    response: Option<Value>,
) -> Value {
    let mut responses = error_responses(COMMON_ERRORS);
    let success = match response {
        Some(schema) => json!({
            "description": summary,
            "content": { "application/json": { "schema": schema } }
        }),
        None => json!({ "description": summary }),
    };
    responses.insert(status.to_owned(), success);
    let mut params = path_params(path);
    params.extend(query.iter().map(|q| query_param(q, max_page_size)));
    let mut op = json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "parameters": params,
        "responses": responses,
        "security": [{ "bearer": [] }],
    });
    if let (Some(body), Value::Object(map)) = (body, &mut op) {
        map.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": body } } }),
        );
    }
    op
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != "api") {
        let word = seg.trim_start_matches('{').trim_end_matches('}');
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.extend(first.to_uppercase());
            id.extend(chars);
        }
    }
    id
}

fn list_of(item: Value) -> Value {
    json!({
        "type": "object",
        "required": ["data", "meta"],
        "properties": {
            "data": { "type": "array", "items": item },
            "meta": schema_ref("ListMeta"),
        }
    })
}

fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn static_schemas() -> Map<String, Value> {
    let problem = serde_json::to_value(ApiError::schema()).unwrap_or_else(|_| json!({}));
    let entry = serde_json::to_value(ProblemEntry::schema()).unwrap_or_else(|_| json!({}));
    let entity = json!({
        "type": "object",
        "properties": {
            "id": { "type": "string", "format": "uuid" }, "name": { "type": "string" },
            "description": { "type": ["string", "null"] }, "activeVersion": { "type": ["string", "null"] },
            "createdAt": timestamp(), "updatedAt": timestamp(), "createdBy": { "type": "string" }
        }
    });
    let version = json!({
        "type": "object",
        "properties": {
            "id": { "type": "string", "format": "uuid" }, "entityName": { "type": "string" },
            "version": { "type": "string" }, "schema": { "type": "object" },
            "isActive": { "type": "boolean" }, "createdAt": timestamp(),
            "createdBy": { "type": "string" }, "activatedAt": { "type": ["string", "null"], "format": "date-time" }
        }
    });
    let version_label = version_label_schema();
    let schema_doc = json!({
        "type": "object", "required": ["fields"],
        "properties": {
            "fields": { "type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "type"],
                "properties": { "name": { "type": "string", "pattern": FIELD_NAME_PATTERN }, "type": { "type": "string" } }
            } },
            "policies": { "type": "array", "items": {
                "type": "object", "required": ["name", "effect", "action"],
                "properties": { "name": { "type": "string" }, "effect": { "enum": ["allow", "deny"] }, "action": { "type": "string" } }
            } }
        }
    });
    let tenant = json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" }, "name": { "type": "string" },
            "status": { "type": "string", "enum": ["active", "suspended"] }, "createdAt": timestamp()
        }
    });
    let audit = json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" }, "eventId": { "type": "string" }, "eventType": { "type": "string" },
            "timestamp": timestamp(), "userId": { "type": "string" }, "tenantId": { "type": "string" },
            "realmId": { "type": "string" }, "action": { "type": "string" }, "resource": { "type": "string" },
            "details": {}, "result": { "type": "string", "enum": ["success", "failure"] },
            "errorMessage": { "type": ["string", "null"] },
            "prevHash": { "type": ["string", "null"] }, "hash": { "type": ["string", "null"] }
        }
    });
    let verification = json!({
        "type": "object",
        "required": ["tenants", "rows", "verified", "firstBroken"],
        "properties": {
            "tenants": { "type": "integer" }, "rows": { "type": "integer" },
            "verified": { "type": "boolean" },
            "firstBroken": {
                "type": ["object", "null"],
                "required": ["tenantId", "eventId", "reason"],
                "properties": {
                    "tenantId": { "type": "string" }, "eventId": { "type": ["string", "null"] },
                    "reason": { "type": "string" }
                }
            }
        }
    });
    let entries = [
        ("Problem", problem),
        ("ProblemEntry", entry),
        ("Object", json!({ "type": "object" })),
        (
            "ListMeta",
            json!({
                "type": "object",
                "required": ["page", "pageSize", "nextCursor"],
                "properties": {
                    "page": { "type": "integer" }, "pageSize": { "type": "integer" },
                    "total": { "type": "integer" }, "totalPages": { "type": "integer" },
                    "nextCursor": { "type": ["string", "null"] }
                }
            }),
        ),
        ("Entity", entity),
        ("EntityList", list_of(schema_ref("Entity"))),
        (
            "BatchInput",
            json!({
                "type": "object", "required": ["operations"], "additionalProperties": false,
                "properties": { "operations": { "type": "array", "items": {
                    "type": "object", "required": ["op", "entity"], "additionalProperties": false,
                    "properties": {
                        "op": { "type": "string", "enum": ["create", "update", "delete"] },
                        "entity": { "type": "string" },
                        "id": { "type": "string", "format": "uuid" },
                        "ifMatch": { "type": "integer" },
                        "record": { "type": "object" }
                    }
                } } }
            }),
        ),
        (
            "BatchResult",
            json!({
                "type": "object", "required": ["results"],
                "properties": { "results": { "type": "array", "items": {
                    "type": "object", "required": ["status"],
                    "properties": {
                        "status": { "type": "integer", "enum": [200, 201, 204] },
                        "record": { "type": "object" }
                    }
                } } }
            }),
        ),
        (
            "EntityInput",
            json!({ "type": "object", "required": ["name"], "properties": { "name": entity_name_schema(), "description": { "type": ["string", "null"] } } }),
        ),
        (
            "EntityPatch",
            json!({ "type": "object", "properties": { "description": { "type": ["string", "null"] } } }),
        ),
        ("Version", version),
        ("VersionList", list_of(schema_ref("Version"))),
        (
            "VersionInput",
            json!({ "type": "object", "required": ["version", "schema"], "properties": { "version": version_label.clone(), "schema": schema_doc.clone() } }),
        ),
        (
            "VersionReplace",
            json!({ "type": "object", "required": ["schema"], "properties": { "version": version_label, "schema": schema_doc } }),
        ),
        (
            "ValidateInput",
            json!({ "type": "object", "required": ["schema"], "properties": { "schema": { "type": "object" }, "entity": { "type": ["string", "null"] } } }),
        ),
        (
            "ValidateResult",
            json!({ "type": "object", "properties": { "valid": { "type": "boolean" }, "errors": { "type": "array", "items": { "type": "object", "properties": { "pointer": { "type": "string" }, "message": { "type": "string" } } } } } }),
        ),
        ("Tenant", tenant),
        ("TenantList", list_of(schema_ref("Tenant"))),
        (
            "TenantInput",
            json!({ "type": "object", "required": ["id"], "properties": { "id": { "type": "string", "pattern": TENANT_ID_PATTERN }, "name": { "type": ["string", "null"], "pattern": "\\S" } } }),
        ),
        (
            "TenantPatch",
            json!({ "type": "object", "properties": { "name": { "type": ["string", "null"], "pattern": "\\S" }, "status": { "enum": ["active", "suspended", null] } } }),
        ),
        (
            "Snapshot",
            json!({
                "type": "object", "required": ["entities"], "additionalProperties": false,
                "properties": {
                    "entities": { "type": "array", "items": {
                        "type": "object", "required": ["name"], "additionalProperties": false,
                        "properties": {
                            "name": entity_name_schema(),
                            "description": { "type": ["string", "null"] },
                            "activeVersion": { "type": ["string", "null"] },
                            "versions": { "type": "array", "items": {
                                "type": "object", "required": ["version", "schema"],
                                "additionalProperties": false,
                                "properties": { "version": { "type": "string" }, "schema": { "type": "object" } }
                            } }
                        }
                    } },
                    "tenants": { "type": "array", "items": {
                        "type": "object", "required": ["id", "name", "status"],
                        "additionalProperties": false,
                        "properties": {
                            "id": { "type": "string" },
                            "name": { "type": "string" },
                            "status": { "enum": ["active", "suspended"] }
                        }
                    } }
                }
            }),
        ),
        (
            "SnapshotApply",
            json!({
                "type": "object", "required": ["dryRun", "changed", "steps"],
                "properties": {
                    "dryRun": { "type": "boolean" },
                    "changed": { "type": "boolean" },
                    "steps": { "type": "array", "items": {
                        "type": "object", "required": ["step"],
                        "properties": {
                            "step": { "enum": ["createTenant", "updateTenant", "createEntity", "updateEntity", "createVersion", "updateVersion", "activate", "deactivate"] },
                            "tenant": { "type": "string" },
                            "entity": { "type": "string" },
                            "version": { "type": "string" },
                            "name": { "type": ["string", "null"] },
                            "status": { "enum": ["active", "suspended", null] },
                            "plan": { "type": "object" }
                        }
                    } }
                }
            }),
        ),
        ("AuditRow", audit),
        ("AuditVerification", verification),
        ("AuditList", list_of(schema_ref("AuditRow"))),
        (
            "Count",
            json!({ "type": "object", "required": ["count"], "properties": { "count": { "type": "integer" } } }),
        ),
    ];
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// The JSON Schema of one field's values as the API reads and writes them.
fn field_schema(field: &CompiledField) -> Value {
    let v = &field.validator;
    let mut schema = match field.field_type {
        FieldType::String | FieldType::Text => json!({ "type": "string" }),
        FieldType::Integer => json!({ "type": "integer", "format": "int64" }),
        FieldType::Number => json!({ "type": "number" }),
        FieldType::Decimal => {
            json!({ "type": "string", "format": "decimal", "pattern": v.decimal_pattern() })
        }
        FieldType::Boolean => json!({ "type": "boolean" }),
        FieldType::Date => json!({ "type": "string", "format": "date" }),
        FieldType::Datetime => timestamp(),
        FieldType::Enum => {
            json!({ "type": "string", "enum": v.enum_values.clone().unwrap_or_default() })
        }
        FieldType::Reference => json!({ "type": "string", "format": "uuid" }),
        FieldType::Json => json!({}),
    };
    if let Value::Object(map) = &mut schema {
        let numeric = matches!(field.field_type, FieldType::Integer | FieldType::Number);
        if numeric {
            if let Some(min) = v.min {
                map.insert("minimum".into(), json!(min));
            }
            if let Some(max) = v.max {
                map.insert("maximum".into(), json!(max));
            }
        }
        if let Some(n) = v.min_length {
            map.insert("minLength".into(), json!(n));
        }
        if let Some(n) = v.max_length {
            map.insert("maxLength".into(), json!(n));
        }
        if let Some(p) = &v.pattern {
            map.insert("pattern".into(), json!(p));
        }
        if let Some(to) = &v.reference_to {
            map.insert("description".into(), json!(format!("id of a {to} record")));
        }
    }
    schema
}

/// `(record, input, patch)` schemas of an entity.
fn record_schemas(model: &CompiledModel) -> (Value, Value, Value) {
    let mut props = Map::new();
    let mut required = Vec::new();
    for field in &model.fields {
        let schema = field_schema(field);
        // An optional field reads back as null when unset, and null clears it.
        let value = if field.required || matches!(field.field_type, FieldType::Json) {
            schema
        } else {
            json!({ "anyOf": [schema, { "type": "null" }] })
        };
        props.insert(field.name.clone(), value);
        if field.required && field.default.is_none() {
            required.push(field.name.clone());
        }
    }
    let writable = props.clone();
    for system in SYSTEM {
        let schema = match system.field_type {
            FieldType::Reference => json!({ "type": "string", "format": "uuid" }),
            FieldType::Datetime => timestamp(),
            FieldType::Integer => json!({ "type": "integer" }),
            _ => json!({ "type": "string" }),
        };
        props.insert(system.name.to_owned(), schema);
    }
    let record = json!({ "type": "object", "properties": props });
    let input = json!({
        "type": "object", "properties": writable.clone(), "required": required,
        "additionalProperties": false
    });
    let patch = json!({ "type": "object", "properties": writable, "additionalProperties": false });
    (record, input, patch)
}

/// The entity a reference field points at.
fn reference(f: &CompiledField) -> Option<&str> {
    if f.field_type == FieldType::Reference {
        f.validator.reference_to.as_deref()
    } else {
        None
    }
}

/// The first-level `expand` values of records of `model` (SPEC §13) among the active `models`,
/// each with the schema of what it adds under `expand`: a reference field (the target record or
/// null) and `<Entity>_via_<field>` for each reference to `model` (an array of those records).
fn expansions(model: &CompiledModel, models: &[&CompiledModel]) -> Vec<(String, Value)> {
    let active = |entity: &str| models.iter().any(|m| m.entity == entity);
    let mut out = Vec::new();
    for field in &model.fields {
        if let Some(to) = reference(field).filter(|to| active(to)) {
            out.push((
                field.name.clone(),
                json!({ "anyOf": [schema_ref(to), { "type": "null" }] }),
            ));
        }
    }
    for other in models {
        for field in &other.fields {
            if reference(field) == Some(model.entity.as_str()) {
                out.push((
                    format!("{}_via_{}", other.entity, field.name),
                    json!({ "type": "array", "maxItems": REVERSE_LIMIT, "items": schema_ref(&other.entity) }),
                ));
            }
        }
    }
    out
}

/// The `expand` query parameter of a list or get of an entity with these expansions.
fn expand_param(expansions: &[(String, Value)]) -> Value {
    let names: Vec<&str> = expansions.iter().map(|(k, _)| k.as_str()).collect();
    json!({
        "name": "expand", "in": "query", "required": false,
        "description": format!(
            "Related records to add under `expand`, comma-separated; dots nest up to {MAX_EXPAND_DEPTH} levels \
             (`customerId.accountManagerId`). First-level values: {}.",
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        ),
        "schema": { "type": "string", "minLength": 1 },
    })
}

fn entity_paths(
    model: &CompiledModel,
    models: &[&CompiledModel],
    max_page_size: u32,
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
) {
    let name = &model.entity;
    let (mut record, input, patch) = record_schemas(model);
    let expansions = expansions(model, models);
    if !expansions.is_empty()
        && let Some(props) = record.get_mut("properties").and_then(Value::as_object_mut)
    {
        let expand: Map<String, Value> = expansions.iter().cloned().collect();
        props.insert(
            "expand".into(),
            json!({ "type": "object", "description": "What `expand` asked for", "properties": expand }),
        );
    }
    schemas.insert(name.clone(), record);
    schemas.insert(format!("{name}Input"), input);
    schemas.insert(format!("{name}Patch"), patch);
    schemas.insert(format!("{name}List"), list_of(schema_ref(name)));
    let collection = format!("/api/data/{name}");
    let item = format!("/api/data/{name}/{{id}}");
    let count = format!("/api/data/{name}/count");
    let list_query = [
        "page", "pageSize", "orderBy", "orderDir", "fields", "after", "count",
    ];
    paths.insert(collection.clone(), json!({
        "get": operation(max_page_size, format!("list{name}"), name, &format!("List {name} records (filters: filter[<field>][<op>]=value)"), &collection, &list_query, None, "200", Some(schema_ref(&format!("{name}List")))),
        "post": operation(max_page_size, format!("create{name}"), name, &format!("Create a {name} record"), &collection, &[], Some(schema_ref(&format!("{name}Input"))), "201", Some(schema_ref(name))),
    }));
    paths.insert(count.clone(), json!({
        "get": operation(max_page_size, format!("count{name}"), name, &format!("Count {name} records"), &count, &[], None, "200", Some(schema_ref("Count"))),
    }));
    let mut get = operation(
        max_page_size,
        format!("get{name}"),
        name,
        &format!("Get a {name} record"),
        &item,
        &[],
        None,
        "200",
        Some(schema_ref(name)),
    );
    if let Some(collection) = paths.get_mut(&collection) {
        add_param(collection.pointer_mut("/get"), expand_param(&expansions));
    }
    add_param(Some(&mut get), expand_param(&expansions));
    schemas.insert(format!("{name}ChangeEvent"), change_event(Some(name)));
    let events = format!("/api/data/{name}/events");
    paths.insert(
        events.clone(),
        json!({ "get": event_stream(
            format!("watch{name}"),
            name,
            &format!("Changes of {name} records as they happen (Server-Sent Events; filters: filter[<field>][<op>]=value)"),
            path_params(&events),
            &format!("{name}ChangeEvent"),
        ) }),
    );
    paths.insert(item.clone(), json!({
        "get": get,
        "patch": operation(max_page_size, format!("update{name}"), name, &format!("Update a {name} record (If-Match: its ETag)"), &item, &[], Some(schema_ref(&format!("{name}Patch"))), "200", Some(schema_ref(name))),
        "delete": operation(max_page_size, format!("delete{name}"), name, &format!("Delete a {name} record"), &item, &[], None, "204", None),
    }));
}

/// Appends `param` to an operation's `parameters`.
fn add_param(operation: Option<&mut Value>, param: Value) {
    let Some(operation) = operation.and_then(Value::as_object_mut) else {
        return;
    };
    let params = operation.entry("parameters").or_insert_with(|| json!([]));
    if let Value::Array(list) = params {
        list.push(param);
    }
}

/// The `data` of a realtime event (SPEC §14): of one entity's records, or of any.
fn change_event(entity: Option<&str>) -> Value {
    let record = match entity {
        Some(name) => schema_ref(name),
        None => {
            json!({ "type": "object", "description": "The record as the subscriber may read it" })
        }
    };
    let entity_schema = match entity {
        Some(name) => json!({ "type": "string", "const": name }),
        None => entity_name_schema(),
    };
    json!({
        "type": "object",
        "description": "The `data` of an SSE event `create`, `update` or `delete` (a delete carries no record); `reset` carries `{}` and means: reload",
        "required": ["entity", "id", "rowVersion"],
        "properties": {
            "entity": entity_schema,
            "id": { "type": "string", "format": "uuid" },
            "rowVersion": { "type": "integer", "minimum": 1 },
            "record": record,
            "reason": { "type": "string", "enum": ["inScope", "outOfScope"],
                        "description": "An update that moved the record into (create) or out of (delete) the subscriber's reach" }
        }
    })
}

/// A `text/event-stream` operation whose events' `data` is `data_schema`.
fn event_stream(
    id: String,
    tag: &str,
    summary: &str,
    mut params: Vec<Value>,
    data_schema: &str,
) -> Value {
    params.push(json!({ "name": "Last-Event-ID", "in": "header", "required": false,
        "description": "Resume after this event id (replays the changes since; `reset` when it is older than the retention)",
        "schema": { "type": "string" } }));
    let mut responses = error_responses(COMMON_ERRORS);
    responses.insert(
        "503".into(),
        problem_response("Too many subscribers (see Retry-After)"),
    );
    responses.insert("200".into(), json!({
        "description": format!("{summary}. Each event: `id`, `event` (`create`, `update`, `delete` or `reset`) and `data` (JSON, schema {data_schema}); a `: ping` comment after 15 s without an event"),
        "content": { "text/event-stream": { "schema": { "type": "string" },
            "x-event-data": schema_ref(data_schema) } }
    }));
    json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "parameters": params,
        "responses": responses,
        "security": [{ "bearer": [] }],
    })
}

fn realtime_paths(paths: &mut Map<String, Value>, schemas: &mut Map<String, Value>) {
    schemas.insert("ChangeEvent".into(), change_event(None));
    let entities = json!({ "name": "entities", "in": "query", "required": true,
        "description": "Entity names, comma-separated",
        "schema": { "type": "string", "minLength": 1 } });
    paths.insert(
        "/api/realtime".into(),
        json!({ "get": event_stream(
            "watchEntities".into(),
            "realtime",
            "Changes of the named entities' records as they happen (Server-Sent Events)",
            vec![entities],
            "ChangeEvent",
        ) }),
    );
}

/// `GET /api/meta/codegen/typescript`: a TypeScript module, as text.
fn codegen_path(max_page_size: u32, paths: &mut Map<String, Value>) {
    let path = "/api/meta/codegen/typescript";
    let mut op = operation(
        max_page_size,
        operation_id("get", path),
        "meta",
        "One TypeScript module for the active versions: types, Zod schemas, a typed client",
        path,
        &[],
        None,
        "200",
        None,
    );
    if let Some(ok) = op
        .pointer_mut("/responses/200")
        .and_then(Value::as_object_mut)
    {
        ok.insert(
            "content".into(),
            json!({ "text/plain": { "schema": { "type": "string" } } }),
        );
    }
    paths.insert(path.into(), json!({ "get": op }));
}

fn ops_paths(paths: &mut Map<String, Value>) {
    let plain = |summary: &str, content: Value| {
        json!({ "get": { "operationId": summary.replace(' ', ""), "summary": summary, "tags": ["ops"], "security": [],
            "responses": { "200": { "description": summary, "content": content } } } })
    };
    let json_ok = json!({ "application/json": { "schema": { "type": "object" } } });
    paths.insert("/health".into(), plain("Process health", json_ok.clone()));
    let mut ready = plain("Readiness", json_ok.clone());
    if let Some(responses) = ready
        .pointer_mut("/get/responses")
        .and_then(Value::as_object_mut)
    {
        responses.insert("503".into(), problem_response("Not ready"));
    }
    paths.insert("/ready".into(), ready);
    paths.insert(
        "/metrics".into(),
        plain(
            "Prometheus metrics",
            json!({ "text/plain": { "schema": { "type": "string" } } }),
        ),
    );
    paths.insert("/openapi.json".into(), plain("This document", json_ok));
}

/// The whole document, with the active entities as they are now.
pub async fn document(state: &SharedState) -> ApiResult<Value> {
    let max_page_size = state.limits.max_page_size;
    let mut paths = Map::new();
    for o in static_ops() {
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        if let Value::Object(item) = entry {
            item.insert(
                o.method.to_owned(),
                operation(
                    max_page_size,
                    operation_id(o.method, o.path),
                    o.tag,
                    o.summary,
                    o.path,
                    o.query,
                    o.body.map(schema_ref),
                    o.status,
                    o.response.map(schema_ref),
                ),
            );
        }
    }
    ops_paths(&mut paths);
    codegen_path(max_page_size, &mut paths);
    let mut schemas = static_schemas();
    realtime_paths(&mut paths, &mut schemas);
    let mut page = 1;
    let mut active = Vec::new();
    loop {
        let entities = state
            .store
            .list_entities(PageRequest::new(page, PageRequest::MAX_SIZE))
            .await
            .map_err(|e| ApiError::internal_error(&e))?;
        for entity in entities.data.iter().filter(|e| e.active_version.is_some()) {
            match state.cache.active_model(&entity.name).await {
                Ok(model) => active.push(model),
                Err(e) => {
                    tracing::warn!(entity = %entity.name, error = %e, "entity left out of the OpenAPI document")
                }
            }
        }
        if u64::from(page) >= entities.meta.total_pages {
            break;
        }
        page += 1;
    }
    let models: Vec<&CompiledModel> = active.iter().map(|m| &m.model).collect();
    for model in &models {
        entity_paths(model, &models, max_page_size, &mut paths, &mut schemas);
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "metaengine",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Entities defined at run time, their versions, and a generic tenant-scoped data API."
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        },
        "security": [{ "bearer": [] }],
    }))
}
