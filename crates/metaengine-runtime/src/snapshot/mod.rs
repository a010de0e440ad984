//! Metadata as code (SPEC §17): the entities, their versions, which one is active and the
//! tenants, as one document ([`Snapshot`]) or as files a person reviews ([`files`]); applied to
//! another instance step by step, each step through the registry (validated and audited like
//! the same API call), idempotently.
//!
//! An apply creates what is missing and changes what differs; it deletes nothing (an entity or a
//! version absent from the snapshot stays). Entities are applied referenced ones first (then by
//! name), each checked in full before any of its changes: an invalid name, label or schema, a
//! version that was once active and differs from the snapshot, or an activation with breaking
//! changes stops the apply with nothing of that entity changed (the entities before it stay
//! applied). Problems point into the snapshot document (`/entities/2/versions/0/schema/…`).

pub mod files;

use std::collections::{BTreeSet, HashMap, HashSet};

use metaengine_core::ident::{validate_entity_name, validate_version_label};
use metaengine_core::{Problem, ValidationContext, validate_schema};
use metaengine_store::{
    ActivationPlan, EntityRow, PageRequest, StoreError, TenantStatus, VersionRow,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::Actor;
use crate::error::{RegistryError, RegistryResult};
use crate::registry::Registry;
use crate::tenants::TenantService;

/// The metadata of an instance (`GET /api/meta/snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// Entities by name.
    pub entities: Vec<EntitySnapshot>,
    /// Tenants by id.
    #[serde(default)]
    pub tenants: Vec<TenantSnapshot>,
}

/// One entity with its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntitySnapshot {
    /// PascalCase name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The version to be active; `null`: none.
    #[serde(default)]
    pub active_version: Option<String>,
    /// Versions, oldest first.
    #[serde(default)]
    pub versions: Vec<VersionSnapshot>,
}

/// One version: its label and schema as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionSnapshot {
    /// Version label.
    pub version: String,
    /// The entity schema document.
    pub schema: Value,
}

/// One tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSnapshot {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: TenantStatus,
}

/// One change an apply makes (or, in a dry run, would make).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "step",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Step {
    /// A tenant to create.
    CreateTenant {
        /// Tenant id.
        tenant: String,
        /// Its name.
        name: String,
    },
    /// A tenant whose name or status differs.
    UpdateTenant {
        /// Tenant id.
        tenant: String,
        /// The new name, when it differs.
        name: Option<String>,
        /// The new status, when it differs.
        status: Option<TenantStatus>,
    },
    /// An entity to create.
    CreateEntity {
        /// Entity name.
        entity: String,
    },
    /// An entity whose description differs.
    UpdateEntity {
        /// Entity name.
        entity: String,
    },
    /// A version to create.
    CreateVersion {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// A never-activated version whose schema differs.
    UpdateVersion {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
    /// A version to activate, with what it does to the table.
    Activate {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
        /// The migration plan.
        plan: Box<ActivationPlan>,
    },
    /// An active version to deactivate (the snapshot has none active).
    Deactivate {
        /// Entity name.
        entity: String,
        /// Version label.
        version: String,
    },
}

/// What an apply did, or would do in a dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Whether anything differs (an apply that changes nothing is idempotent's proof).
    pub changed: bool,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Entities read per page while exporting.
const PAGE: u32 = 100;

/// The instance's metadata: every entity (by name) with its versions (oldest first) and the
/// tenants (by id).
pub async fn export(
    registry: &Registry,
    tenants: &TenantService,
    actor: &Actor,
) -> RegistryResult<Snapshot> {
    let mut entities = Vec::new();
    let mut page = 1;
    loop {
        let rows = registry
            .list_entities(actor, PageRequest::new(page, PAGE))
            .await?;
        let done = rows.data.len() < PAGE as usize;
        for entity in rows.data {
            let versions = registry.list_versions(actor, &entity.name).await?;
            entities.push(EntitySnapshot {
                name: entity.name,
                description: entity.description,
                active_version: entity.active_version,
                versions: versions
                    .into_iter()
                    .map(|v| VersionSnapshot {
                        version: v.version,
                        schema: v.schema,
                    })
                    .collect(),
            });
        }
        if done {
            break;
        }
        page += 1;
    }
    entities.sort_by(|a, b| a.name.cmp(&b.name));
    let mut tenants: Vec<TenantSnapshot> = tenants
        .list(actor)
        .await?
        .into_iter()
        .map(|t| TenantSnapshot {
            id: t.id,
            name: t.name,
            status: t.status,
        })
        .collect();
    tenants.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Snapshot { entities, tenants })
}

/// Applies `snapshot` (or, with `dry_run`, only reports what applying it would do).
pub async fn apply(
    registry: &Registry,
    tenants: &TenantService,
    actor: &Actor,
    snapshot: &Snapshot,
    dry_run: bool,
) -> RegistryResult<ApplyReport> {
    registry.access().require_change(actor)?;
    let mut steps = Vec::new();
    apply_tenants(tenants, actor, &snapshot.tenants, dry_run, &mut steps).await?;
    let names: HashSet<&str> = snapshot.entities.iter().map(|e| e.name.as_str()).collect();
    for index in order(&snapshot.entities) {
        let Some(entity) = snapshot.entities.get(index) else {
            continue;
        };
        let at = format!("/entities/{index}");
        apply_entity(registry, actor, entity, &names, dry_run, &mut steps)
            .await
            .map_err(|e| within(e, &at))?;
    }
    Ok(ApplyReport {
        dry_run,
        changed: !steps.is_empty(),
        steps,
    })
}

/// The entities' indexes, those another one references first (`referenceTo` in any of its
/// versions), otherwise by name; entities in a cycle of references by name after the rest.
fn order(entities: &[EntitySnapshot]) -> Vec<usize> {
    let position: HashMap<&str, usize> = entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let needs: Vec<BTreeSet<usize>> = entities
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.versions
                .iter()
                .flat_map(|v| references(&v.schema))
                .filter_map(|target| position.get(target.as_str()).copied())
                .filter(|&t| t != i)
                .collect()
        })
        .collect();
    let name = |i: usize| entities.get(i).map_or("", |e| e.name.as_str());
    let is_done = |done: &[bool], i: usize| done.get(i).copied().unwrap_or(true);
    let mut done = vec![false; entities.len()];
    let mut out = Vec::with_capacity(entities.len());
    loop {
        let mut ready: Vec<usize> = needs
            .iter()
            .enumerate()
            .filter(|(i, need)| !is_done(&done, *i) && need.iter().all(|&t| is_done(&done, t)))
            .map(|(i, _)| i)
            .collect();
        if ready.is_empty() {
            break;
        }
        ready.sort_by_key(|&i| name(i));
        for i in ready {
            if let Some(d) = done.get_mut(i) {
                *d = true;
            }
            out.push(i);
        }
    }
    let mut rest: Vec<usize> = (0..entities.len())
        .filter(|&i| !is_done(&done, i))
        .collect();
    rest.sort_by_key(|&i| name(i));
    out.extend(rest);
    out
}

/// The entities a schema's fields reference.
fn references(schema: &Value) -> Vec<String> {
    schema
        .get("fields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.get("referenceTo").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// `error` with its problems' pointers inside `at` of the snapshot document.
fn within(error: RegistryError, at: &str) -> RegistryError {
    match error {
        RegistryError::Invalid { message, errors } => RegistryError::Invalid {
            message,
            errors: errors
                .into_iter()
                .map(|p| Problem {
                    pointer: format!("{at}{}", p.pointer),
                    message: p.message,
                })
                .collect(),
        },
        other => other,
    }
}

/// Checks what the registry would refuse of an entity's name and of the versions it will
/// create or change, before anything of the entity changes: problems point into the entity's
/// object of the snapshot. A `referenceTo` may name an entity stored or in the snapshot.
async fn check(
    registry: &Registry,
    wanted: &EntitySnapshot,
    writes: &[usize],
    in_snapshot: &HashSet<&str>,
) -> RegistryResult<()> {
    let mut problems = Vec::new();
    if let Err(e) = validate_entity_name(&wanted.name) {
        problems.push(Problem::new("/name".to_owned(), e.to_string()));
    }
    for &j in writes {
        let Some(v) = wanted.versions.get(j) else {
            continue;
        };
        if let Err(e) = validate_version_label(&v.version) {
            problems.push(Problem::new(
                format!("/versions/{j}/version"),
                e.to_string(),
            ));
        }
        let mut known = HashSet::new();
        for target in references(&v.schema) {
            if in_snapshot.contains(target.as_str())
                || registry.store().entity_exists(&target).await?
            {
                known.insert(target);
            }
        }
        let exists = |name: &str| known.contains(name);
        let ctx = ValidationContext {
            entity_name: Some(&wanted.name),
            entity_exists: &exists,
        };
        if let Err(found) = validate_schema(&v.schema, &ctx) {
            problems.extend(
                found
                    .into_iter()
                    .map(|p| Problem::new(format!("/versions/{j}/schema{}", p.pointer), p.message)),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RegistryError::Invalid {
            message: match problems.as_slice() {
                [one] => format!("entity `{}`: {}", wanted.name, one.message),
                many => format!("entity `{}` has {} problems", wanted.name, many.len()),
            },
            errors: problems,
        })
    }
}

async fn apply_tenants(
    service: &TenantService,
    actor: &Actor,
    wanted: &[TenantSnapshot],
    dry_run: bool,
    steps: &mut Vec<Step>,
) -> RegistryResult<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let existing: HashMap<String, (String, TenantStatus)> = service
        .list(actor)
        .await?
        .into_iter()
        .map(|t| (t.id, (t.name, t.status)))
        .collect();
    for tenant in wanted {
        let Some((name, status)) = existing.get(&tenant.id) else {
            steps.push(Step::CreateTenant {
                tenant: tenant.id.clone(),
                name: tenant.name.clone(),
            });
            if !dry_run {
                service.create(actor, &tenant.id, &tenant.name).await?;
                if tenant.status != TenantStatus::Active {
                    service
                        .update(actor, &tenant.id, None, Some(tenant.status.as_str()))
                        .await?;
                }
            }
            continue;
        };
        let name = (*name != tenant.name).then(|| tenant.name.clone());
        let status = (*status != tenant.status).then_some(tenant.status);
        if name.is_some() || status.is_some() {
            if !dry_run {
                service
                    .update(
                        actor,
                        &tenant.id,
                        name.as_deref(),
                        status.map(TenantStatus::as_str),
                    )
                    .await?;
            }
            steps.push(Step::UpdateTenant {
                tenant: tenant.id.clone(),
                name,
                status,
            });
        }
    }
    Ok(())
}

/// Checks, then applies one entity: its description, its versions, its active version.
async fn apply_entity(
    registry: &Registry,
    actor: &Actor,
    wanted: &EntitySnapshot,
    in_snapshot: &HashSet<&str>,
    dry_run: bool,
    steps: &mut Vec<Step>,
) -> RegistryResult<()> {
    let name = wanted.name.as_str();
    let current: Option<EntityRow> = match registry.get_entity(actor, name).await {
        Ok(row) => Some(row),
        Err(RegistryError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let versions: HashMap<String, VersionRow> = match current {
        Some(_) => registry
            .list_versions(actor, name)
            .await?
            .into_iter()
            .map(|v| (v.version.clone(), v))
            .collect(),
        None => HashMap::new(),
    };
    // Check everything of this entity before changing any of it.
    let mut mine = Vec::new();
    match &current {
        None => mine.push(Step::CreateEntity {
            entity: name.to_owned(),
        }),
        Some(row) if row.description != wanted.description => mine.push(Step::UpdateEntity {
            entity: name.to_owned(),
        }),
        Some(_) => {}
    }
    let mut writes = Vec::new();
    for (j, v) in wanted.versions.iter().enumerate() {
        if versions
            .get(&v.version)
            .is_none_or(|stored| stored.schema != v.schema)
        {
            writes.push(j);
        }
    }
    check(registry, wanted, &writes, in_snapshot).await?;
    for v in &wanted.versions {
        match versions.get(&v.version) {
            None => mine.push(Step::CreateVersion {
                entity: name.to_owned(),
                version: v.version.clone(),
            }),
            Some(stored) if stored.schema == v.schema => {}
            Some(stored) if stored.activated_at.is_some() => {
                return Err(RegistryError::conflict(
                    metaengine_core::ErrorCode::VersionImmutable,
                    format!(
                        "version `{}` of entity `{name}` has been active with another schema; a \
                         snapshot cannot change it (give the new schema a new version)",
                        v.version
                    ),
                ));
            }
            Some(_) => mine.push(Step::UpdateVersion {
                entity: name.to_owned(),
                version: v.version.clone(),
            }),
        }
    }
    let active_now = current.as_ref().and_then(|e| e.active_version.clone());
    match (&wanted.active_version, &active_now) {
        (Some(target), now) if Some(target) != now.as_ref() => {
            let schema = wanted
                .versions
                .iter()
                .find(|v| v.version == *target)
                .map(|v| &v.schema)
                .or_else(|| versions.get(target).map(|v| &v.schema))
                .ok_or_else(|| {
                    RegistryError::invalid(
                        "/entities",
                        format!(
                            "entity `{name}` names `{target}` as its active version, which \
                             neither the snapshot nor the instance has"
                        ),
                    )
                })?;
            let plan = registry.store().plan_schema(name, target, schema).await?;
            if plan.plan.is_breaking() {
                return Err(StoreError::Breaking {
                    entity: name.to_owned(),
                    version: target.clone(),
                    errors: plan.plan.breaking.clone(),
                }
                .into());
            }
            mine.push(Step::Activate {
                entity: name.to_owned(),
                version: target.clone(),
                plan: Box::new(plan),
            });
        }
        (None, Some(now)) => mine.push(Step::Deactivate {
            entity: name.to_owned(),
            version: now.clone(),
        }),
        _ => {}
    }
    if dry_run {
        steps.extend(mine);
        return Ok(());
    }
    for step in mine {
        steps.push(carry_out(registry, actor, wanted, step).await?);
    }
    Ok(())
}

/// Carries out one checked step of an entity through the registry; the step as done (an
/// activation with the plan it applied).
async fn carry_out(
    registry: &Registry,
    actor: &Actor,
    wanted: &EntitySnapshot,
    step: Step,
) -> RegistryResult<Step> {
    let name = wanted.name.as_str();
    let schema = |version: &str| {
        wanted
            .versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| v.schema.clone())
            .unwrap_or(Value::Null)
    };
    match step {
        Step::CreateEntity { .. } => {
            registry
                .create_entity(actor, name, wanted.description.as_deref())
                .await?;
        }
        Step::UpdateEntity { .. } => {
            registry
                .update_entity(actor, name, wanted.description.as_deref())
                .await?;
        }
        Step::CreateVersion { ref version, .. } => {
            registry
                .create_version(actor, name, version, schema(version))
                .await?;
        }
        Step::UpdateVersion { ref version, .. } => {
            registry
                .update_version(actor, name, version, schema(version))
                .await?;
        }
        Step::Activate { version, .. } => {
            let done = registry.activate(actor, name, &version).await?;
            return Ok(Step::Activate {
                entity: name.to_owned(),
                version,
                plan: Box::new(done.plan),
            });
        }
        Step::Deactivate { ref version, .. } => {
            registry.deactivate(actor, name, version).await?;
        }
        Step::CreateTenant { .. } | Step::UpdateTenant { .. } => {}
    }
    Ok(step)
}
