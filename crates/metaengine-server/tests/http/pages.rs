//! A list page holds at most `max_page_bytes` of records (issue 12, item 16): large records end
//! a page early, with a `nextCursor` that continues where it stopped, so no answer grows with
//! `pageSize` × record size.

use std::collections::HashSet;
use std::sync::Arc;

use metaengine_server::Settings;
use metaengine_store::Store;
use serde_json::json;

use crate::support::{admin, invoice_v1, start_with};

async fn large_records_end_a_page_early(store: Arc<dyn Store>) {
    let server = start_with(
        store,
        Settings {
            max_page_bytes: Some(5_000),
            ..Settings::default()
        },
    )
    .await;
    let admin = admin();
    invoice_v1(&server).await;
    // Seven records of about 2 KB each.
    for i in 0..7 {
        let r = server
            .post(
                "/api/data/Invoice",
                &admin,
                json!({ "invoiceNumber": format!("INV-{i}"), "customerId": "c".repeat(2_000),
                        "totalAmount": "1" }),
            )
            .await;
        assert_eq!(r.status, 201, "{:#}", r.body);
    }
    let mut seen = Vec::new();
    let mut path = "/api/data/Invoice?pageSize=100".to_owned();
    loop {
        let r = server.get(&path, &admin).await;
        assert_eq!(r.status, 200, "{:#}", r.body);
        let data = r.body["data"].as_array().unwrap();
        // Two records fit in 5,000 bytes; a third would pass the budget.
        assert!(!data.is_empty() && data.len() <= 2, "{}", data.len());
        seen.extend(
            data.iter()
                .map(|x| x["invoiceNumber"].as_str().unwrap().to_owned()),
        );
        assert_eq!(r.body["meta"]["total"], 7, "{:#}", r.body["meta"]);
        match r.body["meta"]["nextCursor"].as_str() {
            Some(next) => path = format!("/api/data/Invoice?pageSize=100&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7, "{seen:?}");

    // A record larger than the budget still comes, alone on its page.
    let r = server
        .post(
            "/api/data/Invoice",
            &admin,
            json!({ "invoiceNumber": "BIG", "customerId": "c".repeat(9_000), "totalAmount": "1" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let r = server
        .get(
            "/api/data/Invoice?pageSize=100&filter[invoiceNumber][eq]=BIG",
            &admin,
        )
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{:#}", r.body);
    assert!(
        r.body["meta"]["nextCursor"].is_null(),
        "{:#}",
        r.body["meta"]
    );
}

/// A server configured for larger pages serves them on metadata lists too (they were capped at
/// 100 whatever the setting), and refuses one beyond its setting.
async fn max_page_size_applies_to_metadata_lists(store: Arc<dyn Store>) {
    let server = start_with(
        store,
        Settings {
            max_page_size: Some(300),
            ..Settings::default()
        },
    )
    .await;
    let admin = admin();
    invoice_v1(&server).await;
    for path in [
        "/api/meta/audit?pageSize=150",
        "/api/meta/entities?pageSize=150",
        "/api/data/Invoice?pageSize=150",
    ] {
        let r = server.get(path, &admin).await;
        assert_eq!(r.status, 200, "{path}: {:#}", r.body);
        assert_eq!(
            r.body["meta"]["pageSize"], 150,
            "{path}: {:#}",
            r.body["meta"]
        );
    }
    let r = server.get("/api/meta/audit?pageSize=301", &admin).await;
    assert_eq!(r.problem(400)["code"], "bad_request");
    server.stop().await;
}

crate::on_both_backends!(
    large_records_end_a_page_early,
    max_page_size_applies_to_metadata_lists
);
