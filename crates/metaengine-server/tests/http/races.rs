//! Concurrent writes of one record: without `If-Match` the client asked for last-writer-wins,
//! so every PATCH applies (one after another) and none answers a conflict; with `If-Match` one
//! wins and the others answer 412.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::json;

use crate::support::{admin, invoice_v1, start};

const WRITERS: usize = 20;

async fn concurrent_patches_without_if_match_all_apply(store: Arc<dyn Store>) {
    let server = Arc::new(start(store).await);
    let admin = admin();
    invoice_v1(&server).await;
    let r = server
        .post(
            "/api/data/Invoice",
            &admin,
            json!({ "invoiceNumber": "INV-1", "customerId": "c", "totalAmount": "1" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let path = format!("/api/data/Invoice/{}", r.body["id"].as_str().unwrap());

    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let (server, admin, path) = (server.clone(), admin.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({ "totalAmount": format!("{}", i + 2) });
            server
                .call(Method::PATCH, &path, Some(&admin), Some(body))
                .await
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{:#}", r.body);
        versions.push(r.body["rowVersion"].as_i64().unwrap());
    }
    // Each PATCH made its own version: 2..=21, none lost.
    versions.sort_unstable();
    let want: Vec<i64> = (2..=i64::try_from(WRITERS).unwrap() + 1).collect();
    assert_eq!(versions, want);
    let r = server.get(&path, &admin).await;
    assert_eq!(r.body["rowVersion"], json!(WRITERS + 1));

    // With If-Match on the version all read: exactly one wins, the others get 412.
    let mut tasks = Vec::new();
    let read = format!("\"{}\"", WRITERS + 1);
    for i in 0..WRITERS {
        let (server, admin, path, read) =
            (server.clone(), admin.clone(), path.clone(), read.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({ "totalAmount": format!("{}", i + 100) });
            server
                .send(
                    Method::PATCH,
                    &path,
                    Some(&admin),
                    Some(body),
                    &[("if-match", read.as_str())],
                )
                .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status.as_u16());
    }
    statuses.sort_unstable();
    let mut want = vec![200];
    want.extend(std::iter::repeat_n(412, WRITERS - 1));
    assert_eq!(statuses, want);
}

crate::on_both_backends!(concurrent_patches_without_if_match_all_apply);
