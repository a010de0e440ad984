//! Extractors: the verified caller ([`Caller`]), a JSON body within the limits ([`JsonBody`]),
//! and the raw query string's pairs ([`QueryPairs`]). Each refusal is a problem+json answer.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use metaengine_runtime::{Actor, TenantAccessError};
use metaengine_store::{AuditActor, EventType, NewAudit};
use serde_json::{Value, json};

use crate::problem::ApiError;
use crate::state::SharedState;
use metaengine_core::ErrorCode;

/// The caller, from a verified bearer token whose tenant is active.
#[derive(Debug, Clone)]
pub struct Caller(pub Actor);

fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("the request has no `Authorization: Bearer <token>` header")?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err("the Authorization header must be `Bearer <token>`"),
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let claims = match bearer(&parts.headers)
            .map_err(str::to_owned)
            .and_then(|token| state.verifier.verify(token).map_err(|e| e.to_string()))
        {
            Ok(claims) => claims,
            Err(reason) => {
                audit_auth_failure(
                    state,
                    parts.method.as_str(),
                    parts.uri.path(),
                    None,
                    &reason,
                )
                .await;
                return Err(ApiError::unauthorized(reason));
            }
        };
        let actor = Actor {
            user_id: claims.sub,
            tenant_id: claims.tenant_id,
            realm_id: claims.realm_id,
            roles: claims.roles,
        };
        active_tenant(state, parts, actor).await.map(Caller)
    }
}

/// Who may sign a request with a cookie instead of a bearer token: the admin UI's sessions
/// (SPEC §18), which the UI registers in [`crate::AppState::sessions`] when it is served.
pub trait SessionAuth: Send + Sync {
    /// The caller a request's cookies stand for, if any.
    fn actor(&self, headers: &HeaderMap) -> Option<Actor>;
}

/// The caller of a realtime stream (SPEC §14): from the bearer token, or, for a request without
/// an `Authorization` header, from the admin UI's session cookie. Only the event streams accept
/// the cookie: they change nothing, so a cross-site request cannot make them act.
#[derive(Debug, Clone)]
pub struct StreamCaller(pub Actor);

impl FromRequestParts<SharedState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION)
            && let Some(actor) = state.sessions.get().and_then(|s| s.actor(&parts.headers))
        {
            return active_tenant(state, parts, actor).await.map(StreamCaller);
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(|Caller(actor)| StreamCaller(actor))
    }
}

/// `actor` when its tenant is active; else 403 (audited as an authentication failure).
async fn active_tenant(
    state: &SharedState,
    parts: &Parts,
    actor: Actor,
) -> Result<Actor, ApiError> {
    if let Err(e) = state.tenants.check_active(&actor.tenant_id).await {
        return Err(match e {
            TenantAccessError::Store(cause) => ApiError::internal_error(&cause),
            refused => {
                let reason = refused.to_string();
                audit_auth_failure(
                    state,
                    parts.method.as_str(),
                    parts.uri.path(),
                    Some(&actor),
                    &reason,
                )
                .await;
                ApiError::forbidden(reason)
            }
        });
    }
    Ok(actor)
}

/// An `auth.failure` row (result `failure`) through the batched writer: the path is the resource.
/// The admin UI writes the same row for a refused sign-in.
pub async fn audit_auth_failure(
    state: &SharedState,
    method: &str,
    path: &str,
    actor: Option<&Actor>,
    reason: &str,
) {
    let who = actor.map(Actor::audit).unwrap_or_else(|| AuditActor {
        user_id: String::new(),
        tenant_id: String::new(),
        realm_id: String::new(),
    });
    let event = NewAudit::success(
        EventType::AuthFailure,
        &who,
        path,
        Some(json!({ "method": method })),
    )
    .into_failure(reason.to_owned());
    state.audit.record(event).await;
}

/// A JSON body: `Content-Type: application/json` (else 415), within the size limit (else 413),
/// syntactically valid (else 400 with line and column) and no deeper than the configured depth.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

impl FromRequest<SharedState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON, sent with `Content-Type: application/json`",
            ));
        }
        let too_large = || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body is larger than the limit of {} bytes",
                    state.limits.body_limit
                ),
            )
        };
        // A declared length over the limit is refused before reading a byte of the body.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > state.limits.body_limit as u64) {
            return Err(too_large());
        }
        let received = req
            .extensions()
            .get::<crate::routes::BodyReceived>()
            .cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("", format!("cannot read the body: {e}"))
            }
        })?;
        if let Some(flag) = received {
            flag.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let max_depth = state.limits.json_max_depth;
        if json_depth_exceeds(&bytes, max_depth) {
            return Err(ApiError::bad_request(
                "",
                format!("the body nests deeper than {max_depth} levels"),
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("", format!("the body is not valid JSON: {e}")))?;
        // JSON can carry a NUL only escaped; only then is the document searched.
        if bytes.windows(6).any(|w| w == b"\\u0000")
            && let Some(pointer) = nul_pointer(&value, String::new())
        {
            let message = "a string must not contain the NUL character (`\\u0000`)";
            return Err(ApiError::new(ErrorCode::ValidationFailed, message)
                .with_problems(vec![metaengine_core::Problem::new(pointer, message)]));
        }
        Ok(JsonBody(value))
    }
}

/// The JSON pointer of the first string (value or key) holding a NUL character: PostgreSQL
/// cannot store one, so both backends refuse it alike (SPEC §11).
fn nul_pointer(value: &Value, at: String) -> Option<String> {
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::String(s) => s.contains('\0').then_some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_pointer(v, format!("{at}/{i}"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = format!("{at}/{}", escape(k));
            if k.contains('\0') {
                Some(here)
            } else {
                nul_pointer(v, here)
            }
        }),
        _ => None,
    }
}

/// Whether arrays and objects nest deeper than `max` (strings are skipped, escapes included).
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The query string as decoded `(key, value)` pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            let k = k.replace('\0', "\\u0000");
            return Err(ApiError::bad_request(
                "",
                format!("query parameter `{k}` must not contain the NUL character"),
            ));
        }
        Ok(QueryPairs(pairs))
    }
}

impl QueryPairs {
    /// The value of `key` (the last one when repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses keys outside `allowed` (a typo such as `pagesize` would otherwise be ignored).
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(ApiError::bad_request(
                "",
                format!(
                    "unknown query parameter `{k}` (expected one of: {})",
                    allowed.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A positive integer parameter; malformed → 400.
    pub fn u32(&self, key: &str) -> Result<Option<u32>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(
                        "",
                        format!("query parameter `{key}` must be a positive integer, not `{v}`"),
                    )
                })
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`); malformed → 400.
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(v) => Err(ApiError::bad_request(
                "",
                format!("query parameter `{key}` must be `true` or `false`, not `{v}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert!(!json_depth_exceeds(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[\"[[["}"#, 1));
    }

    #[test]
    fn the_nul_character_is_found_at_its_pointer() {
        let v = json!({ "a": [1, "x\u{0}"], "b": "ok" });
        assert_eq!(nul_pointer(&v, String::new()).as_deref(), Some("/a/1"));
        let v = json!({ "k/\u{0}": 1 });
        assert_eq!(nul_pointer(&v, String::new()).as_deref(), Some("/k~1\u{0}"));
        assert_eq!(nul_pointer(&json!({ "a": "b" }), String::new()), None);
    }

    #[test]
    fn bearer_needs_the_scheme() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, "bearer abc.def".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "abc.def");
    }
}

/// Path parameters (`/api/data/{entity}/{id}`), like axum's `Path` but a parameter that cannot be
/// read answers problem+json (`bad_request`) rather than axum's plain text.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);
