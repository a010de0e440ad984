//! The policy gate with the seed's policies, and its audit trail, on both backends.

use std::sync::Arc;

use metaengine_core::policy::{Action, DecisionReason, RowFilter};
use metaengine_core::{EntitySchema, compile};
use metaengine_runtime::gate::explain;
use metaengine_runtime::{
    AccessConfig, ActiveModel, Actor, AuditWriter, AuditWriterConfig, PolicyGate,
};
use metaengine_store::{AuditQuery, EventType, Store};
use serde_json::{Map, Value, json};

/// The seed's three example policies: everyone may read; role admin may do anything; users
/// update their own records.
fn seed_model() -> ActiveModel {
    let schema: EntitySchema = serde_json::from_value(json!({
        "fields": [
            { "name": "invoiceNumber", "type": "string", "required": true },
            { "name": "userId", "type": "string" }
        ],
        "policies": [
            { "name": "everyone-reads", "effect": "allow", "action": "read" },
            { "name": "admin-only", "effect": "allow", "action": "*",
              "conditions": [{ "field": "user.role", "operator": "eq", "value": "admin" }] },
            { "name": "own-records", "effect": "allow", "action": "update",
              "conditions": [{ "field": "record.userId", "operator": "eq", "value": "context.userId" }] }
        ]
    }))
    .unwrap();
    ActiveModel::new(compile(
        "Invoice",
        "v1",
        &schema,
        "test",
        "2026-11-26T00:00:00.000Z",
    ))
}

fn user(id: &str, roles: &[&str]) -> Actor {
    Actor {
        user_id: id.into(),
        tenant_id: "acme".into(),
        realm_id: "eu".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn record(owner: &str) -> Map<String, Value> {
    json!({ "id": "r1", "invoiceNumber": "INV-1", "userId": owner })
        .as_object()
        .unwrap()
        .clone()
}

/// The platform admin role is `platform-admin` here, so that role `admin` goes through the
/// seed's `admin-only` policy rather than the bypass.
fn access() -> AccessConfig {
    AccessConfig {
        admin_role: "platform-admin".into(),
        ..AccessConfig::default()
    }
}

async fn the_seed_policies_decide_and_explain(store: Arc<dyn Store>) {
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let gate = PolicyGate::new(&access(), Some(writer.clone()), false);
    let model = seed_model();
    let guest = user("g1", &["guest"]);

    let read = gate.decide(&model, Action::Read, &guest, None);
    assert!(read.allowed);
    assert_eq!(
        read.reason,
        DecisionReason::Allowed {
            policy: "everyone-reads"
        }
    );

    // The seed's deny scenario: a guest may not delete; denied and audited.
    let denied = gate
        .authorize(
            &model,
            Action::Delete,
            &guest,
            Some(&record("g1")),
            Some("r1"),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.to_string(), "no policy allows `delete` on `Invoice`");

    let admin = user("a1", &["user", "admin"]);
    let d = gate.decide(&model, Action::Delete, &admin, Some(&record("x")));
    assert_eq!(
        d.reason,
        DecisionReason::Allowed {
            policy: "admin-only"
        }
    );

    let owner = user("u1", &["user"]);
    let own = gate.decide(&model, Action::Update, &owner, Some(&record("u1")));
    assert_eq!(
        explain(&own),
        (Some("own-records".into()), "allowed by policy".into())
    );
    let other = gate.decide(&model, Action::Update, &owner, Some(&record("u2")));
    assert!(!other.allowed);

    let bypass = gate.decide(
        &model,
        Action::Delete,
        &user("root", &["platform-admin"]),
        None,
    );
    assert_eq!(bypass.reason, DecisionReason::AdminBypass);
    assert!(matches!(
        gate.row_filter(&model, Action::Read, &user("root", &["platform-admin"])),
        RowFilter::All
    ));

    writer.flush().await;
    let rows = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::PolicyDeny],
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .data;
    assert_eq!(
        rows.len(),
        1,
        "only the authorized denial is audited; decide() is silent"
    );
    let row = &rows[0];
    assert_eq!(
        (row.resource.as_str(), row.result.as_str()),
        ("Invoice", "failure")
    );
    assert_eq!(
        (row.user_id.as_str(), row.tenant_id.as_str()),
        ("g1", "acme")
    );
    let details = row.details.as_ref().unwrap();
    assert_eq!(details["action"], "delete");
    assert_eq!(details["recordId"], "r1");
    assert_eq!(
        row.error_message.as_deref(),
        Some("no policy allows `delete` on `Invoice`")
    );
}

async fn allows_are_audited_only_when_configured(store: Arc<dyn Store>) {
    let writer = AuditWriter::spawn(store.clone(), AuditWriterConfig::default());
    let model = seed_model();
    let quiet = PolicyGate::new(&access(), Some(writer.clone()), false);
    let chatty = PolicyGate::new(&access(), Some(writer.clone()), true);
    let guest = user("g1", &["guest"]);
    quiet
        .authorize(&model, Action::Read, &guest, None, None)
        .await
        .unwrap();
    chatty
        .authorize(&model, Action::Read, &guest, None, None)
        .await
        .unwrap();
    writer.flush().await;
    let allows = store
        .query_audit(&AuditQuery {
            event_types: vec![EventType::PolicyAllow],
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(allows.meta.total, 1);
    assert_eq!(
        allows.data[0].details.as_ref().unwrap()["policy"],
        "everyone-reads"
    );
    assert_eq!(allows.data[0].result, "success");
}

#[test]
fn writes_check_the_record_before_and_after() {
    use metaengine_runtime::gate::WriteCheck;
    let gate = PolicyGate::new(&access(), None, false);
    let model = seed_model();
    let owner = user("u1", &["user"]);
    let (mine, theirs) = (record("u1"), record("u2"));
    let update = |before, after| WriteCheck {
        action: Action::Update,
        before: Some(before),
        after: Some(after),
        record_id: Some("r1"),
    };
    let (ok, audit) = gate.check_write(&model, &owner, update(&mine, &mine));
    assert!(ok.is_ok());
    assert!(audit.is_none(), "allows are not audited unless configured");
    // Moving one's own record into someone else's hands: refused (WITH CHECK).
    let (moved, audit) = gate.check_write(&model, &owner, update(&mine, &theirs));
    assert!(moved.is_err());
    let audit = audit.unwrap();
    assert_eq!(audit.event_type.as_str(), "policy.deny");
    assert_eq!(audit.details.as_ref().unwrap()["recordId"], "r1");
    // Taking someone else's record: refused (USING).
    assert!(
        gate.check_write(&model, &owner, update(&theirs, &mine))
            .0
            .is_err()
    );
    // A guest may not create.
    let create = WriteCheck {
        action: Action::Create,
        before: None,
        after: Some(&mine),
        record_id: None,
    };
    assert!(
        gate.check_write(&model, &user("g", &["guest"]), create)
            .0
            .is_err()
    );
}

crate::on_both_backends!(
    the_seed_policies_decide_and_explain,
    allows_are_audited_only_when_configured,
);
