//! The change log read back for the realtime feed (SPEC §14): changes in commit order, a
//! subscriber's replay, retention, and how processes wake each other.
//!
//! **Commit order on PostgreSQL.** A change's `seq` is taken from a sequence while its
//! transaction runs, so two transactions can commit in the other order than they took their
//! numbers: a reader can see 11 before 10 exists. Reading "everything after the last id" would
//! then skip 10 for good. So [`after`] hands out changes only up to the first gap in the numbers,
//! unless the gap is known to be final. A number is taken inside an `INSERT` into the log, which
//! holds a `RowExclusiveLock` on the log until its transaction ends; so once every transaction
//! that held that lock when the gap was seen has ended, whatever fills the gap has committed (and
//! a fresh read sees it) or never will (a rollback, whose numbers are lost). While waiting the
//! gap usually fills by itself, which ends the wait at once; only a rolled-back write waits for
//! the writers that were running beside it.
//!
//! SQLite runs one writer at a time: its numbers are in commit order, without gaps.

use std::time::Duration;

use metaengine_sql::Dialect;
use metaengine_sql::query::{Scope, changes_table};
use metaengine_store::{
    ChangeBatch, ChangeBounds, ChangeOp, ChangeRow, StoreError, StoreResult, Timestamp,
};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use crate::db::{Bind, Db, Pool, Row, database, query};

/// The channel on which processes announce new changes (PostgreSQL `LISTEN`/`NOTIFY`).
pub const CHANGES_CHANNEL: &str = "metaengine_changes";

/// The longest one read waits for a gap to be settled before answering what comes before it.
const GAP_WAIT: Duration = Duration::from_millis(250);

const COLUMNS: &str = "\"seq\", \"at\", \"tenant_id\", \"realm_id\", \"entity\", \"record_id\", \
                       \"op\", \"row_version\", \"record\", \"previous\"";

fn change(row: &Row) -> StoreResult<ChangeRow> {
    let op = row.text("op")?;
    Ok(ChangeRow {
        seq: row.int("seq")?,
        at: row.time("at")?,
        tenant_id: row.text("tenant_id")?,
        realm_id: row.text("realm_id")?,
        entity: row.text("entity")?,
        record_id: row.text("record_id")?,
        op: ChangeOp::parse(&op).ok_or_else(|| {
            StoreError::Database(format!("unknown change operation `{op}`").into())
        })?,
        row_version: row.int("row_version")?,
        record: row.opt_text("record")?,
        previous: row.opt_text("previous")?,
    })
}

/// The changes with ids in `after + 1 ..= through`, at most `limit`.
async fn read(
    pool: &Pool,
    dialect: Dialect,
    (after, through): (i64, i64),
    limit: u32,
) -> StoreResult<Vec<ChangeRow>> {
    let text = format!(
        "SELECT {COLUMNS} FROM {} WHERE \"seq\" > $1 AND \"seq\" <= $2 ORDER BY \"seq\" LIMIT $3",
        changes_table(dialect)
    );
    let q = query(&text).bind_all([
        Bind::Int(after),
        Bind::Int(through),
        Bind::Int(i64::from(limit)),
    ]);
    pool.fetch_all(&q).await?.iter().map(change).collect()
}

/// The ids of up to `limit` changes after `after` (no record read: cheap to repeat).
async fn ids(pool: &Pool, dialect: Dialect, after: i64, limit: u32) -> StoreResult<Vec<i64>> {
    let text = format!(
        "SELECT \"seq\" FROM {} WHERE \"seq\" > $1 ORDER BY \"seq\" LIMIT $2",
        changes_table(dialect)
    );
    let q = query(&text).bind_all([Bind::Int(after), Bind::Int(i64::from(limit))]);
    pool.fetch_all(&q).await?.iter().map(|r| r.int(0)).collect()
}

/// How many ids at the start of `ids` follow `after` without a gap.
fn contiguous(after: i64, ids: &[i64]) -> usize {
    let mut expected = after + 1;
    ids.iter()
        .take_while(|&&id| {
            let ok = id == expected;
            expected += 1;
            ok
        })
        .count()
}

/// The transactions (virtual ids) that hold a write lock on the log now, this connection's
/// own excepted.
async fn writers(pool: &Pool) -> StoreResult<Vec<String>> {
    let q = query(
        "SELECT \"virtualtransaction\" FROM pg_catalog.pg_locks WHERE \"locktype\" = 'relation' \
         AND \"mode\" = 'RowExclusiveLock' AND \"relation\" = 'meta.meta_changes'::regclass \
         AND \"pid\" <> pg_backend_pid()",
    );
    pool.fetch_all(&q)
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect()
}

/// Whether any of `writers` still holds its write lock on the log.
async fn still_writing(pool: &Pool, writers: &[String]) -> StoreResult<bool> {
    let now = self::writers(pool).await?;
    Ok(now.iter().any(|w| writers.contains(w)))
}

/// The changes after `after` that are final, in commit order: at most `limit`, none of them
/// ahead of a gap that may still fill (see the module documentation). `records`: read them, or
/// only say how far they go (a feed with no subscriber keeps its place without reading them).
pub(crate) async fn after(
    pool: &Pool,
    dialect: Dialect,
    after: i64,
    limit: u32,
    records: bool,
) -> StoreResult<ChangeBatch> {
    let through = settled(pool, dialect, after, limit).await?;
    let rows = if records && through > after {
        read(pool, dialect, (after, through), limit).await?
    } else {
        Vec::new()
    };
    Ok(ChangeBatch { rows, through })
}

/// The highest id `t` (at least `after`, at most `limit` ids further) such that every change
/// up to `t` is final.
async fn settled(pool: &Pool, dialect: Dialect, after: i64, limit: u32) -> StoreResult<i64> {
    let mut seen = ids(pool, dialect, after, limit).await?;
    let last = |ids: &[i64], n: usize| ids.get(n.wrapping_sub(1)).copied().unwrap_or(after);
    let ok = contiguous(after, &seen);
    if dialect == Dialect::Sqlite || ok == seen.len() {
        // SQLite commits one writer at a time, in id order.
        return Ok(last(&seen, seen.len()));
    }
    // A gap after the first `ok` ids: settled once it fills, or once the writers of now are
    // gone (then every id up to `beyond` is committed or lost for good).
    let Some(&beyond) = seen.get(ok) else {
        return Ok(last(&seen, ok));
    };
    let seen_writers = writers(pool).await?;
    let deadline = tokio::time::Instant::now() + GAP_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        if !still_writing(pool, &seen_writers).await? {
            seen = ids(pool, dialect, after, limit).await?;
            let settled = seen.iter().take_while(|&&id| id <= beyond).count();
            let from = last(&seen, settled).max(beyond);
            let rest = contiguous(from, seen.get(settled..).unwrap_or_default());
            return Ok(last(&seen, settled + rest).max(beyond));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(last(&seen, ok));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
        seen = ids(pool, dialect, after, limit).await?;
        let now = contiguous(after, &seen);
        if last(&seen, now) >= beyond {
            // The gap filled: as far as the ids are contiguous now.
            return Ok(last(&seen, now));
        }
    }
}

/// A subscriber's replay: the changes of `entities` in one scope in `after + 1 ..= through`.
pub(crate) async fn of(
    pool: &Pool,
    dialect: Dialect,
    scope: Scope<'_>,
    entities: &[String],
    (after, through): (i64, i64),
    limit: u32,
) -> StoreResult<Vec<ChangeRow>> {
    if entities.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = (0..entities.len()).map(|i| format!("${}", i + 6)).collect();
    let text = format!(
        "SELECT {COLUMNS} FROM {} WHERE \"seq\" > $1 AND \"seq\" <= $2 AND \"tenant_id\" = $3 \
         AND \"realm_id\" = $4 AND \"entity\" IN ({}) ORDER BY \"seq\" LIMIT $5",
        changes_table(dialect),
        names.join(", ")
    );
    let q = query(&text)
        .bind_all([
            Bind::Int(after),
            Bind::Int(through),
            Bind::Text(scope.tenant_id),
            Bind::Text(scope.realm_id),
            Bind::Int(i64::from(limit)),
        ])
        .bind_all(entities.iter().map(|e| Bind::Text(e)));
    pool.fetch_all(&q).await?.iter().map(change).collect()
}

/// The highest purged and recorded ids.
pub(crate) async fn bounds(pool: &Pool, dialect: Dialect) -> StoreResult<ChangeBounds> {
    let log = changes_table(dialect);
    let text = format!(
        "SELECT (SELECT \"through\" FROM {log}_purged WHERE \"id\" = 1) AS \"purged\", \
         (SELECT max(\"seq\") FROM {log}) AS \"last\""
    );
    let row = pool.fetch_one(&query(&text)).await?;
    let purged_through = row.opt_int("purged")?.unwrap_or(0);
    let last = row.opt_int("last")?.unwrap_or(0).max(purged_through);
    Ok(ChangeBounds {
        purged_through,
        last,
    })
}

/// The longest [`settled_end`] waits for the writers of the moment.
const START_WAIT: Duration = Duration::from_secs(5);

/// The highest id up to which every change is final: the highest recorded id, once every
/// transaction that held a write lock on the log when it was read has ended (on PostgreSQL an
/// id below it may belong to one of them; any id taken later is above it). Where a feed starts.
pub(crate) async fn settled_end(pool: &Pool, dialect: Dialect) -> StoreResult<i64> {
    let last = bounds(pool, dialect).await?.last;
    if dialect == Dialect::Sqlite {
        return Ok(last);
    }
    let seen = writers(pool).await?;
    let deadline = tokio::time::Instant::now() + START_WAIT;
    while !seen.is_empty() && still_writing(pool, &seen).await? {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "writers of the change log still running after {} s: the realtime feed goes on \
                 without waiting for them",
                START_WAIT.as_secs()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(last)
}

/// Deletes the changes recorded before `before` (the oldest ids, up to the first change that
/// is recent enough) and remembers the highest id deleted.
pub(crate) async fn purge(pool: &Pool, dialect: Dialect, before: Timestamp) -> StoreResult<u64> {
    let log = changes_table(dialect);
    let mut tx = pool.begin_write().await?;
    let first_kept =
        format!("SELECT \"seq\" FROM {log} WHERE \"at\" >= $1 ORDER BY \"seq\" LIMIT 1");
    let kept = tx
        .fetch_optional(&query(&first_kept).bind(Bind::Time(before)))
        .await?
        .map(|r| r.int(0))
        .transpose()?;
    let through = match kept {
        Some(seq) => seq - 1,
        None => {
            let last = format!("SELECT max(\"seq\") FROM {log}");
            match tx.fetch_one(&query(&last)).await?.opt_int(0)? {
                Some(seq) => seq,
                None => return Ok(0),
            }
        }
    };
    // The log is never analyzed: `seq <= $1` alone was planned as a scan of the whole log (0.7 s
    // at 5 million changes, at every start, for nothing to delete). Bounded on both sides, the
    // range is read from the primary key; nothing older than the first change kept, no `DELETE`.
    let oldest = format!("SELECT min(\"seq\") FROM {log}");
    let first = match tx.fetch_one(&query(&oldest)).await?.opt_int(0)? {
        Some(first) if first <= through => first,
        _ => return Ok(0),
    };
    let delete = format!("DELETE FROM {log} WHERE \"seq\" >= $1 AND \"seq\" <= $2");
    let deleted = tx
        .execute(
            &query(&delete)
                .bind(Bind::Int(first))
                .bind(Bind::Int(through)),
        )
        .await?;
    let mark =
        format!("UPDATE {log}_purged SET \"through\" = $1 WHERE \"id\" = 1 AND \"through\" < $1");
    tx.execute(&query(&mark).bind(Bind::Int(through))).await?;
    tx.commit().await?;
    // The deleted rows' space is free for new changes only once vacuumed, and autovacuum may be
    // off: vacuum the log after a purge that deleted much of it (autovacuum's rule, against
    // the rows deleted rather than its statistics). SQLite reuses a deleted row's space itself.
    // Best effort: the purge itself has committed.
    if pool.is_postgres()
        && let Err(e) = vacuum_after_purge(pool, dialect, deleted, through).await
    {
        tracing::warn!(error = %e, "vacuuming the change log after its purge failed");
    }
    Ok(deleted)
}

/// Vacuums the change log (PostgreSQL) when the `deleted` rows of a purge through `through`
/// call for it ([`metaengine_store::vacuum_due`]), against the rows left: the ids after
/// `through` (an identity, whose gaps only make the count a little high).
async fn vacuum_after_purge(
    pool: &Pool,
    dialect: Dialect,
    deleted: u64,
    through: i64,
) -> StoreResult<()> {
    let left = u64::try_from(bounds(pool, dialect).await?.last - through).unwrap_or(0);
    if metaengine_store::vacuum_due(deleted, left) {
        let log = changes_table(dialect);
        pool.execute_simple(&format!("VACUUM {log}")).await?;
    }
    Ok(())
}

/// Wakes other processes' feeds (PostgreSQL).
pub(crate) async fn announce(pool: &Pool) -> StoreResult<()> {
    if pool.is_postgres() {
        let q = query("SELECT pg_notify($1, '')").bind(Bind::Text(CHANGES_CHANNEL));
        pool.fetch_one(&q).await?;
    }
    Ok(())
}

/// A message per announcement of another process (and after the listener reconnected).
pub(crate) async fn watch(pool: &Pool) -> StoreResult<mpsc::Receiver<()>> {
    let (sender, receiver) = mpsc::channel(1);
    let Db::Postgres(pg) = pool.db() else {
        // SQLite: the sender lives as long as the receiver may wait, and never sends.
        tokio::spawn(async move { sender.closed().await });
        return Ok(receiver);
    };
    let mut listener = PgListener::connect_with(pg).await.map_err(database)?;
    listener.listen(CHANGES_CHANNEL).await.map_err(database)?;
    tokio::spawn(async move {
        loop {
            if let Err(e) = listener.try_recv().await {
                tracing::warn!(error = %e, "lost the change listener; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // A full channel already holds a wake-up: nothing is lost by dropping this one.
            match sender.try_send(()) {
                Err(mpsc::error::TrySendError::Closed(())) => return,
                _ => continue,
            }
        }
    });
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_stops_at_the_first_gap() {
        let ids = [5, 6, 8, 9];
        assert_eq!(contiguous(4, &ids), 2);
        assert_eq!(contiguous(3, &ids), 0);
        assert_eq!(contiguous(7, &ids[2..]), 2);
        assert_eq!(contiguous(0, &[]), 0);
    }
}
