//! The data path: records listed (streamed under a byte budget), counted, read and written, each
//! write in one transaction with its audit rows, and batches of writes all or nothing. Every
//! statement comes from the one query builder (`metaengine_sql::query`), already scoped to the
//! caller's tenant and realm.

use std::collections::HashMap;
use std::fmt::Write as _;

use futures_util::TryStreamExt as _;
use metaengine_core::CompiledModel;
use metaengine_core::policy::RowFilter;
use metaengine_sql::Dialect;
use metaengine_sql::query::{
    Cursor, Expansion, Filter, ListQuery, NewRow, QueryBuilder, Related, Scope, Statement,
};
use metaengine_store::store::RecordBatch;
use metaengine_store::{
    BatchOutcome, BatchWrite, NewAudit, RecordPage, RecordWrite, StoreError, StoreResult, Timestamp,
};

use crate::audit::Sealer;
use crate::db::{Bind, Pool, Query, ReferenceRefusal, query, reference_refusal, unique_violation};
use crate::meta_sql::MetaSql;
use crate::record_json::{expanded_record_json, record_json};

/// A data statement with its values bound.
pub(crate) fn data_query(statement: &Statement) -> Query<'_> {
    query(&statement.sql).bind_all(statement.binds.iter().map(Bind::from))
}

/// `e`, or `on_unique` when `e` is a unique violation.
pub(crate) fn unique_or(e: StoreError, on_unique: StoreError) -> StoreError {
    if unique_violation(&e) { on_unique } else { e }
}

/// A write's failure as the store reports it: a taken unique value, a delete of a record still
/// referenced (its count is filled in by the caller, which can count), a reference to a record
/// that does not exist; anything else as it is.
pub(crate) fn write_refused(e: StoreError, entity: &str) -> StoreError {
    match reference_refusal(&e) {
        Some(ReferenceRefusal::StillReferenced) => StoreError::StillReferenced {
            entity: entity.to_owned(),
            count: 0,
        },
        Some(ReferenceRefusal::Missing) => StoreError::MissingReference(entity.to_owned()),
        None => unique_or(e, StoreError::Unique(entity.to_owned())),
    }
}

/// One page of records: at most `query.limit` of them and `max_bytes` of record text (a single
/// record larger than that still comes alone), with the cursor of the next page.
pub(crate) async fn list(
    pool: &Pool,
    dialect: Dialect,
    model: &CompiledModel,
    query: &ListQuery<'_>,
    max_bytes: usize,
) -> StoreResult<RecordPage> {
    let statement = QueryBuilder::new(dialect, model).list(query)?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let q = data_query(&statement);
    let mut conn = pool.streaming().await?;
    let mut rows = conn.fetch(&q);
    let mut records = Vec::with_capacity(limit.min(128));
    let mut bytes = 0usize;
    // The last row taken: its key is where the next page starts. Decoded once, at the end, and
    // only when there is a next page.
    let mut last = None;
    let mut more = false;
    while let Some(row) = rows.try_next().await? {
        if records.len() == limit {
            more = true;
            break;
        }
        let record = expanded_record_json(&row, &statement)?;
        bytes = bytes.saturating_add(record.len());
        if !records.is_empty() && bytes > max_bytes {
            more = true;
            break;
        }
        records.push(record);
        last = Some(row);
    }
    // The statement's rows end one past the page: reading them to the end (at most that one,
    // or those a page full of bytes left) hands the connection back ready for its next
    // statement, without the test a stream left early costs.
    while rows.try_next().await?.is_some() {}
    let next = match last.filter(|_| more) {
        Some(row) => Some(Cursor::from_row(row.opt_text("__k")?, row.text("__id")?)),
        None => None,
    };
    Ok(RecordPage { records, next })
}

/// The number of records a list with these filters would page through.
pub(crate) async fn count(
    pool: &Pool,
    dialect: Dialect,
    model: &CompiledModel,
    scope: Scope<'_>,
    row_filter: &RowFilter,
    filters: &[Filter],
    related: &[Related<'_>],
) -> StoreResult<u64> {
    let statement = QueryBuilder::new(dialect, model).count(scope, row_filter, filters, related)?;
    let count = pool
        .fetch_one(&data_query(&statement))
        .await?
        .int("count")?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// One record's JSON text, if it exists in the scope (and passes the row filter).
pub(crate) async fn get(
    pool: &Pool,
    dialect: Dialect,
    model: &CompiledModel,
    scope: Scope<'_>,
    id: &str,
    row_filter: Option<&RowFilter>,
    expand: &[Expansion<'_>],
) -> StoreResult<Option<String>> {
    let statement = QueryBuilder::new(dialect, model).get(scope, id, row_filter, expand)?;
    match pool.fetch_optional(&data_query(&statement)).await? {
        Some(row) => Ok(Some(expanded_record_json(&row, &statement)?)),
        None => Ok(None),
    }
}

/// Whether a record exists in the scope and passes the row filter.
pub(crate) async fn exists(
    pool: &Pool,
    dialect: Dialect,
    model: &CompiledModel,
    scope: Scope<'_>,
    id: &str,
    row_filter: &RowFilter,
) -> StoreResult<bool> {
    let statement = QueryBuilder::new(dialect, model).exists(scope, id, row_filter)?;
    Ok(pool
        .fetch_optional(&data_query(&statement))
        .await?
        .is_some())
}

/// Runs a record write (insert, update, delete) with its audit rows in one transaction; the
/// record the statement returns, if any (none: the row was not there, or not at the expected row
/// version). The audit rows are written only with the record.
///
/// One command to the database either way, besides SQLite's `BEGIN` and `COMMIT`
/// ([`sealed_write`]); the audit rows are sealed, for the chainer to append to their chains
/// after the commit (`audit::chain_sealed`). On a single SQLite create the one command saved
/// about a tenth of the engine's CPU; SQLite's own work on the record's and the audit row's
/// b-trees is most of the rest (`docs/performance.md`).
pub(crate) async fn write(
    pool: &Pool,
    sql: &MetaSql,
    sealer: &Sealer,
    model: &CompiledModel,
    statement: &Statement,
    audits: &[NewAudit],
) -> StoreResult<Option<String>> {
    let unique = |e| write_refused(e, &model.entity);
    if audits.is_empty() {
        return match pool
            .fetch_optional(&data_query(statement))
            .await
            .map_err(unique)?
        {
            Some(row) => Ok(Some(record_json(&row, &statement.record)?)),
            None => Ok(None),
        };
    }
    let postgres = pool.is_postgres();
    let row = if audits.len() <= MAX_AUDITS_IN_STATEMENT {
        let pending = crate::audit::Pending::new(audits);
        let text = sealed_write(sql, statement, audits.len(), postgres);
        let mut q = query(&text).bind_all(statement.binds.iter().map(Bind::from));
        let seals = pending.seals(sealer.key());
        for (seed, seal) in pending.seed_binds().zip(&seals) {
            q = q.bind_all(seed).bind(Bind::Text(seal));
        }
        let row = if postgres {
            pool.fetch_optional(&q).await.map_err(unique)?
        } else {
            let mut tx = pool.begin_write().await?;
            // Both statements must run to their end: `fetch_all`, not `fetch_optional`, which
            // would stop the command after the record's row, before the audit rows.
            let rows = tx.fetch_all(&q).await.map_err(unique)?;
            tx.commit().await?;
            rows.into_iter().next()
        };
        if row.is_some() {
            sealer.written(pending.into_hints());
        }
        row
    } else {
        let mut tx = pool.begin_write().await?;
        let row = tx
            .fetch_all(&data_query(statement))
            .await
            .map_err(unique)?
            .into_iter()
            .next();
        if row.is_some() {
            crate::audit::seal(&mut tx, sql, sealer, audits).await?;
        }
        tx.commit().await?;
        row
    };
    match row {
        Some(row) => Ok(Some(record_json(&row, &statement.record)?)),
        None => Ok(None),
    }
}

/// Audit rows that a record write writes in its own command; more go through a transaction of
/// several.
const MAX_AUDITS_IN_STATEMENT: usize = 4;

/// The record write and its `audits` sealed audit rows as one command. Binds after the
/// statement's own: per audit row the seed's 12 values and its seal. The audit rows are written
/// only when the record write matched a row.
/// - PostgreSQL: one statement, a data-modifying `WITH` (atomic on its own).
/// - SQLite: two statements of one query text, the audit rows' insert guarded by
///   `changes() > 0`, run in the caller's write transaction: one hop less to the connection's
///   worker thread (sqlx's SQLite driver hands every command to it and back).
fn sealed_write(sql: &MetaSql, statement: &Statement, audits: usize, postgres: bool) -> String {
    let first = statement.binds.len();
    const PER_ROW: usize = crate::audit::SEALED_COLUMNS;
    let (mut text, guard) = if postgres {
        (
            format!(
                "WITH \"__w\" AS ({}), \"__a\" AS ({} ",
                statement.sql, sql.insert_sealed_audit
            ),
            " WHERE EXISTS (SELECT 1 FROM \"__w\")",
        )
    } else {
        (
            format!("{}; {} ", statement.sql, sql.insert_sealed_audit),
            " WHERE changes() > 0",
        )
    };
    for row in 0..audits {
        text.push_str(if row == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        for column in 0..PER_ROW {
            let sep = if column == 0 { "" } else { ", " };
            let _ = write!(text, "{sep}${}", first + row * PER_ROW + column + 1);
        }
        text.push_str(guard);
    }
    if postgres {
        text.push_str(") SELECT * FROM \"__w\"");
    }
    text
}

/// A new record, with its audit rows.
pub(crate) async fn insert(
    pool: &Pool,
    sql: &MetaSql,
    sealer: &Sealer,
    dialect: Dialect,
    model: &CompiledModel,
    write: RecordWrite<'_>,
    audits: &[NewAudit],
) -> StoreResult<String> {
    let now = Timestamp::now().to_rfc3339();
    let statement = QueryBuilder::new(dialect, model).insert(
        write.scope,
        write.id,
        write.actor,
        &now,
        write.values,
    )?;
    self::write(pool, sql, sealer, model, &statement, audits)
        .await?
        .ok_or_else(|| crate::db::database(sqlx::Error::RowNotFound))
}

/// Many new records of one entity (an import's batch), in one transaction with `audits`: with
/// `COPY` on PostgreSQL, multi-row inserts on SQLite.
pub(crate) async fn insert_many(
    pool: &Pool,
    sql: &MetaSql,
    sealer: &Sealer,
    dialect: Dialect,
    model: &CompiledModel,
    batch: RecordBatch<'_>,
    audits: &[NewAudit],
) -> StoreResult<u64> {
    if batch.rows.is_empty() {
        return Ok(0);
    }
    let now = Timestamp::now().to_rfc3339();
    let builder = QueryBuilder::new(dialect, model);
    let unique = |e| write_refused(e, &model.entity);
    let mut inserted = 0;
    let mut tx;
    if let Some(copies) = builder.copy_rows(batch.scope, batch.actor, &now, batch.rows)? {
        tx = pool.begin_write().await?;
        for copy in &copies {
            inserted += tx.copy_in(&copy.sql, &copy.data).await.map_err(unique)?;
        }
    } else {
        let statements = builder.insert_many(batch.scope, batch.actor, &now, batch.rows)?;
        tx = pool.begin_write().await?;
        for statement in &statements {
            inserted += tx.execute(&data_query(statement)).await.map_err(unique)?;
        }
    }
    crate::audit::seal(&mut tx, sql, sealer, audits).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// Statements for the writes `first..first + len` of a batch.
struct Step<'m> {
    first: usize,
    len: usize,
    model: &'m CompiledModel,
    statements: Vec<Statement>,
}

/// The statements of a batch; `group` turns runs of creates of one entity, scope and actor into
/// multi-row inserts. `Err` names the write whose statement could not be built.
fn steps<'m>(
    dialect: Dialect,
    writes: &[BatchWrite<'m>],
    now: &str,
    group: bool,
) -> Result<Vec<Step<'m>>, BatchOutcome> {
    let mut steps: Vec<Step<'m>> = Vec::with_capacity(writes.len());
    let mut index = 0;
    while let Some(w) = writes.get(index) {
        let rest = writes.get(index..).unwrap_or_default();
        // A run of creates of one model, scope and actor.
        let run = match *w {
            BatchWrite::Insert { model, write } if group => rest
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
                let rows: Vec<NewRow<'_>> = rest
                    .iter()
                    .take(run)
                    .filter_map(|o| match *o {
                        BatchWrite::Insert { write, .. } => Some(NewRow {
                            id: write.id,
                            values: write.values,
                        }),
                        _ => None,
                    })
                    .collect();
                QueryBuilder::new(dialect, model)
                    .insert_many_returning(write.scope, write.actor, now, &rows)
                    .map(|statements| (model, statements))
            }
            BatchWrite::Insert { model, write } => QueryBuilder::new(dialect, model)
                .insert(write.scope, write.id, write.actor, now, write.values)
                .map(|s| (model, vec![s])),
            BatchWrite::Update {
                model,
                write,
                expected_row_version,
            } => QueryBuilder::new(dialect, model)
                .update(
                    write.scope,
                    write.id,
                    write.actor,
                    now,
                    write.values,
                    Some(expected_row_version),
                )
                .map(|s| (model, vec![s])),
            BatchWrite::Delete {
                model,
                scope,
                id,
                expected_row_version,
            } => QueryBuilder::new(dialect, model)
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
                return Err(BatchOutcome::Failed {
                    index,
                    error: e.into(),
                });
            }
        }
        index += run;
    }
    Ok(steps)
}

/// A batch in one transaction with `audits`; see [`steps`] for `group` (a failure of a
/// multi-row insert names the run's first write).
pub(crate) async fn batch(
    pool: &Pool,
    sql: &MetaSql,
    sealer: &Sealer,
    dialect: Dialect,
    writes: &[BatchWrite<'_>],
    audits: &[NewAudit],
    group: bool,
) -> StoreResult<BatchOutcome> {
    let now = Timestamp::now().to_rfc3339();
    let steps = match steps(dialect, writes, &now, group) {
        Ok(steps) => steps,
        Err(outcome) => return Ok(outcome),
    };
    // Dropping the transaction on an early return rolls it back.
    let mut tx = pool.begin_write().await?;
    let mut records = Vec::with_capacity(writes.len());
    let mut caused = Vec::new();
    for step in &steps {
        // A delete carries out the `setNull` and `cascade` rules of the references to its
        // record first, as the single route does.
        if let (
            Some(BatchWrite::Delete {
                model, scope, id, ..
            }),
            Some(audit),
        ) = (writes.get(step.first), audits.first())
        {
            let at = (scope.tenant_id, model.entity.as_str(), *id);
            match crate::dependents::apply(&mut tx, sql, dialect, at, audit).await {
                Ok(changed) => caused.extend(changed),
                Err(e) => {
                    return Ok(BatchOutcome::Failed {
                        index: step.first,
                        error: write_refused(e, &model.entity),
                    });
                }
            }
        }
        let mut returned = Vec::with_capacity(step.len);
        for statement in &step.statements {
            match tx.fetch_all(&data_query(statement)).await {
                Ok(rows) => returned.extend(rows.into_iter().map(|row| (row, &statement.record))),
                Err(e) => {
                    let error = write_refused(e, &step.model.entity);
                    return Ok(BatchOutcome::Failed {
                        index: step.first,
                        error,
                    });
                }
            }
        }
        if step.len == 1 {
            match returned.first() {
                Some((row, shape)) => records.push(record_json(row, shape)?),
                None => return Ok(BatchOutcome::NoRow { index: step.first }),
            }
            continue;
        }
        // A multi-row insert: its rows back in the writes' order, by id.
        let mut by_id = HashMap::with_capacity(returned.len());
        for (row, shape) in &returned {
            by_id.insert(row.text("__id")?, record_json(row, shape)?);
        }
        let run = writes
            .get(step.first..step.first + step.len)
            .unwrap_or_default();
        for (offset, w) in run.iter().enumerate() {
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
    crate::audit::seal(&mut tx, sql, sealer, audits).await?;
    crate::audit::seal(&mut tx, sql, sealer, &caused).await?;
    tx.commit().await?;
    Ok(BatchOutcome::Written(records))
}
