//! Registry stories run against both backends: the rules of SPEC §3 as a user meets them, with
//! the audit trail each change and each refusal leaves.

use std::sync::Arc;

use metaengine_runtime::{AccessConfig, Actor, Registry, RegistryError};
use metaengine_store::{AuditQuery, AuditResult, EventType, Store};
use serde_json::{Value, json};

fn admin() -> Actor {
    Actor {
        user_id: "alice".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    }
}

fn other_tenant_admin() -> Actor {
    Actor {
        user_id: "mallory".into(),
        tenant_id: "acme".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    }
}

fn invoice_v1() -> Value {
    json!({ "fields": [
        { "name": "invoiceNumber", "type": "string", "required": true, "unique": true },
        { "name": "customerId", "type": "string", "required": true },
        { "name": "totalAmount", "type": "decimal", "required": true, "min": 0 },
        { "name": "status", "type": "enum", "enumValues": ["draft", "sent", "paid"], "default": "draft" },
        { "name": "dueDate", "type": "date" }
    ]})
}

async fn failures(store: &dyn Store, event: &str) -> Vec<String> {
    store
        .query_audit(&AuditQuery {
            event_types: vec![event.parse().unwrap()],
            result: Some(AuditResult::Failure),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|r| r.error_message.unwrap_or_default())
        .collect()
}

async fn invalid_names_are_refused_and_audited(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    let err = registry
        .create_entity(&admin(), "invoice", None)
        .await
        .unwrap_err();
    let RegistryError::Invalid { errors, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(errors[0].pointer, "/name");
    assert!(
        errors[0].message.contains("`invoice`"),
        "{}",
        errors[0].message
    );
    assert!(
        registry
            .store()
            .get_entity("invoice")
            .await
            .unwrap()
            .is_none()
    );
    let logged = failures(registry.store().as_ref(), "meta.entity.create").await;
    assert_eq!(logged.len(), 1);
    assert!(logged[0].contains("`invoice`"));

    registry
        .create_entity(&admin(), "Invoice", None)
        .await
        .unwrap();
    let bad_label = registry
        .create_version(&admin(), "Invoice", "version-1", invoice_v1())
        .await
        .unwrap_err();
    assert!(
        matches!(&bad_label, RegistryError::Invalid { errors, .. } if errors[0].pointer == "/version")
    );
    assert!(
        registry
            .store()
            .list_versions("Invoice")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn malformed_schemas_report_every_problem(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    registry
        .create_entity(&admin(), "Invoice", None)
        .await
        .unwrap();
    let schema = json!({ "fields": [
        { "name": "Total", "type": "decimal" },
        { "name": "status", "type": "enum", "enumValues": [] },
        { "name": "owner", "type": "reference", "referenceTo": "Ghost" }
    ]});
    let err = registry
        .create_version(&admin(), "Invoice", "v1", schema)
        .await
        .unwrap_err();
    let RegistryError::Invalid { errors, .. } = err else {
        panic!()
    };
    let pointers: Vec<_> = errors.iter().map(|p| p.pointer.as_str()).collect();
    assert!(pointers.contains(&"/fields/0/name"), "{pointers:?}");
    assert!(
        pointers.iter().any(|p| p.starts_with("/fields/1")),
        "{pointers:?}"
    );
    assert!(
        pointers.iter().any(|p| p.starts_with("/fields/2")),
        "{pointers:?}"
    );
    assert!(
        registry
            .store()
            .list_versions("Invoice")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        failures(registry.store().as_ref(), "meta.version.create")
            .await
            .len(),
        1
    );
    let row = registry
        .store()
        .query_audit(&AuditQuery {
            event_types: vec![EventType::VersionCreate],
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data
        .remove(0);
    let logged = row.details.unwrap()["errors"].as_array().unwrap().len();
    assert_eq!(logged, errors.len(), "the failure row lists every problem");

    // A reference to an entity that exists is fine.
    registry
        .create_entity(&admin(), "Customer", None)
        .await
        .unwrap();
    let ok = json!({ "fields": [{ "name": "customer", "type": "reference", "referenceTo": "Customer" }] });
    registry
        .create_version(&admin(), "Invoice", "v1", ok)
        .await
        .unwrap();
}

async fn unknown_and_duplicate_names_are_refused(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    let missing = registry
        .create_version(&admin(), "Ghost", "v1", invoice_v1())
        .await
        .unwrap_err();
    assert!(matches!(missing, RegistryError::NotFound(ref m) if m.contains("`Ghost`")));
    registry
        .create_entity(&admin(), "Invoice", None)
        .await
        .unwrap();
    let dup = registry
        .create_entity(&admin(), "Invoice", None)
        .await
        .unwrap_err();
    assert!(matches!(dup, RegistryError::Conflict { .. }));
    registry
        .create_version(&admin(), "Invoice", "v1", invoice_v1())
        .await
        .unwrap();
    let dup = registry
        .create_version(&admin(), "Invoice", "v1", invoice_v1())
        .await
        .unwrap_err();
    assert!(matches!(dup, RegistryError::Conflict { ref message, .. } if message.contains("`v1`")));
    let nope = registry
        .get_version(&admin(), "Invoice", "v9")
        .await
        .unwrap_err();
    assert!(matches!(nope, RegistryError::NotFound(_)));
    assert!(matches!(
        registry
            .activate(&admin(), "Invoice", "v9")
            .await
            .unwrap_err(),
        RegistryError::NotFound(_)
    ));
    assert_eq!(
        failures(registry.store().as_ref(), "meta.version.activate")
            .await
            .len(),
        1
    );
}

async fn fields_change_only_until_activation(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    let a = admin();
    registry.create_entity(&a, "Invoice", None).await.unwrap();
    registry
        .create_version(&a, "Invoice", "v1", invoice_v1())
        .await
        .unwrap();
    let v = registry
        .add_field(
            &a,
            "Invoice",
            "v1",
            json!({ "name": "notes", "type": "text" }),
        )
        .await
        .unwrap();
    assert_eq!(v.schema["fields"].as_array().unwrap().len(), 6);
    let v = registry
        .update_field(
            &a,
            "Invoice",
            "v1",
            "notes",
            json!({ "maxLength": 500, "label": "Notes" }),
        )
        .await
        .unwrap();
    assert_eq!(v.schema["fields"][5]["maxLength"], 500);
    let bad = registry
        .update_field(&a, "Invoice", "v1", "notes", json!({ "type": "color" }))
        .await
        .unwrap_err();
    assert!(
        matches!(bad, RegistryError::Invalid { ref errors, .. } if errors[0].pointer == "/fields/5/type")
    );
    let v = registry
        .remove_field(&a, "Invoice", "v1", "notes")
        .await
        .unwrap();
    assert_eq!(v.schema, invoice_v1());
    assert!(matches!(
        registry
            .remove_field(&a, "Invoice", "v1", "notes")
            .await
            .unwrap_err(),
        RegistryError::NotFound(_)
    ));

    registry.activate(&a, "Invoice", "v1").await.unwrap();
    for err in [
        registry
            .update_version(&a, "Invoice", "v1", invoice_v1())
            .await
            .unwrap_err(),
        registry
            .add_field(&a, "Invoice", "v1", json!({ "name": "x", "type": "text" }))
            .await
            .unwrap_err(),
        registry
            .remove_field(&a, "Invoice", "v1", "dueDate")
            .await
            .unwrap_err(),
        registry
            .delete_version(&a, "Invoice", "v1")
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, RegistryError::Conflict { .. }), "{err:?}");
    }
    registry.deactivate(&a, "Invoice", "v1").await.unwrap();
    // Deactivated, yet it has been active: still immutable, but now deletable.
    assert!(matches!(
        registry
            .update_version(&a, "Invoice", "v1", invoice_v1())
            .await
            .unwrap_err(),
        RegistryError::Conflict { .. }
    ));
    registry.delete_version(&a, "Invoice", "v1").await.unwrap();

    let store = registry.store();
    assert_eq!(
        failures(store.as_ref(), "meta.version.update").await.len(),
        2
    );
    assert_eq!(
        failures(store.as_ref(), "meta.version.delete").await.len(),
        1
    );
    assert_eq!(failures(store.as_ref(), "meta.field.update").await.len(), 1);
    assert_eq!(failures(store.as_ref(), "meta.field.remove").await.len(), 2);
    let adds = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::FieldAdd],
            result: Some(AuditResult::Success),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(adds.meta.total, 1);
    assert_eq!(adds.data[0].details.as_ref().unwrap()["field"], "notes");
    assert_eq!(adds.data[0].user_id, "alice");
}

async fn other_tenants_admins_read_but_do_not_change(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    registry
        .create_entity(&admin(), "Invoice", Some("bills"))
        .await
        .unwrap();
    let mallory = other_tenant_admin();
    assert_eq!(
        registry.get_entity(&mallory, "Invoice").await.unwrap().name,
        "Invoice"
    );
    let refused = registry
        .update_entity(&mallory, "Invoice", Some("mine"))
        .await
        .unwrap_err();
    assert!(matches!(refused, RegistryError::Forbidden(_)));
    assert_eq!(
        registry
            .get_entity(&admin(), "Invoice")
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("bills")
    );
    // Mallory sees only her tenant's audit rows: the refusal, not alice's create.
    let seen = registry
        .audit(&mallory, AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(seen.meta.total, 1);
    assert_eq!(seen.data[0].result, "failure");
    assert_eq!(seen.data[0].event_type, "meta.entity.update");
    let all = registry
        .audit(&admin(), AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(all.meta.total, 2);
    let user = Actor {
        roles: vec!["user".into()],
        ..admin()
    };
    assert!(matches!(
        registry.get_entity(&user, "Invoice").await.unwrap_err(),
        RegistryError::Forbidden(_)
    ));
}

async fn activation_is_audited_with_its_plan(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    let a = admin();
    registry.create_entity(&a, "Invoice", None).await.unwrap();
    registry
        .create_version(&a, "Invoice", "v1", invoice_v1())
        .await
        .unwrap();
    let done = registry.activate(&a, "Invoice", "v1").await.unwrap();
    assert!(done.plan.statements[0].starts_with("CREATE TABLE"));
    let store = registry.store();
    let rows = store
        .query_audit(&AuditQuery {
            resource: Some("Invoice".into()),
            result: Some(AuditResult::Success),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data;
    let types: Vec<_> = rows.iter().map(|r| r.event_type.as_str()).collect();
    for t in ["meta.version.activate", "meta.migrate", "meta.compile"] {
        assert!(types.contains(&t), "{types:?}");
    }
    let compiled = registry.compiled(&a, "Invoice", None).await.unwrap();
    assert_eq!(compiled.version, "v1");
    assert_eq!(compiled.table_name, "ent_invoice");
    let compile_row = rows
        .iter()
        .find(|r| r.event_type == "meta.compile")
        .unwrap();
    assert_eq!(
        compile_row.details.as_ref().unwrap()["hash"],
        compiled.hash.as_str()
    );
    let migrate_row = rows
        .iter()
        .find(|r| r.event_type == "meta.migrate")
        .unwrap();
    assert_eq!(
        migrate_row.details.as_ref().unwrap()["table"],
        "ent_invoice"
    );

    // A breaking version: the dry run shows it, activation refuses it with every change listed.
    let mut v2 = invoice_v1();
    v2["fields"][2]["type"] = json!("integer");
    v2["fields"][3]["enumValues"] = json!(["draft", "paid"]);
    registry
        .create_version(&a, "Invoice", "v2", v2)
        .await
        .unwrap();
    let dry = registry.plan_activation(&a, "Invoice", "v2").await.unwrap();
    assert!(dry.plan.is_breaking());
    let err = registry.activate(&a, "Invoice", "v2").await.unwrap_err();
    let RegistryError::Conflict { errors, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        errors.iter().any(|p| p.pointer == "/fields/2/type"),
        "{errors:?}"
    );
    assert_eq!(
        registry
            .active_version(&a, "Invoice")
            .await
            .unwrap()
            .version,
        "v1"
    );
    let failure = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::VersionActivate],
            result: Some(AuditResult::Failure),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data
        .remove(0);
    assert_eq!(
        failure.details.unwrap()["errors"].as_array().unwrap().len(),
        errors.len()
    );
}

async fn the_cache_follows_activations(store: Arc<dyn Store>) {
    let registry = Registry::new(store, AccessConfig::default());
    use metaengine_runtime::{CacheConfig, ModelCache};
    let cache = ModelCache::new(registry.store().clone(), CacheConfig::default())
        .await
        .unwrap();
    let registry = registry.with_cache(cache.clone());
    let a = admin();
    registry.create_entity(&a, "Invoice", None).await.unwrap();
    registry
        .create_version(&a, "Invoice", "v1", invoice_v1())
        .await
        .unwrap();
    let mut v2 = invoice_v1();
    v2["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "notes", "type": "text" }));
    registry
        .create_version(&a, "Invoice", "v2", v2)
        .await
        .unwrap();
    registry.activate(&a, "Invoice", "v1").await.unwrap();
    assert_eq!(
        registry
            .compiled(&a, "Invoice", None)
            .await
            .unwrap()
            .version,
        "v1"
    );
    assert_eq!(cache.get_cached("Invoice").unwrap().version, "v1");
    registry.activate(&a, "Invoice", "v2").await.unwrap();
    assert!(
        cache.get_cached("Invoice").is_none(),
        "activation invalidates at once"
    );
    assert_eq!(
        registry
            .compiled(&a, "Invoice", None)
            .await
            .unwrap()
            .version,
        "v2"
    );
    registry.deactivate(&a, "Invoice", "v2").await.unwrap();
    let err = registry.compiled(&a, "Invoice", None).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound(ref m) if m.contains("no active version")));
    registry.clear_cache(&a).await.unwrap();
    let cleared = registry
        .store()
        .query_audit(&AuditQuery {
            event_types: vec![EventType::CacheInvalidate],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(cleared.meta.total, 1);
}

crate::on_both_backends!(
    invalid_names_are_refused_and_audited,
    malformed_schemas_report_every_problem,
    unknown_and_duplicate_names_are_refused,
    fields_change_only_until_activation,
    other_tenants_admins_read_but_do_not_change,
    activation_is_audited_with_its_plan,
    the_cache_follows_activations,
);
