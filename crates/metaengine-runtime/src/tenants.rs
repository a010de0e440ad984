//! Tenants (SPEC §9): platform admins create, list, rename, suspend and reactivate them; every
//! request checks that its tenant exists and is active.
//!
//! Key decision: the per-request check reads a small in-process cache whose entries live at most
//! [`TENANT_STATUS_TTL`] (time to live, not to idle, so a busy tenant is re-read too). That bounds
//! how long another instance keeps serving a tenant suspended elsewhere (SPEC §10: "within a
//! second") without a store round trip per request; this instance forgets its entry at once on
//! every change it makes. A hit is a lock-free lookup by `&str` that copies a one-byte state.

use std::sync::Arc;
use std::time::Duration;

use metaengine_core::ident::{TENANT_ID_PATTERN, is_tenant_id};
use metaengine_core::{ErrorCode, Problem};
use metaengine_store::{EventType, NewTenant, Store, StoreError, TenantRow, TenantStatus};
use serde_json::json;

use crate::actor::{AccessConfig, Actor};
use crate::error::{RegistryError, RegistryResult};
use crate::registry::Registry;

/// The longest a tenant's status is served from the cache.
pub const TENANT_STATUS_TTL: Duration = Duration::from_millis(500);

/// The most tenant statuses kept in the cache.
const STATUS_CACHE_CAPACITY: u64 = 100_000;

/// The longest tenant display name, in characters.
pub const MAX_TENANT_NAME_CHARS: usize = 200;

/// Why a request's tenant may not be served (403 over HTTP, except `Store`).
#[derive(Debug, thiserror::Error)]
pub enum TenantAccessError {
    /// No tenant with that id.
    #[error("tenant `{0}` does not exist")]
    Unknown(String),
    /// The tenant exists but is suspended.
    #[error("tenant `{0}` is suspended")]
    Suspended(String),
    /// The store failed; the cause is logged, never shown.
    #[error("the tenant store failed")]
    Store(#[source] StoreError),
}

/// What the cache remembers of a tenant id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TenantState {
    Active,
    Suspended,
    Unknown,
}

/// Manages tenants and answers "may this tenant be served?". Cheap to clone: clones share the
/// store and the status cache.
#[derive(Clone)]
pub struct TenantService {
    registry: Registry,
    status: moka::sync::Cache<String, TenantState>,
}

impl std::fmt::Debug for TenantService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantService")
            .field("backend", &self.registry.store().backend())
            .field("cached", &self.status.entry_count())
            .finish()
    }
}

impl TenantService {
    /// Tenants over `store`; `access` names the platform tenant and the admin role.
    pub fn new(store: Arc<dyn Store>, access: AccessConfig) -> Self {
        Self::with_status_ttl(store, access, TENANT_STATUS_TTL)
    }

    fn with_status_ttl(store: Arc<dyn Store>, access: AccessConfig, ttl: Duration) -> Self {
        Self {
            registry: Registry::new(store, access),
            status: moka::sync::Cache::builder()
                .max_capacity(STATUS_CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
        }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.registry.store()
    }

    /// Creates an active tenant. Platform admins only; the id must match
    /// `^[a-z0-9][a-z0-9_-]{0,62}$` and the name must not be blank. Audited as `tenant.create`
    /// (resource: the id) in the same transaction; a refusal writes a failure row.
    pub async fn create(&self, actor: &Actor, id: &str, name: &str) -> RegistryResult<TenantRow> {
        let details = json!({ "name": name });
        let row = self
            .registry
            .change(
                actor,
                EventType::TenantCreate,
                id,
                details,
                |audit| async move {
                    let mut problems = Vec::new();
                    if let Err(p) = check_id(id) {
                        problems.push(p);
                    }
                    if let Err(p) = check_name(name) {
                        problems.push(p);
                    }
                    if !problems.is_empty() {
                        return Err(invalid(problems));
                    }
                    let new = NewTenant {
                        id: id.to_owned(),
                        name: name.to_owned(),
                    };
                    Ok(self.store().create_tenant(&new, &audit).await?)
                },
            )
            .await?;
        self.status.invalidate(id);
        Ok(row)
    }

    /// All tenants by id. Platform admins only.
    pub async fn list(&self, actor: &Actor) -> RegistryResult<Vec<TenantRow>> {
        self.registry.access().require_change(actor)?;
        Ok(self.store().list_tenants().await?)
    }

    /// One tenant. Platform admins only.
    pub async fn get(&self, actor: &Actor, id: &str) -> RegistryResult<TenantRow> {
        self.registry.access().require_change(actor)?;
        self.store()
            .get_tenant(id)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("tenant `{id}` does not exist")))
    }

    /// Renames a tenant and/or sets its status (`active` or `suspended`, as a request names it;
    /// another name is a 422 at `/status`). Platform admins only; the platform tenant cannot be
    /// suspended (its admins would lock themselves out). Audited as `tenant.update`; this
    /// instance applies a new status at once, the others within [`TENANT_STATUS_TTL`].
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        name: Option<&str>,
        status: Option<&str>,
    ) -> RegistryResult<TenantRow> {
        let details = json!({ "name": name, "status": status });
        let platform = &self.registry.access().platform_tenant;
        let row = self
            .registry
            .change(
                actor,
                EventType::TenantUpdate,
                id,
                details,
                |audit| async move {
                    let mut problems = Vec::new();
                    if let Some(Err(p)) = name.map(check_name) {
                        problems.push(p);
                    }
                    let status = match status.map(str::parse::<TenantStatus>).transpose() {
                        Ok(status) => status,
                        Err(_) => {
                            problems.push(Problem {
                                pointer: "/status".to_owned(),
                                message: format!(
                                    "tenant status `{}` is not allowed; expected `{}` or `{}`",
                                    status.unwrap_or_default(),
                                    TenantStatus::Active,
                                    TenantStatus::Suspended
                                ),
                            });
                            None
                        }
                    };
                    if !problems.is_empty() {
                        return Err(invalid(problems));
                    }
                    if status == Some(TenantStatus::Suspended) && id == platform {
                        return Err(RegistryError::conflict(
                            ErrorCode::Conflict,
                            format!(
                                "the platform tenant `{id}` cannot be suspended: its admins manage \
                             the engine"
                            ),
                        ));
                    }
                    Ok(self.store().update_tenant(id, name, status, &audit).await?)
                },
            )
            .await?;
        self.status.invalidate(id);
        Ok(row)
    }

    /// Whether requests of `tenant_id` may be served: it exists and is active. Called on every
    /// request; answered from memory when the tenant was checked less than
    /// [`TENANT_STATUS_TTL`] ago.
    pub async fn check_active(&self, tenant_id: &str) -> Result<(), TenantAccessError> {
        let state = match self.status.get(tenant_id) {
            Some(state) => state,
            None => self.load(tenant_id).await?,
        };
        match state {
            TenantState::Active => Ok(()),
            TenantState::Suspended => Err(TenantAccessError::Suspended(tenant_id.to_owned())),
            TenantState::Unknown => Err(TenantAccessError::Unknown(tenant_id.to_owned())),
        }
    }

    /// Reads a tenant's state from the store and caches it. An id no tenant can have is unknown
    /// without a query, and not cached (a flood of made-up ids cannot evict real ones).
    async fn load(&self, tenant_id: &str) -> Result<TenantState, TenantAccessError> {
        if check_id(tenant_id).is_err() {
            return Ok(TenantState::Unknown);
        }
        let state = match self.store().get_tenant(tenant_id).await {
            Ok(Some(row)) if row.status == TenantStatus::Active => TenantState::Active,
            Ok(Some(_)) => TenantState::Suspended,
            Ok(None) => TenantState::Unknown,
            Err(e) => {
                tracing::error!(error = ?e, tenant = tenant_id, "cannot read the tenant's status");
                return Err(TenantAccessError::Store(e));
            }
        };
        self.status.insert(tenant_id.to_owned(), state);
        Ok(state)
    }
}

/// [`TENANT_ID_PATTERN`].
fn check_id(id: &str) -> Result<(), Problem> {
    if is_tenant_id(id) {
        Ok(())
    } else {
        Err(Problem {
            pointer: "/id".to_owned(),
            message: format!(
                "tenant id `{}` must match `{TENANT_ID_PATTERN}` (lowercase letters, digits, `_` \
                 and `-`, at most 63 characters)",
                shorten(id)
            ),
        })
    }
}

fn check_name(name: &str) -> Result<(), Problem> {
    let message = if name.trim().is_empty() {
        "tenant name must not be empty".to_owned()
    } else if name.chars().count() > MAX_TENANT_NAME_CHARS {
        format!("tenant name is longer than {MAX_TENANT_NAME_CHARS} characters")
    } else {
        return Ok(());
    };
    Err(Problem {
        pointer: "/name".to_owned(),
        message,
    })
}

/// A long user value cut for a message.
fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

fn invalid(errors: Vec<Problem>) -> RegistryError {
    let message = match errors.as_slice() {
        [one] => one.message.clone(),
        many => format!("the tenant is invalid ({} problems)", many.len()),
    };
    RegistryError::Invalid { message, errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_rule() {
        for ok in ["default", "acme", "a", "0", "acme-eu_2", &"a".repeat(63)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            "_acme",
            "acme corp",
            "acmé",
            "a.b",
            "a/b",
            &"a".repeat(64),
        ] {
            let p = check_id(bad).unwrap_err();
            assert_eq!(p.pointer, "/id");
        }
        let long = "x".repeat(500);
        let message = check_id(&format!("X{long}")).unwrap_err().message;
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn tenant_names_must_not_be_blank_or_huge() {
        assert!(check_name("Acme Corp").is_ok());
        assert_eq!(check_name("  ").unwrap_err().pointer, "/name");
        assert!(check_name(&"n".repeat(MAX_TENANT_NAME_CHARS + 1)).is_err());
    }
}

/// The per-request path on a hit: no allocation to speak of and no query. A counting allocator
/// (thread-local counts) wraps the system one in this test binary.
#[cfg(test)]
mod hit_path {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use super::*;

    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    #[expect(
        unsafe_code,
        reason = "a counting allocator: the one way to see allocations"
    )]
    // SAFETY: every call is forwarded unchanged to `System`; the counter is a thread-local `Cell`
    // with a const initializer, so counting itself never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocations() -> usize {
        ALLOCATIONS.with(Cell::get)
    }

    #[test]
    fn a_hit_neither_allocates_nor_queries() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}/t.db", dir.path().display());
            let store = metaengine_store_sqlite::SqliteStore::connect(&url)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            // A long TTL, so that no entry expires during the loop whatever the machine's load.
            let tenants = TenantService::with_status_ttl(
                Arc::new(store),
                AccessConfig::default(),
                Duration::from_secs(3600),
            );
            let before = allocations();
            tenants.check_active("default").await.unwrap();
            let miss = allocations() - before;

            const HITS: usize = 10_000;
            let before = allocations();
            for _ in 0..HITS {
                tenants.check_active("default").await.unwrap();
            }
            let hits = allocations() - before;
            println!("tenant check: {miss} allocations on the miss, {hits} over {HITS} hits");
            // A query allocates dozens of times; a hit should not allocate at all (the cache's
            // occasional housekeeping aside).
            assert!(miss > 10, "the miss should have queried the store ({miss})");
            assert!(hits <= HITS / 100, "{hits} allocations over {HITS} hits");
        });
    }
}
