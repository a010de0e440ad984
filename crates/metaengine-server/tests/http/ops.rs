//! `/health`, `/ready`, `/metrics` without a token, request ids, and a graceful shutdown that
//! flushes the audit writer.

use std::time::Duration;

use metaengine_store::{AuditQuery, EventType, PageRequest};
use reqwest::Method;
use serde_json::json;

use crate::support::{admin, invoice_v1, sqlite, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let (_guard, store) = sqlite().await;
    let server = start(store).await;
    let health = server.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.body, json!({ "status": "ok" }));
    let ready = server.call(Method::GET, "/ready", None, None).await;
    assert_eq!(ready.status, 200);
    assert!(
        health
            .header("x-request-id")
            .is_some_and(|id| id.len() >= 32)
    );
    // A request id sent by the client comes back.
    let echoed = server
        .send(
            Method::GET,
            "/health",
            None,
            None,
            &[("x-request-id", "abc-123")],
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("abc-123"));

    invoice_v1(&server).await;
    server.get("/api/data/Invoice", &admin()).await;
    server
        .call(Method::GET, "/api/data/Invoice", None, None)
        .await;
    let metrics = server.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.body.as_str().unwrap();
    for needle in [
        "metaengine_http_requests_total{method=\"GET\",route=\"/api/data/{entity}\",status=\"200\"} 1",
        "metaengine_http_requests_total{method=\"GET\",route=\"/api/data/{entity}\",status=\"401\"} 1",
        "metaengine_http_request_duration_seconds_bucket",
        "metaengine_model_cache_hits_total",
        "metaengine_model_cache_misses_total",
        "metaengine_policy_decisions_total{decision=\"allow\"}",
        "metaengine_audit_queue_depth",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_the_audit_trail() {
    let (_guard, store) = sqlite().await;
    let server = start(store.clone()).await;
    invoice_v1(&server).await;
    let created = server
        .post(
            "/api/data/Invoice",
            &admin(),
            json!({ "invoiceNumber": "INV-1", "customerId": "c", "totalAmount": "5.00" }),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    server
        .get(&format!("/api/data/Invoice/{id}"), &admin())
        .await;
    // Stop at once: the data.read row is still in the batched writer's queue.
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .unwrap();
    let reads = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::DataRead],
            page: PageRequest::default(),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(reads.meta.total, 1);
}
