//! Audit rows: written in the caller's transaction (metadata changes, record writes) or in
//! multi-row inserts by the batched writer, and read back with filters, newest first.

use std::fmt::Write as _;

use metaengine_store::{AuditQuery, Id, NewAudit, Page, StoreResult, Timestamp};

use crate::db::{Bind, Pool, Tx, query};
use crate::meta_sql::MetaSql;
use crate::rows;

/// Audit rows per multi-row insert (12 values each: well under SQLite's 32,766 bound values).
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1_000;

/// Values of one audit row, in the column order of [`MetaSql::insert_audit`].
pub(crate) const COLUMNS: usize = 12;

/// A new row id and event id for each of `count` audit rows.
pub(crate) fn new_ids(count: usize) -> Vec<(Id, String)> {
    (0..count)
        .map(|_| (Id::new_v7(), Id::new_v7().to_string()))
        .collect()
}

/// The values of `audits`, [`COLUMNS`] per row in the column order of
/// [`MetaSql::insert_audit`], with the ids of [`new_ids`] and the time `now`.
pub(crate) fn binds<'a>(
    audits: &'a [NewAudit],
    ids: &'a [(Id, String)],
    now: Timestamp,
) -> impl Iterator<Item = Bind<'a>> {
    audits.iter().zip(ids).flat_map(move |(a, (id, event_id))| {
        [
            Bind::Id(*id),
            Bind::Text(event_id),
            Bind::Text(a.event_type.as_str()),
            Bind::Time(now),
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

/// Writes audit rows with multi-row inserts of up to [`AUDIT_ROWS_PER_STATEMENT`] rows (the
/// batched writer's flushes, an import's batches): one round trip per chunk. A single row (every
/// metadata change) keeps its statement prepared; other counts vary from flush to flush.
pub(crate) async fn insert(tx: &mut Tx, sql: &MetaSql, audits: &[NewAudit]) -> StoreResult<()> {
    for chunk in audits.chunks(AUDIT_ROWS_PER_STATEMENT) {
        let mut text = String::with_capacity(sql.insert_audit.len() + chunk.len() * 64);
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
        let ids = new_ids(chunk.len());
        let q = query(&text).persistent(chunk.len() == 1).bind_all(binds(
            chunk,
            &ids,
            Timestamp::now(),
        ));
        tx.execute(&q).await?;
    }
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

/// Deletes the rows older than `before`; how many.
pub(crate) async fn purge(pool: &Pool, sql: &MetaSql, before: Timestamp) -> StoreResult<u64> {
    pool.execute(&query(&sql.purge_audit).bind(Bind::Time(before)))
        .await
}
