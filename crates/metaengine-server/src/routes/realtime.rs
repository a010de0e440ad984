//! The realtime change feed over Server-Sent Events (SPEC §14): `GET /api/realtime?entities=…`
//! and `GET /api/data/{entity}/events` (with the list's `filter[...]`). The bearer token comes
//! from the `Authorization` header (or, without one, the admin UI's session cookie), never from
//! the query string; `Last-Event-ID` resumes.
//!
//! The stream starts with `retry: 2000`, sends a `: ping` comment after 15 s without an event,
//! and ends when the feed closes it (the client reconnects with its last id); a subscriber that
//! must reload gets `event: reset`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt as _};
use metaengine_runtime::{DataError, Delivery, SubscribeRequest, Subscription};

use super::data::filters;
use crate::extract::{Path, QueryPairs, StreamCaller};
use crate::problem::{ApiError, ApiResult};
use crate::state::{AppState, SharedState};

/// A comment line after this long without an event.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// The reconnection delay the stream asks clients for.
const RETRY: Duration = Duration::from_millis(2000);

fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `GET /api/realtime?entities=Invoice,Customer`.
pub async fn all(
    State(state): State<SharedState>,
    StreamCaller(actor): StreamCaller,
    headers: HeaderMap,
    query: QueryPairs,
) -> ApiResult<Response> {
    if let Some((key, _)) = query.0.iter().find(|(k, _)| k != "entities") {
        return Err(ApiError::bad_request(
            "",
            format!("unknown query parameter `{key}` (expected `entities`)"),
        ));
    }
    let entities: Vec<String> = query
        .get("entities")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let req = SubscribeRequest {
        entities,
        filters: Vec::new(),
        last_event_id: last_event_id(&headers),
    };
    open(&state, &actor, &req).await
}

/// `GET /api/data/{entity}/events`, with the list's `filter[...]`.
pub async fn entity(
    State(state): State<SharedState>,
    StreamCaller(actor): StreamCaller,
    Path(entity): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> ApiResult<Response> {
    let req = SubscribeRequest {
        entities: vec![entity],
        filters: filters(&query, &[])?,
        last_event_id: last_event_id(&headers),
    };
    open(&state, &actor, &req).await
}

async fn open(
    state: &SharedState,
    actor: &metaengine_runtime::Actor,
    req: &SubscribeRequest,
) -> ApiResult<Response> {
    let subscription = match state.realtime.subscribe(actor, req).await {
        Ok(s) => s,
        Err(e @ DataError::Unavailable(_)) => {
            let mut r = ApiError::from(e).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    let first = stream::once(async { Ok(SseEvent::default().retry(RETRY)) });
    let events = first.chain(deliveries(state.clone(), subscription));
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(PING_INTERVAL).text(" ping"))
        .into_response();
    // Proxies must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The subscription's deliveries as SSE messages; each event's delay since its commit is
/// measured as it leaves.
fn deliveries(
    state: Arc<AppState>,
    subscription: Subscription,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(
        (state, subscription),
        |(state, mut subscription)| async move {
            let message = match subscription.next().await? {
                Delivery::Event(e) => {
                    let delay = chrono::Utc::now() - e.at.0;
                    state
                        .metrics
                        .observe_realtime_delay(delay.num_microseconds().unwrap_or(0) as f64 / 1e6);
                    SseEvent::default()
                        .id(e.id.to_string())
                        .event(e.name)
                        .data(&*e.data)
                }
                Delivery::Reset => SseEvent::default().event("reset").data("{}"),
            };
            Some((Ok(message), (state, subscription)))
        },
    )
}
