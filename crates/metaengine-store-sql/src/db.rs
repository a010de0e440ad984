//! The two databases behind one small surface: a pool, a transaction, a statement with its bound
//! values, and a row. With `changes.rs` (how other processes hear of a model change), this is
//! the only place that tells PostgreSQL from SQLite at run time (one `match` per call, no
//! generics and no macro), so the store's logic elsewhere is plain code over these types.
//!
//! Values cross as [`Bind`]s. Ids and timestamps are native on PostgreSQL (`uuid`,
//! `timestamptz`) and text on SQLite (a lowercase hyphenated uuid; RFC 3339 with milliseconds, which
//! sorts correctly as a string), so the file stays readable with the `sqlite3` shell.

use crate::conns::{self, Connections};
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, Stream};
use futures_util::{StreamExt as _, TryStreamExt as _};
use metaengine_core::SqlValue;
use metaengine_store::{Id, StoreError, StoreResult, Timestamp};
use serde_json::Value;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::query::Query as SqlxQuery;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{ColumnIndex, Executor as _, Postgres, Row as _, Sqlite};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// A database error as the store reports it: the sqlx error kept as the source, so that a 500
/// logs its cause and [`unique_violation`] can still read it.
pub(crate) fn database(e: sqlx::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

/// The sqlx error behind a [`StoreError::Database`], if it is one.
fn sqlx_error(e: &StoreError) -> Option<&sqlx::Error> {
    match e {
        StoreError::Database(source) => source.downcast_ref::<sqlx::Error>(),
        _ => None,
    }
}

/// Whether `e` is the database refusing a duplicate value of a unique index.
pub(crate) fn unique_violation(e: &StoreError) -> bool {
    matches!(sqlx_error(e), Some(sqlx::Error::Database(db)) if db.is_unique_violation())
}

/// A refusal of the database that enforces references (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferenceRefusal {
    /// A delete of a record other records refer to.
    StillReferenced,
    /// A write naming a record that does not exist.
    Missing,
}

/// What reference the database refused `e` for, if it is such a refusal: PostgreSQL's foreign
/// key violation (`23503`; its message tells a delete of the target from a write of the
/// reference), SQLite's reference triggers (their messages).
pub(crate) fn reference_refusal(e: &StoreError) -> Option<ReferenceRefusal> {
    let Some(sqlx::Error::Database(db)) = sqlx_error(e) else {
        return None;
    };
    let message = db.message();
    if db.code().as_deref() == Some("23503") {
        return Some(if message.starts_with("update or delete") {
            ReferenceRefusal::StillReferenced
        } else {
            ReferenceRefusal::Missing
        });
    }
    if message.contains(metaengine_sql::SQLITE_STILL_REFERENCED) {
        Some(ReferenceRefusal::StillReferenced)
    } else if message.contains(metaengine_sql::SQLITE_MISSING) {
        Some(ReferenceRefusal::Missing)
    } else {
        None
    }
}

/// The SQLSTATE of a database's refusal, if `e` is one.
pub(crate) fn sql_state(e: &StoreError) -> Option<String> {
    match sqlx_error(e) {
        Some(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// A connection pool on one of the two databases, with a count of the statements run on it
/// outside transactions (every read of the data API: a test proves with it that a list with
/// expansions is one statement).
#[derive(Debug, Clone)]
pub struct Pool {
    db: Db,
    conns: Conns,
    statements: Arc<AtomicU64>,
}

/// The database behind a [`Pool`], by the sqlx pool the store was made from (which serves
/// PostgreSQL's `LISTEN`; the store's statements run on connections of its own,
/// `conns.rs`).
#[derive(Debug, Clone)]
pub enum Db {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite, with the gate its write transactions queue at.
    Sqlite(SqlitePool, WriteGate),
}

/// How long a SQLite write waits for its turn at the [`WriteGate`] before it fails as busy: the
/// connections' own `busy_timeout`.
pub const SQLITE_WRITE_WAIT: Duration = Duration::from_secs(10);

/// SQLite's writers, one at a time, in arrival order, inside this process.
///
/// SQLite has one write lock per database. Without the gate, every connection of the pool that
/// wants it retries in SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms between attempts:
/// under concurrent writes most of a create's time was spent asleep there or waking threads to
/// retry (a p99 of 135 ms for a 10 ms median). With it, the writers wait in a fair async queue
/// and take the lock uncontended; the busy handler only still serves other processes.
#[derive(Debug, Clone, Default)]
pub struct WriteGate(Arc<tokio::sync::Mutex<()>>);

impl WriteGate {
    /// Waits for this process's turn to write, at most [`SQLITE_WRITE_WAIT`].
    async fn enter(&self) -> Result<OwnedMutexGuard<()>, sqlx::Error> {
        tokio::time::timeout(SQLITE_WRITE_WAIT, self.0.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)
    }
}

/// One value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bind<'a> {
    /// SQL `NULL` (typed as text).
    Null,
    /// Text.
    Text(&'a str),
    /// Text or `NULL`.
    OptText(Option<&'a str>),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A row id.
    Id(Id),
    /// An instant.
    Time(Timestamp),
    /// A JSON document (`jsonb` on PostgreSQL, text on SQLite).
    Json(&'a Value),
    /// A JSON document or `NULL`.
    OptJson(Option<&'a Value>),
}

impl<'a> From<&'a SqlValue> for Bind<'a> {
    fn from(value: &'a SqlValue) -> Self {
        match value {
            SqlValue::Null => Bind::Null,
            SqlValue::Text(s) => Bind::Text(s),
            SqlValue::Int(i) => Bind::Int(*i),
            SqlValue::Float(f) => Bind::Float(*f),
            SqlValue::Bool(b) => Bind::Bool(*b),
        }
    }
}

/// A statement and its values (`$1`, `$2`… in order: both databases accept `$n`).
#[derive(Debug, Clone)]
pub(crate) struct Query<'a> {
    sql: &'a str,
    binds: Vec<Bind<'a>>,
    persistent: bool,
}

/// A statement without values yet; see [`Query::bind`].
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        binds: Vec::new(),
        persistent: true,
    }
}

impl<'a> Query<'a> {
    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, value: Bind<'a>) -> Self {
        self.binds.push(value);
        self
    }

    /// Binds the next placeholders.
    pub(crate) fn bind_all(mut self, values: impl IntoIterator<Item = Bind<'a>>) -> Self {
        self.binds.extend(values);
        self
    }

    /// Whether the driver keeps the statement prepared (default: yes). Statements whose text
    /// varies from call to call (multi-row inserts of varying sizes) should not be.
    pub(crate) fn persistent(mut self, keep: bool) -> Self {
        self.persistent = keep;
        self
    }

    fn postgres(&self) -> SqlxQuery<'a, Postgres, PgArguments> {
        let mut q = sqlx::query(self.sql).persistent(self.persistent);
        for value in &self.binds {
            q = match *value {
                Bind::Null => q.bind(None::<&str>),
                Bind::Text(s) => q.bind(s),
                Bind::OptText(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
                Bind::Float(f) => q.bind(f),
                Bind::Bool(b) => q.bind(b),
                Bind::Id(id) => q.bind(id.0),
                Bind::Time(t) => q.bind(t.0),
                Bind::Json(v) => q.bind(v),
                Bind::OptJson(v) => q.bind(v),
            };
        }
        q
    }

    fn sqlite(&self) -> SqlxQuery<'a, Sqlite, SqliteArguments<'a>> {
        let mut q = sqlx::query(self.sql).persistent(self.persistent);
        for value in &self.binds {
            q = match *value {
                Bind::Null => q.bind(None::<&str>),
                Bind::Text(s) => q.bind(s),
                Bind::OptText(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
                Bind::Float(f) => q.bind(f),
                Bind::Bool(b) => q.bind(b),
                Bind::Id(id) => q.bind(id.to_string()),
                Bind::Time(t) => q.bind(t.to_rfc3339()),
                Bind::Json(v) => q.bind(v),
                Bind::OptJson(v) => q.bind(v),
            };
        }
        q
    }
}

/// A row of either database.
pub(crate) enum Row {
    /// PostgreSQL.
    Postgres(PgRow),
    /// SQLite.
    Sqlite(SqliteRow),
}

/// A column by name or position.
pub(crate) trait Column: ColumnIndex<PgRow> + ColumnIndex<SqliteRow> + Copy {}
impl<T: ColumnIndex<PgRow> + ColumnIndex<SqliteRow> + Copy> Column for T {}

impl Row {
    /// A text column.
    pub(crate) fn text(&self, c: impl Column) -> StoreResult<String> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, c: impl Column) -> StoreResult<Option<String>> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// An integer column (`bigint`, SQLite's `INTEGER`, `count(*)`).
    pub(crate) fn int(&self, c: impl Column) -> StoreResult<i64> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// A nullable integer column.
    pub(crate) fn opt_int(&self, c: impl Column) -> StoreResult<Option<i64>> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// A boolean column.
    pub(crate) fn bool(&self, c: impl Column) -> StoreResult<bool> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// A JSON column.
    pub(crate) fn json(&self, c: impl Column) -> StoreResult<Value> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// A nullable JSON column.
    pub(crate) fn opt_json(&self, c: impl Column) -> StoreResult<Option<Value>> {
        match self {
            Row::Postgres(r) => r.try_get(c),
            Row::Sqlite(r) => r.try_get(c),
        }
        .map_err(database)
    }

    /// An id column.
    pub(crate) fn id(&self, c: impl Column) -> StoreResult<Id> {
        match self {
            Row::Postgres(r) => r.try_get::<Uuid, _>(c).map_err(database).map(Id),
            Row::Sqlite(r) => {
                let text: String = r.try_get(c).map_err(database)?;
                Uuid::parse_str(&text)
                    .map(Id)
                    .map_err(|e| StoreError::Database(Box::new(e)))
            }
        }
    }

    /// A nullable timestamp column.
    pub(crate) fn opt_time(&self, c: impl Column) -> StoreResult<Option<Timestamp>> {
        match self {
            Row::Postgres(r) => Ok(r
                .try_get::<Option<DateTime<Utc>>, _>(c)
                .map_err(database)?
                .map(Timestamp::from)),
            Row::Sqlite(r) => match r.try_get::<Option<String>, _>(c).map_err(database)? {
                None => Ok(None),
                Some(text) => DateTime::parse_from_rfc3339(&text)
                    .map(|t| Some(Timestamp::from(t.with_timezone(&Utc))))
                    .map_err(|e| StoreError::Database(Box::new(e))),
            },
        }
    }

    /// A timestamp column.
    pub(crate) fn time(&self, c: impl Column) -> StoreResult<Timestamp> {
        self.opt_time(c)?
            .ok_or_else(|| database(sqlx::Error::RowNotFound))
    }
}

/// A connection of either database, from the store's pool (`conns.rs`); back in the pool
/// when dropped.
pub(crate) enum Conn {
    /// PostgreSQL.
    Postgres(conns::Conn<PgConnection>),
    /// SQLite.
    Sqlite(conns::Conn<SqliteConnection>),
}

impl Conn {
    /// Runs a statement; the rows it changed.
    async fn execute(&mut self, q: &Query<'_>) -> Result<u64, sqlx::Error> {
        match self {
            Conn::Postgres(c) => {
                let r = q.postgres().execute(c.start()).await;
                c.settle(&r);
                r.map(|r| r.rows_affected())
            }
            Conn::Sqlite(c) => {
                let r = q.sqlite().execute(c.start()).await;
                c.settle(&r);
                r.map(|r| r.rows_affected())
            }
        }
    }

    /// Runs statement text with the simple protocol (no parameters, no prepared statement).
    async fn execute_simple(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Conn::Postgres(c) => {
                let r = c.start().execute(sqlx::raw_sql(sql)).await;
                c.settle(&r);
                r.map(drop)
            }
            Conn::Sqlite(c) => {
                let r = c.start().execute(sqlx::raw_sql(sql)).await;
                c.settle(&r);
                r.map(drop)
            }
        }
    }

    /// Every row of a query.
    pub(crate) async fn fetch_all(&mut self, q: &Query<'_>) -> StoreResult<Vec<Row>> {
        match self {
            Conn::Postgres(c) => {
                let r = q.postgres().fetch_all(c.start()).await;
                c.settle(&r);
                r.map(|rows| rows.into_iter().map(Row::Postgres).collect())
            }
            Conn::Sqlite(c) => {
                let r = q.sqlite().fetch_all(c.start()).await;
                c.settle(&r);
                r.map(|rows| rows.into_iter().map(Row::Sqlite).collect())
            }
        }
        .map_err(database)
    }

    /// The first row of a query, if any.
    async fn fetch_optional(&mut self, q: &Query<'_>) -> StoreResult<Option<Row>> {
        match self {
            Conn::Postgres(c) => {
                let r = q.postgres().fetch_optional(c.start()).await;
                c.settle(&r);
                r.map(|r| r.map(Row::Postgres))
            }
            Conn::Sqlite(c) => {
                let r = q.sqlite().fetch_optional(c.start()).await;
                c.settle(&r);
                r.map(|r| r.map(Row::Sqlite))
            }
        }
        .map_err(database)
    }

    /// The rows of a query one at a time, as the database sends them. A stream left before its
    /// end leaves the connection to be tested before its next use (read it to the end to spare
    /// that round trip).
    pub(crate) fn fetch<'c>(&'c mut self, q: &Query<'c>) -> BoxStream<'c, StoreResult<Row>> {
        match self {
            Conn::Postgres(c) => {
                let (raw, unsettled) = c.split();
                let rows = q.postgres().fetch(raw);
                Box::pin(
                    Settling { rows, unsettled }
                        .map_ok(Row::Postgres)
                        .map_err(database),
                )
            }
            Conn::Sqlite(c) => {
                let (raw, unsettled) = c.split();
                let rows = q.sqlite().fetch(raw);
                Box::pin(
                    Settling { rows, unsettled }
                        .map_ok(Row::Sqlite)
                        .map_err(database),
                )
            }
        }
    }

    /// Applies `migrator`'s migrations not applied yet.
    async fn migrate(&mut self, migrator: &Migrator) -> Result<(), MigrateError> {
        let r = match self {
            Conn::Postgres(c) => migrator.run_direct(c.start()).await,
            Conn::Sqlite(c) => migrator.run_direct(c.start()).await,
        };
        // A migration that failed may have left its transaction open: marked so, the
        // connection is closed rather than handed out again.
        let settled = Ok::<(), sqlx::Error>(());
        match self {
            Conn::Postgres(c) => {
                c.settle(&settled);
                c.in_transaction(r.is_err());
            }
            Conn::Sqlite(c) => {
                c.settle(&settled);
                c.in_transaction(r.is_err());
            }
        }
        r
    }

    /// Marks whether a transaction is open on the connection: the pool closes a connection that
    /// comes back with one open.
    fn in_transaction(&mut self, open: bool) {
        match self {
            Conn::Postgres(c) => c.in_transaction(open),
            Conn::Sqlite(c) => c.in_transaction(open),
        }
    }

    /// Whether a statement began on the connection was cut off midway.
    fn unsettled(&self) -> bool {
        match self {
            Conn::Postgres(c) => c.unsettled(),
            Conn::Sqlite(c) => c.unsettled(),
        }
    }

    /// Closes the connection instead of giving it back.
    fn discard(self) {
        match self {
            Conn::Postgres(c) => conns::discard(c),
            Conn::Sqlite(c) => conns::discard(c),
        }
    }
}

/// A stream of rows that marks its connection settled once it ended.
struct Settling<'c, S> {
    rows: S,
    unsettled: &'c mut bool,
}

impl<T, S> Stream for Settling<'_, S>
where
    S: Stream<Item = Result<T, sqlx::Error>> + Unpin,
{
    type Item = Result<T, sqlx::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = std::task::ready!(this.rows.poll_next_unpin(cx));
        match &next {
            None => *this.unsettled = false,
            Some(Err(e)) => *this.unsettled = !matches!(e, sqlx::Error::Database(_)),
            Some(Ok(_)) => {}
        }
        Poll::Ready(next)
    }
}

/// A transaction on either database. Dropped without [`Tx::commit`] or [`Tx::rollback`], it
/// rolls back at once in a task of its own; dropped inside a statement (or with no runtime
/// left), its connection is closed, which ends it.
pub(crate) struct Tx {
    /// `None` once the transaction ended.
    conn: Option<Conn>,
    /// SQLite's write turn at the [`WriteGate`], held until the transaction ends.
    turn: Option<OwnedMutexGuard<()>>,
}

impl Tx {
    /// Begins a transaction on `conn` with `begin` (`BEGIN`, `BEGIN IMMEDIATE`).
    async fn begin(
        mut conn: Conn,
        begin: &str,
        turn: Option<OwnedMutexGuard<()>>,
    ) -> StoreResult<Tx> {
        // Marked first: a `BEGIN` cut off midway may have started the transaction, and the pool
        // then closes the connection rather than hand it out inside it.
        conn.in_transaction(true);
        conn.execute_simple(begin).await.map_err(database)?;
        Ok(Tx {
            conn: Some(conn),
            turn,
        })
    }

    /// The transaction's connection.
    fn conn(&mut self) -> StoreResult<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Database("the transaction has ended".into()))
    }

    /// Whether this is a PostgreSQL transaction.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.conn, Some(Conn::Postgres(_)))
    }

    /// Runs a statement; the rows it changed.
    pub(crate) async fn execute(&mut self, q: &Query<'_>) -> StoreResult<u64> {
        self.conn()?.execute(q).await.map_err(database)
    }

    /// PostgreSQL's `COPY … FROM STDIN` with `data`; the rows it loaded. Refused on SQLite,
    /// which has no `COPY` (the statement builder gives SQLite none).
    pub(crate) async fn copy_in(&mut self, sql: &str, data: &[u8]) -> StoreResult<u64> {
        let Conn::Postgres(c) = self.conn()? else {
            return Err(StoreError::Database("SQLite has no COPY".into()));
        };
        let raw = c.start();
        let mut copy = raw.copy_in_raw(sql).await.map_err(database)?;
        if let Err(e) = copy.send(data).await {
            // Ends the COPY (the server answers with the error); the transaction is rolled
            // back when dropped.
            let _ = copy.abort("send failed").await;
            return Err(database(e));
        }
        let r = copy.finish().await;
        c.settle(&r);
        r.map_err(database)
    }

    /// Every row of a query.
    pub(crate) async fn fetch_all(&mut self, q: &Query<'_>) -> StoreResult<Vec<Row>> {
        self.conn()?.fetch_all(q).await
    }

    /// The first row of a query, if any.
    pub(crate) async fn fetch_optional(&mut self, q: &Query<'_>) -> StoreResult<Option<Row>> {
        self.conn()?.fetch_optional(q).await
    }

    /// The first row of a query, which must have one.
    pub(crate) async fn fetch_one(&mut self, q: &Query<'_>) -> StoreResult<Row> {
        self.fetch_optional(q)
            .await?
            .ok_or_else(|| database(sqlx::Error::RowNotFound))
    }

    /// Commits. A commit that fails leaves the transaction to be rolled back as on a drop.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let conn = self.conn()?;
        conn.execute_simple("COMMIT").await.map_err(database)?;
        conn.in_transaction(false);
        // The connection goes back first: the next SQLite writer then finds the lock free and
        // a connection waiting.
        self.conn = None;
        Ok(())
    }

    /// Rolls back; a connection whose rollback failed is closed.
    pub(crate) async fn rollback(mut self) -> StoreResult<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        match conn.execute_simple("ROLLBACK").await {
            Ok(()) => {
                conn.in_transaction(false);
                Ok(())
            }
            Err(e) => {
                conn.discard();
                Err(database(e))
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let turn = self.turn.take();
        // A statement cut off midway (a `COPY` waiting for its data, rows not read): the
        // connection's protocol state is unknown, so it is closed, which ends the transaction.
        if conn.unsettled() {
            conn.discard();
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    match conn.execute_simple("ROLLBACK").await {
                        Ok(()) => conn.in_transaction(false),
                        Err(_) => conn.discard(),
                    }
                    drop(turn);
                });
            }
            Err(_) => conn.discard(),
        }
    }
}

/// The connections of a [`Pool`].
#[derive(Debug, Clone)]
enum Conns {
    Postgres(Connections<PgConnection>),
    Sqlite(Connections<SqliteConnection>),
}

impl Pool {
    /// A pool on PostgreSQL, with the connect options and size of `pool`, which keeps serving
    /// `LISTEN` (`conns.rs`).
    pub fn postgres(pool: PgPool) -> StoreResult<Pool> {
        let conns = Connections::like(&pool).map_err(database)?;
        Ok(Pool::new(Db::Postgres(pool), Conns::Postgres(conns)))
    }

    /// A pool on SQLite, with the connect options and size of `pool`, and its own
    /// [`WriteGate`]. An in-memory database exists once per connection: the store's is then
    /// not `pool`'s.
    pub fn sqlite(pool: SqlitePool) -> StoreResult<Pool> {
        let conns = Connections::like(&pool).map_err(database)?;
        Ok(Pool::new(
            Db::Sqlite(pool, WriteGate::default()),
            Conns::Sqlite(conns),
        ))
    }

    fn new(db: Db, conns: Conns) -> Pool {
        Pool {
            db,
            conns,
            statements: Arc::default(),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Statements run on this pool outside transactions so far.
    pub fn statements_run(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn counted(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection, not counted as a statement.
    pub(crate) async fn acquire(&self) -> StoreResult<Conn> {
        match &self.conns {
            Conns::Postgres(c) => c.get().await.map(Conn::Postgres),
            Conns::Sqlite(c) => c.get().await.map(Conn::Sqlite),
        }
        .map_err(database)
    }

    /// A connection for one statement whose rows are streamed ([`Conn::fetch`]), counted as a
    /// statement.
    pub(crate) async fn streaming(&self) -> StoreResult<Conn> {
        self.counted();
        self.acquire().await
    }

    /// A transaction that only reads, or writes without serializing with other writers first.
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        Tx::begin(self.acquire().await?, "BEGIN", None).await
    }

    /// A write transaction. PostgreSQL locks rows per statement (`FOR UPDATE` in the engine's
    /// statements); SQLite takes its one write lock up front (`BEGIN IMMEDIATE`), which avoids
    /// the deadlock-prone read-to-write upgrade of a deferred transaction.
    pub(crate) async fn begin_write(&self) -> StoreResult<Tx> {
        match &self.db {
            Db::Postgres(_) => self.begin().await,
            Db::Sqlite(_, gate) => {
                let turn = gate.enter().await.map_err(database)?;
                Tx::begin(self.acquire().await?, "BEGIN IMMEDIATE", Some(turn)).await
            }
        }
    }

    /// Whether this is PostgreSQL's pool.
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// Runs statement text with the simple protocol (no parameters, no prepared statement): for
    /// statements refused in a transaction block, such as `VACUUM`.
    pub(crate) async fn execute_simple(&self, sql: &str) -> StoreResult<()> {
        self.counted();
        let mut conn = self.acquire().await?;
        conn.execute_simple(sql).await.map_err(database)
    }

    /// Applies `migrator`'s migrations not applied yet, on one of the pool's connections.
    pub(crate) async fn migrate(&self, migrator: &Migrator) -> StoreResult<()> {
        let mut conn = self.acquire().await?;
        conn.migrate(migrator)
            .await
            .map_err(|e| StoreError::Migrate(Box::new(e)))
    }

    /// Every row of a query.
    pub(crate) async fn fetch_all(&self, q: &Query<'_>) -> StoreResult<Vec<Row>> {
        self.counted();
        self.acquire().await?.fetch_all(q).await
    }

    /// The first row of a query, if any.
    pub(crate) async fn fetch_optional(&self, q: &Query<'_>) -> StoreResult<Option<Row>> {
        self.counted();
        self.acquire().await?.fetch_optional(q).await
    }

    /// The first row of a query, which must have one.
    pub(crate) async fn fetch_one(&self, q: &Query<'_>) -> StoreResult<Row> {
        self.fetch_optional(q)
            .await?
            .ok_or_else(|| database(sqlx::Error::RowNotFound))
    }
}
