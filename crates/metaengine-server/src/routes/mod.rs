//! The router: SPEC §10's routes and the layers every request passes (request id, trace span,
//! panic guard, concurrency limit, timeout, body limit, metrics).

pub mod admin;
pub mod batch;
pub mod data;
pub mod meta;
pub mod ops;
pub mod realtime;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::problem::ApiError;
use crate::state::SharedState;
use metaengine_core::ErrorCode;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route of the server over `state`.
pub fn router(state: SharedState) -> Router {
    router_with(state, Router::new())
}

/// Every route of the server and the `extra` routes (the admin UI), all behind the same layers
/// (request id, trace span, panic guard, concurrency limit, timeout, body limit, metrics).
pub fn router_with(state: SharedState, extra: Router<SharedState>) -> Router {
    let entity = "/api/meta/entities/{entity}";
    let version = "/api/meta/entities/{entity}/versions/{version}";
    Router::new()
        .route(
            "/api/meta/entities",
            post(meta::create_entity).get(meta::list_entities),
        )
        .route(
            entity,
            get(meta::get_entity)
                .patch(meta::update_entity)
                .delete(meta::delete_entity),
        )
        .route(
            &format!("{entity}/versions"),
            post(meta::create_version).get(meta::list_versions),
        )
        .route(
            version,
            get(meta::get_version)
                .put(meta::replace_version)
                .delete(meta::delete_version),
        )
        .route(&format!("{version}/fields"), post(meta::add_field))
        .route(
            &format!("{version}/fields/{{field}}"),
            axum::routing::patch(meta::update_field).delete(meta::remove_field),
        )
        .route(&format!("{version}/activate"), post(meta::activate))
        .route(&format!("{version}/deactivate"), post(meta::deactivate))
        .route(&format!("{entity}/compiled"), get(meta::compiled))
        .route("/api/meta/cache/clear", post(meta::clear_cache))
        .route("/api/meta/validate", post(meta::validate))
        .route("/api/meta/audit", get(meta::audit))
        .route("/api/meta/audit/verify", get(meta::audit_verify))
        .route("/api/meta/snapshot", get(meta::snapshot))
        .route("/api/meta/codegen/typescript", get(meta::codegen_typescript))
        .route("/api/meta/snapshot/apply", post(meta::apply_snapshot))
        .route("/api/data/batch", post(batch::batch))
        .route("/api/data/{entity}", get(data::list).post(data::create))
        .route("/api/data/{entity}/count", get(data::count))
        .route("/api/data/{entity}/events", get(realtime::entity))
        .route("/api/realtime", get(realtime::all))
        .route(
            "/api/data/{entity}/{id}",
            get(data::get).patch(data::update).delete(data::delete),
        )
        .route("/api/admin/tenants", post(admin::create).get(admin::list))
        .route(
            "/api/admin/tenants/{id}",
            get(admin::get).patch(admin::update),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json))
        .merge(extra)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(DefaultBodyLimit::max(state.limits.body_limit))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::internal(&"a handler panicked").into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::new()))
        .layer(middleware::map_request(sanitize_request_id))
        .with_state(state)
}

/// Longest client `X-Request-Id` kept (and echoed); a longer or odd one is replaced by ours.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client's `X-Request-Id` that is too long or holds anything but letters, digits and
/// `-_.:`, so that a fresh id is made: the header is echoed and logged, never a carrier of junk.
async fn sanitize_request_id(mut req: Request) -> Request {
    let fine = |v: &HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_REQUEST_ID_LEN
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    };
    if req.headers().get(&REQUEST_ID).is_some_and(|v| !fine(v)) {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// Set by [`crate::extract::JsonBody`] once the whole body has arrived, so that a request cut
/// by the timeout while its client was still sending answers 408, not 503.
#[derive(Clone, Default)]
pub struct BodyReceived(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

/// Request ids in UUID form: a random per-process prefix and a counter (no system call per
/// request, unlike a random UUID).
#[derive(Clone)]
struct RequestIds {
    prefix: u64,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        let (prefix, _) = uuid::Uuid::new_v4().as_u64_pair();
        Self {
            prefix,
            next: std::sync::Arc::default(),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = uuid::Uuid::from_u64_pair(self.prefix, n).to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no route `{} {}`", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "`{}` is not allowed on `{}`",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Concurrency limit (429 beyond it), request timeout (503), and metrics of every answer.
async fn guard(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    // A NUL in a path parameter cannot reach the database (PostgreSQL refuses it): 400 here,
    // on both backends alike (SPEC §11).
    let nul_in_path = req.uri().path().as_bytes().windows(3).any(|w| w == b"%00");
    let response = match state.permits.try_acquire() {
        _ if nul_in_path => {
            ApiError::bad_request("", "the path must not contain the NUL character (`%00`)")
                .into_response()
        }
        Err(_) => {
            let mut r = ApiError::new(
                ErrorCode::TooManyRequests,
                format!(
                    "the server is already serving {} requests; retry shortly",
                    state.limits.max_concurrency
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Ok(_permit) => {
            let expects_body = req.headers().contains_key(header::CONTENT_LENGTH)
                || req.headers().contains_key(header::TRANSFER_ENCODING);
            let received = BodyReceived::default();
            let mut req = req;
            req.extensions_mut().insert(received.clone());
            match tokio::time::timeout(state.limits.request_timeout, next.run(req)).await {
                Ok(response) => response,
                Err(_)
                    if expects_body && !received.0.load(std::sync::atomic::Ordering::Relaxed) =>
                {
                    ApiError::new(
                        ErrorCode::RequestTimeout,
                        format!(
                            "the request body did not arrive within {} ms",
                            state.limits.request_timeout.as_millis()
                        ),
                    )
                    .into_response()
                }
                Err(_) => ApiError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "the request took longer than {} ms and was abandoned",
                        state.limits.request_timeout.as_millis()
                    ),
                )
                .into_response(),
            }
        }
    };
    state.metrics.observe(
        &method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}
