//! Tenant stories on both backends (SPEC §9): platform admins manage tenants, every change and
//! refusal is audited, and a suspension reaches every instance's per-request check within a
//! second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metaengine_runtime::{AccessConfig, Actor, RegistryError, TenantAccessError, TenantService};
use metaengine_store::{AuditQuery, AuditRow, Store};
use serde_json::json;

fn actor(user: &str, tenant: &str, roles: &[&str]) -> Actor {
    Actor {
        user_id: user.into(),
        tenant_id: tenant.into(),
        realm_id: "main".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn admin() -> Actor {
    actor("alice", "default", &["admin"])
}

async fn audit_rows(store: &dyn Store, event: &str, result: &str) -> Vec<AuditRow> {
    store
        .query_audit(&AuditQuery {
            event_types: vec![event.parse().unwrap()],
            result: Some(result.parse().unwrap()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data
}

fn ids(rows: &[metaengine_store::TenantRow]) -> Vec<&str> {
    rows.iter().map(|t| t.id.as_str()).collect()
}

async fn create_list_update_suspend(store: Arc<dyn Store>) {
    let tenants = TenantService::new(store.clone(), AccessConfig::default());
    let a = admin();

    // A fresh database has the platform tenant, active.
    assert_eq!(ids(&tenants.list(&a).await.unwrap()), ["default"]);
    tenants.check_active("default").await.unwrap();

    let acme = tenants.create(&a, "acme", "Acme Corp").await.unwrap();
    assert_eq!(
        (acme.id.as_str(), acme.name.as_str(), acme.status.as_str()),
        ("acme", "Acme Corp", "active")
    );
    assert_eq!(ids(&tenants.list(&a).await.unwrap()), ["acme", "default"]);
    assert_eq!(tenants.get(&a, "acme").await.unwrap(), acme);
    tenants.check_active("acme").await.unwrap();

    let created = audit_rows(store.as_ref(), "tenant.create", "success").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        (
            created[0].resource.as_str(),
            created[0].user_id.as_str(),
            created[0].tenant_id.as_str(),
            created[0].action.as_str()
        ),
        ("acme", "alice", "default", "create")
    );
    assert_eq!(created[0].details, Some(json!({ "name": "Acme Corp" })));

    // Rename.
    let renamed = tenants
        .update(&a, "acme", Some("Acme Europe"), None)
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.status.as_str()),
        ("Acme Europe", "active")
    );

    // Suspend: this instance refuses the tenant at once.
    let suspended = tenants
        .update(&a, "acme", None, Some("suspended"))
        .await
        .unwrap();
    assert_eq!(suspended.status.as_str(), "suspended");
    assert_eq!(suspended.name, "Acme Europe");
    let err = tenants.check_active("acme").await.unwrap_err();
    assert!(
        matches!(err, TenantAccessError::Suspended(ref t) if t == "acme"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "tenant `acme` is suspended");

    // Reactivate.
    tenants
        .update(&a, "acme", None, Some("active"))
        .await
        .unwrap();
    tenants.check_active("acme").await.unwrap();

    let updates = audit_rows(store.as_ref(), "tenant.update", "success").await;
    assert_eq!(updates.len(), 3);
    // Newest first.
    assert_eq!(
        updates[0].details,
        Some(json!({ "name": null, "status": "active" }))
    );
    assert_eq!(
        updates[1].details,
        Some(json!({ "name": null, "status": "suspended" }))
    );
    assert!(updates.iter().all(|r| r.resource == "acme"));

    // Unknown tenants, and ids no tenant can have.
    for id in ["ghost", "Not A Tenant", ""] {
        let err = tenants.check_active(id).await.unwrap_err();
        assert!(
            matches!(err, TenantAccessError::Unknown(_)),
            "{id}: {err:?}"
        );
    }
    assert!(matches!(
        tenants.get(&a, "ghost").await.unwrap_err(),
        RegistryError::NotFound(_)
    ));
}

async fn bad_input_is_refused_and_audited(store: Arc<dyn Store>) {
    let tenants = TenantService::new(store.clone(), AccessConfig::default());
    let a = admin();

    // Every problem at once, each with its pointer; nothing created.
    let err = tenants.create(&a, "Acme Corp", "  ").await.unwrap_err();
    let RegistryError::Invalid { errors, .. } = &err else {
        panic!("{err:?}")
    };
    let pointers: Vec<_> = errors.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(pointers, ["/id", "/name"]);
    assert!(
        errors[0].message.contains("`Acme Corp`"),
        "{}",
        errors[0].message
    );
    assert_eq!(ids(&tenants.list(&a).await.unwrap()), ["default"]);

    let err = tenants.create(&a, "-acme", "Acme").await.unwrap_err();
    assert!(matches!(err, RegistryError::Invalid { ref errors, .. } if errors[0].pointer == "/id"));

    // Duplicate.
    tenants.create(&a, "acme", "Acme").await.unwrap();
    let err = tenants.create(&a, "acme", "Acme again").await.unwrap_err();
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(tenants.get(&a, "acme").await.unwrap().name, "Acme");

    let failures = audit_rows(store.as_ref(), "tenant.create", "failure").await;
    assert_eq!(failures.len(), 3);
    // Newest first: the duplicate, then `-acme`, then the two-problem refusal.
    assert!(
        failures[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("already exists")
    );
    assert_eq!(failures[2].resource, "Acme Corp");
    let logged = failures[2].details.as_ref().unwrap()["errors"]
        .as_array()
        .unwrap();
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[1]["pointer"], "/name");

    // A status other than active/suspended, an unknown tenant, a blank rename.
    let err = tenants
        .update(&a, "acme", None, Some("paused"))
        .await
        .unwrap_err();
    let RegistryError::Invalid { errors, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors[0].pointer, "/status");
    assert!(
        errors[0].message.contains("`paused`"),
        "{}",
        errors[0].message
    );
    let err = tenants
        .update(&a, "ghost", None, Some("suspended"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(_)), "{err:?}");
    assert_eq!(err.to_string(), "tenant `ghost` does not exist");
    let err = tenants
        .update(&a, "acme", Some(""), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Invalid { ref errors, .. } if errors[0].pointer == "/name")
    );

    // The platform tenant cannot be suspended (its admins would lock themselves out).
    let err = tenants
        .update(&a, "default", None, Some("suspended"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err:?}");
    tenants.check_active("default").await.unwrap();

    let failures = audit_rows(store.as_ref(), "tenant.update", "failure").await;
    assert_eq!(failures.len(), 4);
    assert!(
        audit_rows(store.as_ref(), "tenant.update", "success")
            .await
            .is_empty()
    );
    assert_eq!(
        tenants.get(&a, "acme").await.unwrap().status.as_str(),
        "active"
    );
}

async fn only_platform_admins_manage_tenants(store: Arc<dyn Store>) {
    let tenants = TenantService::new(store.clone(), AccessConfig::default());
    let outsiders = [
        actor("mallory", "acme", &["admin"]),
        actor("bob", "default", &["user"]),
    ];
    for who in &outsiders {
        let err = tenants.create(who, "evil", "Evil").await.unwrap_err();
        assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}");
        assert!(matches!(
            tenants.list(who).await.unwrap_err(),
            RegistryError::Forbidden(_)
        ));
        assert!(matches!(
            tenants.get(who, "default").await.unwrap_err(),
            RegistryError::Forbidden(_)
        ));
        let err = tenants
            .update(who, "default", Some("Mine"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Forbidden(_)), "{err:?}");
    }
    let all = tenants.list(&admin()).await.unwrap();
    assert_eq!(ids(&all), ["default"]);
    assert_ne!(all[0].name, "Mine");

    let refused = audit_rows(store.as_ref(), "tenant.create", "failure").await;
    assert_eq!(refused.len(), 2);
    let users: Vec<_> = refused.iter().map(|r| r.user_id.as_str()).collect();
    assert_eq!(users, ["bob", "mallory"]);
    assert!(refused.iter().all(|r| r.resource == "evil"));
    assert!(
        refused[1]
            .error_message
            .as_deref()
            .unwrap()
            .contains("platform tenant"),
        "{:?}",
        refused[1].error_message
    );
    assert_eq!(
        audit_rows(store.as_ref(), "tenant.update", "failure")
            .await
            .len(),
        2
    );
}

/// Polls `tenants.check_active(id)` without pause until `expected(result)`; returns the delay.
/// Polling continuously also proves that a busy tenant's entry expires (time to live, not idle).
async fn seen_within_a_second(
    tenants: &TenantService,
    id: &str,
    expected: impl Fn(&Result<(), TenantAccessError>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let result = tenants.check_active(id).await;
        if expected(&result) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "instance B still answers {result:?} for `{id}` after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two instances over one database: a suspension made on A is enforced by B within a second,
/// and so is the reactivation.
async fn a_suspension_reaches_other_instances(a: Arc<dyn Store>, b: Arc<dyn Store>, label: &str) {
    let on_a = TenantService::new(a, AccessConfig::default());
    let on_b = TenantService::new(b, AccessConfig::default());
    on_a.create(&admin(), "acme", "Acme").await.unwrap();
    on_b.check_active("acme").await.unwrap();

    on_a.update(&admin(), "acme", None, Some("suspended"))
        .await
        .unwrap();
    let delay = seen_within_a_second(&on_b, "acme", |r| {
        matches!(r, Err(TenantAccessError::Suspended(_)))
    })
    .await;
    println!("{label}: suspension on A enforced by B after {delay:?}");

    on_a.update(&admin(), "acme", None, Some("active"))
        .await
        .unwrap();
    let delay = seen_within_a_second(&on_b, "acme", Result::is_ok).await;
    println!("{label}: reactivation on A served by B after {delay:?}");

    // A tenant created on A is known to B within a second even if B asked for it before.
    assert!(on_b.check_active("globex").await.is_err());
    on_a.create(&admin(), "globex", "Globex").await.unwrap();
    let delay = seen_within_a_second(&on_b, "globex", Result::is_ok).await;
    println!("{label}: creation on A known to B after {delay:?}");
}

mod sqlite {
    use super::*;

    metaengine_testing::backend_tests!(sqlite; create_list_update_suspend, bad_input_is_refused_and_audited, only_platform_admins_manage_tenants);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_suspension_reaches_another_process_on_the_file() {
        let (db, a) = metaengine_testing::sqlite().await;
        let b = db.open_another().await;
        a_suspension_reaches_other_instances(a, b, "sqlite").await;
    }
}

mod postgres {
    use super::*;

    metaengine_testing::backend_tests!(postgres; create_list_update_suspend, bad_input_is_refused_and_audited, only_platform_admins_manage_tenants);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_suspension_reaches_another_instance() {
        let (db, a) = metaengine_testing::postgres().await;
        let b = db.open_another().await;
        a_suspension_reaches_other_instances(a, b, "postgres").await;
    }
}
