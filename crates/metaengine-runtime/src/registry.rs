//! The registry of entities and versions (SPEC §3): every rule of names, schemas and version
//! lifecycle, every change audited in its own transaction, every refusal audited as a failure.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use metaengine_core::compile::{CompiledModel, compile};
use metaengine_core::ident::{validate_entity_name, validate_version_label};
use metaengine_core::{ErrorCode, Problem, ValidationContext, validate_schema};

use metaengine_store::{
    Activation, ActivationPlan, AuditQuery, AuditRow, EntityRow, EventType, NewAudit, NewEntity,
    NewVersion, Page, PageRequest, PurgeReport, Store, VerifyReport, VersionRow,
};
use serde_json::{Value, json};

use crate::actor::{AccessConfig, Actor};
use crate::cache::{CacheError, ModelCache};
use crate::error::{RegistryError, RegistryResult};

/// Manages entity definitions and their versions.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    access: AccessConfig,
    cache: Option<ModelCache>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("backend", &self.store.backend())
            .field("access", &self.access)
            .finish()
    }
}

impl Registry {
    /// A registry over `store` with the platform's access rules.
    pub fn new(store: Arc<dyn Store>, access: AccessConfig) -> Self {
        Self {
            store,
            access,
            cache: None,
        }
    }

    /// The same registry, keeping `cache` coherent: every activation, deactivation and deletion
    /// invalidates the entity's cached model (other processes learn it from the store).
    pub fn with_cache(mut self, cache: ModelCache) -> Self {
        self.cache = Some(cache);
        self
    }

    fn invalidate(&self, entity: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(entity);
        }
    }

    /// Empties the compiled-model cache of this process (audited as `meta.cache.invalidate`).
    pub async fn clear_cache(&self, actor: &Actor) -> RegistryResult<()> {
        let details = json!({ "scope": "all" });
        self.change(
            actor,
            EventType::CacheInvalidate,
            "*",
            details,
            |audit| async move {
                if let Some(cache) = &self.cache {
                    cache.clear();
                }
                Ok(self.store.append_audit(&[audit]).await?)
            },
        )
        .await
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The access rules in force.
    pub fn access(&self) -> &AccessConfig {
        &self.access
    }

    /// Runs a metadata change: checks the caller may change metadata, runs `op` with the success
    /// audit event it must write in its transaction, and on any error writes the same event as a
    /// failure (the change itself was rolled back). Tenant changes go through it too.
    pub(crate) async fn change<T, F, Fut>(
        &self,
        actor: &Actor,
        event: EventType,
        resource: &str,
        details: Value,
        op: F,
    ) -> RegistryResult<T>
    where
        F: FnOnce(NewAudit) -> Fut,
        Fut: Future<Output = RegistryResult<T>>,
    {
        let audit = NewAudit::success(event, &actor.audit(), resource, Some(details));
        let outcome = match self.access.require_change(actor) {
            Ok(()) => op(audit.clone()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            if let RegistryError::Store(cause) = e {
                tracing::error!(error = ?cause, event = event.as_str(), resource, "store failure");
            }
            let mut failure = audit.into_failure(e.to_string());
            if let (
                RegistryError::Invalid { errors, .. } | RegistryError::Conflict { errors, .. },
                Some(Value::Object(details)),
            ) = (e, failure.details.as_mut())
                && !errors.is_empty()
            {
                details.insert("errors".to_owned(), json!(errors));
            }
            if let Err(audit_error) = self.store.append_audit(&[failure]).await {
                tracing::error!(error = ?audit_error, "could not write the failure audit row");
            }
        }
        outcome
    }

    /// Records the refusal of a change whose input could not even be read (malformed JSON, an
    /// unreadable file): writes the failure audit row of `event` and gives the error back.
    pub async fn reject(
        &self,
        actor: &Actor,
        event: EventType,
        resource: &str,
        details: Value,
        error: RegistryError,
    ) -> RegistryError {
        match self
            .change(actor, event, resource, details, |_| async {
                Err::<(), _>(error)
            })
            .await
        {
            Err(e) => e,
            Ok(()) => {
                RegistryError::conflict(ErrorCode::Conflict, "the change was refused".to_owned())
            }
        }
    }

    // ---- entities ----

    /// Creates an entity with a PascalCase name.
    pub async fn create_entity(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<&str>,
    ) -> RegistryResult<EntityRow> {
        let details = json!({ "description": description });
        self.change(
            actor,
            EventType::EntityCreate,
            name,
            details,
            |audit| async move {
                validate_entity_name(name)
                    .map_err(|e| RegistryError::invalid("/name", e.to_string()))?;
                let new = NewEntity {
                    name: name.to_owned(),
                    description: description.map(str::to_owned),
                    created_by: actor.user_id.clone(),
                };
                Ok(self.store.create_entity(&new, &audit).await?)
            },
        )
        .await
    }

    /// One entity.
    pub async fn get_entity(&self, actor: &Actor, name: &str) -> RegistryResult<EntityRow> {
        self.access.require_read(actor)?;
        self.store
            .get_entity(name)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("entity `{name}` does not exist")))
    }

    /// Entities by name, one page.
    pub async fn list_entities(
        &self,
        actor: &Actor,
        page: PageRequest,
    ) -> RegistryResult<Page<EntityRow>> {
        self.access.require_read(actor)?;
        Ok(self.store.list_entities(page).await?)
    }

    /// Sets or clears an entity's description.
    pub async fn update_entity(
        &self,
        actor: &Actor,
        name: &str,
        description: Option<&str>,
    ) -> RegistryResult<EntityRow> {
        let details = json!({ "description": description });
        self.change(
            actor,
            EventType::EntityUpdate,
            name,
            details,
            |audit| async move { Ok(self.store.update_entity(name, description, &audit).await?) },
        )
        .await
    }

    /// Deletes an entity with all its versions and its data table. Refused while the table holds
    /// rows unless `force`; returns whether a table was dropped.
    pub async fn delete_entity(
        &self,
        actor: &Actor,
        name: &str,
        force: bool,
    ) -> RegistryResult<bool> {
        let details = json!({ "force": force });
        self.change(
            actor,
            EventType::EntityDelete,
            name,
            details,
            |audit| async move { Ok(self.store.delete_entity(name, force, &audit).await?) },
        )
        .await
        .inspect(|_| self.invalidate(name))
    }

    /// Columns of the entity's table that no field of the active schema uses any more.
    pub async fn hidden_columns(&self, actor: &Actor, entity: &str) -> RegistryResult<Vec<String>> {
        self.access.require_read(actor)?;
        Ok(self.store.hidden_columns(entity).await?)
    }

    /// Drops the hidden columns of the entity's table, and their data; returns their names.
    pub async fn prune(&self, actor: &Actor, entity: &str) -> RegistryResult<Vec<String>> {
        let details = json!({ "operation": "prune" });
        self.change(
            actor,
            EventType::Migrate,
            entity,
            details,
            |audit| async move { Ok(self.store.prune_hidden_columns(entity, &audit).await?) },
        )
        .await
    }

    // ---- versions ----

    /// Validates a schema document for `entity` (or on its own, `None`: then no policy `resource`
    /// is checked against a name), resolving `referenceTo` against stored entities.
    pub async fn validate(
        &self,
        entity: Option<&str>,
        schema: &Value,
    ) -> RegistryResult<Vec<Problem>> {
        let mut referenced = HashSet::new();
        for field in schema
            .get("fields")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(target) = field.get("referenceTo").and_then(Value::as_str)
                && self.store.entity_exists(target).await?
            {
                referenced.insert(target.to_owned());
            }
        }
        let exists = |name: &str| referenced.contains(name);
        let ctx = ValidationContext {
            entity_name: entity,
            entity_exists: &exists,
        };
        Ok(match validate_schema(schema, &ctx) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        })
    }

    async fn require_valid(&self, entity: &str, schema: &Value) -> RegistryResult<()> {
        let problems = self.validate(Some(entity), schema).await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::invalid_schema(problems))
        }
    }

    async fn require_entity(&self, entity: &str) -> RegistryResult<()> {
        if self.store.entity_exists(entity).await? {
            Ok(())
        } else {
            Err(RegistryError::NotFound(format!(
                "entity `{entity}` does not exist"
            )))
        }
    }

    /// Creates a version of an entity from a schema document (validated in full).
    pub async fn create_version(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
        schema: Value,
    ) -> RegistryResult<VersionRow> {
        let details = json!({ "version": version });
        self.change(
            actor,
            EventType::VersionCreate,
            entity,
            details,
            |audit| async move {
                validate_version_label(version)
                    .map_err(|e| RegistryError::invalid("/version", e.to_string()))?;
                self.require_entity(entity).await?;
                self.require_valid(entity, &schema).await?;
                let new = NewVersion {
                    entity_name: entity.to_owned(),
                    version: version.to_owned(),
                    schema,
                    created_by: actor.user_id.clone(),
                };
                Ok(self.store.create_version(&new, &audit).await?)
            },
        )
        .await
    }

    /// One version.
    pub async fn get_version(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
    ) -> RegistryResult<VersionRow> {
        self.access.require_read(actor)?;
        self.find_version(entity, version).await
    }

    async fn find_version(&self, entity: &str, version: &str) -> RegistryResult<VersionRow> {
        self.require_entity(entity).await?;
        self.store
            .get_version(entity, version)
            .await?
            .ok_or_else(|| {
                RegistryError::NotFound(format!(
                    "version `{version}` of entity `{entity}` does not exist"
                ))
            })
    }

    /// The active version of an entity (404 when it has none).
    pub async fn active_version(&self, actor: &Actor, entity: &str) -> RegistryResult<VersionRow> {
        self.access.require_read(actor)?;
        self.require_entity(entity).await?;
        self.store.active_version(entity).await?.ok_or_else(|| {
            RegistryError::NotFound(format!("entity `{entity}` has no active version"))
        })
    }

    /// All versions of an entity, oldest first.
    pub async fn list_versions(
        &self,
        actor: &Actor,
        entity: &str,
    ) -> RegistryResult<Vec<VersionRow>> {
        self.access.require_read(actor)?;
        self.require_entity(entity).await?;
        Ok(self.store.list_versions(entity).await?)
    }

    /// Replaces the whole schema of a version that has never been active.
    pub async fn update_version(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
        schema: Value,
    ) -> RegistryResult<VersionRow> {
        let details = json!({ "version": version });
        self.change(
            actor,
            EventType::VersionUpdate,
            entity,
            details,
            |audit| async move {
                let current = self.editable_version(entity, version).await?;
                self.require_valid(entity, &schema).await?;
                Ok(self
                    .store
                    .update_version_schema(entity, version, &current.schema, &schema, &audit)
                    .await?)
            },
        )
        .await
    }

    /// Reads a version and refuses early if it has ever been active (the store re-checks this
    /// inside the write transaction).
    async fn editable_version(&self, entity: &str, version: &str) -> RegistryResult<VersionRow> {
        let current = self.find_version(entity, version).await?;
        if current.is_active || current.activated_at.is_some() {
            return Err(RegistryError::conflict(
                ErrorCode::VersionImmutable,
                format!(
                    "version `{version}` of entity `{entity}` has been active and is immutable; \
                 create a new version to change the schema"
                ),
            ));
        }
        Ok(current)
    }

    /// Edits the field list of a never-activated version with `edit`, validates the result and
    /// stores it.
    async fn edit_fields<F>(
        &self,
        actor: &Actor,
        event: EventType,
        entity: &str,
        version: &str,
        field: &str,
        edit: F,
    ) -> RegistryResult<VersionRow>
    where
        F: FnOnce(&mut Vec<Value>) -> RegistryResult<()>,
    {
        let details = json!({ "version": version, "field": field });
        self.change(actor, event, entity, details, |audit| async move {
            let current = self.editable_version(entity, version).await?;
            let mut schema = current.schema.clone();
            let fields = schema
                .get_mut("fields")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| {
                    RegistryError::invalid("/fields", "`fields` must be an array".into())
                })?;
            edit(fields)?;
            self.require_valid(entity, &schema).await?;
            Ok(self
                .store
                .update_version_schema(entity, version, &current.schema, &schema, &audit)
                .await?)
        })
        .await
    }

    /// Appends a field definition to a never-activated version.
    pub async fn add_field(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
        field: Value,
    ) -> RegistryResult<VersionRow> {
        let name = field
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.edit_fields(
            actor,
            EventType::FieldAdd,
            entity,
            version,
            &name,
            |fields| {
                fields.push(field);
                Ok(())
            },
        )
        .await
    }

    /// Changes options of one field: keys of `patch` replace the field's keys, a `null` removes one.
    pub async fn update_field(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
        field: &str,
        patch: Value,
    ) -> RegistryResult<VersionRow> {
        self.edit_fields(
            actor,
            EventType::FieldUpdate,
            entity,
            version,
            field,
            |fields| {
                let Value::Object(patch) = patch else {
                    return Err(RegistryError::invalid(
                        "",
                        "a field patch must be a JSON object".into(),
                    ));
                };
                let target = find_field(fields, entity, version, field)?;
                let Some(object) = target.as_object_mut() else {
                    return Err(RegistryError::invalid(
                        "",
                        format!("field `{field}` is not an object"),
                    ));
                };
                for (key, value) in patch {
                    if value.is_null() {
                        object.remove(&key);
                    } else {
                        object.insert(key, value);
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// Removes one field from a never-activated version.
    pub async fn remove_field(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
        field: &str,
    ) -> RegistryResult<VersionRow> {
        self.edit_fields(
            actor,
            EventType::FieldRemove,
            entity,
            version,
            field,
            |fields| {
                find_field(fields, entity, version, field)?;
                fields.retain(|f| f.get("name").and_then(Value::as_str) != Some(field));
                Ok(())
            },
        )
        .await
    }

    /// What activating a version would do to the entity's table (a dry run: nothing changes).
    pub async fn plan_activation(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
    ) -> RegistryResult<ActivationPlan> {
        self.access.require_read(actor)?;
        Ok(self.store.plan_activation(entity, version).await?)
    }

    /// Makes a version the active one, in one transaction with its table migration and its audit
    /// rows (`meta.version.activate`, `meta.migrate` with the plan, `meta.compile` with the hash).
    /// Breaking changes refuse it with the full list.
    pub async fn activate(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
    ) -> RegistryResult<Activation> {
        let details = json!({ "version": version });
        self.change(
            actor,
            EventType::VersionActivate,
            entity,
            details,
            |audit| async move {
                let model = self.compile(actor, entity, version).await?;
                let who = actor.audit();
                let audits = |plan: &ActivationPlan| {
                    let mut activate = audit.clone();
                    activate.details = Some(json!({
                        "version": version,
                        "previous": plan.previous,
                    }));
                    vec![
                        activate,
                        NewAudit::success(
                            EventType::Migrate,
                            &who,
                            entity,
                            Some(json!({
                                "version": version,
                                "from": plan.shaped_by,
                                "table": plan.table,
                                "steps": plan.plan.steps,
                                "statements": plan.statements,
                            })),
                        ),
                        NewAudit::success(
                            EventType::Compile,
                            &who,
                            entity,
                            Some(json!({ "version": version, "hash": model.hash })),
                        ),
                    ]
                };
                Ok(self
                    .store
                    .activate_version(entity, version, &audits)
                    .await?)
            },
        )
        .await
        .inspect(|_| self.invalidate(entity))
    }

    /// Compiles a stored version (any version, active or not) into its runtime model.
    pub async fn compile(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
    ) -> RegistryResult<CompiledModel> {
        let row = self.find_version(entity, version).await?;
        let schema = row.parse_schema()?;
        let now = metaengine_store::Timestamp::now().to_rfc3339();
        Ok(compile(entity, version, &schema, &actor.user_id, &now))
    }

    /// The compiled model of a version, for reading (`metaengine compile`, `GET …/compiled`).
    pub async fn compiled(
        &self,
        actor: &Actor,
        entity: &str,
        version: Option<&str>,
    ) -> RegistryResult<CompiledModel> {
        self.access.require_read(actor)?;
        let version = match (version, &self.cache) {
            (Some(v), _) => v.to_owned(),
            (None, Some(cache)) => {
                return match cache.active_model(entity).await {
                    Ok(active) => Ok(active.model.clone()),
                    Err(CacheError::Store(e)) => Err(e.into()),
                    Err(e) => Err(RegistryError::NotFound(e.to_string())),
                };
            }
            (None, None) => self.active_version(actor, entity).await?.version,
        };
        self.compile(actor, entity, &version).await
    }

    /// Deactivates the active version; the entity then has no active version.
    pub async fn deactivate(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
    ) -> RegistryResult<VersionRow> {
        let details = json!({ "version": version });
        self.change(
            actor,
            EventType::VersionDeactivate,
            entity,
            details,
            |audit| async move {
                Ok(self
                    .store
                    .deactivate_version(entity, version, &audit)
                    .await?)
            },
        )
        .await
        .inspect(|_| self.invalidate(entity))
    }

    /// Deletes a version that is not active.
    pub async fn delete_version(
        &self,
        actor: &Actor,
        entity: &str,
        version: &str,
    ) -> RegistryResult<()> {
        let details = json!({ "version": version });
        self.change(
            actor,
            EventType::VersionDelete,
            entity,
            details,
            |audit| async move { Ok(self.store.delete_version(entity, version, &audit).await?) },
        )
        .await
    }

    // ---- audit ----

    /// Audit rows, newest first. A platform admin sees every row; an admin of another tenant only
    /// the rows of its own tenant.
    pub async fn audit(
        &self,
        actor: &Actor,
        mut query: AuditQuery,
    ) -> RegistryResult<Page<AuditRow>> {
        self.access.require_read(actor)?;
        if !self.access.sees_all_tenants(actor) {
            // Asking for another tenant's rows is refused, not silently answered with one's own.
            if let Some(other) = query.tenant_id.as_deref().filter(|t| *t != actor.tenant_id) {
                return Err(RegistryError::Forbidden(format!(
                    "an admin of tenant `{}` may read only its own audit rows, not those of `{other}`",
                    actor.tenant_id
                )));
            }
            query.tenant_id = Some(actor.tenant_id.clone());
        }
        Ok(self.store.query_audit(&query).await?)
    }

    /// Verifies the audit hash chains (SPEC §16): every tenant's for a platform admin (or the
    /// one asked for), only its own for another tenant's admin.
    pub async fn verify_audit(
        &self,
        actor: &Actor,
        tenant: Option<&str>,
    ) -> RegistryResult<VerifyReport> {
        self.access.require_read(actor)?;
        let tenant = if self.access.sees_all_tenants(actor) {
            tenant
        } else {
            if let Some(other) = tenant.filter(|t| *t != actor.tenant_id) {
                return Err(RegistryError::Forbidden(format!(
                    "an admin of tenant `{}` may verify only its own audit rows, not those of `{other}`",
                    actor.tenant_id
                )));
            }
            Some(actor.tenant_id.as_str())
        };
        Ok(self.store.verify_audit(tenant).await?)
    }

    /// Retention now (SPEC §16): deletes the audit rows older than `days` days, one
    /// `audit.purge` checkpoint per tenant. A platform admin's task; `days` 0 keeps everything.
    pub async fn purge_audit(&self, actor: &Actor, days: u32) -> RegistryResult<PurgeReport> {
        self.access.require_change(actor)?;
        match crate::retention::cutoff(days) {
            Some(before) => Ok(self.store.purge_audit(before).await?),
            None => Ok(PurgeReport::default()),
        }
    }
}

fn find_field<'a>(
    fields: &'a mut [Value],
    entity: &str,
    version: &str,
    field: &str,
) -> RegistryResult<&'a mut Value> {
    fields
        .iter_mut()
        .find(|f| f.get("name").and_then(Value::as_str) == Some(field))
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "field `{field}` does not exist in version `{version}` of entity `{entity}`"
            ))
        })
}
