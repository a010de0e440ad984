//! Audit events: their types, a new event to write, and the query over stored ones.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::Timestamp;

/// Every audit event type of SPEC §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// `meta.entity.create`
    #[serde(rename = "meta.entity.create")]
    EntityCreate,
    /// `meta.entity.update`
    #[serde(rename = "meta.entity.update")]
    EntityUpdate,
    /// `meta.entity.delete`
    #[serde(rename = "meta.entity.delete")]
    EntityDelete,
    /// `meta.version.create`
    #[serde(rename = "meta.version.create")]
    VersionCreate,
    /// `meta.version.update`
    #[serde(rename = "meta.version.update")]
    VersionUpdate,
    /// `meta.version.delete`
    #[serde(rename = "meta.version.delete")]
    VersionDelete,
    /// `meta.version.activate`
    #[serde(rename = "meta.version.activate")]
    VersionActivate,
    /// `meta.version.deactivate`
    #[serde(rename = "meta.version.deactivate")]
    VersionDeactivate,
    /// `meta.field.add`
    #[serde(rename = "meta.field.add")]
    FieldAdd,
    /// `meta.field.update`
    #[serde(rename = "meta.field.update")]
    FieldUpdate,
    /// `meta.field.remove`
    #[serde(rename = "meta.field.remove")]
    FieldRemove,
    /// `meta.compile`
    #[serde(rename = "meta.compile")]
    Compile,
    /// `meta.cache.invalidate`
    #[serde(rename = "meta.cache.invalidate")]
    CacheInvalidate,
    /// `meta.migrate`
    #[serde(rename = "meta.migrate")]
    Migrate,
    /// `policy.allow`
    #[serde(rename = "policy.allow")]
    PolicyAllow,
    /// `policy.deny`
    #[serde(rename = "policy.deny")]
    PolicyDeny,
    /// `data.read`
    #[serde(rename = "data.read")]
    DataRead,
    /// `data.create`
    #[serde(rename = "data.create")]
    DataCreate,
    /// `data.update`
    #[serde(rename = "data.update")]
    DataUpdate,
    /// `data.delete`
    #[serde(rename = "data.delete")]
    DataDelete,
    /// `auth.failure`
    #[serde(rename = "auth.failure")]
    AuthFailure,
    /// `tenant.create`
    #[serde(rename = "tenant.create")]
    TenantCreate,
    /// `tenant.update`
    #[serde(rename = "tenant.update")]
    TenantUpdate,
    /// `audit.purge`: retention deleted a tenant's oldest rows (SPEC §16).
    #[serde(rename = "audit.purge")]
    AuditPurge,
}

impl EventType {
    /// All event types.
    pub const ALL: [EventType; 24] = [
        Self::EntityCreate,
        Self::EntityUpdate,
        Self::EntityDelete,
        Self::VersionCreate,
        Self::VersionUpdate,
        Self::VersionDelete,
        Self::VersionActivate,
        Self::VersionDeactivate,
        Self::FieldAdd,
        Self::FieldUpdate,
        Self::FieldRemove,
        Self::Compile,
        Self::CacheInvalidate,
        Self::Migrate,
        Self::PolicyAllow,
        Self::PolicyDeny,
        Self::DataRead,
        Self::DataCreate,
        Self::DataUpdate,
        Self::DataDelete,
        Self::AuthFailure,
        Self::TenantCreate,
        Self::TenantUpdate,
        Self::AuditPurge,
    ];

    /// The dotted name stored in `event_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EntityCreate => "meta.entity.create",
            Self::EntityUpdate => "meta.entity.update",
            Self::EntityDelete => "meta.entity.delete",
            Self::VersionCreate => "meta.version.create",
            Self::VersionUpdate => "meta.version.update",
            Self::VersionDelete => "meta.version.delete",
            Self::VersionActivate => "meta.version.activate",
            Self::VersionDeactivate => "meta.version.deactivate",
            Self::FieldAdd => "meta.field.add",
            Self::FieldUpdate => "meta.field.update",
            Self::FieldRemove => "meta.field.remove",
            Self::Compile => "meta.compile",
            Self::CacheInvalidate => "meta.cache.invalidate",
            Self::Migrate => "meta.migrate",
            Self::PolicyAllow => "policy.allow",
            Self::PolicyDeny => "policy.deny",
            Self::DataRead => "data.read",
            Self::DataCreate => "data.create",
            Self::DataUpdate => "data.update",
            Self::DataDelete => "data.delete",
            Self::AuthFailure => "auth.failure",
            Self::TenantCreate => "tenant.create",
            Self::TenantUpdate => "tenant.update",
            Self::AuditPurge => "audit.purge",
        }
    }

    /// Parses a dotted name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Every dotted name, comma-separated (for messages that list the known types).
    pub fn known() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// The action word stored in `action` (the last segment: `create`, `activate`, `allow`…).
    pub fn action(self) -> &'static str {
        let name = self.as_str();
        name.rsplit('.').next().unwrap_or(name)
    }
}

impl std::str::FromStr for EventType {
    type Err = UnknownName;

    /// A dotted name; an unknown one is refused with the list of known types.
    fn from_str(name: &str) -> Result<Self, UnknownName> {
        Self::parse(name).ok_or_else(|| UnknownName {
            what: "event type",
            name: name.to_owned(),
            known: Self::known(),
        })
    }
}

/// A name that is none of the known ones (an audit event type, a result), with the list of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`; known: {known}")]
pub struct UnknownName {
    /// What kind of name.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The known names, comma-separated.
    pub known: String,
}

/// Outcome of an audited operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    /// It happened.
    Success,
    /// It was refused or failed; nothing changed.
    Failure,
}

impl AuditResult {
    /// `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

impl std::str::FromStr for AuditResult {
    type Err = UnknownName;

    /// `success` or `failure`.
    fn from_str(name: &str) -> Result<Self, UnknownName> {
        [Self::Success, Self::Failure]
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "result",
                name: name.to_owned(),
                known: "success, failure".to_owned(),
            })
    }
}

/// Who did something: the identity every audit row records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditActor {
    /// User id (`sub`).
    pub user_id: String,
    /// Tenant of the user.
    pub tenant_id: String,
    /// Realm of the user.
    pub realm_id: String,
}

/// An audit event to append. Id, event id and timestamp are given when it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// Event type.
    pub event_type: EventType,
    /// Who.
    pub actor: AuditActor,
    /// Entity name or tenant id.
    pub resource: String,
    /// What changed.
    pub details: Option<Value>,
    /// Success or failure.
    pub result: AuditResult,
    /// Why it failed.
    pub error_message: Option<String>,
}

impl NewAudit {
    /// A success event.
    pub fn success(
        event_type: EventType,
        actor: &AuditActor,
        resource: &str,
        details: Option<Value>,
    ) -> Self {
        Self {
            event_type,
            actor: actor.clone(),
            resource: resource.to_owned(),
            details,
            result: AuditResult::Success,
            error_message: None,
        }
    }

    /// Turns this event into the failure of the same operation.
    pub fn into_failure(mut self, message: String) -> Self {
        self.result = AuditResult::Failure;
        self.error_message = Some(message);
        self
    }
}

/// Filters of an audit query (all optional, combined with AND); results are newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Any of these event types.
    pub event_types: Vec<EventType>,
    /// Acting user.
    pub user_id: Option<String>,
    /// Acting tenant.
    pub tenant_id: Option<String>,
    /// Resource.
    pub resource: Option<String>,
    /// Only successes or only failures.
    pub result: Option<AuditResult>,
    /// Inclusive lower bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper bound.
    pub to: Option<Timestamp>,
    /// Which page.
    pub page: crate::PageRequest,
}
