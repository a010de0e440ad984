//! Audit rows: written in the caller's transaction (metadata changes, record writes) or in
//! multi-row inserts by the batched writer, each chained to its tenant's previous row (SPEC §16,
//! [`metaengine_store::chain`]); read back with filters, newest first; verified; purged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use futures_util::TryStreamExt as _;
use metaengine_store::chain::{self, Checkpoint, Content, Head, Link, Verifier};
use metaengine_store::{
    AuditActor, AuditQuery, AuditRow, EventType, Id, NewAudit, Page, PurgeReport, StoreResult,
    Timestamp, VerifyReport,
};
use serde_json::json;

use crate::db::{Bind, Pool, Tx, query};
use crate::meta_sql::{LOCK_AUDIT_HEADS_END, MetaSql};
use crate::rows;

/// Audit rows per multi-row insert on PostgreSQL (15 values each).
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1_000;

/// Audit rows per multi-row insert on SQLite. Binding costs sqlx-sqlite time quadratic in a
/// statement's values (`sqlite3_bind_parameter_name` for each): 512 rows of 15 values wrote
/// 1,800 rows/s with three quarters of the CPU there; statements are cheap in process.
const SQLITE_AUDIT_ROWS_PER_STATEMENT: usize = 8;

/// Values of one audit row, in the column order of [`MetaSql::insert_audit`].
pub(crate) const COLUMNS: usize = SEED_COLUMNS + 3;

/// The seed's columns of an audit row (all but `seq`, `prev_hash`, `hash`).
pub(crate) const SEED_COLUMNS: usize = 12;

/// PostgreSQL's function of the chain's hash ([`chain::link`] in SQL; the chain migration
/// creates it).
pub(crate) const PG_HASH_FUNCTION: &str = "meta.audit_hash";

/// Audit rows about to be written: their ids, time and chain content.
pub(crate) struct Pending<'a> {
    audits: &'a [NewAudit],
    ids: Vec<(Id, String)>,
    now: Timestamp,
    /// Canonical content of each row ([`chain::content`]).
    pub(crate) contents: Vec<String>,
}

impl<'a> Pending<'a> {
    /// New ids, the time now and the content each row's hash will cover.
    pub(crate) fn new(audits: &'a [NewAudit]) -> Self {
        let ids: Vec<(Id, String)> = (0..audits.len())
            .map(|_| (Id::new_v7(), Id::new_v7().to_string()))
            .collect();
        let now = Timestamp::now();
        let contents = audits
            .iter()
            .zip(&ids)
            .map(|(a, (id, event_id))| {
                chain::content(&Content {
                    id,
                    event_id,
                    event_type: a.event_type.as_str(),
                    timestamp: now,
                    user_id: &a.actor.user_id,
                    tenant_id: &a.actor.tenant_id,
                    realm_id: &a.actor.realm_id,
                    action: a.event_type.action(),
                    resource: &a.resource,
                    details: a.details.as_ref(),
                    result: a.result.as_str(),
                    error_message: a.error_message.as_deref(),
                })
            })
            .collect();
        Self {
            audits,
            ids,
            now,
            contents,
        }
    }

    /// The seed's 12 values of each row (without `seq`, `prev_hash`, `hash`).
    pub(crate) fn seed_binds(&self) -> impl Iterator<Item = [Bind<'_>; SEED_COLUMNS]> {
        self.audits
            .iter()
            .zip(&self.ids)
            .map(move |(a, (id, event_id))| {
                [
                    Bind::Id(*id),
                    Bind::Text(event_id),
                    Bind::Text(a.event_type.as_str()),
                    Bind::Time(self.now),
                    Bind::Text(&a.actor.user_id),
                    Bind::Text(&a.actor.tenant_id),
                    Bind::Text(&a.actor.realm_id),
                    Bind::Text(a.event_type.action()),
                    Bind::Text(&a.resource),
                    Bind::OptJson(a.details.as_ref()),
                    Bind::Text(a.result.as_str()),
                    Bind::OptText(a.error_message.as_deref()),
                ]
            })
    }
}

/// The tenant whose chain every row of `audits` joins, when they all join one.
pub(crate) fn one_tenant(audits: &[NewAudit]) -> Option<&str> {
    let first = audits.first()?.actor.tenant_id.as_str();
    audits
        .iter()
        .all(|a| a.actor.tenant_id == first)
        .then_some(first)
}

/// Locks the chain heads of `tenants` (creating the missing ones) in their sorted order, so two
/// writers never wait for each other in a cycle; returns them.
async fn lock_heads(
    tx: &mut Tx,
    sql: &MetaSql,
    tenants: &BTreeSet<&str>,
) -> StoreResult<BTreeMap<String, Head>> {
    let mut text = sql.lock_audit_heads.clone();
    text.push_str(" VALUES ");
    let mut binds = Vec::with_capacity(tenants.len() + 1);
    binds.push(Bind::Text(chain::GENESIS));
    for (i, tenant) in tenants.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(text, "{sep}(${}, 0, $1, $1)", i + 2);
        binds.push(Bind::Text(tenant));
    }
    text.push_str(LOCK_AUDIT_HEADS_END);
    let rows = tx
        .fetch_all(&query(&text).persistent(tenants.len() == 1).bind_all(binds))
        .await?;
    rows.iter().map(head_row).collect()
}

/// A chain head row as its tenant and [`Head`].
fn head_row(r: &crate::db::Row) -> StoreResult<(String, Head)> {
    Ok((
        r.text("tenant_id")?,
        Head {
            seq: r.int("seq")?,
            hash: r.text("hash")?,
        },
    ))
}

/// Moves each tenant's head from where `start` had it to where `heads` has it: one prepared
/// statement for one tenant, multi-row updates for several (a flush of the batched writer).
async fn move_heads(
    tx: &mut Tx,
    sql: &MetaSql,
    start: &BTreeMap<String, Head>,
    heads: &BTreeMap<String, Head>,
) -> StoreResult<()> {
    let before = |tenant: &str| {
        start
            .get(tenant)
            .map_or(chain::GENESIS, |h| h.hash.as_str())
    };
    let all: Vec<(&String, &Head)> = heads.iter().collect();
    if let [(tenant, head)] = all[..] {
        let q = query(&sql.update_audit_head).bind_all([
            Bind::Text(tenant),
            Bind::Int(head.seq),
            Bind::Text(before(tenant)),
            Bind::Text(&head.hash),
        ]);
        tx.execute(&q).await?;
        return Ok(());
    }
    let per_statement = if tx.is_postgres() {
        AUDIT_ROWS_PER_STATEMENT
    } else {
        SQLITE_AUDIT_ROWS_PER_STATEMENT
    };
    for chunk in all.chunks(per_statement) {
        let mut text = String::with_capacity(120 + chunk.len() * 24);
        let _ = write!(
            text,
            "UPDATE {} AS h SET seq = v.column2, before_hash = v.column3, hash = v.column4 \
             FROM (VALUES ",
            sql.audit_heads
        );
        let mut binds = Vec::with_capacity(chunk.len() * 4);
        for (i, (tenant, head)) in chunk.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let n = i * 4;
            let _ = write!(
                text,
                "{sep}(${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4
            );
            binds.extend([
                Bind::Text(tenant),
                Bind::Int(head.seq),
                Bind::Text(before(tenant)),
                Bind::Text(&head.hash),
            ]);
        }
        text.push_str(") AS v WHERE h.tenant_id = v.column1");
        tx.execute(&query(&text).persistent(false).bind_all(binds))
            .await?;
    }
    Ok(())
}

/// Writes audit rows, each chained to its tenant's previous row: locks the tenants' chain heads
/// (held until `tx` ends, which serializes each tenant's appends), inserts the rows with
/// multi-row inserts of up to [`AUDIT_ROWS_PER_STATEMENT`] rows, and moves the heads.
pub(crate) async fn insert(tx: &mut Tx, sql: &MetaSql, audits: &[NewAudit]) -> StoreResult<()> {
    if audits.is_empty() {
        return Ok(());
    }
    let pending = Pending::new(audits);
    let tenants: BTreeSet<&str> = audits.iter().map(|a| a.actor.tenant_id.as_str()).collect();
    let start = lock_heads(tx, sql, &tenants).await?;
    let mut heads = start.clone();
    let links: Vec<Link> = audits
        .iter()
        .zip(&pending.contents)
        .map(|(a, content)| {
            heads
                .entry(a.actor.tenant_id.clone())
                .or_default()
                .append(content)
        })
        .collect();
    let mut rows = pending.seed_binds().zip(&links);
    let per_statement = if tx.is_postgres() {
        AUDIT_ROWS_PER_STATEMENT
    } else {
        SQLITE_AUDIT_ROWS_PER_STATEMENT
    };
    for chunk in audits.chunks(per_statement) {
        let mut text = String::with_capacity(sql.insert_audit.len() + chunk.len() * 80);
        text.push_str(&sql.insert_audit);
        text.push_str(" VALUES ");
        for row in 0..chunk.len() {
            text.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..COLUMNS {
                let sep = if column == 0 { "" } else { ", " };
                let _ = write!(text, "{sep}${}", row * COLUMNS + column + 1);
            }
            text.push(')');
        }
        // SQLite's chunks are few in size and cheap to keep prepared; PostgreSQL's vary with
        // each flush.
        let mut q = query(&text).persistent(chunk.len() == 1 || !tx.is_postgres());
        for (seed, link) in rows.by_ref().take(chunk.len()) {
            q = q.bind_all(seed).bind_all([
                Bind::Int(link.seq),
                Bind::Text(&link.prev_hash),
                Bind::Text(&link.hash),
            ]);
        }
        tx.execute(&q).await?;
    }
    move_heads(tx, sql, &start, &heads).await?;
    Ok(())
}

/// `base` with the query's filters as ` WHERE …` and their values.
fn filtered<'q>(base: &str, q: &'q AuditQuery) -> (String, Vec<Bind<'q>>) {
    let mut text = format!("{base} WHERE 1 = 1");
    let mut binds = Vec::new();
    /// Binds `value`; its placeholder.
    fn next<'q>(binds: &mut Vec<Bind<'q>>, value: Bind<'q>) -> String {
        binds.push(value);
        format!("${}", binds.len())
    }
    if !q.event_types.is_empty() {
        let list: Vec<String> = q
            .event_types
            .iter()
            .map(|t| next(&mut binds, Bind::Text(t.as_str())))
            .collect();
        let _ = write!(text, " AND event_type IN ({})", list.join(", "));
    }
    let texts = [
        ("user_id", q.user_id.as_deref()),
        ("tenant_id", q.tenant_id.as_deref()),
        ("resource", q.resource.as_deref()),
        ("result", q.result.map(|r| r.as_str())),
    ];
    for (column, value) in texts {
        if let Some(v) = value {
            let p = next(&mut binds, Bind::Text(v));
            let _ = write!(text, " AND {column} = {p}");
        }
    }
    if let Some(v) = q.from {
        let p = next(&mut binds, Bind::Time(v));
        let _ = write!(text, " AND timestamp >= {p}");
    }
    if let Some(v) = q.to {
        let p = next(&mut binds, Bind::Time(v));
        let _ = write!(text, " AND timestamp < {p}");
    }
    (text, binds)
}

/// One page of audit rows, newest first, with the total.
pub(crate) async fn page(
    pool: &Pool,
    sql: &MetaSql,
    q: &AuditQuery,
) -> StoreResult<Page<metaengine_store::AuditRow>> {
    let (mut select, mut binds) = filtered(&sql.select_audit, q);
    let _ = write!(
        select,
        " ORDER BY timestamp DESC, id DESC LIMIT ${} OFFSET ${}",
        binds.len() + 1,
        binds.len() + 2
    );
    binds.push(Bind::Int(q.page.limit()));
    binds.push(Bind::Int(q.page.offset()));
    let rows = pool.fetch_all(&query(&select).bind_all(binds)).await?;
    let rows = rows
        .iter()
        .map(rows::audit)
        .collect::<StoreResult<Vec<_>>>()?;
    let (count, binds) = filtered(&sql.count_audit, q);
    let total = pool
        .fetch_one(&query(&count).bind_all(binds))
        .await?
        .int(0)?;
    Ok(Page::new(rows, q.page, u64::try_from(total).unwrap_or(0)))
}

/// The actor of the rows the engine writes on its own (a purge's checkpoints).
fn engine_actor(tenant_id: &str) -> AuditActor {
    AuditActor {
        user_id: "metaengine".to_owned(),
        tenant_id: tenant_id.to_owned(),
        realm_id: String::new(),
    }
}

/// Retention: deletes each tenant's rows older than `before` from the start of its chain, and
/// appends, in the same transaction, one `audit.purge` row that names the last deleted row's
/// position and hash, from which the rest of the chain verifies.
pub(crate) async fn purge(
    pool: &Pool,
    sql: &MetaSql,
    before: Timestamp,
) -> StoreResult<PurgeReport> {
    let tenants = pool
        .fetch_all(&query(&sql.purge_audit_tenants).bind(Bind::Time(before)))
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<StoreResult<Vec<_>>>()?;
    let mut report = PurgeReport::default();
    for tenant in &tenants {
        let mut tx = pool.begin_write().await?;
        // Locks the chain first: no append of this tenant runs while its start moves.
        lock_heads(&mut tx, sql, &BTreeSet::from([tenant.as_str()])).await?;
        let point = tx
            .fetch_optional(
                &query(&sql.purge_audit_point)
                    .bind(Bind::Text(tenant))
                    .bind(Bind::Time(before)),
            )
            .await?;
        let Some(point) = point else {
            tx.rollback().await?;
            continue;
        };
        let checkpoint = Checkpoint {
            through_seq: point.int("seq")?,
            through_hash: point.text("hash")?,
        };
        let deleted = tx
            .execute(
                &query(&sql.purge_audit_through)
                    .bind(Bind::Text(tenant))
                    .bind(Bind::Int(checkpoint.through_seq)),
            )
            .await?;
        let mut details = json!({ "rows": deleted, "before": before.to_rfc3339() });
        if let (Some(map), Ok(serde_json::Value::Object(point))) =
            (details.as_object_mut(), serde_json::to_value(&checkpoint))
        {
            map.extend(point);
        }
        let row = NewAudit::success(
            EventType::AuditPurge,
            &engine_actor(tenant),
            tenant,
            Some(details),
        );
        insert(&mut tx, sql, std::slice::from_ref(&row)).await?;
        tx.commit().await?;
        report.tenants += 1;
        report.rows += deleted;
    }
    Ok(report)
}

/// ` WHERE <condition>` plus ` AND tenant_id = $1` when one tenant is asked for.
fn where_tenant(base: &str, condition: &str, tenant: Option<&str>) -> String {
    match tenant {
        Some(_) => format!("{base} WHERE {condition} AND tenant_id = $1"),
        None => format!("{base} WHERE {condition}"),
    }
}

/// Verifies the chains of every tenant, or of one: each row's hash against its content, each
/// row's `prev_hash` against the row before, positions without gaps, each chain's start (the
/// genesis or a purge checkpoint) and end (its head). Reads the rows once, in chain order.
pub(crate) async fn verify(
    pool: &Pool,
    sql: &MetaSql,
    tenant: Option<&str>,
) -> StoreResult<VerifyReport> {
    let heads_sql = match tenant {
        Some(_) => format!("{} WHERE tenant_id = $1", sql.select_audit_heads),
        None => sql.select_audit_heads.clone(),
    };
    let heads: HashMap<String, Head> = pool
        .fetch_all(&bind_to(&heads_sql, tenant))
        .await?
        .iter()
        .map(head_row)
        .collect::<StoreResult<_>>()?;
    let table = &sql.audit_table;
    let purges = where_tenant(
        &format!("SELECT tenant_id, details FROM {table}"),
        "event_type = 'audit.purge'",
        tenant,
    );
    let mut checkpoints: HashMap<String, HashSet<Checkpoint>> = HashMap::new();
    for r in pool.fetch_all(&bind_to(&purges, tenant)).await? {
        let point = r
            .opt_json("details")?
            .and_then(|d| serde_json::from_value::<Checkpoint>(d).ok());
        if let Some(point) = point {
            checkpoints
                .entry(r.text("tenant_id")?)
                .or_default()
                .insert(point);
        }
    }
    let mut verifier = Verifier::new(heads, checkpoints);
    let unchained = format!(
        "{} LIMIT 1",
        where_tenant(
            &format!("SELECT tenant_id, event_id FROM {table}"),
            "seq IS NULL",
            tenant
        )
    );
    if let Some(r) = pool.fetch_optional(&bind_to(&unchained, tenant)).await? {
        verifier.unchained(&r.text("tenant_id")?, &r.text("event_id")?);
        return Ok(verifier.finish());
    }
    if pool.is_postgres() {
        let chained = format!(
            "{} ORDER BY tenant_id, seq",
            where_tenant(&sql.select_audit, "seq IS NOT NULL", tenant)
        );
        let q = bind_to(&chained, tenant);
        let mut stream = pool.fetch(&q);
        while let Some(r) = stream.try_next().await? {
            verifier.row(&rows::audit(&r)?);
            if verifier.is_broken() {
                break;
            }
        }
    } else {
        verify_sqlite_pages(pool, sql, tenant, &mut verifier).await?;
    }
    Ok(verifier.finish())
}

/// Rows SQLite hands over at a time to [`verify`], as one JSON array.
const SQLITE_VERIFY_PAGE: i64 = 5_000;

/// An audit row as SQLite's `json_object` writes it for [`verify_sqlite_pages`].
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonAuditRow {
    id: Id,
    event_id: String,
    event_type: String,
    timestamp: Timestamp,
    user_id: String,
    tenant_id: String,
    realm_id: String,
    action: String,
    resource: String,
    details: Option<serde_json::Value>,
    result: String,
    error_message: Option<String>,
    seq: i64,
    prev_hash: Option<String>,
    hash: Option<String>,
}

/// SQLite's side of [`verify`]: the rows in chain order, a page of [`SQLITE_VERIFY_PAGE`] at a
/// time as one JSON array. sqlx-sqlite hands each row from its worker thread to the caller on
/// its own, which made that hand-over most of the time of a row-by-row read (23 s for a million
/// rows, against 7.5 s on PostgreSQL).
async fn verify_sqlite_pages(
    pool: &Pool,
    sql: &MetaSql,
    tenant: Option<&str>,
    verifier: &mut Verifier,
) -> StoreResult<()> {
    let table = &sql.audit_table;
    let scope = if tenant.is_some() {
        "tenant_id = $1 AND seq > $2"
    } else {
        "(tenant_id, seq) > ($1, $2)"
    };
    let text = format!(
        "SELECT json_group_array(json_object('id', id, 'eventId', event_id, \
         'eventType', event_type, 'timestamp', timestamp, 'userId', user_id, \
         'tenantId', tenant_id, 'realmId', realm_id, 'action', action, 'resource', resource, \
         'details', json(details), 'result', result, 'errorMessage', error_message, \
         'seq', seq, 'prevHash', prev_hash, 'hash', hash)) FROM (SELECT * FROM {table} \
         WHERE seq IS NOT NULL AND {scope} ORDER BY tenant_id, seq LIMIT $3)"
    );
    // The next page is read while this one is checked: SQLite's worker thread and the checks
    // run on two cores.
    let fetch = |after_tenant: String, after_seq: i64| {
        let (pool, text) = (pool.clone(), text.clone());
        tokio::spawn(async move {
            let q = query(&text).bind_all([
                Bind::Text(&after_tenant),
                Bind::Int(after_seq),
                Bind::Int(SQLITE_VERIFY_PAGE),
            ]);
            let page = pool.fetch_one(&q).await?.text(0)?;
            serde_json::from_str::<Vec<JsonAuditRow>>(&page)
                .map_err(|e| metaengine_store::StoreError::Database(Box::new(e)))
        })
    };
    let joined = |r: Result<StoreResult<Vec<JsonAuditRow>>, tokio::task::JoinError>| {
        r.map_err(|e| metaengine_store::StoreError::Database(Box::new(e)))?
    };
    let mut next = fetch(tenant.unwrap_or_default().to_owned(), i64::MIN);
    loop {
        let rows = joined(next.await)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        next = fetch(last.tenant_id.clone(), last.seq);
        for r in rows {
            verifier.row(&AuditRow {
                id: r.id,
                event_id: r.event_id,
                event_type: r.event_type,
                timestamp: r.timestamp,
                user_id: r.user_id,
                tenant_id: r.tenant_id,
                realm_id: r.realm_id,
                action: r.action,
                resource: r.resource,
                details: r.details,
                result: r.result,
                error_message: r.error_message,
                seq: Some(r.seq),
                prev_hash: r.prev_hash,
                hash: r.hash,
            });
            if verifier.is_broken() {
                return Ok(());
            }
        }
    }
}

/// `text` with the tenant bound as `$1` when one is given.
fn bind_to<'q>(text: &'q str, tenant: Option<&'q str>) -> crate::db::Query<'q> {
    let q = query(text);
    match tenant {
        Some(t) => q.bind(Bind::Text(t)),
        None => q,
    }
}

/// Rows [`chain_existing`] reads at a time.
const CHAIN_EXISTING_CHUNK: i64 = 10_000;

/// Chains the rows written before the chain existed (the migration that added it has just
/// run): each tenant's rows in time order, after the tenant's head, in one transaction. Only the
/// migration may do this: a row without a place in a chain later is one inserted by hand, for
/// `verify` to report.
pub(crate) async fn chain_existing(pool: &Pool, sql: &MetaSql) -> StoreResult<u64> {
    let table = &sql.audit_table;
    let mut tx = pool.begin_write().await?;
    let tenants = tx
        .fetch_all(&query(&format!(
            "SELECT DISTINCT tenant_id FROM {table} WHERE seq IS NULL"
        )))
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<StoreResult<BTreeSet<String>>>()?;
    if tenants.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let start = lock_heads(&mut tx, sql, &tenants.iter().map(String::as_str).collect()).await?;
    let mut heads = start.clone();
    let select = format!(
        "{} WHERE tenant_id = $1 AND seq IS NULL ORDER BY timestamp, id LIMIT $2",
        sql.select_audit
    );
    let update = format!("UPDATE {table} SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1");
    let mut chained = 0;
    for tenant in &tenants {
        let head = heads.entry(tenant.clone()).or_default();
        loop {
            let rows = tx
                .fetch_all(
                    &query(&select)
                        .bind(Bind::Text(tenant))
                        .bind(Bind::Int(CHAIN_EXISTING_CHUNK)),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let row = rows::audit(row)?;
                let link = head.append(&chain::content(&Content::from(&row)));
                tx.execute(&query(&update).bind_all([
                    Bind::Id(row.id),
                    Bind::Int(link.seq),
                    Bind::Text(&link.prev_hash),
                    Bind::Text(&link.hash),
                ]))
                .await?;
                chained += 1;
            }
        }
    }
    move_heads(&mut tx, sql, &start, &heads).await?;
    tx.commit().await?;
    Ok(chained)
}
