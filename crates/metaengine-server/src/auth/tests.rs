//! Every way a token is refused (each one a 401 for the HTTP layer), the round trips of the three
//! algorithms, and the local secret file.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

/// Test keys made with the `openssl` command once per test binary.
struct Keys {
    rsa_private: String,
    rsa_public: String,
    ec_private: String,
    ec_public: String,
    other_ec_private: String,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "rsa.pem",
            ],
        );
        openssl(d, &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub"]);
        for name in ["ec", "ec2"] {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        openssl(d, &["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub"]);
        let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
        Keys {
            rsa_private: read("rsa.pem"),
            rsa_public: read("rsa.pub"),
            ec_private: read("ec.pem"),
            ec_public: read("ec.pub"),
            other_ec_private: read("ec2.pem"),
            _dir: dir,
        }
    })
}

fn claims() -> Claims {
    Claims::new(
        "alice",
        "acme",
        "main",
        vec!["admin".into(), "user".into()],
        Duration::from_secs(3600),
    )
}

fn hs256() -> Verifier {
    Verifier::new(&KeySource::Hs256Secret(SECRET.into())).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token with any header and claims, its signature the HS256 MAC of `secret` over them whatever
/// the header says.
fn hand_signed(header: &Value, claims: &Value, secret: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn now() -> i64 {
    unix_now()
}

/// Verifies and returns the refusal, checking that its message does not echo the token.
fn refused(verifier: &Verifier, token: &str) -> AuthError {
    let err = verifier.verify(token).unwrap_err();
    let message = err.to_string();
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!message.contains(part), "{message} echoes the token");
    }
    err
}

#[test]
fn an_hs256_token_round_trips() {
    let claims = claims();
    let token = mint_hs256(SECRET, &claims).unwrap();
    assert_eq!(hs256().verify(&token).unwrap(), claims);
    let actor = hs256().verify(&token).unwrap().into_actor();
    assert_eq!(
        (
            actor.user_id.as_str(),
            actor.tenant_id.as_str(),
            actor.realm_id.as_str()
        ),
        ("alice", "acme", "main")
    );
    assert_eq!(actor.roles, ["admin", "user"]);
}

#[test]
fn alg_none_is_refused_by_name() {
    let body = serde_json::to_value(claims()).unwrap();
    // The classic forgery: `{"alg":"none"}`, the claims, and an empty signature.
    let token = format!("{}.{}.", b64(&json!({ "alg": "none" })), b64(&body));
    let err = refused(&hs256(), &token);
    assert_eq!(
        err.to_string(),
        "the token's algorithm `none` is not accepted (expected HS256)"
    );
    // The same without the trailing dot, and with a "signature" glued on.
    let token = format!("{}.{}", b64(&json!({ "alg": "none" })), b64(&body));
    assert!(matches!(
        refused(&hs256(), &token),
        AuthError::Algorithm { .. }
    ));
    let token = hand_signed(&json!({ "alg": "none", "typ": "JWT" }), &body, SECRET);
    assert!(matches!(
        refused(&hs256(), &token),
        AuthError::Algorithm { .. }
    ));
}

#[test]
fn any_algorithm_but_the_configured_one_is_refused() {
    let body = serde_json::to_value(claims()).unwrap();
    for alg in ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"] {
        let token = hand_signed(&json!({ "alg": alg }), &body, SECRET);
        let err = refused(&hs256(), &token);
        assert_eq!(
            err.to_string(),
            format!("the token's algorithm `{alg}` is not accepted (expected HS256)")
        );
    }
    // A hostile algorithm name is not repeated in the message.
    let token = hand_signed(
        &json!({ "alg": "<script>alert(1)</script>" }),
        &body,
        SECRET,
    );
    assert_eq!(
        refused(&hs256(), &token).to_string(),
        "the token's algorithm in its header is not accepted (expected HS256)"
    );
}

#[test]
fn hs_rs_confusion_is_refused() {
    let keys = keys();
    let rs256 = Verifier::new(&KeySource::Rs256PublicPem(keys.rsa_public.clone())).unwrap();
    // The attack: sign HS256 with the RSA public key's PEM text as the shared secret.
    let forged = mint_hs256(&keys.rsa_public, &claims()).unwrap();
    let err = refused(&rs256, &forged);
    assert_eq!(
        err.to_string(),
        "the token's algorithm `HS256` is not accepted (expected RS256)"
    );
}

#[test]
fn rs256_and_es256_tokens_round_trip_and_stay_apart() {
    let keys = keys();
    let claims = claims();
    let rs256 = Verifier::new(&KeySource::Rs256PublicPem(keys.rsa_public.clone())).unwrap();
    let es256 = Verifier::new(&KeySource::Es256PublicPem(keys.ec_public.clone())).unwrap();
    assert_eq!((rs256.algorithm(), es256.algorithm()), ("RS256", "ES256"));

    let rs_token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(keys.rsa_private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(rs256.verify(&rs_token).unwrap(), claims);

    let es_token = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(keys.ec_private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(es256.verify(&es_token).unwrap(), claims);

    // Each verifier refuses the other's tokens, and an ES256 token of another key.
    assert!(matches!(
        refused(&rs256, &es_token),
        AuthError::Algorithm { .. }
    ));
    assert!(matches!(
        refused(&es256, &rs_token),
        AuthError::Algorithm { .. }
    ));
    let stranger = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(keys.other_ec_private.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(refused(&es256, &stranger), AuthError::Signature);
}

#[test]
fn a_wrong_signature_is_refused() {
    let claims = claims();
    let other = mint_hs256("another-secret-of-sufficient-length!!", &claims).unwrap();
    let err = refused(&hs256(), &other);
    assert_eq!(err, AuthError::Signature);
    assert_eq!(err.to_string(), "the token's signature is invalid");

    // Claims changed after signing: promote oneself to another tenant.
    let token = mint_hs256(SECRET, &claims).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut body = serde_json::to_value(&claims).unwrap();
    body["tenant_id"] = json!("default");
    let tampered = format!("{}.{}.{}", parts[0], b64(&body), parts[2]);
    assert_eq!(refused(&hs256(), &tampered), AuthError::Signature);
}

#[test]
fn the_secret_is_used_as_utf8_bytes_never_base64_decoded() {
    // "c2VjcmV0LXRoYXQtbG9va3MtbGlrZS1iYXNlNjQtdGV4dA" is base64 of a different byte string.
    let secret = "c2VjcmV0LXRoYXQtbG9va3MtbGlrZS1iYXNlNjQtdGV4dA";
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(secret)
        .unwrap();
    let verifier = Verifier::new(&KeySource::Hs256Secret(secret.into())).unwrap();
    let token = mint_hs256(secret, &claims()).unwrap();
    assert!(verifier.verify(&token).is_ok());
    let with_decoded = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&decoded),
    )
    .unwrap();
    assert_eq!(verifier.verify(&with_decoded), Err(AuthError::Signature));
}

#[test]
fn an_expired_token_is_refused_with_at_most_five_seconds_of_leeway() {
    let mut claims = claims();
    claims.exp = now() - 60;
    let token = mint_hs256(SECRET, &claims).unwrap();
    let err = refused(&hs256(), &token);
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.to_string(), "the token has expired");

    claims.exp = now() - 7;
    let token = mint_hs256(SECRET, &claims).unwrap();
    assert_eq!(refused(&hs256(), &token), AuthError::Expired);

    // Within the leeway (clock skew) it still passes.
    claims.exp = now() - 1;
    let token = mint_hs256(SECRET, &claims).unwrap();
    assert!(hs256().verify(&token).is_ok());
}

#[test]
fn a_remembered_token_is_served_as_checked_and_still_expires() {
    let verifier = hs256();
    let mut claims = claims();
    claims.exp = now() + 60;
    let token = mint_hs256(SECRET, &claims).unwrap();
    assert_eq!(verifier.verify(&token).unwrap(), claims);
    assert!(
        verifier.verified.contains_key(&token),
        "a token that passed is remembered"
    );
    assert_eq!(verifier.verify(&token).unwrap(), claims);

    // Its expiry is checked at every use, with the same leeway as a first check.
    let exp = claims.exp;
    assert_eq!(verifier.verify_at(&token, exp + 5).unwrap(), claims);
    assert_eq!(verifier.verify_at(&token, exp + 6), Err(AuthError::Expired));
    assert!(
        !verifier.verified.contains_key(&token),
        "an expired token is forgotten"
    );
    // Checked afresh against the clock, it passes again: nothing stale was kept.
    assert_eq!(verifier.verify(&token).unwrap(), claims);

    // A token that failed is not remembered, and a remembered one vouches for no other token:
    // the same claims under another signature, or other claims under its signature.
    let other = mint_hs256("another-secret-of-sufficient-length!!", &claims).unwrap();
    assert_eq!(refused(&verifier, &other), AuthError::Signature);
    assert_eq!(refused(&verifier, &other), AuthError::Signature);
    assert!(!verifier.verified.contains_key(&other));
    let parts: Vec<&str> = token.split('.').collect();
    let mut body = serde_json::to_value(&claims).unwrap();
    body["roles"] = json!(["admin", "superuser"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&body), parts[2]);
    assert_eq!(refused(&verifier, &tampered), AuthError::Signature);
    // A verifier with another key has its own memory.
    let elsewhere = Verifier::new(&KeySource::Hs256Secret(
        "another-secret-of-sufficient-length!!".into(),
    ))
    .unwrap();
    assert_eq!(refused(&elsewhere, &token), AuthError::Signature);
}

#[test]
fn missing_or_empty_claims_are_named() {
    let full = serde_json::to_value(claims()).unwrap();
    for claim in ["sub", "tenant_id", "realm_id", "exp"] {
        let mut body = full.clone();
        body.as_object_mut().unwrap().remove(claim);
        let token = hand_signed(&json!({ "alg": "HS256", "typ": "JWT" }), &body, SECRET);
        let err = refused(&hs256(), &token);
        assert_eq!(err, AuthError::MissingClaim(claim), "{claim}");
        assert_eq!(err.to_string(), format!("the token has no `{claim}` claim"));
    }
    let mut body = full.clone();
    body["tenant_id"] = json!("");
    let token = hand_signed(&json!({ "alg": "HS256" }), &body, SECRET);
    assert_eq!(
        refused(&hs256(), &token).to_string(),
        "the token's `tenant_id` claim must be a non-empty string"
    );
    let mut body = full.clone();
    body["roles"] = json!("admin");
    let token = hand_signed(&json!({ "alg": "HS256" }), &body, SECRET);
    assert_eq!(
        refused(&hs256(), &token),
        AuthError::InvalidClaim {
            claim: "roles",
            expected: "an array of strings"
        }
    );
    let mut body = full.clone();
    body["exp"] = json!("tomorrow");
    let token = hand_signed(&json!({ "alg": "HS256" }), &body, SECRET);
    assert!(matches!(
        refused(&hs256(), &token),
        AuthError::InvalidClaim { claim: "exp", .. }
    ));

    // `roles` and `iat` are optional; unknown claims are ignored.
    let mut body = full;
    let object = body.as_object_mut().unwrap();
    object.remove("roles");
    object.remove("iat");
    object.insert("aud".into(), json!("somewhere"));
    let token = hand_signed(&json!({ "alg": "HS256" }), &body, SECRET);
    let verified = hs256().verify(&token).unwrap();
    assert!(verified.roles.is_empty());
    assert_eq!(verified.iat, None);
}

#[test]
fn malformed_tokens_are_refused_without_echo() {
    let valid = mint_hs256(SECRET, &claims()).unwrap();
    let parts: Vec<&str> = valid.split('.').collect();
    let not_json = URL_SAFE_NO_PAD.encode(b"not json at all");
    let long = "a".repeat(MAX_TOKEN_LEN + 1);
    let cases = [
        String::new(),
        "garbage".to_owned(),
        "Bearer garbage".to_owned(),
        "a.b.c".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{not_json}.{}.{}", parts[1], parts[2]),
        format!("{}.%%%%.{}", parts[0], parts[2]),
        format!("{}.{}.!!!!", parts[0], parts[1]),
        format!(
            "{}.{}.{}",
            b64(&json!({ "typ": "JWT" })),
            parts[1],
            parts[2]
        ),
        long,
    ];
    for token in &cases {
        let err = refused(&hs256(), token);
        assert!(
            matches!(err, AuthError::Malformed | AuthError::Signature),
            "{token:.40}: {err:?}"
        );
    }
    assert_eq!(
        refused(&hs256(), "garbage").to_string(),
        "the token is malformed"
    );
    // A payload that is not a JSON object, correctly signed.
    let token = hand_signed(&json!({ "alg": "HS256" }), &json!([1, 2, 3]), SECRET);
    assert_eq!(refused(&hs256(), &token), AuthError::Malformed);
}

#[test]
fn unusable_keys_are_configuration_errors() {
    let keys = keys();
    assert_eq!(
        Verifier::new(&KeySource::Hs256Secret(String::new())).unwrap_err(),
        AuthConfigError::EmptySecret
    );
    assert_eq!(
        Verifier::new(&KeySource::Rs256PublicPem("not a key".into())).unwrap_err(),
        AuthConfigError::InvalidKey {
            alg: "RS256",
            kind: "RSA"
        }
    );
    assert!(matches!(
        Verifier::new(&KeySource::Rs256PublicPem(keys.rsa_private.clone())),
        Err(AuthConfigError::PrivateKey { alg: "RS256" })
    ));
    // An EC key where an RSA key is expected, and the other way round.
    assert!(matches!(
        Verifier::new(&KeySource::Rs256PublicPem(keys.ec_public.clone())),
        Err(AuthConfigError::InvalidKey { .. })
    ));
    assert!(matches!(
        Verifier::new(&KeySource::Es256PublicPem(keys.rsa_public.clone())),
        Err(AuthConfigError::InvalidKey { .. })
    ));
    // The secret never shows in debug output.
    let debug = format!("{:?}", KeySource::Hs256Secret(SECRET.into()));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn the_secret_is_created_once_private_and_reused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nested").join("data");
    let (first, created) = load_or_create_secret(&dir).unwrap();
    assert!(created);
    assert_eq!(first.len(), 64);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let (again, created) = load_or_create_secret(&dir).unwrap();
    assert!(!created);
    assert_eq!(again, first);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [SECRET_FILE]);

    // Another data directory gets another secret.
    let (other, _) = load_or_create_secret(&root.path().join("other")).unwrap();
    assert_ne!(other, first);
}

#[test]
fn a_hand_written_secret_file_is_read_trimmed_and_an_empty_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SECRET_FILE), "my own secret\n").unwrap();
    assert_eq!(
        load_or_create_secret(dir.path()).unwrap(),
        ("my own secret".to_owned(), false)
    );
    std::fs::write(dir.path().join(SECRET_FILE), "\n").unwrap();
    let err = load_or_create_secret(dir.path()).unwrap_err();
    assert!(err.to_string().contains("is empty"), "{err}");
}

#[test]
fn concurrent_first_runs_agree_on_one_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let results: Vec<(String, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| load_or_create_secret(&path).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert!(results.iter().all(|(secret, _)| *secret == results[0].0));
}

#[test]
fn a_token_not_yet_valid_or_with_critical_extensions_is_refused() {
    let v = hs256();
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    let body = |extra: Value| {
        let mut c = json!({ "sub": "u1", "tenant_id": "default", "realm_id": "main",
                            "roles": ["admin"], "exp": now() + 600 });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let early = hand_signed(&header, &body(json!({ "nbf": now() + 300 })), SECRET);
    assert_eq!(refused(&v, &early), AuthError::NotYetValid);
    let started = hand_signed(&header, &body(json!({ "nbf": now() - 10 })), SECRET);
    assert!(v.verify(&started).is_ok());
    let crit = json!({ "alg": "HS256", "typ": "JWT", "crit": ["exp-ext"], "exp-ext": 1 });
    let token = hand_signed(&crit, &body(json!({})), SECRET);
    assert_eq!(refused(&v, &token), AuthError::CriticalExtension);
}

#[test]
fn claims_with_a_nul_character_are_refused() {
    let v = hs256();
    let header = json!({ "alg": "HS256", "typ": "JWT" });
    for (claim, value) in [
        ("sub", json!("u\u{0}1")),
        ("realm_id", json!("ma\u{0}in")),
        ("tenant_id", json!("\u{0}")),
        ("roles", json!(["ad\u{0}min"])),
    ] {
        let mut c = json!({ "sub": "u1", "tenant_id": "default", "realm_id": "main",
                            "roles": ["admin"], "exp": now() + 600 });
        c[claim] = value;
        let token = hand_signed(&header, &c, SECRET);
        assert!(
            matches!(refused(&v, &token), AuthError::InvalidClaim { claim: c, .. } if c == claim),
            "{claim}"
        );
    }
}
