//! Prometheus metrics (`GET /metrics`): requests by route, method and status, a latency histogram
//! by route, and — read from the services when scraped — compiled-model cache hits and misses,
//! policy decisions, the audit queue's depth and the realtime subscribers; and the realtime
//! feed's delay from a change's commit to its event's sending.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// Labels of a request count (static strings: counting a request allocates nothing).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// Labels of a latency observation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// The route pattern as a `&'static str`: patterns come from the router's fixed table (plus
/// `unmatched`), so each is leaked once and looked up without allocating afterwards.
fn intern(route: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{OnceLock, RwLock};
    static ROUTES: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(RwLock::default);
    if let Some(known) = routes
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(route)
    {
        return known;
    }
    let mut write = routes
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = write.get(route) {
        return known;
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    write.insert(leaked);
    leaked
}

/// The method as a `&'static str` (`OTHER` for extension methods).
fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Labels of a policy decision count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs … ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    cache_hits: Counter,
    cache_misses: Counter,
    decisions: Family<DecisionLabels, Counter>,
    audit_queue: Gauge,
    realtime_subscribers: Gauge,
    realtime_delay: Histogram,
    /// Serializes scrapes, which turn the services' totals into counter increments.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("metaengine");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let cache_hits = Counter::default();
        let cache_misses = Counter::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let audit_queue = Gauge::default();
        let realtime_subscribers = Gauge::default();
        // 1 ms … ~16 s.
        let realtime_delay = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "realtime_subscribers",
            "Realtime change-feed streams open on this instance",
            realtime_subscribers.clone(),
        );
        registry.register(
            "realtime_delay_seconds",
            "Time from a change being recorded in the database to its event being sent",
            realtime_delay.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "model_cache_hits",
            "Compiled-model lookups served from the in-process cache",
            cache_hits.clone(),
        );
        registry.register(
            "model_cache_misses",
            "Compiled-model lookups that missed the in-process cache",
            cache_misses.clone(),
        );
        registry.register(
            "policy_decisions",
            "Policy gate decisions by outcome",
            decisions.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit events waiting for the batched writer",
            audit_queue.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            cache_hits,
            cache_misses,
            decisions,
            audit_queue,
            realtime_subscribers,
            realtime_delay,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one answered request; `route` is the matched route pattern (a fixed set).
    pub fn observe(&self, method: &axum::http::Method, route: &str, status: u16, seconds: f64) {
        let route = intern(route);
        self.requests
            .get_or_create(&RequestLabels {
                method: method_name(method),
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// Counts one realtime event sent `seconds` after its change was recorded.
    pub fn observe_realtime_delay(&self, seconds: f64) {
        self.realtime_delay.observe(seconds.max(0.0));
    }

    /// The metrics as Prometheus text, the services' totals read now.
    pub fn render(&self, state: &AppState) -> String {
        let _guard = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = state.cache.stats();
        catch_up(&self.cache_hits, stats.hits);
        catch_up(&self.cache_misses, stats.misses);
        let (allowed, denied) = state.gate.decision_counts();
        catch_up(
            &self
                .decisions
                .get_or_create(&DecisionLabels { decision: "allow" }),
            allowed,
        );
        catch_up(
            &self
                .decisions
                .get_or_create(&DecisionLabels { decision: "deny" }),
            denied,
        );
        self.audit_queue
            .set(i64::try_from(state.audit.depth()).unwrap_or(i64::MAX));
        self.realtime_subscribers
            .set(i64::try_from(state.realtime.subscribers()).unwrap_or(i64::MAX));
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        text
    }
}

/// Advances a counter to a total kept elsewhere.
fn catch_up(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}
