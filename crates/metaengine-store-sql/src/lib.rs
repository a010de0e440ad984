//! The one implementation of the metaengine [`Store`] over sqlx, for PostgreSQL and SQLite:
//! [`SqlStore`]. The backend crates (`metaengine-store-postgres`, `metaengine-store-sqlite`)
//! open the pool with their settings and hand over their embedded migrations; everything else is
//! here, once, as plain code.
//!
//! Key decisions:
//! - Every verb that changes something writes its audit rows in the same transaction.
//! - The two databases differ in a handful of places only, all behind `db.rs` (binding of ids and
//!   timestamps, how a write transaction starts), `changes.rs` (how other processes hear of
//!   a model change) and `record_json.rs` (a record's JSON: built by SQLite, written here from
//!   PostgreSQL's columns); besides, `records.rs` takes two PostgreSQL-only fast paths, chosen
//!   there: an import's batch with `COPY`, and a single write with its audit rows as one
//!   statement (SQLite keeps multi-row inserts and a transaction); the SQL text of the engine's tables is [`MetaSql`], data statements come
//!   from the one query builder (`metaengine_sql::query`).
//! - Changes to one entity are serialized by locking its `meta_entities` row (`FOR UPDATE` on
//!   PostgreSQL; SQLite's one writer with `BEGIN IMMEDIATE`), so concurrent activations queue up
//!   instead of failing.
#![deny(missing_docs)]

mod activation;
mod audit;
mod change_log;
mod changes;
mod conns;
mod db;
mod dependents;
mod meta_sql;
mod record_json;
mod records;
mod rows;

use async_trait::async_trait;
use metaengine_core::CompiledModel;
use metaengine_core::ident::table_name;
use metaengine_core::plan::MigrationStep;
use metaengine_core::policy::RowFilter;
use metaengine_sql::Dialect;
use metaengine_sql::query::{Expansion, Filter, ListQuery, Related, Scope};
use metaengine_store::chain::SealKey;
use metaengine_store::store::RecordBatch;
use metaengine_store::{
    Activation, ActivationAudits, ActivationPlan, AuditQuery, AuditRow, Backend, BatchOutcome,
    BatchWrite, ChangeBatch, ChangeBounds, ChangeRow, EntityRow, Id, ModelChange, NewAudit,
    NewEntity, NewTenant, NewVersion, Page, PageRequest, PurgeReport, RecordPage, RecordWrite,
    Store, StoreError, StoreResult, TenantRow, TenantStatus, Timestamp, VerifyReport, VersionRow,
};
use serde_json::Value;
use sqlx::migrate::Migrator;
use tokio::sync::mpsc;

pub use audit::{AUDIT_ROWS_PER_STATEMENT, Sealer};

/// The migration that added the audit hash chain: the run that applies it chains the rows
/// already there.
const AUDIT_CHAIN_MIGRATION: i64 = 20261207000001;
pub use db::{Db, Pool, WriteGate};
pub use meta_sql::{MODEL_CHANGES_CHANNEL, MetaSql};

use crate::db::{Bind, query};
use crate::records::unique_or;

/// A [`Store`] on one PostgreSQL or SQLite database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
    sql: MetaSql,
    migrator: &'static Migrator,
    sealer: Sealer,
}

impl SqlStore {
    /// A store on `pool`, whose engine tables `migrator` creates and migrates (the backend
    /// crate's embedded migrations for that database).
    pub fn new(pool: Pool, migrator: &'static Migrator) -> Self {
        let sql = match pool.db() {
            Db::Postgres(_) => MetaSql::postgres(),
            Db::Sqlite(..) => MetaSql::sqlite(),
        };
        Self {
            pool,
            sql,
            migrator,
            sealer: Sealer::new(SealKey::random()),
        }
    }

    /// This store with the key that seals the audit rows of its transactions until the chainer
    /// appends them to their chains (SPEC §16). Every instance and command line on one database
    /// must use the same key; without one a store has a random key of its own, and the rows it
    /// leaves unchained look inserted by hand to any other store.
    #[must_use]
    pub fn with_audit_key(mut self, secret: &[u8]) -> Self {
        self.sealer = Sealer::new(SealKey::new(secret));
        self
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The PostgreSQL pool, when the store is on PostgreSQL.
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match self.pool.db() {
            Db::Postgres(p) => Some(p),
            Db::Sqlite(..) => None,
        }
    }

    /// The SQLite pool, when the store is on SQLite.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match self.pool.db() {
            Db::Sqlite(p, _) => Some(p),
            Db::Postgres(_) => None,
        }
    }

    /// The SQL dialect of the database.
    pub fn dialect(&self) -> Dialect {
        match self.pool.db() {
            Db::Postgres(_) => Dialect::Postgres,
            Db::Sqlite(..) => Dialect::Sqlite,
        }
    }

    /// The rows the last analysis (or, on PostgreSQL, `VACUUM`) of `table` found, its name as
    /// the database knows it (`metaengine_sql::analyzed_rows`); `None` when it never ran.
    async fn analyzed_rows(&self, table: &str) -> StoreResult<Option<u64>> {
        let q =
            db::query(metaengine_sql::analyzed_rows(self.dialect())).bind(db::Bind::Text(table));
        let rows = match self.pool.fetch_optional(&q).await? {
            Some(row) => row.opt_int("rows")?,
            None => None,
        };
        Ok(rows.and_then(|n| u64::try_from(n).ok()))
    }

    /// The name of `model`'s data table as the database's catalog and statistics take it:
    /// schema-qualified on PostgreSQL, bare on SQLite.
    fn catalog_name(&self, model: &CompiledModel) -> String {
        match self.dialect() {
            Dialect::Postgres => {
                metaengine_sql::qualified_table(Dialect::Postgres, &model.table_name)
            }
            Dialect::Sqlite => model.table_name.clone(),
        }
    }

    /// Versions of the migrations recorded as applied.
    async fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        let q = query("SELECT version FROM _sqlx_migrations WHERE success");
        let rows = self.pool.fetch_all(&q).await?;
        rows.iter().map(|r| r.int(0)).collect()
    }

    /// One engine row by a prepared statement, if any.
    async fn one<T>(
        &self,
        q: &db::Query<'_>,
        decode: fn(&db::Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.pool
            .fetch_optional(q)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// Every engine row of a prepared statement.
    async fn all<T>(
        &self,
        q: &db::Query<'_>,
        decode: fn(&db::Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.pool.fetch_all(q).await?.iter().map(decode).collect()
    }

    /// Runs one engine statement that returns a row, then its audit row, in a write
    /// transaction; `missing` when it returns none, `on_unique` (if given) for a unique
    /// violation.
    async fn write_row<T>(
        &self,
        q: &db::Query<'_>,
        decode: fn(&db::Row) -> StoreResult<T>,
        audit: &NewAudit,
        missing: impl FnOnce() -> StoreError,
        on_unique: Option<StoreError>,
    ) -> StoreResult<T> {
        let mut tx = self.pool.begin_write().await?;
        let row = match (tx.fetch_optional(q).await, on_unique) {
            (Ok(row), _) => row.ok_or_else(missing)?,
            (Err(e), Some(on_unique)) => return Err(unique_or(e, on_unique)),
            (Err(e), None) => return Err(e),
        };
        let value = decode(&row)?;
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(audit),
        )
        .await?;
        tx.commit().await?;
        Ok(value)
    }
}

/// An `INSERT … RETURNING` that returned no row (`fetch_one`'s error).
fn database_row_missing() -> StoreError {
    db::database(sqlx::Error::RowNotFound)
}

impl SqlStore {
    /// Whether deleting a record of `entity` clears or deletes others (a reference to it with
    /// `onDelete` `setNull` or `cascade`).
    async fn clears_or_cascades(&self, entity: &str) -> StoreResult<bool> {
        // One statement, no transaction: this runs before every delete.
        let q = query(&self.sql.referring_schemas).bind(Bind::Text(entity));
        let referrers = dependents::referrers_in(&self.pool.fetch_all(&q).await?, entity)?;
        Ok(referrers
            .iter()
            .any(|r| r.rule != metaengine_core::OnDelete::Restrict))
    }

    /// A delete that carries out its `setNull` and `cascade` rules first, all in one
    /// transaction with every audit row (see `dependents`).
    async fn delete_with_dependents(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        statement: &metaengine_sql::query::Statement,
        audits: &[NewAudit],
    ) -> StoreResult<Option<String>> {
        let refused = |e| records::write_refused(e, &model.entity);
        let mut tx = self.pool.begin_write().await?;
        let mut all = audits.to_vec();
        if let Some(audit) = audits.first() {
            let changed = dependents::apply(
                &mut tx,
                &self.sql,
                self.dialect(),
                (scope.tenant_id, &model.entity, id),
                audit,
            )
            .await
            .map_err(refused)?;
            all.extend(changed);
        }
        let rows = tx
            .fetch_all(&records::data_query(statement))
            .await
            .map_err(refused)?;
        let Some(row) = rows.first() else {
            tx.rollback().await?;
            return Ok(None);
        };
        let record = record_json::record_json(row, &statement.record)?;
        audit::seal(&mut tx, &self.sql, &self.sealer, &all).await?;
        tx.commit().await.map_err(refused)?;
        Ok(Some(record))
    }

    /// How many records of the tenant refer to record `id` of `entity`, through every reference
    /// of the active versions.
    async fn referrers(&self, entity: &str, tenant: &str, id: &str) -> StoreResult<u64> {
        let q = query(&self.sql.referring_schemas).bind(Bind::Text(entity));
        let mut count = 0u64;
        for r in dependents::referrers_in(&self.pool.fetch_all(&q).await?, entity)? {
            let text = r.link.referrers_count(self.dialect());
            let q = query(&text).bind_all([Bind::Text(tenant), Bind::Text(id)]);
            count += u64::try_from(self.pool.fetch_one(&q).await?.int(0)?).unwrap_or(0);
        }
        Ok(count)
    }
}

#[async_trait]
impl Store for SqlStore {
    fn statements_run(&self) -> u64 {
        self.pool.statements_run()
    }

    fn backend(&self) -> Backend {
        match self.pool.db() {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(..) => Backend::Sqlite,
        }
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await.unwrap_or_default();
        self.pool.migrate(self.migrator).await?;
        if !before.contains(&AUDIT_CHAIN_MIGRATION) {
            let chained = audit::chain_existing(&self.pool, &self.sql).await?;
            if chained > 0 {
                tracing::info!(
                    rows = chained,
                    "chained the audit rows written before the hash chain"
                );
            }
        }
        let captured =
            activation::ensure_change_capture(&self.pool, &self.sql, self.dialect()).await?;
        if captured > 0 {
            tracing::info!(
                tables = captured,
                "installed the change capture of existing tables"
            );
        }
        let after = self.applied_migrations().await?;
        Ok(after.len().saturating_sub(before.len()))
    }

    async fn is_ready(&self) -> StoreResult<bool> {
        let applied = match self.applied_migrations().await {
            Ok(applied) => applied,
            Err(_) => return Ok(false),
        };
        Ok(self.migrator.iter().all(|m| applied.contains(&m.version)))
    }

    async fn create_entity(&self, new: &NewEntity, audit: &NewAudit) -> StoreResult<EntityRow> {
        let q = query(&self.sql.insert_entity).bind_all([
            Bind::Id(Id::new_v7()),
            Bind::Text(&new.name),
            Bind::OptText(new.description.as_deref()),
            Bind::Time(Timestamp::now()),
            Bind::Text(&new.created_by),
        ]);
        let exists = StoreError::EntityExists(new.name.clone());
        let missing = || database_row_missing();
        self.write_row(&q, rows::entity, audit, missing, Some(exists))
            .await
    }

    async fn get_entity(&self, name: &str) -> StoreResult<Option<EntityRow>> {
        let q = query(&self.sql.entity_by_name).bind(Bind::Text(name));
        self.one(&q, rows::entity).await
    }

    async fn list_entities(&self, page: PageRequest) -> StoreResult<Page<EntityRow>> {
        let q = query(&self.sql.list_entities)
            .bind(Bind::Int(page.limit()))
            .bind(Bind::Int(page.offset()));
        let rows = self.all(&q, rows::entity).await?;
        let total = self
            .pool
            .fetch_one(&query(&self.sql.count_entities))
            .await?
            .int(0)?;
        Ok(Page::new(rows, page, u64::try_from(total).unwrap_or(0)))
    }

    async fn entity_exists(&self, name: &str) -> StoreResult<bool> {
        Ok(self.get_entity(name).await?.is_some())
    }

    async fn update_entity(
        &self,
        name: &str,
        description: Option<&str>,
        audit: &NewAudit,
    ) -> StoreResult<EntityRow> {
        let q = query(&self.sql.update_entity).bind_all([
            Bind::Text(name),
            Bind::OptText(description),
            Bind::Time(Timestamp::now()),
        ]);
        let missing = || StoreError::EntityNotFound(name.to_owned());
        self.write_row(&q, rows::entity, audit, missing, None).await
    }

    async fn delete_entity(&self, name: &str, force: bool, audit: &NewAudit) -> StoreResult<bool> {
        let dialect = self.dialect();
        let mut tx = self.pool.begin_write().await?;
        activation::locked_entity(&mut tx, &self.sql, name).await?;
        let table = table_name(name);
        let (exists, has_rows, _) =
            activation::table_state(&mut tx, &self.sql, dialect, &table).await?;
        if has_rows && !force {
            return Err(StoreError::HasRows(name.to_owned()));
        }
        tx.execute(&query(&self.sql.delete_entity).bind(Bind::Text(name)))
            .await?;
        let mut audit = audit.clone();
        if exists {
            if dialect == Dialect::Sqlite {
                // The reference triggers that name the table, on it or on others (PostgreSQL's
                // foreign keys go with `DROP TABLE … CASCADE`).
                let pattern = format!("%{}%", metaengine_core::ident::quote_ident(&table));
                let q = query(metaengine_sql::SQLITE_TRIGGERS_NAMING).bind(Bind::Text(&pattern));
                for row in tx.fetch_all(&q).await? {
                    let name = metaengine_core::ident::quote_ident(&row.text(0)?);
                    tx.execute(&query(&format!("DROP TRIGGER IF EXISTS {name}")))
                        .await?;
                }
            }
            let drop = metaengine_sql::drop_table(dialect, &table);
            tx.execute(&query(&drop)).await?;
            for statement in metaengine_sql::query::drop_change_capture(dialect, &table) {
                tx.execute(&query(&statement)).await?;
            }
            if let Some(Value::Object(details)) = audit.details.as_mut() {
                details.insert("droppedTable".into(), table.clone().into());
                details.insert("hadRows".into(), has_rows.into());
            }
        }
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(&audit),
        )
        .await?;
        changes::notify(&mut tx, &self.sql, name).await?;
        tx.commit().await?;
        Ok(exists)
    }

    async fn hidden_columns(&self, entity: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        activation::locked_entity(&mut tx, &self.sql, entity).await?;
        let hidden =
            activation::hidden_columns_of(&mut tx, &self.sql, self.dialect(), entity).await?;
        tx.rollback().await?;
        Ok(hidden)
    }

    async fn prune_hidden_columns(
        &self,
        entity: &str,
        audit: &NewAudit,
    ) -> StoreResult<Vec<String>> {
        let dialect = self.dialect();
        let mut tx = self.pool.begin_write().await?;
        activation::locked_entity(&mut tx, &self.sql, entity).await?;
        let hidden = activation::hidden_columns_of(&mut tx, &self.sql, dialect, entity).await?;
        let table = table_name(entity);
        for column in &hidden {
            let drop = metaengine_sql::drop_column(dialect, &table, column);
            tx.execute(&query(&drop)).await?;
        }
        let mut audit = audit.clone();
        if let Some(Value::Object(details)) = audit.details.as_mut() {
            details.insert("droppedColumns".into(), serde_json::json!(hidden));
        }
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(&audit),
        )
        .await?;
        tx.commit().await?;
        Ok(hidden)
    }

    async fn create_version(&self, new: &NewVersion, audit: &NewAudit) -> StoreResult<VersionRow> {
        let mut tx = self.pool.begin_write().await?;
        activation::locked_entity(&mut tx, &self.sql, &new.entity_name).await?;
        let q = query(&self.sql.insert_version).bind_all([
            Bind::Id(Id::new_v7()),
            Bind::Text(&new.entity_name),
            Bind::Text(&new.version),
            Bind::Json(&new.schema),
            Bind::Time(Timestamp::now()),
            Bind::Text(&new.created_by),
        ]);
        let row = tx.fetch_one(&q).await.map_err(|e| {
            unique_or(
                e,
                StoreError::VersionExists {
                    entity: new.entity_name.clone(),
                    version: new.version.clone(),
                },
            )
        })?;
        let row = rows::version(&row)?;
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(audit),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn get_version(&self, entity: &str, version: &str) -> StoreResult<Option<VersionRow>> {
        let q = query(&self.sql.version)
            .bind(Bind::Text(entity))
            .bind(Bind::Text(version));
        self.one(&q, rows::version).await
    }

    async fn active_version(&self, entity: &str) -> StoreResult<Option<VersionRow>> {
        let q = query(&self.sql.active_version).bind(Bind::Text(entity));
        self.one(&q, rows::version).await
    }

    async fn list_versions(&self, entity: &str) -> StoreResult<Vec<VersionRow>> {
        let q = query(&self.sql.list_versions).bind(Bind::Text(entity));
        self.all(&q, rows::version).await
    }

    async fn update_version_schema(
        &self,
        entity: &str,
        version: &str,
        expected: &Value,
        schema: &Value,
        audit: &NewAudit,
    ) -> StoreResult<VersionRow> {
        let mut tx = self.pool.begin_write().await?;
        let current = activation::locked_version(&mut tx, &self.sql, entity, version).await?;
        if current.is_active || current.activated_at.is_some() {
            return Err(StoreError::VersionImmutable {
                entity: entity.to_owned(),
                version: version.to_owned(),
            });
        }
        if &current.schema != expected {
            return Err(StoreError::Concurrent(format!("{entity} {version}")));
        }
        let q = query(&self.sql.update_version_schema)
            .bind(Bind::Id(current.id))
            .bind(Bind::Json(schema));
        let row = rows::version(&tx.fetch_one(&q).await?)?;
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(audit),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn delete_version(
        &self,
        entity: &str,
        version: &str,
        audit: &NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        activation::locked_entity(&mut tx, &self.sql, entity).await?;
        let current = activation::locked_version(&mut tx, &self.sql, entity, version).await?;
        if current.is_active {
            return Err(StoreError::VersionActive {
                entity: entity.to_owned(),
                version: version.to_owned(),
            });
        }
        tx.execute(&query(&self.sql.delete_version).bind(Bind::Id(current.id)))
            .await?;
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(audit),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn plan_activation(&self, entity: &str, version: &str) -> StoreResult<ActivationPlan> {
        let mut tx = self.pool.begin().await?;
        let owner = activation::locked_entity(&mut tx, &self.sql, entity).await?;
        let target = activation::locked_version(&mut tx, &self.sql, entity, version).await?;
        let plan =
            activation::plan_locked(&mut tx, &self.sql, self.dialect(), &owner, &target).await?;
        tx.rollback().await?;
        Ok(plan)
    }

    async fn plan_schema(
        &self,
        entity: &str,
        version: &str,
        schema: &Value,
    ) -> StoreResult<ActivationPlan> {
        let mut tx = self.pool.begin().await?;
        let owner = match activation::locked_entity(&mut tx, &self.sql, entity).await {
            // An entity still to be created: its table is planned from nothing.
            Err(StoreError::EntityNotFound(_)) => EntityRow {
                id: Id::new_v7(),
                name: entity.to_owned(),
                description: None,
                active_version: None,
                created_at: Timestamp::now(),
                updated_at: Timestamp::now(),
                created_by: String::new(),
            },
            other => other?,
        };
        let target = VersionRow {
            id: Id::new_v7(),
            entity_name: entity.to_owned(),
            version: version.to_owned(),
            schema: schema.clone(),
            is_active: false,
            created_at: Timestamp::now(),
            created_by: String::new(),
            activated_at: None,
        };
        let plan =
            activation::plan_locked(&mut tx, &self.sql, self.dialect(), &owner, &target).await?;
        tx.rollback().await?;
        Ok(plan)
    }

    async fn activate_version(
        &self,
        entity: &str,
        version: &str,
        audits: &ActivationAudits<'_>,
    ) -> StoreResult<Activation> {
        let mut tx = self.pool.begin_write().await?;
        let owner = activation::locked_entity(&mut tx, &self.sql, entity).await?;
        let target = activation::locked_version(&mut tx, &self.sql, entity, version).await?;
        let plan =
            activation::plan_locked(&mut tx, &self.sql, self.dialect(), &owner, &target).await?;
        if plan.plan.is_breaking() {
            return Err(StoreError::Breaking {
                entity: entity.to_owned(),
                version: version.to_owned(),
                errors: plan.plan.breaking.clone(),
            });
        }
        // The change capture comes off while the table is reshaped (SQLite refuses to drop a
        // column a trigger names; a rewrite of every row is no change of a record), and back on
        // with the new columns below.
        for statement in metaengine_sql::query::drop_change_capture(self.dialect(), &plan.table) {
            tx.execute(&query(&statement)).await?;
        }
        for statement in &plan.statements {
            tx.execute(&query(statement))
                .await
                .map_err(|e| activation::ddl_error(e, entity, version))?;
        }
        let now = Timestamp::now();
        tx.execute(&query(&self.sql.deactivate_all).bind(Bind::Text(entity)))
            .await?;
        let q = query(&self.sql.activate)
            .bind(Bind::Id(target.id))
            .bind(Bind::Time(now));
        let row = rows::version(&tx.fetch_one(&q).await?)?;
        let q = query(&self.sql.set_active_version).bind_all([
            Bind::Text(entity),
            Bind::OptText(Some(version)),
            Bind::Time(now),
        ]);
        tx.execute(&q).await?;
        activation::enforce_references(&mut tx, &self.sql, self.dialect(), entity, version).await?;
        activation::capture_changes(&mut tx, self.dialect(), &row).await?;
        audit::seal(&mut tx, &self.sql, &self.sealer, &audits(&plan)).await?;
        changes::notify(&mut tx, &self.sql, entity).await?;
        tx.commit().await?;
        let indexed = plan
            .plan
            .steps
            .iter()
            .any(|s| matches!(s, MigrationStep::CreateIndex(_)));
        if indexed {
            // New indexes on a table with rows: fresh statistics let the planner use them at
            // once. Best effort: the activation has committed.
            let sql = metaengine_sql::analyze_table(self.dialect(), &plan.table, true);
            if let Err(e) = self.pool.execute_simple(&sql).await {
                tracing::warn!(error = %e, table = %plan.table, "analyze failed");
            }
        }
        Ok(Activation {
            version: row,
            previous: owner.active_version,
            plan,
        })
    }

    async fn deactivate_version(
        &self,
        entity: &str,
        version: &str,
        audit: &NewAudit,
    ) -> StoreResult<VersionRow> {
        let mut tx = self.pool.begin_write().await?;
        activation::locked_entity(&mut tx, &self.sql, entity).await?;
        let mut target = activation::locked_version(&mut tx, &self.sql, entity, version).await?;
        if !target.is_active {
            return Err(StoreError::VersionNotActive {
                entity: entity.to_owned(),
                version: version.to_owned(),
            });
        }
        tx.execute(&query(&self.sql.deactivate_all).bind(Bind::Text(entity)))
            .await?;
        let q = query(&self.sql.set_active_version).bind_all([
            Bind::Text(entity),
            Bind::OptText(None),
            Bind::Time(Timestamp::now()),
        ]);
        tx.execute(&q).await?;
        audit::seal(
            &mut tx,
            &self.sql,
            &self.sealer,
            std::slice::from_ref(audit),
        )
        .await?;
        changes::notify(&mut tx, &self.sql, entity).await?;
        tx.commit().await?;
        target.is_active = false;
        Ok(target)
    }

    async fn model_changes(&self) -> StoreResult<mpsc::Receiver<ModelChange>> {
        changes::watch(&self.pool).await
    }

    async fn list_records(
        &self,
        model: &CompiledModel,
        query: &ListQuery<'_>,
        max_bytes: usize,
    ) -> StoreResult<RecordPage> {
        records::list(&self.pool, self.dialect(), model, query, max_bytes).await
    }

    async fn count_records(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        row_filter: &RowFilter,
        filters: &[Filter],
        related: &[Related<'_>],
    ) -> StoreResult<u64> {
        records::count(
            &self.pool,
            self.dialect(),
            model,
            scope,
            row_filter,
            filters,
            related,
        )
        .await
    }

    async fn get_record(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        row_filter: Option<&RowFilter>,
        expand: &[Expansion<'_>],
    ) -> StoreResult<Option<String>> {
        records::get(
            &self.pool,
            self.dialect(),
            model,
            scope,
            id,
            row_filter,
            expand,
        )
        .await
    }

    async fn record_exists(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        row_filter: &RowFilter,
    ) -> StoreResult<bool> {
        records::exists(&self.pool, self.dialect(), model, scope, id, row_filter).await
    }

    async fn insert_record(
        &self,
        model: &CompiledModel,
        write: RecordWrite<'_>,
        audits: &[NewAudit],
    ) -> StoreResult<String> {
        records::insert(
            &self.pool,
            &self.sql,
            &self.sealer,
            self.dialect(),
            model,
            write,
            audits,
        )
        .await
    }

    async fn insert_records(
        &self,
        model: &CompiledModel,
        batch: RecordBatch<'_>,
        audits: &[NewAudit],
    ) -> StoreResult<u64> {
        records::insert_many(
            &self.pool,
            &self.sql,
            &self.sealer,
            self.dialect(),
            model,
            batch,
            audits,
        )
        .await
    }

    async fn write_batch(
        &self,
        writes: &[BatchWrite<'_>],
        audits: &[NewAudit],
    ) -> StoreResult<BatchOutcome> {
        let dialect = self.dialect();
        // Consecutive creates of one entity become multi-row inserts. When one of those fails
        // (a taken unique value), the batch is rolled back and run again one statement per
        // write, to name the operation that failed.
        let outcome = match records::batch(
            &self.pool,
            &self.sql,
            &self.sealer,
            dialect,
            writes,
            audits,
            true,
        )
        .await?
        {
            BatchOutcome::Failed { .. } => {
                records::batch(
                    &self.pool,
                    &self.sql,
                    &self.sealer,
                    dialect,
                    writes,
                    audits,
                    false,
                )
                .await?
            }
            outcome => outcome,
        };
        // A delete refused for the records still referring to it: how many do, now that
        // nothing of the batch was written (as the single route says).
        match (outcome, writes) {
            (
                BatchOutcome::Failed {
                    index,
                    error: StoreError::StillReferenced { entity, .. },
                },
                writes,
            ) => {
                let count = match writes.get(index) {
                    Some(BatchWrite::Delete {
                        model, scope, id, ..
                    }) => self.referrers(&model.entity, scope.tenant_id, id).await?,
                    _ => 0,
                };
                Ok(BatchOutcome::Failed {
                    index,
                    error: StoreError::StillReferenced { entity, count },
                })
            }
            (outcome, _) => Ok(outcome),
        }
    }

    async fn analyze_records(&self, model: &CompiledModel) -> StoreResult<u64> {
        let dialect = self.dialect();
        let vacuum = match dialect {
            Dialect::Postgres => {
                let table = self.catalog_name(model);
                let q = db::query(metaengine_sql::VACUUM_DUE).bind(db::Bind::Text(&table));
                match self.pool.fetch_optional(&q).await? {
                    Some(row) => row.bool("due")?,
                    None => true,
                }
            }
            Dialect::Sqlite => false,
        };
        let sql = metaengine_sql::analyze_table(dialect, &model.table_name, vacuum);
        // The simple protocol: PostgreSQL's VACUUM is refused in a transaction block.
        self.pool.execute_simple(&sql).await?;
        Ok(self.analyzed_records(model).await?.unwrap_or(0))
    }

    async fn analyzed_records(&self, model: &CompiledModel) -> StoreResult<Option<u64>> {
        self.analyzed_rows(&self.catalog_name(model)).await
    }

    async fn update_record(
        &self,
        model: &CompiledModel,
        write: RecordWrite<'_>,
        expected_row_version: Option<i64>,
        audits: &[NewAudit],
    ) -> StoreResult<Option<String>> {
        let now = Timestamp::now().to_rfc3339();
        let statement = metaengine_sql::query::QueryBuilder::new(self.dialect(), model).update(
            write.scope,
            write.id,
            write.actor,
            &now,
            write.values,
            expected_row_version,
        )?;
        records::write(
            &self.pool,
            &self.sql,
            &self.sealer,
            model,
            &statement,
            audits,
        )
        .await
    }

    async fn delete_record(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        expected_row_version: Option<i64>,
        audits: &[NewAudit],
    ) -> StoreResult<Option<String>> {
        let statement = metaengine_sql::query::QueryBuilder::new(self.dialect(), model).delete(
            scope,
            id,
            expected_row_version,
        )?;
        let done = if self.clears_or_cascades(&model.entity).await? {
            self.delete_with_dependents(model, scope, id, &statement, audits)
                .await
        } else {
            records::write(
                &self.pool,
                &self.sql,
                &self.sealer,
                model,
                &statement,
                audits,
            )
            .await
        };
        match done {
            Err(StoreError::StillReferenced { entity, .. }) => Err(StoreError::StillReferenced {
                count: self.referrers(&model.entity, scope.tenant_id, id).await?,
                entity,
            }),
            other => other,
        }
    }

    async fn append_audit(&self, events: &[NewAudit]) -> StoreResult<()> {
        let mut tx = self.pool.begin_write().await?;
        audit::append(&mut tx, &self.sql, events).await?;
        tx.commit().await
    }

    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditRow>> {
        audit::page(&self.pool, &self.sql, query).await
    }

    async fn purge_audit(&self, before: Timestamp) -> StoreResult<PurgeReport> {
        audit::purge(&self.pool, &self.sql, self.sealer.key(), before).await
    }

    async fn verify_audit(&self, tenant: Option<&str>) -> StoreResult<VerifyReport> {
        audit::verify(&self.pool, &self.sql, self.sealer.key(), tenant).await
    }

    async fn chain_audit(&self) -> StoreResult<u64> {
        audit::chain_sealed(&self.pool, &self.sql, self.sealer.key(), None).await
    }

    async fn chain_audit_older_than(&self, age: std::time::Duration) -> StoreResult<u64> {
        let before = Id::made_since(age);
        audit::chain_sealed(&self.pool, &self.sql, self.sealer.key(), Some(before)).await
    }

    async fn chain_written_audit(&self) -> StoreResult<u64> {
        audit::chain_written(&self.pool, &self.sql, &self.sealer).await
    }

    async fn vacuum_audit(&self) -> StoreResult<Option<u64>> {
        if !self.pool.is_postgres() {
            return Ok(None);
        }
        // The simple protocol: PostgreSQL's VACUUM is refused in a transaction block.
        self.pool
            .execute_simple(&format!("VACUUM {}", self.sql.audit_table))
            .await?;
        Ok(Some(
            self.analyzed_rows(&self.sql.audit_table)
                .await?
                .unwrap_or(0),
        ))
    }

    async fn vacuum_audit_pending(&self) -> StoreResult<()> {
        if self.pool.is_postgres() {
            // The simple protocol: PostgreSQL's VACUUM is refused in a transaction block.
            self.pool
                .execute_simple(&format!("VACUUM {}", self.sql.audit_pending))
                .await?;
        }
        Ok(())
    }

    async fn audit_dead_rows(&self) -> StoreResult<Option<(u64, u64)>> {
        if !self.pool.is_postgres() {
            return Ok(None);
        }
        let q = db::query(
            "SELECT n_dead_tup AS dead, greatest(c.reltuples, 0)::int8 AS live \
             FROM pg_catalog.pg_stat_user_tables s JOIN pg_catalog.pg_class c ON c.oid = s.relid \
             WHERE s.relid = to_regclass($1)",
        )
        .bind(db::Bind::Text(&self.sql.audit_table));
        let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        Ok(Some(match self.pool.fetch_optional(&q).await? {
            Some(row) => (count(row.opt_int("dead")?), count(row.opt_int("live")?)),
            None => (0, 0),
        }))
    }

    async fn wait_for_sealed_audit(&self) {
        self.sealer.wait_written().await;
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRow>> {
        let q = query(&self.sql.tenant).bind(Bind::Text(id));
        self.one(&q, rows::tenant).await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>> {
        self.all(&query(&self.sql.list_tenants), rows::tenant).await
    }

    async fn create_tenant(&self, new: &NewTenant, audit: &NewAudit) -> StoreResult<TenantRow> {
        let q = query(&self.sql.insert_tenant).bind_all([
            Bind::Text(&new.id),
            Bind::Text(&new.name),
            Bind::Time(Timestamp::now()),
        ]);
        let exists = StoreError::TenantExists(new.id.clone());
        let missing = || database_row_missing();
        self.write_row(&q, rows::tenant, audit, missing, Some(exists))
            .await
    }

    async fn update_tenant(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<TenantStatus>,
        audit: &NewAudit,
    ) -> StoreResult<TenantRow> {
        let q = query(&self.sql.update_tenant).bind_all([
            Bind::Text(id),
            Bind::OptText(name),
            Bind::OptText(status.map(TenantStatus::as_str)),
        ]);
        let missing = || StoreError::TenantNotFound(id.to_owned());
        self.write_row(&q, rows::tenant, audit, missing, None).await
    }

    async fn changes_after(
        &self,
        after: i64,
        limit: u32,
        records: bool,
    ) -> StoreResult<ChangeBatch> {
        change_log::after(&self.pool, self.dialect(), after, limit, records).await
    }

    async fn changes_of(
        &self,
        scope: Scope<'_>,
        entities: &[String],
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChangeRow>> {
        change_log::of(
            &self.pool,
            self.dialect(),
            scope,
            entities,
            (after, through),
            limit,
        )
        .await
    }

    async fn change_bounds(&self) -> StoreResult<ChangeBounds> {
        change_log::bounds(&self.pool, self.dialect()).await
    }

    async fn settled_changes_end(&self) -> StoreResult<i64> {
        change_log::settled_end(&self.pool, self.dialect()).await
    }

    async fn purge_changes(&self, before: Timestamp) -> StoreResult<u64> {
        change_log::purge(&self.pool, self.dialect(), before).await
    }

    async fn announce_changes(&self) -> StoreResult<()> {
        change_log::announce(&self.pool).await
    }

    async fn watch_changes(&self) -> StoreResult<mpsc::Receiver<()>> {
        change_log::watch(&self.pool).await
    }
}
