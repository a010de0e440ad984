//! The data grid and the record form.

use std::sync::Arc;

use axum::http::Method;
use metaengine_store::Store;
use serde_json::json;

use crate::support::{App, admin_token, define};

crate::on_both_backends!(
    records_are_created_edited_and_deleted_with_errors_at_fields,
    a_concurrent_edit_gets_a_412,
    the_grid_sorts_filters_pages_counts_and_expands,
    the_csv_export_holds_the_current_filter,
);

async fn invoices(app: &App) {
    define(
        app,
        "Customer",
        json!({ "fields": [{ "name": "name", "type": "string", "required": true }] }),
    )
    .await;
    define(
        app,
        "Invoice",
        json!({ "fields": [
            { "name": "number", "type": "string", "required": true },
            { "name": "status", "type": "enum", "enumValues": ["draft", "paid"], "required": true, "indexed": true },
            { "name": "total", "type": "decimal", "precision": 12, "scale": 2, "min": 0 },
            { "name": "paid", "type": "boolean" },
            { "name": "customerId", "type": "reference", "referenceTo": "Customer" }
        ] }),
    )
    .await;
}

async fn records_are_created_edited_and_deleted_with_errors_at_fields(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    invoices(&app).await;
    let mut b = app.root().await;
    let page = b.get("/_/data/Invoice/new").await.ok();
    assert!(
        page.has("name=\"field.status\"")
            && page.has("<option value=\"paid\">paid</option>")
            && page.has("→ Customer"),
        "{}",
        page.body
    );
    // 422: every problem at its field, what was typed kept.
    let page = b
        .post(
            "/_/data/Invoice/new",
            &[
                ("field.number", "A-1"),
                ("field.status", ""),
                ("field.total", "-3"),
            ],
        )
        .await
        .expect(422);
    for pointer in ["/status", "/total"] {
        assert!(
            page.has(&format!("data-pointer=\"{pointer}\"")),
            "{pointer}: {}",
            page.body
        );
    }
    assert!(page.has("value=\"A-1\""));
    // A reference to no record: 422 at the reference.
    let page = b
        .post(
            "/_/data/Invoice/new",
            &[
                ("field.number", "A-1"),
                ("field.status", "draft"),
                ("field.customerId", "01234567-89ab-7def-8123-456789abcdef"),
            ],
        )
        .await
        .expect(422);
    assert!(page.has("data-pointer=\"/customerId\""), "{}", page.body);
    let page = b
        .submit(
            "/_/data/Invoice/new",
            &[
                ("field.number", "A-1"),
                ("field.status", "draft"),
                ("field.total", "12.5"),
                ("field.paid", "false"),
            ],
        )
        .await
        .ok();
    assert!(
        page.has("Record created") && page.has("value=\"12.50\""),
        "{}",
        page.body
    );
    let (_, list) = app
        .api(Method::GET, "/api/data/Invoice", &admin_token(), None)
        .await;
    let record = &list["data"][0];
    assert_eq!(record["number"], "A-1");
    assert_eq!(record["paid"], false);
    let id = record["id"].as_str().unwrap().to_owned();
    // Edit: an emptied optional field is cleared.
    let page = b
        .submit(
            &format!("/_/data/Invoice/{id}"),
            &[
                ("rowVersion", "1"),
                ("field.number", "A-1b"),
                ("field.status", "paid"),
                ("field.total", ""),
                ("field.paid", "true"),
            ],
        )
        .await
        .ok();
    assert!(page.has("Record saved") && page.has("value=\"A-1b\""));
    let (_, r) = app
        .api(
            Method::GET,
            &format!("/api/data/Invoice/{id}"),
            &admin_token(),
            None,
        )
        .await;
    assert_eq!(
        (
            r["status"].as_str(),
            r["total"].is_null(),
            r["rowVersion"].as_i64()
        ),
        (Some("paid"), true, Some(2))
    );
    let page = b
        .submit(
            &format!("/_/data/Invoice/{id}/delete"),
            &[("rowVersion", "2")],
        )
        .await
        .ok();
    assert!(page.has("Record deleted") && page.has("No record."));
}

async fn a_concurrent_edit_gets_a_412(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    invoices(&app).await;
    let (_, r) = app
        .api(
            Method::POST,
            "/api/data/Invoice",
            &admin_token(),
            Some(json!({ "number": "B-1", "status": "draft" })),
        )
        .await;
    let id = r["id"].as_str().unwrap().to_owned();
    let mut b = app.root().await;
    let page = b.get(&format!("/_/data/Invoice/{id}")).await.ok();
    assert!(page.has("name=\"rowVersion\" value=\"1\""));
    // Someone else saves first, through the API.
    let (s, _) = app
        .api(
            Method::PATCH,
            &format!("/api/data/Invoice/{id}"),
            &admin_token(),
            Some(json!({ "status": "paid" })),
        )
        .await;
    assert_eq!(s, 200);
    let page = b
        .post(
            &format!("/_/data/Invoice/{id}"),
            &[
                ("rowVersion", "1"),
                ("field.number", "B-1 mine"),
                ("field.status", "draft"),
            ],
        )
        .await
        .expect(412);
    assert!(
        page.has("Someone else changed this record")
            && page.has("id=\"reload\"")
            && page.has("value=\"B-1 mine\""),
        "{}",
        page.body
    );
    let (_, r) = app
        .api(
            Method::GET,
            &format!("/api/data/Invoice/{id}"),
            &admin_token(),
            None,
        )
        .await;
    assert_eq!(
        (r["number"].as_str(), r["status"].as_str()),
        (Some("B-1"), Some("paid"))
    );
}

async fn the_grid_sorts_filters_pages_counts_and_expands(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    invoices(&app).await;
    let admin = admin_token();
    let (_, c) = app
        .api(
            Method::POST,
            "/api/data/Customer",
            &admin,
            Some(json!({ "name": "Acme" })),
        )
        .await;
    let customer = c["id"].as_str().unwrap().to_owned();
    for i in 0..25 {
        let status = if i % 5 == 0 { "paid" } else { "draft" };
        let (s, b) = app
            .api(Method::POST, "/api/data/Invoice", &admin, Some(json!({ "number": format!("N-{i:02}"), "status": status, "total": i, "customerId": customer })))
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let mut b = app.root().await;
    // Default: newest first, 20 rows, no count, a "Count" button and a next page.
    let page = b.get("/_/data/Invoice").await.ok();
    assert_eq!(page.row_ids().len(), 20);
    assert!(page.has("id=\"count\"") && !page.has("id=\"total\"") && page.has("id=\"next-page\""));
    assert!(page.has("N-24") && !page.has("N-00<"));
    // Sort by number ascending; the header links carry the filter.
    let page = b
        .get("/_/data/Invoice?orderBy=number&orderDir=asc&f=status&o=eq&v=paid&count=exact")
        .await
        .ok();
    let ids = page.row_ids();
    assert_eq!(ids.len(), 5, "{}", page.body);
    assert!(page.has("id=\"total\">5 matching"));
    let first = page.body.find("N-00").unwrap();
    assert!(
        first < page.body.find("N-05").unwrap()
            && page.body.find("N-05").unwrap() < page.body.find("N-20").unwrap()
    );
    // Every operator through the filter form: in, gte, contains, isnull.
    for (f, o, v, n) in [
        ("status", "in", "paid,draft", 20),
        ("total", "gte", "20", 5),
        ("number", "contains", "N-1", 10),
        ("customerId", "isnull", "true", 0),
        ("total", "lt", "3", 3),
    ] {
        let page = b
            .get(&format!("/_/data/Invoice?f={f}&o={o}&v={v}"))
            .await
            .ok();
        assert_eq!(page.row_ids().len(), n, "{f} {o} {v}: {}", page.body);
    }
    // A bad filter: the API's 400 at the top, no rows.
    let page = b
        .get("/_/data/Invoice?f=total&o=gte&v=lots")
        .await
        .expect(400);
    assert!(page.has("data-status=\"400\""));
    // Keyset paging: the next page follows on, no overlap.
    let page = b
        .get("/_/data/Invoice?orderBy=number&orderDir=asc")
        .await
        .ok();
    let first_ids = page.row_ids();
    let next = page
        .body
        .split("id=\"next-page\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&");
    let page = b.get(&next).await.ok();
    let second_ids = page.row_ids();
    assert_eq!(second_ids.len(), 5, "{next}");
    assert!(second_ids.iter().all(|id| !first_ids.contains(id)));
    assert!(page.has("N-24") && page.has("id=\"first-page\""));
    // Expansion: the reference shows the customer's name, linked to its record.
    let page = b
        .get("/_/data/Invoice?expand=customerId&pageSize=1")
        .await
        .ok();
    assert!(
        page.has(&format!("<a href=\"/_/data/Customer/{customer}\">Acme</a>")),
        "{}",
        page.body
    );
}

async fn the_csv_export_holds_the_current_filter(store: Arc<dyn Store>) {
    let app = App::new(store).await;
    invoices(&app).await;
    let admin = admin_token();
    for i in 0..130 {
        let status = if i % 2 == 0 { "paid" } else { "draft" };
        app.api(
            Method::POST,
            "/api/data/Invoice",
            &admin,
            Some(json!({ "number": format!("C,{i}"), "status": status })),
        )
        .await;
    }
    let mut b = app.root().await;
    let page = b
        .get("/_/data/Invoice/export.csv?filter%5Bstatus%5D%5Beq%5D=paid&orderBy=number")
        .await
        .ok();
    assert_eq!(page.header("content-type"), "text/csv; charset=utf-8");
    assert!(page.header("content-disposition").contains("Invoice.csv"));
    let lines: Vec<&str> = page.body.lines().collect();
    assert_eq!(
        lines[0],
        "id,number,status,total,paid,customerId,createdAt,updatedAt"
    );
    assert_eq!(
        lines.len(),
        1 + 65,
        "every paid invoice, across pages of 100"
    );
    assert!(
        lines[1..].iter().all(|l| l.contains(",paid,")),
        "{}",
        page.body
    );
    assert!(lines[1].contains("\"C,0\""), "CSV quoting: {}", lines[1]);
}
