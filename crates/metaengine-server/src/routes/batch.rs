//! `POST /api/data/batch` (SPEC §7): many writes in one transaction, all or nothing. The body's
//! shape is checked here (each problem at its pointer into the request); the data service checks
//! each operation like its single route.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use metaengine_core::{ErrorCode, Problem};
use metaengine_runtime::{BatchDone, BatchOp};
use serde_json::Value;

use super::data::json_text;
use crate::extract::{Caller, JsonBody};
use crate::problem::{ApiError, ApiResult};
use crate::state::SharedState;

const OP_KEYS: &[&str] = &["op", "entity", "id", "ifMatch", "record"];

/// `{"operations": [...]}` → 200 `{"results": [{"status": 201, "record": {…}}, …]}`.
pub async fn batch(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let ops = parse(body).map_err(|problems| {
        let detail = problems
            .iter()
            .map(|p| format!("{}: {}", p.pointer, p.message))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::new(ErrorCode::BadRequest, detail).with_problems(problems)
    })?;
    let done = state.data.batch(&actor, &ops).await?;
    let mut out = String::with_capacity(
        done.iter()
            .map(|d| match d {
                BatchDone::Created(t) | BatchDone::Updated(t) => t.len() + 32,
                BatchDone::Deleted => 16,
            })
            .sum::<usize>()
            + 16,
    );
    out.push_str("{\"results\":[");
    for (i, d) in done.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match d {
            BatchDone::Created(text) => {
                out.push_str("{\"status\":201,\"record\":");
                out.push_str(text);
                out.push('}');
            }
            BatchDone::Updated(text) => {
                out.push_str("{\"status\":200,\"record\":");
                out.push_str(text);
                out.push('}');
            }
            BatchDone::Deleted => out.push_str("{\"status\":204}"),
        }
    }
    out.push_str("]}");
    Ok(json_text(StatusCode::OK, out))
}

/// The operations of a batch body, or every shape problem with its pointer. The records are
/// moved out of the body, not copied.
fn parse(body: Value) -> Result<Vec<BatchOp>, Vec<Problem>> {
    let mut problems = Vec::new();
    let items = match body {
        Value::Object(mut body) => {
            if let Some(k) = body.keys().find(|k| *k != "operations") {
                problems.push(Problem::new(
                    format!("/{k}"),
                    format!("unknown member `{k}`"),
                ));
            }
            match body.remove("operations") {
                Some(Value::Array(items)) => Some(items),
                _ => None,
            }
        }
        _ => None,
    };
    let Some(items) = items else {
        return Err(vec![Problem::new(
            "/operations",
            "the body must be `{\"operations\": [...]}`",
        )]);
    };
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("/operations/{i}");
        let Value::Object(mut obj) = item else {
            problems.push(Problem::new(at, "an operation must be an object"));
            continue;
        };
        for k in obj.keys().filter(|k| !OP_KEYS.contains(&k.as_str())) {
            problems.push(Problem::new(
                format!("{at}/{k}"),
                format!(
                    "unknown member `{k}` (expected one of: {})",
                    OP_KEYS.join(", ")
                ),
            ));
        }
        let text = |key: &str, problems: &mut Vec<Problem>| match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                problems.push(Problem::new(
                    format!("{at}/{key}"),
                    format!("`{key}` must be a string"),
                ));
                None
            }
        };
        let if_match = match obj.get("ifMatch") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or(()),
        };
        let if_match = if_match.unwrap_or_else(|()| {
            problems.push(Problem::new(
                format!("{at}/ifMatch"),
                "`ifMatch` must be the record's row version, a whole number",
            ));
            None
        });
        let entity = text("entity", &mut problems);
        let op = obj.get("op").and_then(Value::as_str).map(str::to_owned);
        let id = matches!(op.as_deref(), Some("update" | "delete"))
            .then(|| text("id", &mut problems))
            .flatten();
        let mut record = |problems: &mut Vec<Problem>| match obj.remove("record") {
            Some(v @ Value::Object(_)) => Some(v),
            _ => {
                problems.push(Problem::new(
                    format!("{at}/record"),
                    "`record` must be an object",
                ));
                None
            }
        };
        let op = match op.as_deref() {
            Some("create") => record(&mut problems)
                .zip(entity)
                .map(|(record, entity)| BatchOp::Create { entity, record }),
            Some("update") => match (entity, id, record(&mut problems)) {
                (Some(entity), Some(id), Some(record)) => Some(BatchOp::Update {
                    entity,
                    id,
                    if_match,
                    record,
                }),
                _ => None,
            },
            Some("delete") => entity.zip(id).map(|(entity, id)| BatchOp::Delete {
                entity,
                id,
                if_match,
            }),
            _ => {
                problems.push(Problem::new(
                    format!("{at}/op"),
                    "`op` must be `create`, `update` or `delete`",
                ));
                None
            }
        };
        ops.extend(op);
    }
    if problems.is_empty() {
        Ok(ops)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shape_problems_point_into_the_request() {
        let body = json!({ "operations": [
            { "op": "create", "entity": "Invoice", "record": { "a": 1 } },
            { "op": "update", "entity": "Invoice", "record": {} },
            { "op": "drop", "entity": "Invoice" },
            { "op": "delete", "entity": "Invoice", "id": "x", "ifMatch": "3", "extra": 1 }
        ]});
        let problems = parse(body).unwrap_err();
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/operations/1/id",
                "/operations/2/op",
                "/operations/3/extra",
                "/operations/3/ifMatch"
            ]
        );
        let ok = json!({ "operations": [
            { "op": "delete", "entity": "Invoice", "id": "x", "ifMatch": 3 }
        ]});
        assert_eq!(
            parse(ok).unwrap(),
            [BatchOp::Delete {
                entity: "Invoice".into(),
                id: "x".into(),
                if_match: Some(3)
            }]
        );
    }
}
