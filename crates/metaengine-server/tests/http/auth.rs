//! Identity: every token that is missing, malformed, unsigned, forged, expired or incomplete is
//! answered 401 (and audited as `auth.failure`); an unknown or suspended tenant 403.

use std::process::Command;

use base64::Engine as _;
use metaengine_server::Settings;
use metaengine_server::auth::{Claims, mint_hs256};
use reqwest::Method;
use serde_json::json;

use crate::support::{SECRET, admin, sqlite, start, start_with, token};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims_json(exp_offset: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": "eve", "tenant_id": "default", "realm_id": "main", "roles": ["admin"], "exp": now + exp_offset })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_and_audited() {
    let (_guard, store) = sqlite().await;
    let server = start(store).await;
    let path = "/api/meta/entities";

    // No token, or another scheme.
    server
        .call(Method::GET, path, None, None)
        .await
        .problem(401);
    let basic = server
        .send(
            Method::GET,
            path,
            None,
            None,
            &[("authorization", "Basic cm9vdDpyb290")],
        )
        .await;
    basic.problem(401);

    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims_json(600).to_string().as_bytes())
    );
    let r = server.call(Method::GET, path, Some(&none), None).await;
    assert!(
        r.problem(401)["detail"].as_str().unwrap().contains("none"),
        "{:#}",
        r.body
    );

    // Wrong signature: signed with another secret.
    let claims: Claims = serde_json::from_value(claims_json(600)).unwrap();
    let forged = mint_hs256("another-secret-another-secret-another", &claims).unwrap();
    server
        .call(Method::GET, path, Some(&forged), None)
        .await
        .problem(401);

    // A tampered payload under a valid signature.
    let good = mint_hs256(SECRET, &claims).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload = claims_json(600);
    payload["tenant_id"] = json!("other");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    );
    server
        .call(Method::GET, path, Some(&tampered), None)
        .await
        .problem(401);

    // Expired a minute ago.
    let expired: Claims = serde_json::from_value(claims_json(-60)).unwrap();
    let expired = mint_hs256(SECRET, &expired).unwrap();
    let r = server.call(Method::GET, path, Some(&expired), None).await;
    assert!(
        r.problem(401)["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Missing tenant claim: crafted by hand and signed with the right secret.
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut no_tenant = claims_json(600);
    no_tenant.as_object_mut().unwrap().remove("tenant_id");
    let body = b64(no_tenant.to_string().as_bytes());
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{header}.{body}").as_bytes());
        b64(&mac.finalize().into_bytes())
    };
    let r = server
        .call(
            Method::GET,
            path,
            Some(&format!("{header}.{body}.{signature}")),
            None,
        )
        .await;
    assert!(
        r.problem(401)["detail"]
            .as_str()
            .unwrap()
            .contains("tenant_id"),
        "{:#}",
        r.body
    );

    // Garbage.
    server
        .call(Method::GET, path, Some("not-a-jwt"), None)
        .await
        .problem(401);

    // Every refusal left an auth.failure row (result failure).
    let audit = server
        .get(
            "/api/meta/audit?eventType=auth.failure&pageSize=100",
            &admin(),
        )
        .await;
    assert_eq!(audit.body["meta"]["total"], 8, "{:#}", audit.body);
    assert!(
        audit.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "failure")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_suspended_tenants_are_403() {
    let (_guard, store) = sqlite().await;
    let server = start(store).await;
    let ghost = token("g", "no-such-tenant", "main", &["admin"]);
    server.get("/api/meta/entities", &ghost).await.problem(403);
    let r = server
        .post(
            "/api/admin/tenants",
            &admin(),
            json!({ "id": "acme", "name": "Acme" }),
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.body);
    let acme = token("a", "acme", "main", &["admin"]);
    assert_eq!(server.get("/api/meta/entities", &acme).await.status, 200);
    let r = server
        .call(
            Method::PATCH,
            "/api/admin/tenants/acme",
            Some(&admin()),
            Some(json!({ "status": "suspended" })),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "suspended");
    // Within a second on every instance; here, the same one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server.get("/api/meta/entities", &acme).await.problem(403);
    server.stop().await;
}

/// Test keys made with `openssl`.
fn rsa_keys(dir: &std::path::Path) -> (String, String) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "rsa.pem",
    ]);
    run(&["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
    (
        std::fs::read_to_string(dir.join("rsa.pem")).unwrap(),
        std::fs::read_to_string(dir.join("rsa.pub")).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_servers_refuse_hs256_tokens_signed_with_their_public_key() {
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = rsa_keys(keys.path());
    let (_guard, store) = sqlite().await;
    let server = start_with(
        store,
        Settings {
            jwt_algorithm: Some("RS256".into()),
            jwt_public_key_file: Some(keys.path().join("rsa.pub")),
            ..Settings::default()
        },
    )
    .await;
    let claims: Claims = serde_json::from_value(claims_json(600)).unwrap();
    // A genuine RS256 token passes.
    let rs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(server.get("/api/meta/entities", &rs).await.status, 200);
    // The confusion attack: HS256 keyed with the public key's PEM text.
    let confused = mint_hs256(&public, &claims).unwrap();
    server
        .get("/api/meta/entities", &confused)
        .await
        .problem(401);
    // And a plain HS256 token.
    server
        .get(
            "/api/meta/entities",
            &token("a", "default", "main", &["admin"]),
        )
        .await
        .problem(401);
    server.stop().await;
}
