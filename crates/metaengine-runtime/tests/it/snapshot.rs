//! Metadata as code (SPEC §17): a snapshot taken on SQLite applied to PostgreSQL and back
//! reproduces the same entities, versions, active versions, tenants, files and compiled hashes;
//! a second apply changes nothing; a dry run changes nothing; every step is audited; an
//! activation with breaking changes stops the apply with nothing of that entity changed.

use std::sync::Arc;

use metaengine_runtime::snapshot::{self, Snapshot, Step, files};
use metaengine_runtime::{AccessConfig, Actor, Registry, RegistryError, TenantService};
use metaengine_store::{AuditQuery, EventType, Store};
use serde_json::{Value, json};

fn admin() -> Actor {
    Actor {
        user_id: "alice".into(),
        tenant_id: "default".into(),
        realm_id: "main".into(),
        roles: vec!["admin".into()],
    }
}

struct Instance {
    store: Arc<dyn Store>,
    registry: Registry,
    tenants: TenantService,
}

impl Instance {
    fn new(store: Arc<dyn Store>) -> Self {
        Self {
            registry: Registry::new(store.clone(), AccessConfig::default()),
            tenants: TenantService::new(store.clone(), AccessConfig::default()),
            store,
        }
    }

    async fn export(&self) -> Snapshot {
        snapshot::export(&self.registry, &self.tenants, &admin())
            .await
            .unwrap()
    }

    async fn apply(&self, snapshot: &Snapshot, dry_run: bool) -> snapshot::ApplyReport {
        snapshot::apply(&self.registry, &self.tenants, &admin(), snapshot, dry_run)
            .await
            .unwrap()
    }

    async fn audited(&self, event: EventType) -> usize {
        self.store
            .query_audit(&AuditQuery {
                event_types: vec![event],
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .data
            .len()
    }

    async fn hash(&self, entity: &str) -> String {
        self.registry
            .compiled(&admin(), entity, None)
            .await
            .unwrap()
            .hash
            .clone()
    }
}

fn invoice(version: u8) -> Value {
    let text = match version {
        1 => include_str!("../../../../examples/invoice-v1.json"),
        _ => include_str!("../../../../examples/invoice-v2.json"),
    };
    serde_json::from_str(text).unwrap()
}

/// Two entities (one with an active version and a newer one not active, one without any active
/// version) and a suspended tenant.
async fn define(on: &Instance) {
    let (r, a) = (&on.registry, &admin());
    r.create_entity(a, "Invoice", Some("Customer invoices"))
        .await
        .unwrap();
    r.create_version(a, "Invoice", "v1", invoice(1))
        .await
        .unwrap();
    r.activate(a, "Invoice", "v1").await.unwrap();
    r.create_version(a, "Invoice", "v2", invoice(2))
        .await
        .unwrap();
    r.create_entity(a, "Note", None).await.unwrap();
    let note = json!({ "fields": [{ "name": "title", "type": "string", "required": true }] });
    r.create_version(a, "Note", "v1", note).await.unwrap();
    on.tenants.create(a, "acme", "Acme").await.unwrap();
    on.tenants
        .update(a, "acme", None, Some("suspended"))
        .await
        .unwrap();
}

/// The files of a snapshot written by `files::write`, by path.
fn written(snapshot: &Snapshot) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    files::write(snapshot, dir.path()).unwrap();
    assert_eq!(
        &files::read(dir.path()).unwrap(),
        snapshot,
        "files round trip"
    );
    let mut out = Vec::new();
    let mut stack = vec![dir.path().to_owned()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir.path()).unwrap().display().to_string();
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn kinds(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| {
            let v = serde_json::to_value(s).unwrap();
            let mut text = v["step"].as_str().unwrap().to_owned();
            for key in ["tenant", "entity", "version"] {
                if let Some(part) = v[key].as_str() {
                    text.push(' ');
                    text.push_str(part);
                }
            }
            text
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_moves_between_sqlite_and_postgres() {
    let (_s_db, s_store) = metaengine_testing::sqlite().await;
    let (_p_db, p_store) = metaengine_testing::postgres().await;
    let (sqlite, postgres) = (Instance::new(s_store), Instance::new(p_store));
    define(&sqlite).await;
    let taken = sqlite.export().await;
    assert_eq!(
        taken.entities.iter().map(|e| &e.name).collect::<Vec<_>>(),
        ["Invoice", "Note"]
    );

    // A dry run says what would be done and changes nothing.
    let dry = postgres.apply(&taken, true).await;
    assert!(dry.dry_run && dry.changed);
    let expected = [
        "createTenant acme",
        "createEntity Invoice",
        "createVersion Invoice v1",
        "createVersion Invoice v2",
        "activate Invoice v1",
        "createEntity Note",
        "createVersion Note v1",
    ];
    assert_eq!(kinds(&dry.steps), expected);
    assert!(postgres.export().await.entities.is_empty());
    assert_eq!(postgres.audited(EventType::EntityCreate).await, 0);

    // The apply does it, step by step, each audited like the same API call.
    let done = postgres.apply(&taken, false).await;
    assert!(!done.dry_run && done.changed);
    assert_eq!(kinds(&done.steps), expected);
    let Step::Activate { plan, .. } = &done.steps[4] else {
        panic!("the activation carries its plan: {:?}", done.steps[4]);
    };
    assert!(plan.statements[0].starts_with("CREATE TABLE"), "{plan:?}");
    assert_eq!(postgres.audited(EventType::EntityCreate).await, 2);
    assert_eq!(postgres.audited(EventType::VersionCreate).await, 3);
    assert_eq!(postgres.audited(EventType::VersionActivate).await, 1);
    assert_eq!(postgres.audited(EventType::TenantCreate).await, 1);
    assert_eq!(postgres.audited(EventType::TenantUpdate).await, 1);

    // The same metadata, files and compiled model on the other backend.
    let moved = postgres.export().await;
    assert_eq!(moved, taken);
    assert_eq!(written(&moved), written(&taken));
    assert_eq!(postgres.hash("Invoice").await, sqlite.hash("Invoice").await);

    // Idempotent, both ways.
    let again = postgres.apply(&taken, false).await;
    assert!(!again.changed && again.steps.is_empty(), "{again:?}");
    assert_eq!(postgres.audited(EventType::EntityCreate).await, 2);
    let back = sqlite.apply(&moved, false).await;
    assert!(!back.changed, "{back:?}");

    // A change in the files: a new active version and a new description.
    let mut next = moved.clone();
    next.entities[0].active_version = Some("v2".into());
    next.entities[1].description = Some("Short notes".into());
    let report = postgres.apply(&next, false).await;
    assert_eq!(
        kinds(&report.steps),
        ["activate Invoice v2", "updateEntity Note"]
    );
    assert_eq!(postgres.export().await, next);
}

/// Applying `snapshot` fails with `code`; nothing of `entity` changed.
async fn refused(on: &Instance, snapshot: &Snapshot, code: &str) {
    let before = on.export().await;
    let err = snapshot::apply(&on.registry, &on.tenants, &admin(), snapshot, false)
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), code, "{err:?}");
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err:?}");
    let after = on.export().await;
    let invoice = |s: &Snapshot| s.entities.iter().find(|e| e.name == "Invoice").cloned();
    assert_eq!(invoice(&after), invoice(&before));
}

async fn breaking_or_immutable_stops_the_entity(store: Arc<dyn Store>) {
    let on = Instance::new(store);
    define(&on).await;
    let base = on.export().await;

    // v3 changes a field's type (not a safe widening): the activation would break, so the
    // apply stops before creating v3; the entity before it in name order is applied.
    let mut breaking = base.clone();
    let mut v3 = invoice(1);
    v3["fields"][0]["type"] = json!("integer");
    v3["fields"][0].as_object_mut().unwrap().remove("maxLength");
    breaking.entities[0]
        .versions
        .push(snapshot::VersionSnapshot {
            version: "v3".into(),
            schema: v3,
        });
    breaking.entities[0].active_version = Some("v3".into());
    breaking.entities.insert(
        0,
        snapshot::EntitySnapshot {
            name: "Account".into(),
            description: None,
            active_version: None,
            versions: Vec::new(),
        },
    );
    refused(&on, &breaking, "breaking_changes").await;
    assert!(on.registry.get_entity(&admin(), "Account").await.is_ok());

    // A version that has been active cannot take another schema.
    let mut rewritten = base.clone();
    rewritten.entities[0].versions[0].schema["fields"][0]["maxLength"] = json!(64);
    refused(&on, &rewritten, "version_immutable").await;

    // A version never activated can.
    let mut edited = base.clone();
    edited.entities[0].versions[1].schema["fields"][0]["maxLength"] = json!(40);
    let report = on.apply(&edited, false).await;
    assert_eq!(kinds(&report.steps), ["updateVersion Invoice v2"]);
}

/// An entity is applied after the entities it references, whatever their names; a problem in
/// one is reported at its place in the document before anything of that entity is created.
async fn references_first_and_problems_at_their_pointers(store: Arc<dyn Store>) {
    let on = Instance::new(store);
    let zone = json!({ "fields": [{ "name": "label", "type": "string", "required": true }] });
    let account = json!({ "fields": [
        { "name": "zoneId", "type": "reference", "referenceTo": "Zone", "required": true },
        { "name": "owner", "type": "string" }
    ] });
    let entity = |name: &str, schema: &Value| snapshot::EntitySnapshot {
        name: name.into(),
        description: None,
        active_version: Some("v1".into()),
        versions: vec![snapshot::VersionSnapshot {
            version: "v1".into(),
            schema: schema.clone(),
        }],
    };
    let doc = Snapshot {
        entities: vec![entity("Account", &account), entity("Zone", &zone)],
        tenants: Vec::new(),
    };
    let dry = on.apply(&doc, true).await;
    assert_eq!(
        kinds(&dry.steps),
        [
            "createEntity Zone",
            "createVersion Zone v1",
            "activate Zone v1",
            "createEntity Account",
            "createVersion Account v1",
            "activate Account v1",
        ]
    );
    let done = on.apply(&doc, false).await;
    assert_eq!(kinds(&done.steps), kinds(&dry.steps));
    assert_eq!(on.export().await.entities, doc.entities);

    // A misspelled type in a new entity: 422 at its place in the document; nothing of it exists.
    let mut bad = doc.clone();
    let mut note = entity(
        "Note",
        &json!({ "fields": [{ "name": "text", "type": "strin" }] }),
    );
    note.versions.push(snapshot::VersionSnapshot {
        version: "not a label".into(),
        schema: json!({ "fields": [] }),
    });
    bad.entities.push(note);
    let err = snapshot::apply(&on.registry, &on.tenants, &admin(), &bad, false)
        .await
        .unwrap_err();
    let RegistryError::Invalid { errors, .. } = &err else {
        panic!("{err:?}");
    };
    let pointers: Vec<&str> = errors.iter().map(|p| p.pointer.as_str()).collect();
    assert!(
        pointers.contains(&"/entities/2/versions/0/schema/fields/0/type"),
        "{errors:?}"
    );
    assert!(
        pointers.contains(&"/entities/2/versions/1/version"),
        "{errors:?}"
    );
    assert!(on.registry.get_entity(&admin(), "Note").await.is_err());
}

crate::on_both_backends!(
    breaking_or_immutable_stops_the_entity,
    references_first_and_problems_at_their_pointers
);
