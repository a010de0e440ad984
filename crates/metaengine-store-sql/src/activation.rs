//! Planning and applying an activation inside one transaction, under the entity's lock: the
//! data table as it is (columns, rows, live column types), the versions that shaped it, the
//! data checks the plan asks of the rows, and the mapping of a DDL failure.

use metaengine_core::EntitySchema;
use metaengine_core::ident::{SYSTEM_COLUMNS, column_name, table_name};
use metaengine_core::plan::{ColumnDef, MigrationStep, TableState, plan_migration};
use metaengine_core::validate::Problem;
use metaengine_sql::{Dialect, drop_reference, enforced_references};
use metaengine_store::{ActivationPlan, EntityRow, StoreError, StoreResult, VersionRow};

use crate::db::{Bind, Tx, query, sql_state, unique_violation};
use crate::meta_sql::MetaSql;
use crate::rows;

/// Columns of a data table that are neither system columns nor used by a field of `schema`.
pub(crate) fn hidden_columns(columns: &[String], schema: Option<&EntitySchema>) -> Vec<String> {
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
fn live_column_problems(
    dialect: Dialect,
    next: &EntitySchema,
    plan: &metaengine_core::plan::MigrationPlan,
    live: &[(String, String)],
) -> Vec<Problem> {
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
            problems.push(Problem::new(
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
pub(crate) fn ddl_error(e: StoreError, entity: &str, version: &str) -> StoreError {
    let reason = if unique_violation(&e) {
        "existing rows have duplicate values for a new unique index"
    } else if sql_state(&e).as_deref() == Some("23502") {
        "existing rows have no value for a field that becomes required"
    } else {
        return e;
    };
    StoreError::RowsConflict {
        entity: entity.to_owned(),
        version: version.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The entity's row, locked until the transaction ends (serializes changes to one entity).
pub(crate) async fn locked_entity(
    tx: &mut Tx,
    sql: &MetaSql,
    entity: &str,
) -> StoreResult<EntityRow> {
    let q = query(&sql.entity_by_name_locked).bind(Bind::Text(entity));
    match tx.fetch_optional(&q).await? {
        Some(row) => rows::entity(&row),
        None => Err(StoreError::EntityNotFound(entity.to_owned())),
    }
}

/// A version's row, locked until the transaction ends.
pub(crate) async fn locked_version(
    tx: &mut Tx,
    sql: &MetaSql,
    entity: &str,
    version: &str,
) -> StoreResult<VersionRow> {
    let q = query(&sql.version_locked)
        .bind(Bind::Text(entity))
        .bind(Bind::Text(version));
    match tx.fetch_optional(&q).await? {
        Some(row) => rows::version(&row),
        None => Err(StoreError::VersionNotFound {
            entity: entity.to_owned(),
            version: version.to_owned(),
        }),
    }
}

/// The data table as it is: exists, has rows, its columns.
pub(crate) async fn table_state(
    tx: &mut Tx,
    sql: &MetaSql,
    dialect: Dialect,
    table: &str,
) -> StoreResult<(bool, bool, Vec<String>)> {
    let exists = tx
        .fetch_one(&query(&sql.table_exists).bind(Bind::Text(table)))
        .await?
        .bool(0)?;
    if !exists {
        return Ok((false, false, Vec::new()));
    }
    let columns = tx
        .fetch_all(&query(&sql.table_columns).bind(Bind::Text(table)))
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<StoreResult<Vec<_>>>()?;
    let has_rows_sql = metaengine_sql::has_rows(dialect, table);
    let has_rows = tx.fetch_one(&query(&has_rows_sql)).await?.bool(0)?;
    Ok((true, has_rows, columns))
}

/// The versions of `entity` (oldest first) and the one that shaped its table.
pub(crate) async fn versions_and_shaper(
    tx: &mut Tx,
    sql: &MetaSql,
    entity: &str,
) -> StoreResult<(Vec<VersionRow>, Option<usize>)> {
    let versions = tx
        .fetch_all(&query(&sql.list_versions).bind(Bind::Text(entity)))
        .await?
        .iter()
        .map(rows::version)
        .collect::<StoreResult<Vec<_>>>()?;
    let shaper = versions
        .iter()
        .enumerate()
        .filter(|(_, v)| v.activated_at.is_some())
        .max_by_key(|(_, v)| (v.activated_at, v.id))
        .map(|(i, _)| i);
    Ok((versions, shaper))
}

/// The hidden columns of `entity`'s table: the columns no field of the shaping version uses.
pub(crate) async fn hidden_columns_of(
    tx: &mut Tx,
    sql: &MetaSql,
    dialect: Dialect,
    entity: &str,
) -> StoreResult<Vec<String>> {
    let table = table_name(entity);
    let (_, _, columns) = table_state(tx, sql, dialect, &table).await?;
    let (versions, shaper) = versions_and_shaper(tx, sql, entity).await?;
    let schema = shaper
        .and_then(|i| versions.get(i))
        .map(VersionRow::parse_schema)
        .transpose()?;
    Ok(hidden_columns(&columns, schema.as_ref()))
}

/// Plans the activation of `target` from the table as it is (inside the caller's transaction,
/// under the entity's lock), asking the rows the plan's data checks.
pub(crate) async fn plan_locked(
    tx: &mut Tx,
    sql: &MetaSql,
    dialect: Dialect,
    owner: &EntityRow,
    target: &VersionRow,
) -> StoreResult<ActivationPlan> {
    let next = target.parse_schema()?;
    let table = table_name(&owner.name);
    let (exists, has_rows, columns) = table_state(tx, sql, dialect, &table).await?;
    let (versions, shaper) = versions_and_shaper(tx, sql, &owner.name).await?;
    let shaper = shaper.and_then(|i| versions.get(i)).filter(|_| exists);
    let previous = shaper.map(VersionRow::parse_schema).transpose()?;
    let hidden_columns = hidden_columns(&columns, previous.as_ref());
    let hidden_fields = hidden_columns
        .iter()
        .filter_map(|column| {
            versions
                .iter()
                .rev()
                .filter_map(|v| v.parse_schema().ok())
                .find_map(|s| {
                    s.fields
                        .into_iter()
                        .find(|f| column_name(&f.name) == *column)
                })
        })
        .collect();
    let state = TableState {
        exists,
        has_rows,
        hidden_columns,
        hidden_fields,
    };
    let mut plan = plan_migration(&table, previous.as_ref(), &next, &state);
    if exists {
        let live_rows = tx
            .fetch_all(&query(&sql.table_column_types).bind(Bind::Text(&table)))
            .await?;
        let live = live_rows
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let problems = live_column_problems(dialect, &next, &plan, &live);
        plan.breaking.extend(problems);
        for check in &plan.checks {
            let (text, binds) = metaengine_sql::data_check(dialect, &table, check);
            let q = query(&text).bind_all(binds.iter().map(|v| Bind::Text(v)));
            if tx.fetch_one(&q).await?.bool(0)? {
                plan.breaking
                    .push(Problem::new(check.pointer.clone(), check.message.clone()));
            }
        }
    }
    let statements = metaengine_sql::render_plan(dialect, &table, &plan);
    Ok(ActivationPlan {
        entity: owner.name.clone(),
        version: target.version.clone(),
        previous: owner.active_version.clone(),
        shaped_by: shaper.map(|v| v.version.clone()),
        table,
        plan,
        statements,
    })
}

/// Every reference between the data tables of active versions (SPEC §13), read from their
/// schemas, whatever the target's state.
pub(crate) async fn reference_links(
    tx: &mut Tx,
    sql: &MetaSql,
) -> StoreResult<Vec<crate::dependents::Referrer>> {
    let mut links = Vec::new();
    for row in tx.fetch_all(&query(&sql.active_schemas)).await? {
        links.extend(crate::dependents::references_in(
            &row.text(0)?,
            row.json(1)?,
            None,
        )?);
    }
    Ok(links)
}

/// Makes the database enforce every reference from or to `entity`'s table whose two tables
/// exist (a target never activated has none yet: its references are enforced when it is
/// activated), and stop enforcing those of `entity`'s table its active version no longer has.
/// A reference whose referring rows name missing records cannot be enforced: the activation is
/// refused ([`StoreError::Breaking`]) with their count.
pub(crate) async fn enforce_references(
    tx: &mut Tx,
    sql: &MetaSql,
    dialect: Dialect,
    entity: &str,
    version: &str,
) -> StoreResult<()> {
    let table = table_name(entity);
    let links = reference_links(tx, sql).await?;
    let mut enforced = Vec::new();
    for row in tx.fetch_all(&query(enforced_references(dialect))).await? {
        enforced.push((row.text(0)?, row.text(1)?));
    }
    let wanted: Vec<String> = links
        .iter()
        .filter(|r| r.link.table == table)
        .map(|r| r.link.name())
        .collect();
    for (name, on) in &enforced {
        if *on == table && !wanted.contains(name) {
            for statement in drop_reference(dialect, &table, name) {
                tx.execute(&query(&statement)).await?;
            }
        }
    }
    for crate::dependents::Referrer {
        entity: owner,
        field,
        link,
        ..
    } in &links
    {
        if (link.table != table && link.target != table)
            || enforced.iter().any(|(name, _)| *name == link.name())
        {
            continue;
        }
        if !table_exists(tx, sql, &link.table).await?
            || !table_exists(tx, sql, &link.target).await?
        {
            continue;
        }
        let dangling = tx
            .fetch_one(&query(&link.dangling_count(dialect)))
            .await?
            .int(0)?;
        if dangling > 0 {
            return Err(StoreError::Breaking {
                entity: entity.to_owned(),
                version: version.to_owned(),
                errors: vec![Problem::new(
                    "",
                    format!(
                        "{dangling} record(s) of `{owner}` refer through `{field}` to records \
                         that do not exist; the reference cannot be enforced until they are \
                         fixed"
                    ),
                )],
            });
        }
        for statement in link.create(dialect) {
            tx.execute(&query(&statement)).await?;
        }
    }
    Ok(())
}

/// Whether data table `table` exists.
async fn table_exists(tx: &mut Tx, sql: &MetaSql, table: &str) -> StoreResult<bool> {
    tx.fetch_one(&query(&sql.table_exists).bind(Bind::Text(table)))
        .await?
        .bool(0)
}

/// Installs (or replaces) the change capture of `version`'s data table for the realtime feed
/// (`metaengine_sql::query::change_capture`), in the activation's transaction.
pub(crate) async fn capture_changes(
    tx: &mut Tx,
    dialect: Dialect,
    version: &metaengine_store::VersionRow,
) -> StoreResult<()> {
    let schema = version.parse_schema()?;
    let model = metaengine_core::compile(&version.entity_name, &version.version, &schema, "", "");
    for statement in metaengine_sql::query::change_capture(dialect, &model) {
        tx.execute(&query(&statement)).await?;
    }
    Ok(())
}

/// Installs the change capture of every active version's table that lacks it: a database
/// whose entities were activated before the engine recorded changes. Run after migrations.
pub(crate) async fn ensure_change_capture(
    pool: &crate::db::Pool,
    sql: &MetaSql,
    dialect: Dialect,
) -> StoreResult<usize> {
    let mut installed = 0;
    for row in pool.fetch_all(&query(&sql.active_schemas)).await? {
        let entity = row.text(0)?;
        let table = table_name(&entity);
        let probe = metaengine_sql::query::capture_probe_name(&table);
        let q = query(metaengine_sql::query::capture_installed(dialect)).bind(Bind::Text(&probe));
        if pool.fetch_one(&q).await?.int(0)? > 0 {
            continue;
        }
        let mut tx = pool.begin_write().await?;
        let Some(version) = tx
            .fetch_optional(&query(&sql.active_version).bind(Bind::Text(&entity)))
            .await?
        else {
            continue;
        };
        let version = crate::rows::version(&version)?;
        if !table_exists(&mut tx, sql, &table).await? {
            continue;
        }
        capture_changes(&mut tx, dialect, &version).await?;
        tx.commit().await?;
        installed += 1;
    }
    Ok(installed)
}
