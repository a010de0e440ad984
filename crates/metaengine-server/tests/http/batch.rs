//! `POST /api/data/batch` over HTTP (SPEC §7): 200 with the results in request order; on any
//! failure that failure's status, `errors` pointing into the request, and nothing written.

use std::sync::Arc;

use metaengine_store::Store;
use serde_json::json;

use crate::support::{admin, invoice_v1, start};

async fn a_batch_writes_everything_or_nothing(store: Arc<dyn Store>) {
    let server = start(store).await;
    let admin = admin();
    invoice_v1(&server).await;
    let invoice = |n: &str, amount: &str| json!({ "invoiceNumber": n, "customerId": "c", "totalAmount": amount });
    let first = server
        .post("/api/data/Invoice", &admin, invoice("INV-1", "1"))
        .await;
    let id = first.body["id"].as_str().unwrap().to_owned();
    let given = uuid::Uuid::now_v7().to_string();
    let mut with_id = invoice("INV-2", "2");
    with_id["id"] = json!(given);
    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [
                { "op": "create", "entity": "Invoice", "record": with_id },
                { "op": "update", "entity": "Invoice", "id": id, "ifMatch": 1, "record": { "status": "sent" } },
                { "op": "delete", "entity": "Invoice", "id": given }
            ]}),
        )
        .await;
    // Deleting a record created in the same batch is refused, at its operation.
    let problem = r.problem(400);
    assert_eq!(
        problem["errors"][0]["pointer"], "/operations/2/record/id",
        "{problem}"
    );
    assert_eq!(
        server.get("/api/data/Invoice/count", &admin).await.body["count"],
        1
    );

    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [
                { "op": "create", "entity": "Invoice", "record": with_id },
                { "op": "update", "entity": "Invoice", "id": id, "ifMatch": 1, "record": { "status": "sent" } },
                { "op": "create", "entity": "Invoice", "record": invoice("INV-3", "3") }
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let results = r.body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 200, 201]);
    assert_eq!(results[0]["record"]["id"], given.as_str());
    assert_eq!(results[1]["record"]["status"], "sent");
    assert_eq!(
        server.get("/api/data/Invoice/count", &admin).await.body["count"],
        3
    );

    // One invalid operation: 422 at its pointer, the valid ones before it not written.
    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [
                { "op": "create", "entity": "Invoice", "record": invoice("INV-4", "4") },
                { "op": "create", "entity": "Invoice", "record": invoice("INV-5", "-1") }
            ]}),
        )
        .await;
    let problem = r.problem(422);
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(
        problem["errors"][0]["pointer"],
        "/operations/1/record/totalAmount"
    );
    // A taken unique value, then a stale row version: 409 and 412, naming the operation.
    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [
                { "op": "create", "entity": "Invoice", "record": invoice("INV-6", "6") },
                { "op": "create", "entity": "Invoice", "record": invoice("INV-1", "1") }
            ]}),
        )
        .await;
    let problem = r.problem(409);
    assert_eq!(problem["code"], "unique_violation");
    assert_eq!(problem["errors"][0]["pointer"], "/operations/1");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(`invoiceNumber`)")),
        "{problem}"
    );
    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [
                { "op": "update", "entity": "Invoice", "id": id, "ifMatch": 1, "record": { "status": "paid" } }
            ]}),
        )
        .await;
    assert_eq!(r.problem(412)["code"], "stale_row_version");
    // A malformed body: 400 with every shape problem.
    let r = server
        .post(
            "/api/data/batch",
            &admin,
            json!({ "operations": [{ "op": "drop" }] }),
        )
        .await;
    assert_eq!(
        r.problem(400)["errors"][0]["pointer"],
        "/operations/0/entity"
    );
    assert_eq!(
        server.get("/api/data/Invoice/count", &admin).await.body["count"],
        3
    );
    server.stop().await;
}

crate::on_both_backends!(a_batch_writes_everything_or_nothing);
