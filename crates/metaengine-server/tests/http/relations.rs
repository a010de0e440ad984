//! Relations (SPEC §13) through the API, on both backends: forward expansion nested to three
//! levels, reverse expansion ordered by id and capped, the target's read policies and scope
//! applied inside the expansion, a self-reference, and the 400s of a bad `expand`.

use std::sync::Arc;

use metaengine_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, admin, define_entity as define, start, token};

/// Manager ← Customer ← Invoice. Everyone reads managers and invoices; users read only the
/// customers of region `north`; admins do anything.
async fn define_all(server: &TestServer) {
    let admins = json!({ "name": "admins", "effect": "allow", "action": "*",
        "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] });
    let everyone = json!({ "name": "everyone-reads", "effect": "allow", "action": "read" });
    define(
        server,
        "Manager",
        json!({ "fields": [{ "name": "name", "type": "string" }],
                "policies": [admins, everyone] }),
    )
    .await;
    define(
        server,
        "Customer",
        json!({ "fields": [
                    { "name": "name", "type": "string" },
                    { "name": "region", "type": "string" },
                    { "name": "accountManagerId", "type": "reference", "referenceTo": "Manager" }
                ],
                "policies": [admins, { "name": "north-only", "effect": "allow", "action": "read",
                    "conditions": [{ "field": "record.region", "operator": "eq", "value": "north" }] }] }),
    )
    .await;
    define(
        server,
        "Invoice",
        json!({ "fields": [
                    { "name": "number", "type": "string" },
                    { "name": "amount", "type": "decimal", "precision": 12, "scale": 2 },
                    { "name": "customerId", "type": "reference", "referenceTo": "Customer" }
                ],
                "policies": [admins, everyone,
                    { "name": "users-create", "effect": "allow", "action": "create",
                      "conditions": [{ "field": "user.role", "operator": "eq", "value": "user" }] }] }),
    )
    .await;
}

/// Creates a record as `who`; its id.
async fn create(server: &TestServer, who: &str, entity: &str, record: Value) -> String {
    let r = server
        .post(&format!("/api/data/{entity}"), who, record)
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn forward_and_reverse_expansions_in_scope_and_policy(store: Arc<dyn Store>) {
    let server = start(store).await;
    define_all(&server).await;
    let admin = admin();
    let mia = create(&server, &admin, "Manager", json!({ "name": "Mia" })).await;
    let north = create(
        &server,
        &admin,
        "Customer",
        json!({ "name": "Acme", "region": "north", "accountManagerId": mia }),
    )
    .await;
    let south = create(
        &server,
        &admin,
        "Customer",
        json!({ "name": "Bolt", "region": "south" }),
    )
    .await;
    let mut north_invoices = Vec::new();
    for (i, customer) in [&north, &south, &north, &north].into_iter().enumerate() {
        let id = create(
            &server,
            &admin,
            "Invoice",
            json!({ "number": format!("I-{i}"), "amount": "10.50", "customerId": customer }),
        )
        .await;
        if customer == &north {
            north_invoices.push(id);
        }
    }
    let unlinked = create(&server, &admin, "Invoice", json!({ "number": "I-x" })).await;

    // Forward, nested: the invoice's customer and that customer's manager, in one answer.
    let r = server
        .get(
            "/api/data/Invoice?expand=customerId.accountManagerId&orderBy=number&count=none",
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    let first = &data[0];
    assert_eq!(first["number"], "I-0");
    let customer = &first["expand"]["customerId"];
    assert_eq!(customer["id"], north.as_str());
    assert_eq!(customer["name"], "Acme");
    assert_eq!(customer["expand"]["accountManagerId"]["name"], "Mia");
    assert_eq!(data[1]["expand"]["customerId"]["name"], "Bolt");
    assert_eq!(
        data[1]["expand"]["customerId"]["expand"]["accountManagerId"],
        Value::Null
    );
    let x = data.iter().find(|d| d["id"] == unlinked.as_str()).unwrap();
    assert_eq!(x["expand"]["customerId"], Value::Null);
    // Values keep their types inside an expansion (a decimal is a string, as at the top).
    let r = server
        .get(
            &format!("/api/data/Customer/{north}?expand=Invoice_via_customerId"),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let invoices = r.body["expand"]["Invoice_via_customerId"]
        .as_array()
        .unwrap();
    let ids: Vec<&str> = invoices.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let mut sorted = north_invoices.clone();
    sorted.sort();
    assert_eq!(
        ids, sorted,
        "reverse expansion: the referring records by id"
    );
    assert!(invoices.iter().all(|i| i["amount"] == "10.50"));
    assert_eq!(r.body["name"], "Acme");
    // The record itself is unchanged by the expansion (its ETag too).
    let plain = server
        .get(&format!("/api/data/Customer/{north}"), &admin)
        .await;
    assert_eq!(plain.body.get("expand"), None);
    assert_eq!(plain.headers["etag"], r.headers["etag"]);

    // A user reads every invoice but only the north customers: the south one expands to null,
    // exactly as if it did not exist.
    let user = token("u1", "default", "main", &["user"]);
    let r = server
        .get(
            "/api/data/Invoice?expand=customerId&orderBy=number&count=none",
            &user,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data[0]["expand"]["customerId"]["name"], "Acme");
    assert_eq!(data[1]["number"], "I-1");
    assert_eq!(data[1]["customerId"], south.as_str());
    assert_eq!(data[1]["expand"]["customerId"], Value::Null);
    let r = server
        .get(
            &format!("/api/data/Invoice/{}?expand=customerId", north_invoices[0]),
            &user,
        )
        .await;
    assert_eq!(r.body["expand"]["customerId"]["region"], "north");

    // `fields` reaches into expansions (`id` always comes).
    let r = server
        .get(
            "/api/data/Invoice?expand=customerId.accountManagerId&fields=number,customerId.name,customerId.accountManagerId.name&orderBy=number&count=none",
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let first = &r.body["data"][0];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(first), ["expand", "id", "number"]);
    assert_eq!(
        keys(&first["expand"]["customerId"]),
        ["expand", "id", "name"]
    );
    assert_eq!(
        keys(&first["expand"]["customerId"]["expand"]["accountManagerId"]),
        ["id", "name"]
    );
    for bad in [
        "fields=customerId.name",
        "expand=customerId&fields=customerId.nope",
        "expand=customerId&fields=accountManagerId.name",
    ] {
        let r = server
            .get(&format!("/api/data/Invoice?{bad}"), &admin)
            .await;
        assert_eq!(r.status, 400, "{bad}: {:#}", r.body);
        assert_eq!(r.body["code"], "unknown_field", "{bad}: {:#}", r.body);
    }

    // Filters across the reference, one level, with the target's policies applied.
    let numbers = |r: &crate::support::Answer| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["number"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = server
        .get(
            "/api/data/Invoice?filter[customerId.name][eq]=Acme&orderBy=number",
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(numbers(&r), ["I-0", "I-2", "I-3"]);
    assert_eq!(r.body["meta"]["total"], 3);
    let r = server
        .get(
            "/api/data/Invoice?filter[customerId.region][startswith]=so&filter[customerId.name][ne]=x",
            &admin,
        )
        .await;
    assert_eq!(numbers(&r), ["I-1"]);
    let r = server
        .get(
            "/api/data/Invoice/count?filter[customerId.accountManagerId][isnull]=false",
            &admin,
        )
        .await;
    assert_eq!(r.body["count"], 3, "{:#}", r.body);
    // The user cannot read the south customer: filtering on it finds nothing.
    let r = server
        .get(
            "/api/data/Invoice?filter[customerId.region][eq]=south",
            &user,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(numbers(&r), Vec::<String>::new());
    for bad in ["customerId.nope", "number.name", "ghost.name"] {
        let r = server
            .get(&format!("/api/data/Invoice?filter[{bad}][eq]=x"), &admin)
            .await;
        assert_eq!(r.status, 400, "{bad}: {:#}", r.body);
        assert_eq!(r.body["code"], "unknown_field", "{bad}: {:#}", r.body);
    }
    let r = server
        .get("/api/data/Invoice?filter[customerId.amount][eq]=1", &admin)
        .await;
    assert_eq!(r.status, 400, "{:#}", r.body);

    // Writes: a reference to a customer the user may not read is refused exactly like one to a
    // customer that does not exist (422 at the field, the same message but for the id).
    let r = server
        .post(
            "/api/data/Invoice",
            &user,
            json!({ "number": "U-1", "customerId": north }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let hidden = server
        .post(
            "/api/data/Invoice",
            &user,
            json!({ "number": "U-2", "customerId": south }),
        )
        .await;
    assert_eq!(hidden.status, 422, "{:#}", hidden.body);
    let ghost = "01900000-0000-7000-8000-000000000000";
    let missing = server
        .post(
            "/api/data/Invoice",
            &user,
            json!({ "number": "U-3", "customerId": ghost }),
        )
        .await;
    assert_eq!(missing.status, 422, "{:#}", missing.body);
    assert_eq!(hidden.body["errors"][0]["pointer"], "/customerId");
    let detail = |a: &crate::support::Answer, id: &str| {
        a.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace(id, "ID")
    };
    assert_eq!(detail(&hidden, &south), detail(&missing, ghost));
    server
        .call(
            Method::DELETE,
            &format!("/api/data/Invoice/{}", r.body["id"].as_str().unwrap()),
            Some(&admin),
            None,
        )
        .await;

    // Another realm of the same tenant sees its own records only, expansions included.
    let other_realm = token("o", "default", "other", &["admin"]);
    let r = server
        .get(
            "/api/data/Customer?expand=Invoice_via_customerId",
            &other_realm,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body["data"], json!([]));
    // … and cannot refer to another realm's record: refused like a missing one.
    let r = server
        .post(
            "/api/data/Invoice",
            &other_realm,
            json!({ "number": "R-1", "customerId": north }),
        )
        .await;
    assert_eq!(r.status, 422, "{:#}", r.body);
    assert_eq!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .replace(north.as_str(), "ID"),
        format!("`customerId` refers to `Customer` record `ID`, which does not exist")
    );

    // The OpenAPI document types the expansions, for generated clients.
    let doc = server.get("/openapi.json", &admin).await.body;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Invoice"]["properties"]["expand"]["properties"]["customerId"]["anyOf"][0]["$ref"],
        "#/components/schemas/Customer"
    );
    assert_eq!(
        schemas["Customer"]["properties"]["expand"]["properties"]["Invoice_via_customerId"]["items"]
            ["$ref"],
        "#/components/schemas/Invoice"
    );
    let params = doc["paths"]["/api/data/Customer/{id}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let expand = params.iter().find(|p| p["name"] == "expand").unwrap();
    let text = expand["description"].as_str().unwrap();
    assert!(
        text.contains("accountManagerId, Invoice_via_customerId"),
        "{text}"
    );

    // Bad expansions: 400 unknown_field, naming the parameter.
    for bad in [
        "nope",
        "number",
        "customerId.nope",
        "Invoice_via_number",
        "Ghost_via_customerId",
        "customerId.accountManagerId.x.y",
    ] {
        let r = server
            .get(&format!("/api/data/Invoice?expand={bad}"), &admin)
            .await;
        assert_eq!(r.status, 400, "{bad}: {:#}", r.body);
        assert_eq!(r.body["code"], "unknown_field", "{bad}: {:#}", r.body);
    }
    let r = server
        .get(&format!("/api/data/Invoice/{unlinked}?expand=nope"), &admin)
        .await;
    assert_eq!(r.status, 400, "{:#}", r.body);
    let r = server
        .get(
            &format!("/api/data/Invoice/{unlinked}?fields=number"),
            &admin,
        )
        .await;
    assert_eq!(r.status, 400, "{:#}", r.body);
    server.stop().await;
}

/// A Category whose `parentId` refers to a Category: a chain expands to the depth asked, and a
/// cycle (a category that is its own parent) does not loop.
async fn a_self_reference_expands_to_the_requested_depth(store: Arc<dyn Store>) {
    let server = start(store).await;
    define(
        &server,
        "Category",
        json!({ "fields": [
                    { "name": "name", "type": "string" },
                    { "name": "parentId", "type": "reference", "referenceTo": "Category" }
                ],
                "policies": [{ "name": "all", "effect": "allow", "action": "*" }] }),
    )
    .await;
    let admin = admin();
    let root = create(&server, &admin, "Category", json!({ "name": "root" })).await;
    let mid = create(
        &server,
        &admin,
        "Category",
        json!({ "name": "mid", "parentId": root }),
    )
    .await;
    let leaf = create(
        &server,
        &admin,
        "Category",
        json!({ "name": "leaf", "parentId": mid }),
    )
    .await;
    let r = server
        .get(
            &format!("/api/data/Category/{leaf}?expand=parentId.parentId"),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    assert_eq!(r.body["expand"]["parentId"]["name"], "mid");
    assert_eq!(
        r.body["expand"]["parentId"]["expand"]["parentId"]["name"],
        "root"
    );
    assert_eq!(
        r.body["expand"]["parentId"]["expand"]["parentId"].get("expand"),
        None
    );
    // The root's children, and each child's children.
    let r = server
        .get(
            &format!(
                "/api/data/Category/{root}?expand=Category_via_parentId.Category_via_parentId"
            ),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let children = r.body["expand"]["Category_via_parentId"]
        .as_array()
        .unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["name"], "mid");
    assert_eq!(
        children[0]["expand"]["Category_via_parentId"][0]["name"],
        "leaf"
    );
    // A cycle: root becomes its own parent; three levels, no more.
    let r = server
        .call(
            Method::PATCH,
            &format!("/api/data/Category/{root}"),
            Some(&admin),
            Some(json!({ "parentId": root })),
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let r = server
        .get(
            &format!("/api/data/Category/{root}?expand=parentId.parentId.parentId"),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.body);
    let third = &r.body["expand"]["parentId"]["expand"]["parentId"]["expand"]["parentId"];
    assert_eq!(third["id"], root.as_str());
    assert_eq!(third.get("expand"), None);
    server.stop().await;
}

crate::on_both_backends!(
    forward_and_reverse_expansions_in_scope_and_policy,
    a_self_reference_expands_to_the_requested_depth
);
