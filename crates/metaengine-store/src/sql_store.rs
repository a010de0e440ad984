//! The one implementation of [`Store`](crate::Store) over sqlx, written once and instantiated by
//! each backend crate with [`impl_sqlx_store!`](crate::impl_sqlx_store).
//!
//! Why a macro and not generics: sqlx code generic over `Database` needs a dozen higher-ranked
//! bounds and trips the compiler's `Send` inference for async trait methods; a macro expanded with
//! a concrete database type has neither problem and still keeps one copy of the logic. A backend
//! supplies a struct with fields `pool: sqlx::Pool<DB>` and `sql: MetaSql`, an inherent
//! `async fn begin_write(&self) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error>` (how it
//! serializes writers), and a `static MIGRATOR: sqlx::migrate::Migrator`.

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use serde_json;
    pub use sqlx;
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
    ($store:ty, $db:ty, $backend:expr, $migrator:expr) => {
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

            async fn insert_audits(
                tx: &mut $crate::sql_store::__private::sqlx::Transaction<'static, $db>,
                sql: &$crate::sql::MetaSql,
                audits: &[$crate::NewAudit],
            ) -> Result<(), $crate::StoreError> {
                use $crate::sql_store::__private::sqlx;
                for a in audits {
                    sqlx::query(&sql.insert_audit)
                        .bind($crate::Id::new_v7())
                        .bind($crate::Id::new_v7().to_string())
                        .bind(a.event_type.as_str())
                        .bind($crate::Timestamp::now())
                        .bind(&a.actor.user_id)
                        .bind(&a.actor.tenant_id)
                        .bind(&a.actor.realm_id)
                        .bind(a.event_type.action())
                        .bind(&a.resource)
                        .bind(&a.details)
                        .bind(a.result.as_str())
                        .bind(&a.error_message)
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
                audit: &$crate::NewAudit,
            ) -> $crate::StoreResult<()> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(&self.sql.delete_entity)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::EntityNotFound(name.to_owned()));
                }
                Self::insert_audits(&mut tx, &self.sql, std::slice::from_ref(audit)).await?;
                tx.commit().await?;
                Ok(())
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

            async fn activate_version(
                &self,
                entity: &str,
                version: &str,
                audits: &[$crate::NewAudit],
            ) -> $crate::StoreResult<$crate::Activation> {
                use $crate::sql_store::__private::sqlx;
                let mut tx = self.begin_write().await?;
                let owner = Self::locked_entity(&mut tx, &self.sql, entity).await?;
                let target = Self::locked_version(&mut tx, &self.sql, entity, version).await?;
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
                Self::insert_audits(&mut tx, &self.sql, audits).await?;
                tx.commit().await?;
                Ok($crate::Activation {
                    version: row,
                    previous: owner.active_version,
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
                tx.commit().await?;
                target.is_active = false;
                Ok(target)
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
