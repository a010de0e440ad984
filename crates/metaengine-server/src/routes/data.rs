//! `/api/data/{entity}`: the generic data API over HTTP (SPEC §7, §10). Records travel as the
//! JSON text the database built; this module only parses the query string and the `If-Match`
//! header and sets `ETag` and `Location`.

use axum::extract::State;

use crate::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metaengine_core::record::parse_filter_key;
use metaengine_runtime::{FilterParam, ListRequest, parse_expand};

use crate::extract::{Caller, JsonBody, QueryPairs};
use crate::problem::{ApiError, ApiResult};
use crate::state::SharedState;

/// A JSON answer from text already serialized.
pub(crate) fn json_text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A record answer with its `ETag` (`"<rowVersion>"`).
fn record_response(status: StatusCode, text: String, row_version: i64) -> Response {
    let mut response = json_text(status, text);
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{row_version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `If-Match: "<rowVersion>"` (quotes optional, `W/` tolerated); `*` or absent → no condition.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        ApiError::bad_request(
            "",
            format!("`If-Match` must be the record's ETag, such as \"3\", not `{text}`"),
        )
    })
}

const LIST_PARAMS: &[&str] = &[
    "page", "pageSize", "orderBy", "orderDir", "fields", "after", "count", "expand",
];

/// `(field, op)` of a `filter[field][op]` key, an error for a malformed `filter…` key, or
/// `None` for other keys.
fn filter_key(key: &str) -> Option<Result<(String, String), String>> {
    key.starts_with("filter").then(|| {
        parse_filter_key(key)
            .map(|(f, o)| (f.to_owned(), o.to_owned()))
            .ok_or_else(|| format!("`{key}` is not of the form filter[<field>][<operator>]"))
    })
}

/// The filters of a query string; any other key must be one of `allowed`.
pub(crate) fn filters(query: &QueryPairs, allowed: &[&str]) -> ApiResult<Vec<FilterParam>> {
    let mut out = Vec::new();
    for (key, value) in &query.0 {
        match filter_key(key) {
            Some(Ok((field, operator))) => out.push(FilterParam {
                field,
                operator,
                value: value.clone(),
            }),
            Some(Err(message)) => return Err(ApiError::bad_request("", message)),
            None if allowed.contains(&key.as_str()) => {}
            None => {
                return Err(ApiError::bad_request(
                    "",
                    format!(
                        "unknown query parameter `{key}` (expected filter[<field>][<op>] or one of: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// A parameter with two values: `Ok(false)` for `first` or when absent, `Ok(true)` for
/// `second`, 400 (at `pointer`) for anything else.
fn either(
    query: &QueryPairs,
    key: &str,
    pointer: &str,
    (first, second): (&str, &str),
) -> ApiResult<bool> {
    match query.get(key) {
        None => Ok(false),
        Some(v) if v == first => Ok(false),
        Some(v) if v == second => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            pointer,
            format!("`{key}` must be `{first}` or `{second}`, not `{other}`"),
        )),
    }
}

fn list_request(query: &QueryPairs) -> ApiResult<ListRequest> {
    let count = !either(query, "count", "", ("exact", "none"))?;
    Ok(ListRequest {
        page: query.u32("page")?,
        page_size: query.u32("pageSize")?,
        order_by: query.get("orderBy").map(str::to_owned),
        descending: either(query, "orderDir", "orderDir", ("asc", "desc"))?,
        fields: query.get("fields").map(|f| {
            f.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        filters: filters(query, LIST_PARAMS)?,
        after: query.get("after").map(str::to_owned),
        count,
        expand: query.get("expand").map(parse_expand).unwrap_or_default(),
    })
}

/// `GET /api/data/{entity}`: a page of records.
pub async fn list(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(entity): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let request = list_request(&query)?;
    let page = state.data.list(&actor, &entity, &request).await?;
    Ok(json_text(StatusCode::OK, page.to_json()))
}

/// `GET /api/data/{entity}/count` → `{ "count": N }`.
pub async fn count(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(entity): Path<String>,
    query: QueryPairs,
) -> ApiResult<Response> {
    let filters = filters(&query, &[])?;
    let n = state.data.count(&actor, &entity, &filters).await?;
    Ok(json_text(StatusCode::OK, format!("{{\"count\":{n}}}")))
}

/// `GET /api/data/{entity}/{id}` (`expand` optional): one record with its `ETag`.
pub async fn get(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path((entity, id)): Path<(String, String)>,
    query: QueryPairs,
) -> ApiResult<Response> {
    // No filters on a get: only `expand`.
    if let Some((key, _)) = query.0.iter().find(|(key, _)| key != "expand") {
        return Err(ApiError::bad_request(
            "",
            format!("unknown query parameter `{key}` (expected: expand)"),
        ));
    }
    let expand = query.get("expand").map(parse_expand).unwrap_or_default();
    let (text, row_version) = state.data.get(&actor, &entity, &id, &expand).await?;
    Ok(record_response(StatusCode::OK, text, row_version))
}

/// `POST /api/data/{entity}` → 201 with the record, its `ETag` and `Location`.
pub async fn create(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path(entity): Path<String>,
    JsonBody(input): JsonBody,
) -> ApiResult<Response> {
    let (text, id) = state.data.create(&actor, &entity, &input).await?;
    // A new record is at row version 1.
    let mut response = record_response(StatusCode::CREATED, text, 1);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/data/{entity}/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `PATCH /api/data/{entity}/{id}` (partial; `If-Match` optional) → 200 with the new `ETag`.
pub async fn update(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path((entity, id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(input): JsonBody,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let (text, row_version) = state
        .data
        .update(&actor, &entity, &id, &input, expected)
        .await?;
    Ok(record_response(StatusCode::OK, text, row_version))
}

/// `DELETE /api/data/{entity}/{id}` (`If-Match` optional) → 204.
pub async fn delete(
    State(state): State<SharedState>,
    Caller(actor): Caller,
    Path((entity, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    state.data.delete(&actor, &entity, &id, expected).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_keys_name_field_and_operator() {
        assert_eq!(
            filter_key("filter[status][eq]").unwrap().unwrap(),
            ("status".to_owned(), "eq".to_owned())
        );
        assert!(filter_key("filter[status]").unwrap().is_err());
        assert!(filter_key("filter[][eq]").unwrap().is_err());
        assert!(filter_key("filter[a][b][c]").unwrap().is_err());
        assert!(filter_key("pageSize").is_none());
    }

    #[test]
    fn if_match_reads_quoted_versions() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        h.insert(header::IF_MATCH, "\"3\"".parse().unwrap());
        assert_eq!(if_match(&h).unwrap(), Some(3));
        h.insert(header::IF_MATCH, "W/\"4\"".parse().unwrap());
        assert_eq!(if_match(&h).unwrap(), Some(4));
        h.insert(header::IF_MATCH, "abc".parse().unwrap());
        assert_eq!(if_match(&h).unwrap_err().status, 400);
    }
}
