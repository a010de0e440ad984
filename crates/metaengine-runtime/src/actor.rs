//! Who is calling, and what the platform's roles allow them.

use metaengine_store::AuditActor;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// The caller of an operation: from a verified token (HTTP) or the local operator (CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// User id (`sub`).
    pub user_id: String,
    /// Tenant of the user.
    pub tenant_id: String,
    /// Realm of the user.
    pub realm_id: String,
    /// Roles of the user.
    pub roles: Vec<String>,
}

impl Actor {
    /// The identity an audit row records.
    pub fn audit(&self) -> AuditActor {
        AuditActor {
            user_id: self.user_id.clone(),
            tenant_id: self.tenant_id.clone(),
            realm_id: self.realm_id.clone(),
        }
    }

    /// Whether the actor has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The platform's access rules for metadata: entity definitions are global, so changing them
/// needs the admin role in the platform tenant; an admin of any tenant may read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// The tenant whose admins change metadata (default `default`).
    pub platform_tenant: String,
    /// The admin role (default `admin`).
    pub admin_role: String,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            platform_tenant: Self::DEFAULT_PLATFORM_TENANT.to_owned(),
            admin_role: Self::DEFAULT_ADMIN_ROLE.to_owned(),
        }
    }
}

impl AccessConfig {
    /// The platform tenant unless configured: `default`.
    pub const DEFAULT_PLATFORM_TENANT: &str = "default";
    /// The admin role unless configured: `admin`.
    pub const DEFAULT_ADMIN_ROLE: &str = "admin";

    /// Reading metadata and audit rows: the admin role of some tenant.
    pub fn require_read(&self, actor: &Actor) -> Result<(), RegistryError> {
        if actor.has_role(&self.admin_role) {
            Ok(())
        } else {
            Err(RegistryError::Forbidden(format!(
                "reading metadata needs the `{}` role",
                self.admin_role
            )))
        }
    }

    /// Changing metadata: the admin role in the platform tenant.
    pub fn require_change(&self, actor: &Actor) -> Result<(), RegistryError> {
        if actor.has_role(&self.admin_role) && actor.tenant_id == self.platform_tenant {
            Ok(())
        } else {
            Err(RegistryError::Forbidden(format!(
                "changing metadata needs the `{}` role in the platform tenant `{}`",
                self.admin_role, self.platform_tenant
            )))
        }
    }

    /// Whether the actor sees every tenant's audit rows (platform admin) or only its own.
    pub fn sees_all_tenants(&self, actor: &Actor) -> bool {
        actor.has_role(&self.admin_role) && actor.tenant_id == self.platform_tenant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(tenant: &str, roles: &[&str]) -> Actor {
        Actor {
            user_id: "u".into(),
            tenant_id: tenant.into(),
            realm_id: "r".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn only_platform_admins_change_metadata() {
        let access = AccessConfig::default();
        assert!(access.require_change(&actor("default", &["admin"])).is_ok());
        assert!(access.require_change(&actor("acme", &["admin"])).is_err());
        assert!(access.require_change(&actor("default", &["user"])).is_err());
        assert!(access.require_read(&actor("acme", &["admin"])).is_ok());
        assert!(access.require_read(&actor("default", &["user"])).is_err());
    }
}
