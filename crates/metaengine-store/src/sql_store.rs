//! The one implementation of [`Store`](crate::Store) over sqlx, written once and instantiated by
//! each backend crate with [`impl_sqlx_store!`](crate::impl_sqlx_store).
//!
//! Why a macro and not generics: sqlx code generic over `Database` needs a dozen higher-ranked
//! bounds and trips the compiler's `Send` inference for async trait methods; a macro expanded with
//! a concrete database type has neither problem and still keeps one copy of the logic. A backend
//! supplies a struct with fields `pool: sqlx::Pool<DB>` and `sql: MetaSql`, an inherent
//! `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error>` (how it
//! serializes writers), an inherent `async fn watch_model_changes(&self)` (how other processes'
//! changes reach this one), its [`Dialect`](metaengine_sql::Dialect) and a
//! `static MIGRATOR: sqlx::migrate::Migrator`.

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use futures_util;
    pub use metaengine_core;
    pub use metaengine_sql;
    pub use serde_json;
    pub use sqlx;
    pub use tokio;
}

use metaengine_core::EntitySchema;
use metaengine_core::ident::{SYSTEM_COLUMNS, column_name};

/// Audit rows per multi-row insert (12 values each: well under SQLite's 32,766 bound values).
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1_000;

/// Columns of a data table that are neither system columns nor used by a field of `schema`.
pub fn hidden_columns(columns: &[String], schema: Option<&EntitySchema>) -> Vec<String> {
    columns
        .iter()
        .filter(|c| !SYSTEM_COLUMNS.contains(&c.as_str()))
        .filter(|c| schema.is_none_or(|s| !s.fields.iter().any(|f| column_name(&f.name) == **c)))
        .cloned()
        .collect()
}

/// Fields of `next` whose column already exists in the table with a storage type other than the
/// plan starts from (`live`: column name and catalog type): a hidden column that comes back with
/// another type, or a table shaped by a version since deleted. Each is a breaking change at the
/// field's `type`, naming the live type; a field the plan already refuses there is not repeated.
pub fn live_column_problems(
    dialect: metaengine_sql::Dialect,
    next: &EntitySchema,
    plan: &metaengine_core::plan::MigrationPlan,
    live: &[(String, String)],
) -> Vec<metaengine_core::validate::Problem> {
    use metaengine_core::plan::{ColumnDef, MigrationStep};
    let mut problems = Vec::new();
    for (i, field) in next.fields.iter().enumerate() {
        let pointer = format!("/fields/{i}/type");
        let column = column_name(&field.name);
        let Some((_, live_type)) = live.iter().find(|(c, _)| *c == column) else {
            continue;
        };
        if plan.breaking.iter().any(|p| p.pointer == pointer) {
            continue;
        }
        let before = plan.steps.iter().find_map(|step| match step {
            MigrationStep::WidenColumn {
                column: c, from, ..
            }
            | MigrationStep::NarrowColumn {
                column: c, from, ..
            } if *c == column => Some(from.clone()),
            _ => None,
        });
        let before = before.unwrap_or_else(|| ColumnDef::of(field, true));
        if !metaengine_sql::stores_as(dialect, live_type, &before) {
            let (name, ty) = (&field.name, field.field_type);
            problems.push(metaengine_core::validate::Problem::new(
                pointer,
                format!(
                    "field `{name}` is `{ty}`, but its column `{column}` in the data table stores \
                     `{live_type}` (left by an earlier version); give the field the type it had, \
                     or prune the hidden column first"
                ),
            ));
        }
    }
    problems
}

/// Maps a failure of planned DDL: rows that violate a new constraint are a refusal the user can
/// act on; anything else is a database error.
pub fn ddl_error(e: sqlx::Error, entity: &str, version: &str) -> crate::StoreError {
    let reason = match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            "existing rows have duplicate values for a new unique index"
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23502") => {
            "existing rows have no value for a field that becomes required"
        }
        _ => return crate::StoreError::Database(e),
    };
    crate::StoreError::RowsConflict {
        entity: entity.to_owned(),
        version: version.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Parses a stored schema document.
pub fn parse_schema(row: &crate::VersionRow) -> Result<EntitySchema, crate::StoreError> {
    serde_json::from_value(row.schema.clone()).map_err(|_| crate::StoreError::CorruptSchema {
        entity: row.entity_name.clone(),
        version: row.version.clone(),
    })
}

/// Maps a unique violation to `on_unique`, any other error to [`StoreError::Database`](crate::StoreError).
pub fn unique_or(e: sqlx::Error, on_unique: crate::StoreError) -> crate::StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => on_unique,
        _ => crate::StoreError::Database(e),
    }
}

/// Implements [`Store`](crate::Store) for a backend struct; see the module docs.
#[macro_export]
macro_rules! impl_sqlx_store {
    ($store:ty, $db:ty, $backend:expr, $dialect:expr, $migrator:expr) => {
        impl $store {
            /// Versions of the migrations recorded as applied.
            async fn applied_migrations(&self) -> Result<Vec<i64>, $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                Ok(
                    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            /// Writes audit rows with multi-row inserts of up to `AUDIT_ROWS_PER_STATEMENT` rows
            /// (the batched writer's flushes, an import's batches): one round trip per chunk. A
            /// single row (every metadata change) keeps its statement prepared.
            async fn insert_audits(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                audits: &[$crate::NewAudit],
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                for chunk in audits.chunks($crate::sql_store::AUDIT_ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(&sql.insert_audit);
                    insert.push(" ");
                    insert.push_values(chunk, |mut row, a| {
                        row.push_bind($crate::Id::new_v7())
                            .push_bind($crate::Id::new_v7().to_string())
                            .push_bind(a.event_type.as_str())
                            .push_bind($crate::Timestamp::now())
                            .push_bind(&a.actor.user_id)
                            .push_bind(&a.actor.tenant_id)
                            .push_bind(&a.actor.realm_id)
                            .push_bind(a.event_type.action())
                            .push_bind(&a.resource)
                            .push_bind(&a.details)
                            .push_bind(a.result.as_str())
                            .push_bind(&a.error_message);
                    });
                    // Prepared only for one row: other counts vary from flush to flush.
                    insert
                        .build()
                        .persistent(chunk.len() == 1)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            async fn locked_version(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                entity: &str,
                version: &str,
            ) -> Result<$crate::VersionRow, $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                sqlx::query_as::<_, $crate::VersionRow>(&sql.version_locked)
                    .bind(entity)
                    .bind(version)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| $crate::StoreError::VersionNotFound {
                        entity: entity.to_owned(),
                        version: version.to_owned(),
                    })
            }

            /// A data statement with its values bound (one shape of value: `SqlValue`).
            fn data_query<'q>(
                statement: &'q $crate::sql_store::__private::metaengine_sql::query::Statement,
            ) -> $crate::sql_store::__private::sqlx::query::Query<
                'q,
                $db,
                <$db as $crate::sql_store::__private::sqlx::Database>::Arguments<'q>,
            > {
                use $crate::sql_store::__private::metaengine_core::SqlValue;
                let mut q = $crate::sql_store::__private::sqlx::query(&statement.sql);
                for value in &statement.binds {
                    q = match value {
                        SqlValue::Null => q.bind(None::<&str>),
                        SqlValue::Text(s) => q.bind(s.as_str()),
                        SqlValue::Int(i) => q.bind(*i),
                        SqlValue::Float(f) => q.bind(*f),
                        SqlValue::Bool(b) => q.bind(*b),
                    };
                }
                q
            }

            /// [`Store::write_batch`] in one transaction; `group` turns runs of creates of one
            /// entity into multi-row inserts (then a failure names the run's first write).
            async fn run_batch(
                &self,
                writes: &[$crate::store::BatchWrite<'_>],
                audits: &[$crate::NewAudit],
                group: bool,
            ) -> $crate::StoreResult<$crate::store::BatchOutcome> {
                use $crate::sql_store::__private::metaengine_sql::query::{NewRow, QueryBuilder};
                use $crate::sql_store::__private::sqlx::Row;
                use $crate::store::{BatchOutcome, BatchWrite};
                /// Statements for the writes `first..first + len`.
                struct Step<'m> {
                    first: usize,
                    len: usize,
                    model: &'m $crate::sql_store::__private::metaengine_core::CompiledModel,
                    statements: Vec<$crate::sql_store::__private::metaengine_sql::query::Statement>,
                }
                let now = $crate::Timestamp::now().to_rfc3339();
                let mut steps: Vec<Step<'_>> = Vec::with_capacity(writes.len());
                let mut index = 0;
                while let Some(w) = writes.get(index) {
                    // A run of creates of one model, scope and actor.
                    let run = match *w {
                        BatchWrite::Insert { model, write } if group => writes[index..]
                            .iter()
                            .take_while(|o| {
                                matches!(**o, BatchWrite::Insert { model: m, write: x }
                                    if std::ptr::eq(m, model) && x.scope == write.scope && x.actor == write.actor)
                            })
                            .count(),
                        _ => 1,
                    };
                    let built = match *w {
                        BatchWrite::Insert { model, write } if run > 1 => {
                            let rows: Vec<NewRow<'_>> = writes[index..index + run]
                                .iter()
                                .filter_map(|o| match *o {
                                    BatchWrite::Insert { write, .. } => Some(NewRow {
                                        id: write.id,
                                        values: write.values,
                                    }),
                                    _ => None,
                                })
                                .collect();
                            QueryBuilder::new($dialect, model)
                                .insert_many_returning(write.scope, write.actor, &now, &rows)
                                .map(|statements| (model, statements))
                        }
                        BatchWrite::Insert { model, write } => QueryBuilder::new($dialect, model)
                            .insert(write.scope, write.id, write.actor, &now, write.values)
                            .map(|s| (model, vec![s])),
                        BatchWrite::Update {
                            model,
                            write,
                            expected_row_version,
                        } => QueryBuilder::new($dialect, model)
                            .update(
                                write.scope,
                                write.id,
                                write.actor,
                                &now,
                                write.values,
                                Some(expected_row_version),
                            )
                            .map(|s| (model, vec![s])),
                        BatchWrite::Delete {
                            model,
                            scope,
                            id,
                            expected_row_version,
                        } => QueryBuilder::new($dialect, model)
                            .delete(scope, id, Some(expected_row_version))
                            .map(|s| (model, vec![s])),
                    };
                    match built {
                        Ok((model, statements)) => steps.push(Step {
                            first: index,
                            len: run,
                            model,
                            statements,
                        }),
                        Err(e) => {
                            return Ok(BatchOutcome::Failed {
                                index,
                                error: e.into(),
                            });
                        }
                    }
                    index += run;
                }
                // Dropping the transaction on an early return rolls it back.
                let mut tx = self.begin_write().await?;
                let mut records = Vec::with_capacity(writes.len());
                for step in &steps {
                    let mut returned = Vec::with_capacity(step.len);
                    for statement in &step.statements {
                        match Self::data_query(statement).fetch_all(&mut *tx).await {
                            Ok(rows) => returned.extend(rows),
                            Err(e) => {
                                let error = $crate::sql_store::unique_or(
                                    e,
                                    $crate::StoreError::Unique(step.model.entity.clone()),
                                );
                                return Ok(BatchOutcome::Failed {
                                    index: step.first,
                                    error,
                                });
                            }
                        }
                    }
                    if step.len == 1 {
                        match returned.first() {
                            Some(row) => records.push(row.try_get::<String, _>("record")?),
                            None => return Ok(BatchOutcome::NoRow { index: step.first }),
                        }
                        continue;
                    }
                    // A multi-row insert: its rows back in the writes' order, by id.
                    let mut by_id = std::collections::HashMap::with_capacity(returned.len());
                    for row in &returned {
                        by_id.insert(
                            row.try_get::<String, _>("__id")?,
                            row.try_get::<String, _>("record")?,
                        );
                    }
                    for (offset, w) in writes[step.first..step.first + step.len].iter().enumerate() {
                        let id = match *w {
                            BatchWrite::Insert { write, .. } => write.id,
                            _ => "",
                        };
                        match by_id.remove(id) {
                            Some(record) => records.push(record),
                            None => {
                                return Ok(BatchOutcome::NoRow {
                                    index: step.first + offset,
                                });
                            }
                        }
                    }
                }
                Self::insert_audits(&mut tx, &self.sql, audits).await?;
                tx.commit().await?;
                Ok(BatchOutcome::Written(records))
            }

            /// Runs a record write (insert, update, delete) with its audit rows in one
            /// transaction; the record the statement returns, if any.
            async fn write_record(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                statement: $crate::sql_store::__private::metaengine_sql::query::Statement,
                audits: &[$crate::NewAudit],
            ) -> Result<Option<String>, $crate::StoreError> {
                use $crate::sql_store::__private::sqlx::Row;
                let mut tx = self.pool.begin().await?;
                let row = Self::data_query(&statement)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::sql_store::unique_or(
                            e,
                            $crate::StoreError::Unique(model.entity.clone()),
                        )
                    })?;
                let record = match row {
                    Some(row) => Some(row.try_get::<String, _>("record")?),
                    None => None,
                };
                if record.is_some() {
                    Self::insert_audits(&mut tx, &self.sql, audits).await?;
                }
                tx.commit().await?;
                Ok(record)
            }

            /// Tells other processes that `entity`'s active model changed (on commit).
            async fn notify_model_change(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                entity: &str,
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                if let Some(notify) = &sql.notify_model_change {
                    sqlx::query(notify).bind(entity).execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// The data table as it is: exists, has rows, its columns.
            async fn table_state(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                table: &str,
            ) -> Result<(bool, bool, Vec<String>), $crate::StoreError> {
                use $crate::sql_store::__private::{metaengine_sql, sqlx};
                let exists: bool = sqlx::query_scalar(&sql.table_exists)
                    .bind(table)
                    .fetch_one(&mut **tx)
                    .await?;
                if !exists {
                    return Ok((false, false, Vec::new()));
                }
                let columns: Vec<String> = sqlx::query_scalar(&sql.table_columns)
                    .bind(table)
                    .fetch_all(&mut **tx)
                    .await?;
                let has_rows: bool = sqlx::query_scalar(&metaengine_sql::has_rows($dialect, table))
                    .fetch_one(&mut **tx)
                    .await?;
                Ok((true, has_rows, columns))
            }

            /// The versions of `entity` (oldest first) and the one that shaped its table.
            async fn versions_and_shaper(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                entity: &str,
            ) -> Result<(Vec<$crate::VersionRow>, Option<usize>), $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                let versions = sqlx::query_as::<_, $crate::VersionRow>(&sql.list_versions)
                    .bind(entity)
                    .fetch_all(&mut **tx)
                    .await?;
                let shaper = versions
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.activated_at.is_some())
                    .max_by_key(|(_, v)| (v.activated_at, v.id))
                    .map(|(i, _)| i);
                Ok((versions, shaper))
            }

            /// Plans the activation of `target` from the table as it is (inside the caller's
            /// transaction, under the entity's lock).
            async fn plan_locked(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                owner: &$crate::EntityRow,
                target: &$crate::VersionRow,
            ) -> Result<$crate::ActivationPlan, $crate::StoreError> {
                use $crate::sql_store::__private::{metaengine_core as core, metaengine_sql, sqlx};
                use $crate::sql_store::parse_schema;
                let next = parse_schema(target)?;
                let table = core::ident::table_name(&owner.name);
                let (exists, has_rows, columns) = Self::table_state(tx, sql, &table).await?;
                let (versions, shaper) = Self::versions_and_shaper(tx, sql, &owner.name).await?;
                let shaper = shaper.and_then(|i| versions.get(i)).filter(|_| exists);
                let previous = shaper.map(parse_schema).transpose()?;
                let hidden_columns = $crate::sql_store::hidden_columns(&columns, previous.as_ref());
                let hidden_fields = hidden_columns
                    .iter()
                    .filter_map(|column| {
                        versions
                            .iter()
                            .rev()
                            .filter_map(|v| parse_schema(v).ok())
                            .find_map(|s| {
                                s.fields
                                    .into_iter()
                                    .find(|f| core::ident::column_name(&f.name) == *column)
                            })
                    })
                    .collect();
                let state = core::plan::TableState {
                    exists,
                    has_rows,
                    hidden_columns,
                    hidden_fields,
                };
                let mut plan = core::plan::plan_migration(&table, previous.as_ref(), &next, &state);
                if exists {
                    let live: Vec<(String, String)> =
                        sqlx::query_as(&sql.table_column_types)
                            .bind(&table)
                            .fetch_all(&mut **tx)
                            .await?;
                    let problems =
                        $crate::sql_store::live_column_problems($dialect, &next, &plan, &live);
                    plan.breaking.extend(problems);
                    for check in &plan.checks {
                        let (text, binds) = metaengine_sql::data_check($dialect, &table, check);
                        let mut query = sqlx::query_scalar::<_, bool>(&text);
                        for value in binds {
                            query = query.bind(value);
                        }
                        if query.fetch_one(&mut **tx).await? {
                            plan.breaking.push(core::validate::Problem::new(
                                check.pointer.clone(),
                                check.message.clone(),
                            ));
                        }
                    }
                }
                let statements = metaengine_sql::render_plan($dialect, &table, &plan);
                Ok($crate::ActivationPlan {
                    entity: owner.name.clone(),
                    version: target.version.clone(),
                    previous: owner.active_version.clone(),
                    shaped_by: shaper.map(|v| v.version.clone()),
                    table,
                    plan,
                    statements,
                })
            }

            async fn locked_entity(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                entity: &str,
            ) -> Result<$crate::EntityRow, $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                sqlx::query_as::<_, $crate::EntityRow>(&sql.entity_by_name_locked)
                    .bind(entity)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| $crate::StoreError::EntityNotFound(entity.to_owned()))
            }
        }

        #[$crate::sql_store::__private::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> $crate::Backend {
                $backend
            }

            async fn migrate(&self) -> $crate::StoreResult<usize> {
                let before = self.applied_migrations().await.unwrap_or_default();
                $migrator.run(&self.pool).await?;
                let after = self.applied_migrations().await?;
                Ok(after.len().saturating_sub(before.len()))
            }

            async fn is_ready(&self) -> $crate::StoreResult<bool> {
                let applied = match self.applied_migrations().await {
                    Ok(applied) => applied,
                    Err(_) => return Ok(false),
                };
                Ok($migrator.iter().all(|m| applied.contains(&m.version)))
            }

            async fn create_entity(
                &self,
                new: &$crate::NewEntity,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::EntityRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<_, $crate::EntityRow>(&self.sql.insert_entity)
                    .bind($crate::Id::new_v7())
                    .bind(&new.name)
                    .bind(&new.description)
                    .bind($crate::Timestamp::now())
                    .bind(&new.created_by)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::sql_store::unique_or(
                            e,
                            $crate::StoreError::EntityExists(new.name.clone()),
                        )
                    })?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn get_entity(
                &self,
                name: &str,
            ) -> $crate::StoreResult<Option<$crate::EntityRow>> {
                use $crate::sql_store::__private::sqlx;
                Ok(
                    sqlx::query_as::<_, $crate::EntityRow>(&self.sql.entity_by_name)
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn list_entities(
                &self,
                page: $crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<$crate::EntityRow>> {
                use $crate::sql_store::__private::sqlx;
                let rows = sqlx::query_as::<_, $crate::EntityRow>(&self.sql.list_entities)
                    .bind(page.limit())
                    .bind(page.offset())
                    .fetch_all(&self.pool)
                    .await?;
                let total: i64 = sqlx::query_scalar(&self.sql.count_entities)
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::Page::new(
                    rows,
                    page,
                    u64::try_from(total).unwrap_or(0),
                ))
            }

            async fn entity_exists(&self, name: &str) -> $crate::StoreResult<bool> {
                Ok(self.get_entity(name).await?.is_some())
            }

            async fn update_entity(
                &self,
                name: &str,
                description: Option<&str>,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::EntityRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<_, $crate::EntityRow>(&self.sql.update_entity)
                    .bind(name)
                    .bind(description)
                    .bind($crate::Timestamp::now())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| $crate::StoreError::EntityNotFound(name.to_owned()))?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn delete_entity(
                &self,
                name: &str,
                force: bool,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql_store::__private::{
                    metaengine_core, metaengine_sql, serde_json, sqlx,
                };
                let mut tx = self.begin_write().await?;
                Self::locked_entity(&mut tx, &self.sql, name).await?;
                let table = metaengine_core::ident::table_name(name);
                let (exists, has_rows, _) = Self::table_state(&mut tx, &self.sql, &table).await?;
                if has_rows && !force {
                    return Err($crate::StoreError::HasRows(name.to_owned()));
                }
                sqlx::query(&self.sql.delete_entity)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                let mut audit = audit.clone();
                if exists {
                    sqlx::query(&metaengine_sql::drop_table($dialect, &table))
                        .execute(&mut *tx)
                        .await?;
                    if let Some(serde_json::Value::Object(details)) = audit.details.as_mut() {
                        details.insert("droppedTable".into(), table.clone().into());
                        details.insert("hadRows".into(), has_rows.into());
                    }
                }
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(&audit)).await?;
                Self::notify_model_change(&mut tx, &self.sql, name).await?;
                tx.commit().await?;
                Ok(exists)
            }

            async fn hidden_columns(&self, entity: &str) -> $crate::StoreResult<Vec<String>> {
                use $crate::sql_store::__private::metaengine_core;
                let mut tx = self.pool.begin().await?;
                Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let table = metaengine_core::ident::table_name(entity);
                let (_, _, columns) = Self::table_state(&mut tx, &self.sql, &table).await?;
                let (versions, shaper) =
                    Self::versions_and_shaper(&mut tx, &self.sql, entity).await?;
                let schema = shaper
                    .and_then(|i| versions.get(i))
                    .map($crate::sql_store::parse_schema)
                    .transpose()?;
                tx.rollback().await?;
                Ok($crate::sql_store::hidden_columns(&columns, schema.as_ref()))
            }

            async fn prune_hidden_columns(
                &self,
                entity: &str,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<Vec<String>> {
                use $crate::sql_store::__private::{
                    metaengine_core, metaengine_sql, serde_json, sqlx,
                };
                let mut tx = self.begin_write().await?;
                Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let table = metaengine_core::ident::table_name(entity);
                let (_, _, columns) = Self::table_state(&mut tx, &self.sql, &table).await?;
                let (versions, shaper) =
                    Self::versions_and_shaper(&mut tx, &self.sql, entity).await?;
                let schema = shaper
                    .and_then(|i| versions.get(i))
                    .map($crate::sql_store::parse_schema)
                    .transpose()?;
                let hidden = $crate::sql_store::hidden_columns(&columns, schema.as_ref());
                for column in &hidden {
                    sqlx::query(&metaengine_sql::drop_column($dialect, &table, column))
                        .execute(&mut *tx)
                        .await?;
                }
                let mut audit = audit.clone();
                if let Some(serde_json::Value::Object(details)) = audit.details.as_mut() {
                    details.insert("droppedColumns".into(), serde_json::json!(hidden));
                }
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(&audit)).await?;
                tx.commit().await?;
                Ok(hidden)
            }

            async fn create_version(
                &self,
                new: &$crate::NewVersion,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::VersionRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                Self::locked_entity(&mut tx, &self.sql, &new.entity_name).await?;
                let row = sqlx::query_as::<_, $crate::VersionRow>(&self.sql.insert_version)
                    .bind($crate::Id::new_v7())
                    .bind(&new.entity_name)
                    .bind(&new.version)
                    .bind(&new.schema)
                    .bind($crate::Timestamp::now())
                    .bind(&new.created_by)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::sql_store::unique_or(
                            e,
                            $crate::StoreError::VersionExists {
                                entity: new.entity_name.clone(),
                                version: new.version.clone(),
                            },
                        )
                    })?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn get_version(
                &self,
                entity: &str,
                version: &str,
            ) -> $crate::StoreResult<Option<$crate::VersionRow>> {
                use $crate::sql_store::__private::sqlx;
                Ok(sqlx::query_as::<_, $crate::VersionRow>(&self.sql.version)
                    .bind(entity)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn active_version(
                &self,
                entity: &str,
            ) -> $crate::StoreResult<Option<$crate::VersionRow>> {
                use $crate::sql_store::__private::sqlx;
                Ok(
                    sqlx::query_as::<_, $crate::VersionRow>(&self.sql.active_version)
                        .bind(entity)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn list_versions(
                &self,
                entity: &str,
            ) -> $crate::StoreResult<Vec<$crate::VersionRow>> {
                use $crate::sql_store::__private::sqlx;
                Ok(
                    sqlx::query_as::<_, $crate::VersionRow>(&self.sql.list_versions)
                        .bind(entity)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            async fn update_version_schema(
                &self,
                entity: &str,
                version: &str,
                expected: &$crate::sql_store::__private::serde_json::Value,
                schema: &$crate::sql_store::__private::serde_json::Value,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::VersionRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let current = Self::locked_version(&mut tx, &self.sql, entity, version).await?;
                if current.is_active || current.activated_at.is_some() {
                    return Err($crate::StoreError::VersionImmutable {
                        entity: entity.to_owned(),
                        version: version.to_owned(),
                    });
                }
                if &current.schema != expected {
                    return Err($crate::StoreError::Concurrent(format!(
                        "{entity} {version}"
                    )));
                }
                let row = sqlx::query_as::<_, $crate::VersionRow>(&self.sql.update_version_schema)
                    .bind(current.id)
                    .bind(schema)
                    .fetch_one(&mut *tx)
                    .await?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn delete_version(
                &self,
                entity: &str,
                version: &str,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<()> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let current = Self::locked_version(&mut tx, &self.sql, entity, version).await?;
                if current.is_active {
                    return Err($crate::StoreError::VersionActive {
                        entity: entity.to_owned(),
                        version: version.to_owned(),
                    });
                }
                sqlx::query(&self.sql.delete_version)
                    .bind(current.id)
                    .execute(&mut *tx)
                    .await?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn plan_activation(
                &self,
                entity: &str,
                version: &str,
            ) -> $crate::StoreResult<$crate::ActivationPlan> {
                let mut tx = self.pool.begin().await?;
                let owner = Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let target = Self::locked_version(&mut tx, &self.sql, entity, version).await?;
                let plan = Self::plan_locked(&mut tx, &self.sql, &owner, &target).await?;
                tx.rollback().await?;
                Ok(plan)
            }

            async fn activate_version(
                &self,
                entity: &str,
                version: &str,
                audits: &$crate::ActivationAudits<'_>,
            ) -> $crate::StoreResult<$crate::Activation> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let owner = Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let target = Self::locked_version(&mut tx, &self.sql, entity, version).await?;
                let plan = Self::plan_locked(&mut tx, &self.sql, &owner, &target).await?;
                if plan.plan.is_breaking() {
                    return Err($crate::StoreError::Breaking {
                        entity: entity.to_owned(),
                        version: version.to_owned(),
                        errors: plan.plan.breaking.clone(),
                    });
                }
                for statement in &plan.statements {
                    sqlx::query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| $crate::sql_store::ddl_error(e, entity, version))?;
                }
                let now = $crate::Timestamp::now();
                sqlx::query(&self.sql.deactivate_all)
                    .bind(entity)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query_as::<_, $crate::VersionRow>(&self.sql.activate)
                    .bind(target.id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(&self.sql.set_active_version)
                    .bind(entity)
                    .bind(Some(version))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                Self::insert_audits(&mut tx, &self.sql, &audits(&plan)).await?;
                Self::notify_model_change(&mut tx, &self.sql, entity).await?;
                tx.commit().await?;
                let indexed = plan.plan.steps.iter().any(|s| {
                    matches!(
                        s,
                        $crate::sql_store::__private::metaengine_core::plan::MigrationStep::CreateIndex(_)
                    )
                });
                if indexed {
                    // New indexes on a table with rows: fresh statistics let the planner use
                    // them at once. Best effort: the activation has committed.
                    let sql = $crate::sql_store::__private::metaengine_sql::analyze_table(
                        $dialect,
                        &plan.table,
                    );
                    // The simple protocol: VACUUM is refused in a transaction block.
                    if let Err(e) = sqlx::raw_sql(&sql).execute(&self.pool).await {
                        tracing::warn!(error = %e, table = %plan.table, "analyze failed");
                    }
                }
                Ok($crate::Activation {
                    version: row,
                    previous: owner.active_version,
                    plan,
                })
            }

            async fn deactivate_version(
                &self,
                entity: &str,
                version: &str,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::VersionRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let mut target = Self::locked_version(&mut tx, &self.sql, entity, version).await?;
                if !target.is_active {
                    return Err($crate::StoreError::VersionNotActive {
                        entity: entity.to_owned(),
                        version: version.to_owned(),
                    });
                }
                sqlx::query(&self.sql.deactivate_all)
                    .bind(entity)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&self.sql.set_active_version)
                    .bind(entity)
                    .bind(None::<&str>)
                    .bind($crate::Timestamp::now())
                    .execute(&mut *tx)
                    .await?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                Self::notify_model_change(&mut tx, &self.sql, entity).await?;
                tx.commit().await?;
                target.is_active = false;
                Ok(target)
            }

            async fn list_records(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                query: &$crate::sql_store::__private::metaengine_sql::query::ListQuery<'_>,
                max_bytes: usize,
            ) -> $crate::StoreResult<$crate::RecordPage> {
                use $crate::sql_store::__private::futures_util::TryStreamExt as _;
                use $crate::sql_store::__private::metaengine_sql::query::{Cursor, QueryBuilder};
                use $crate::sql_store::__private::sqlx::Row;
                let statement = QueryBuilder::new($dialect, model).list(query)?;
                let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
                let mut rows = Self::data_query(&statement).fetch(&self.pool);
                let mut records = Vec::with_capacity(limit.min(128));
                let mut bytes = 0usize;
                // The last row taken: its key is where the next page starts. Decoded once, at
                // the end, and only when there is a next page.
                let mut last = None;
                let mut more = false;
                while let Some(row) = rows.try_next().await? {
                    if records.len() == limit {
                        more = true;
                        break;
                    }
                    let record = row.try_get::<String, _>("record")?;
                    bytes = bytes.saturating_add(record.len());
                    if !records.is_empty() && bytes > max_bytes {
                        more = true;
                        break;
                    }
                    records.push(record);
                    last = Some(row);
                }
                let next = match last.filter(|_| more) {
                    Some(row) => Some(Cursor::from_row(
                        row.try_get::<Option<String>, _>("__k")?,
                        row.try_get::<String, _>("__id")?,
                    )),
                    None => None,
                };
                Ok($crate::RecordPage { records, next })
            }

            async fn count_records(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                scope: $crate::sql_store::__private::metaengine_sql::query::Scope<'_>,
                row_filter: &$crate::sql_store::__private::metaengine_core::policy::RowFilter,
                filters: &[$crate::sql_store::__private::metaengine_sql::query::Filter],
            ) -> $crate::StoreResult<u64> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                use $crate::sql_store::__private::sqlx::Row;
                let statement =
                    QueryBuilder::new($dialect, model).count(scope, row_filter, filters)?;
                let row = Self::data_query(&statement).fetch_one(&self.pool).await?;
                let count: i64 = row.try_get("count")?;
                Ok(u64::try_from(count).unwrap_or(0))
            }

            async fn get_record(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                scope: $crate::sql_store::__private::metaengine_sql::query::Scope<'_>,
                id: &str,
                row_filter: Option<
                    &$crate::sql_store::__private::metaengine_core::policy::RowFilter,
                >,
            ) -> $crate::StoreResult<Option<String>> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                use $crate::sql_store::__private::sqlx::Row;
                let statement = QueryBuilder::new($dialect, model).get(scope, id, row_filter)?;
                match Self::data_query(&statement)
                    .fetch_optional(&self.pool)
                    .await?
                {
                    Some(row) => Ok(Some(row.try_get::<String, _>("record")?)),
                    None => Ok(None),
                }
            }

            async fn record_exists(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                scope: $crate::sql_store::__private::metaengine_sql::query::Scope<'_>,
                id: &str,
            ) -> $crate::StoreResult<bool> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                let statement = QueryBuilder::new($dialect, model).exists(scope, id)?;
                Ok(Self::data_query(&statement)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some())
            }

            async fn insert_record(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                write: $crate::RecordWrite<'_>,
                audits: &[$crate::NewAudit],
            ) -> $crate::StoreResult<String> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                let now = $crate::Timestamp::now().to_rfc3339();
                let statement = QueryBuilder::new($dialect, model).insert(
                    write.scope,
                    write.id,
                    write.actor,
                    &now,
                    write.values,
                )?;
                self.write_record(model, statement, audits)
                    .await?
                    .ok_or_else(|| {
                        $crate::StoreError::Database(
                            $crate::sql_store::__private::sqlx::Error::RowNotFound,
                        )
                    })
            }

            async fn insert_records(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                batch: $crate::store::RecordBatch<'_>,
                audits: &[$crate::NewAudit],
            ) -> $crate::StoreResult<u64> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                let now = $crate::Timestamp::now().to_rfc3339();
                let statements = QueryBuilder::new($dialect, model).insert_many(
                    batch.scope,
                    batch.actor,
                    &now,
                    batch.rows,
                )?;
                if statements.is_empty() {
                    return Ok(0);
                }
                let unique = |e| {
                    $crate::sql_store::unique_or(
                        e,
                        $crate::StoreError::Unique(model.entity.clone()),
                    )
                };
                let mut tx = self.begin_write().await?;
                let mut inserted = 0;
                for statement in &statements {
                    inserted += Self::data_query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(unique)?
                        .rows_affected();
                }
                Self::insert_audits(&mut tx, &self.sql, audits).await?;
                tx.commit().await?;
                Ok(inserted)
            }

            async fn write_batch(
                &self,
                writes: &[$crate::store::BatchWrite<'_>],
                audits: &[$crate::NewAudit],
            ) -> $crate::StoreResult<$crate::store::BatchOutcome> {
                use $crate::store::BatchOutcome;
                // Consecutive creates of one entity become multi-row inserts. When one of those
                // fails (a taken unique value), the batch is rolled back and run again one
                // statement per write, to name the operation that failed.
                match self.run_batch(writes, audits, true).await? {
                    BatchOutcome::Failed { .. } => self.run_batch(writes, audits, false).await,
                    outcome => Ok(outcome),
                }
            }

            async fn analyze_records(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
            ) -> $crate::StoreResult<()> {
                use $crate::sql_store::__private::sqlx;
                let sql = $crate::sql_store::__private::metaengine_sql::analyze_table(
                    $dialect,
                    &model.table_name,
                );
                // The simple protocol: VACUUM is refused in a transaction block.
                sqlx::raw_sql(&sql).execute(&self.pool).await?;
                Ok(())
            }

            async fn update_record(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                write: $crate::RecordWrite<'_>,
                expected_row_version: Option<i64>,
                audits: &[$crate::NewAudit],
            ) -> $crate::StoreResult<Option<String>> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                let now = $crate::Timestamp::now().to_rfc3339();
                let statement = QueryBuilder::new($dialect, model).update(
                    write.scope,
                    write.id,
                    write.actor,
                    &now,
                    write.values,
                    expected_row_version,
                )?;
                self.write_record(model, statement, audits).await
            }

            async fn delete_record(
                &self,
                model: &$crate::sql_store::__private::metaengine_core::CompiledModel,
                scope: $crate::sql_store::__private::metaengine_sql::query::Scope<'_>,
                id: &str,
                expected_row_version: Option<i64>,
                audits: &[$crate::NewAudit],
            ) -> $crate::StoreResult<Option<String>> {
                use $crate::sql_store::__private::metaengine_sql::query::QueryBuilder;
                let statement =
                    QueryBuilder::new($dialect, model).delete(scope, id, expected_row_version)?;
                self.write_record(model, statement, audits).await
            }

            async fn model_changes(
                &self,
            ) -> $crate::StoreResult<
                $crate::sql_store::__private::tokio::sync::mpsc::Receiver<$crate::ModelChange>,
            > {
                self.watch_model_changes().await
            }

            async fn append_audit(&self, events: &[$crate::NewAudit]) -> $crate::StoreResult<()> {
                let mut tx = self.pool.begin().await?;
                Self::insert_audits(&mut tx, &self.sql, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn query_audit(
                &self,
                query: &$crate::AuditQuery,
            ) -> $crate::StoreResult<$crate::Page<$crate::AuditRow>> {
                use $crate::sql_store::__private::sqlx;
                fn filtered<'q>(
                    base: &str,
                    q: &'q $crate::AuditQuery,
                ) -> sqlx::QueryBuilder<'q, $db> {
                    let mut b = sqlx::QueryBuilder::<$db>::new(base);
                    b.push(" WHERE 1 = 1");
                    if !q.event_types.is_empty() {
                        b.push(" AND event_type IN (");
                        let mut list = b.separated(", ");
                        for t in &q.event_types {
                            list.push_bind(t.as_str());
                        }
                        b.push(")");
                    }
                    if let Some(v) = &q.user_id {
                        b.push(" AND user_id = ").push_bind(v.as_str());
                    }
                    if let Some(v) = &q.tenant_id {
                        b.push(" AND tenant_id = ").push_bind(v.as_str());
                    }
                    if let Some(v) = &q.resource {
                        b.push(" AND resource = ").push_bind(v.as_str());
                    }
                    if let Some(v) = &q.result {
                        b.push(" AND result = ").push_bind(v.as_str());
                    }
                    if let Some(v) = q.from {
                        b.push(" AND timestamp >= ").push_bind(v);
                    }
                    if let Some(v) = q.to {
                        b.push(" AND timestamp < ").push_bind(v);
                    }
                    b
                }
                let mut select = filtered(&self.sql.select_audit, query);
                select
                    .push(" ORDER BY timestamp DESC, id DESC LIMIT ")
                    .push_bind(query.page.limit())
                    .push(" OFFSET ")
                    .push_bind(query.page.offset());
                let rows = select
                    .build_query_as::<$crate::AuditRow>()
                    .fetch_all(&self.pool)
                    .await?;
                let total: i64 = filtered(&self.sql.count_audit, query)
                    .build_query_scalar()
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::Page::new(
                    rows,
                    query.page,
                    u64::try_from(total).unwrap_or(0),
                ))
            }

            async fn purge_audit(&self, before: $crate::Timestamp) -> $crate::StoreResult<u64> {
                use $crate::sql_store::__private::sqlx;
                let done = sqlx::query(&self.sql.purge_audit)
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn get_tenant(&self, id: &str) -> $crate::StoreResult<Option<$crate::TenantRow>> {
                use $crate::sql_store::__private::sqlx;
                Ok(sqlx::query_as::<_, $crate::TenantRow>(&self.sql.tenant)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_tenants(&self) -> $crate::StoreResult<Vec<$crate::TenantRow>> {
                use $crate::sql_store::__private::sqlx;
                Ok(
                    sqlx::query_as::<_, $crate::TenantRow>(&self.sql.list_tenants)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            async fn create_tenant(
                &self,
                new: &$crate::NewTenant,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::TenantRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<_, $crate::TenantRow>(&self.sql.insert_tenant)
                    .bind(&new.id)
                    .bind(&new.name)
                    .bind($crate::Timestamp::now())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| {
                        $crate::sql_store::unique_or(
                            e,
                            $crate::StoreError::TenantExists(new.id.clone()),
                        )
                    })?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn update_tenant(
                &self,
                id: &str,
                name: Option<&str>,
                status: Option<&str>,
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<$crate::TenantRow> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let row = sqlx::query_as::<_, $crate::TenantRow>(&self.sql.update_tenant)
                    .bind(id)
                    .bind(name)
                    .bind(status)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| $crate::StoreError::TenantNotFound(id.to_owned()))?;
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(row)
            }
        }
    };
}
