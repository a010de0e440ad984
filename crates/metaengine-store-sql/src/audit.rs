//! Audit rows (SPEC §16, [`metaengine_store::chain`]): written sealed in the caller's
//! transaction (metadata changes, record writes: [`seal`]) and appended to their tenants' chains
//! after the commit by the chainer ([`chain_sealed`]), or chained as they are written by the
//! batched writer's multi-row inserts ([`append`]); read back with filters, newest first;
//! verified; purged.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use futures_util::TryStreamExt as _;
use metaengine_store::chain::{self, Checkpoint, Content, Head, Link, SealKey, Verifier};
use metaengine_store::{
    AuditActor, AuditQuery, AuditRow, EventType, Id, NewAudit, Page, PurgeReport, StoreResult,
    Timestamp, VerifyReport,
};
use serde_json::json;
use tokio::sync::Notify;

use crate::db::{Bind, Pool, Tx, query};
use crate::meta_sql::{LOCK_AUDIT_HEADS_END, MetaSql};
use crate::rows;

/// Audit rows per multi-row insert on PostgreSQL (15 values each).
pub const AUDIT_ROWS_PER_STATEMENT: usize = 1_000;

/// Audit rows per multi-row statement on SQLite. Their placeholders are plain `?`: sqlx-sqlite
/// looks the name of each numbered one (`$n`) up in SQLite's list of names, which made binding
/// quadratic in a statement's values (512 rows of 15 values wrote 1,800 rows/s, three quarters of
/// the CPU in `sqlite3_bind_parameter_name`).
const SQLITE_AUDIT_ROWS_PER_STATEMENT: usize = 100;

/// Values of one audit row, in the column order of [`MetaSql::insert_audit`].
pub(crate) const COLUMNS: usize = SEED_COLUMNS + 3;

/// The seed's columns of an audit row (all but `seq`, `prev_hash`, `hash`).
pub(crate) const SEED_COLUMNS: usize = 12;

/// Values of one sealed audit row, in the column order of [`MetaSql::insert_sealed_audit`].
pub(crate) const SEALED_COLUMNS: usize = SEED_COLUMNS + 1;

/// Audit rows per multi-row statement on this connection's database.
fn rows_per_statement(tx: &Tx) -> usize {
    if tx.is_postgres() {
        AUDIT_ROWS_PER_STATEMENT
    } else {
        SQLITE_AUDIT_ROWS_PER_STATEMENT
    }
}

/// Appends `rows` rows of `columns` placeholders, `(…), (…)`: numbered (`$1`, `$2`, …) on
/// PostgreSQL, plain `?` in the same order on SQLite (see [`SQLITE_AUDIT_ROWS_PER_STATEMENT`]).
fn push_values(text: &mut String, rows: usize, columns: usize, numbered: bool) {
    for row in 0..rows {
        text.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            let sep = if column == 0 { "" } else { ", " };
            if numbered {
                let _ = write!(text, "{sep}${}", row * columns + column + 1);
            } else {
                let _ = write!(text, "{sep}?");
            }
        }
        text.push(')');
    }
}

/// `prefix VALUES (…), (…)` for `rows` rows of `columns` values on `tx`'s database.
fn values_statement(tx: &Tx, prefix: &str, rows: usize, columns: usize) -> String {
    let mut text = String::with_capacity(prefix.len() + rows * columns * 5 + 8);
    text.push_str(prefix);
    text.push_str(" VALUES ");
    push_values(&mut text, rows, columns, tx.is_postgres());
    text
}

/// Whether a multi-row statement of `rows` rows is worth keeping prepared: one row, or a full
/// chunk on SQLite (PostgreSQL's chunks vary with each flush).
fn keep_prepared(tx: &Tx, rows: usize) -> bool {
    rows == 1 || (!tx.is_postgres() && rows == SQLITE_AUDIT_ROWS_PER_STATEMENT)
}

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

    /// What the chainer needs of each row to append it to its chain, the rows once written
    /// (their ids, tenants and contents).
    pub(crate) fn into_hints(self) -> impl Iterator<Item = Hint> {
        let at = std::time::Instant::now();
        self.ids
            .into_iter()
            .zip(self.audits)
            .zip(self.contents)
            .map(move |(((id, _), audit), content)| Hint {
                id,
                at,
                tenant_id: audit.actor.tenant_id.clone(),
                content,
            })
    }

    /// Each row's seal with `key`.
    pub(crate) fn seals(&self, key: &SealKey) -> Vec<String> {
        self.contents.iter().map(|c| key.seal(c)).collect()
    }

    /// The seed's 12 values of each row (without `seq`, `prev_hash`, `hash`, `seal`).
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
    for chunk in all.chunks(rows_per_statement(tx)) {
        let mut text = String::with_capacity(120 + chunk.len() * 24);
        let _ = write!(
            text,
            "UPDATE {} AS h SET seq = v.column2, before_hash = v.column3, hash = v.column4 \
             FROM (VALUES ",
            sql.audit_heads
        );
        push_values(&mut text, chunk.len(), 4, tx.is_postgres());
        text.push_str(") AS v WHERE h.tenant_id = v.column1");
        let mut binds = Vec::with_capacity(chunk.len() * 4);
        for (tenant, head) in chunk {
            binds.extend([
                Bind::Text(tenant),
                Bind::Int(head.seq),
                Bind::Text(before(tenant)),
                Bind::Text(&head.hash),
            ]);
        }
        let q = query(&text).persistent(keep_prepared(tx, chunk.len()));
        tx.execute(&q.bind_all(binds)).await?;
    }
    Ok(())
}

/// Writes audit rows chained as they are written (the batched writer, a purge's checkpoints):
/// locks the tenants' chain heads (held until `tx` ends, which serializes each tenant's
/// appends), inserts the rows with multi-row inserts of up to [`AUDIT_ROWS_PER_STATEMENT`] rows,
/// and moves the heads.
pub(crate) async fn append(tx: &mut Tx, sql: &MetaSql, audits: &[NewAudit]) -> StoreResult<()> {
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
    for chunk in audits.chunks(rows_per_statement(tx)) {
        let text = values_statement(tx, &sql.insert_audit, chunk.len(), COLUMNS);
        let mut q = query(&text).persistent(keep_prepared(tx, chunk.len()));
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

/// What seals the audit rows of a request's transaction, and tells the chainer which rows to
/// append to their chains (`Store::chain_written_audit`).
#[derive(Debug, Clone)]
pub struct Sealer {
    key: SealKey,
    written: Arc<Notify>,
    /// The rows sealed by this process and not chained yet; the chainer looks them up by
    /// primary key.
    hints: Arc<std::sync::Mutex<Vec<Hint>>>,
}

/// A sealed row this process wrote, as the chainer's quick pass takes it: the row's content is
/// the one its seal was made of, so the pass need not read it back (nor check its seal). Were
/// the row changed before it is chained, its hash would still cover what was written, and
/// `verify` would report the change.
#[derive(Debug, Clone)]
pub(crate) struct Hint {
    id: Id,
    /// When it was written.
    at: std::time::Instant,
    tenant_id: String,
    /// Its canonical content ([`chain::content`]).
    content: String,
}

/// How long the chainer keeps looking for a sealed row it was told of and cannot see (its
/// transaction has not committed, or rolled back); the periodic full pass finds any it gave up
/// on.
const HINT_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Most rows the sealer remembers (with their contents, a few hundred bytes each); past it, rows
/// wait for the full pass.
const MAX_HINTS: usize = 100_000;

impl Sealer {
    /// A sealer with `key`.
    pub fn new(key: SealKey) -> Self {
        Self {
            key,
            written: Arc::new(Notify::new()),
            hints: Arc::default(),
        }
    }

    /// The key of the seals.
    pub fn key(&self) -> &SealKey {
        &self.key
    }

    /// Tells the chainer that the sealed rows of `hints` were written (a wake-up may come
    /// before their commit: the chainer looks again while it cannot see them).
    pub(crate) fn written(&self, hints: impl Iterator<Item = Hint>) {
        {
            let mut all = self.lock();
            let room = MAX_HINTS.saturating_sub(all.len());
            all.extend(hints.take(room));
        }
        self.written.notify_one();
    }

    /// Waits until sealed rows were written since the last wait.
    pub async fn wait_written(&self) {
        self.written.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Hint>> {
        self.hints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rows written since the last call.
    fn take(&self) -> Vec<Hint> {
        std::mem::take(&mut *self.lock())
    }

    /// Gives back the rows the chainer could not see yet (less than [`HINT_TTL`] old), and
    /// wakes it to look again.
    fn retry(&self, unseen: Vec<Hint>) {
        let young: Vec<_> = unseen
            .into_iter()
            .filter(|h| h.at.elapsed() < HINT_TTL)
            .collect();
        if !young.is_empty() {
            self.lock().extend(young);
            self.written.notify_one();
        }
    }
}

/// Writes audit rows sealed in the caller's transaction (a request's metadata change or record
/// write), without locking any chain: [`chain_sealed`] appends them to their chains once
/// committed.
pub(crate) async fn seal(
    tx: &mut Tx,
    sql: &MetaSql,
    sealer: &Sealer,
    audits: &[NewAudit],
) -> StoreResult<()> {
    if audits.is_empty() {
        return Ok(());
    }
    let pending = Pending::new(audits);
    let seals = pending.seals(&sealer.key);
    {
        let mut rows = pending.seed_binds().zip(&seals);
        for chunk in audits.chunks(rows_per_statement(tx)) {
            let text = values_statement(tx, &sql.insert_sealed_audit, chunk.len(), SEALED_COLUMNS);
            let mut q = query(&text).persistent(keep_prepared(tx, chunk.len()));
            for (seed, seal) in rows.by_ref().take(chunk.len()) {
                q = q.bind_all(seed).bind(Bind::Text(seal));
            }
            tx.execute(&q).await?;
        }
    }
    sealer.written(pending.into_hints());
    Ok(())
}

/// Sealed rows the chainer reads at a time.
const CHAIN_BATCH: usize = 2_000;

/// The PostgreSQL advisory lock that lets one chainer at a time run on a database ("metaaudt").
const CHAINER_LOCK: i64 = 0x6d65_7461_6175_6474;

/// Whether `key` sealed this row as it is (a row the engine wrote and has not chained yet).
pub(crate) fn sealed_by(key: &SealKey, row: &AuditRow) -> bool {
    row.seal
        .as_deref()
        .is_some_and(|seal| key.vouches(&chain::content(&Content::from(row)), seal))
}

/// The chainer's full pass: appends the sealed rows committed so far (those on the waiting list,
/// `meta_audit_pending`; with `before`, only those with smaller ids) to their tenants' chains,
/// in the order of their ids (time-ordered), in transactions of up to [`CHAIN_BATCH`] rows;
/// returns how many it chained. A row without a position whose seal `key` does not vouch for
/// (inserted by hand, or sealed with another instance's key) is left where it is for `verify`
/// to report. One chainer runs at a time on a database: PostgreSQL's advisory lock
/// [`CHAINER_LOCK`], SQLite's writer lock.
pub(crate) async fn chain_sealed(
    pool: &Pool,
    sql: &MetaSql,
    key: &SealKey,
    before: Option<Id>,
) -> StoreResult<u64> {
    let text = format!(
        "SELECT a.* FROM {} AS p JOIN {} AS a ON a.id = p.id \
         WHERE a.seq IS NULL AND p.id > $1 AND p.id < $2 ORDER BY p.id LIMIT {CHAIN_BATCH}",
        sql.audit_pending, sql.audit_table
    );
    let before = before.unwrap_or(Id(uuid::Uuid::max()));
    let mut chained = 0;
    let mut after = Id(uuid::Uuid::nil());
    loop {
        let mut tx = pool.begin_write().await?;
        if tx.is_postgres() {
            tx.execute(&query("SELECT pg_advisory_xact_lock($1)").bind(Bind::Int(CHAINER_LOCK)))
                .await?;
            // Every chained row leaves a dead entry in `meta_audit_pending`'s key until a
            // VACUUM (autovacuum may be off). A bitmap scan visits the heap page of each of
            // them, every pass (30 ms at 80,000, measured on the partial index this list
            // replaced); an index scan marks them dead as it passes, and later passes skip them
            // without visiting the heap.
            tx.execute(&query("SET LOCAL enable_bitmapscan = off"))
                .await?;
        }
        let read = tx
            .fetch_all(&query(&text).bind_all([Bind::Id(after), Bind::Id(before)]))
            .await?;
        let rows = read
            .iter()
            .map(rows::audit)
            .collect::<StoreResult<Vec<_>>>()?;
        if let Some(last) = rows.last() {
            after = last.id;
        }
        chained += append_sealed(tx, sql, key, &rows).await?;
        if rows.len() < CHAIN_BATCH {
            return Ok(chained);
        }
    }
}

/// Ids looked up per statement by [`chain_written`].
const HINTS_PER_STATEMENT: usize = 500;

/// The chainer's quick pass: chains the sealed rows this process wrote since the last pass,
/// with the contents it sealed ([`Hint`]); it reads only their positions, by primary key, to
/// see which have committed and are still without one (the full pass, [`chain_sealed`], reads
/// every row without a position). A row it cannot see yet (not committed) is looked for again
/// in the next pass, for up to [`HINT_TTL`]; the rows of a pass that fails are left to the
/// full pass.
pub(crate) async fn chain_written(pool: &Pool, sql: &MetaSql, sealer: &Sealer) -> StoreResult<u64> {
    let mut hints = sealer.take();
    if hints.is_empty() {
        return Ok(0);
    }
    hints.sort_unstable_by_key(|h| h.id);
    let mut chained = 0;
    let mut unseen = Vec::new();
    for chunk in hints.chunks(HINTS_PER_STATEMENT) {
        let mut tx = pool.begin_write().await?;
        let postgres = tx.is_postgres();
        let mut text = format!("SELECT id, seq FROM {} WHERE id IN (", sql.audit_table);
        push_values(&mut text, chunk.len(), 1, postgres);
        text.push(')');
        let q = query(&text)
            .persistent(keep_prepared(&tx, chunk.len()))
            .bind_all(chunk.iter().map(|h| Bind::Id(h.id)));
        if postgres {
            tx.execute(&query("SELECT pg_advisory_xact_lock($1)").bind(Bind::Int(CHAINER_LOCK)))
                .await?;
        }
        let mut positions = HashMap::with_capacity(chunk.len());
        for row in tx.fetch_all(&q).await? {
            positions.insert(row.id("id")?, row.opt_int("seq")?);
        }
        let mut sealed = Vec::with_capacity(chunk.len());
        for h in chunk {
            match positions.get(&h.id) {
                None => unseen.push(h.clone()),
                // Chained already (by a full pass).
                Some(Some(_)) => {}
                Some(None) => sealed.push((h.id, h.tenant_id.as_str(), h.content.as_str())),
            }
        }
        chained += link_rows(tx, sql, &sealed).await?;
    }
    sealer.retry(unseen);
    Ok(chained)
}

/// Appends `rows` (sealed, in id order, read in `tx`) to their tenants' chains and commits;
/// how many it chained. A row whose seal `key` does not vouch for is left out.
async fn append_sealed(
    tx: Tx,
    sql: &MetaSql,
    key: &SealKey,
    rows: &[AuditRow],
) -> StoreResult<u64> {
    let vouched: Vec<(&AuditRow, String)> = rows
        .iter()
        .filter_map(|row| {
            let content = chain::content(&Content::from(row));
            let seal = row.seal.as_deref()?;
            key.vouches(&content, seal).then_some((row, content))
        })
        .collect();
    let rows: Vec<(Id, &str, &str)> = vouched
        .iter()
        .map(|(row, content)| (row.id, row.tenant_id.as_str(), content.as_str()))
        .collect();
    link_rows(tx, sql, &rows).await
}

/// Appends `rows` (id, tenant, canonical content; in id order) to their tenants' chains in
/// `tx` and commits; how many it chained.
async fn link_rows(mut tx: Tx, sql: &MetaSql, rows: &[(Id, &str, &str)]) -> StoreResult<u64> {
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let tenants: BTreeSet<&str> = rows.iter().map(|(_, tenant, _)| *tenant).collect();
    let start = lock_heads(&mut tx, sql, &tenants).await?;
    let mut heads = start.clone();
    let links: Vec<(Id, Link)> = rows
        .iter()
        .map(|(id, tenant, content)| {
            let link = heads
                .entry((*tenant).to_owned())
                .or_default()
                .append(content);
            (*id, link)
        })
        .collect();
    set_links(&mut tx, sql, &links).await?;
    move_heads(&mut tx, sql, &start, &heads).await?;
    tx.commit().await?;
    Ok(links.len() as u64)
}

/// Gives sealed rows their places in their chains (and drops their seals), with multi-row
/// updates, and takes them off the list of rows waiting for the chainer.
async fn set_links(tx: &mut Tx, sql: &MetaSql, links: &[(Id, Link)]) -> StoreResult<()> {
    for chunk in links.chunks(rows_per_statement(tx)) {
        let mut text = String::with_capacity(160 + chunk.len() * 24);
        let _ = write!(
            text,
            "UPDATE {} AS a SET seq = v.column2, prev_hash = v.column3, hash = v.column4, \
             seal = NULL FROM (VALUES ",
            sql.audit_table
        );
        push_values(&mut text, chunk.len(), 4, tx.is_postgres());
        text.push_str(") AS v WHERE a.id = v.column1");
        let mut binds = Vec::with_capacity(chunk.len() * 4);
        for (id, link) in chunk {
            binds.extend([
                Bind::Id(*id),
                Bind::Int(link.seq),
                Bind::Text(&link.prev_hash),
                Bind::Text(&link.hash),
            ]);
        }
        let q = query(&text).persistent(keep_prepared(tx, chunk.len()));
        tx.execute(&q.bind_all(binds)).await?;
        let mut text = format!("DELETE FROM {} WHERE id IN (", sql.audit_pending);
        push_values(&mut text, chunk.len(), 1, tx.is_postgres());
        text.push(')');
        let q = query(&text).persistent(keep_prepared(tx, chunk.len()));
        tx.execute(&q.bind_all(chunk.iter().map(|(id, _)| Bind::Id(*id))))
            .await?;
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
    key: &SealKey,
    before: Timestamp,
) -> StoreResult<PurgeReport> {
    // Old rows still sealed join their chains first, so that the purge can take them.
    chain_sealed(pool, sql, key, None).await?;
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
        append(&mut tx, sql, std::slice::from_ref(&row)).await?;
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
/// genesis or a purge checkpoint) and end (its head). Chains the sealed rows first; a row left
/// without a position whose seal `key` does not vouch for was inserted by hand. Reads the rows
/// once, in chain order.
pub(crate) async fn verify(
    pool: &Pool,
    sql: &MetaSql,
    key: &SealKey,
    tenant: Option<&str>,
) -> StoreResult<VerifyReport> {
    chain_sealed(pool, sql, key, None).await?;
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
    // Rows without a position: sealed ones committed since the chainer's pass are on their way
    // into their chains; any other was inserted by hand.
    let unchained = format!(
        "{} ORDER BY id",
        where_tenant(&sql.select_audit, "seq IS NULL", tenant)
    );
    for r in pool.fetch_all(&bind_to(&unchained, tenant)).await? {
        let row = rows::audit(&r)?;
        if !sealed_by(key, &row) {
            verifier.unchained(&row.tenant_id, &row.event_id);
            return Ok(verifier.finish());
        }
    }
    if pool.is_postgres() {
        let chained = format!(
            "{} ORDER BY tenant_id, seq",
            where_tenant(&sql.select_audit, "seq IS NOT NULL", tenant)
        );
        let q = bind_to(&chained, tenant);
        let mut conn = pool.streaming().await?;
        let mut stream = conn.fetch(&q);
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
                seal: None,
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
