//! The connections the store's statements run on: sqlx connections in a `deadpool` pool, handed
//! back without a round trip.
//!
//! sqlx's own pool tests every connection it gets back before anyone may take it again: a `Sync`
//! and its answer on PostgreSQL, a call to the connection's worker thread on SQLite. That is one
//! more round trip per request, about a sixth of the engine's CPU in a get profile, and a wake-up
//! of a PostgreSQL backend (docs/performance.md). Here a connection whose statement ran to its
//! end goes back as it is. One whose statement was interrupted (its future dropped, say by a
//! client that went away) or failed other than with the database's own error is marked, and
//! tested before it is handed out again: the test drains what the statement left, and a
//! connection that fails it is closed. Transactions are the caller's ([`crate::db::Tx`]): one
//! dropped open between statements is rolled back at once, in a task of its own; one dropped
//! inside a statement (a `COPY` waiting for its data) closes its connection, which ends it.
//!
//! The sqlx pool a store is made from keeps serving what holds a connection for long or needs a
//! sqlx pool: PostgreSQL's `LISTEN` and the tests' own statements.

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use sqlx::{ConnectOptions as _, Connection};
use std::time::Duration;

/// A pool of connections of one kind (`PgConnection`, `SqliteConnection`).
pub(crate) struct Connections<C: Connection>(managed::Pool<Manager<C>>);

impl<C: Connection> Clone for Connections<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C: Connection> std::fmt::Debug for Connections<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("status", &self.0.status())
            .finish()
    }
}

/// A connection of the pool, back in it when dropped.
pub(crate) type Conn<C> = Object<Manager<C>>;

/// A connection and whether its last use ended cleanly.
pub(crate) struct Pooled<C> {
    raw: C,
    /// Set while a statement runs, cleared when it ended (with the database's own error
    /// included); still set when the pool gets the connection back, it means "test me first".
    unsettled: bool,
    /// Whether a transaction is open on it ([`crate::db::Tx`]).
    transaction: bool,
}

impl<C> Pooled<C> {
    /// The connection, for one statement: marked unsettled until [`Pooled::settle`].
    pub(crate) fn start(&mut self) -> &mut C {
        self.unsettled = true;
        &mut self.raw
    }

    /// The statement [`Pooled::start`] began ended with `result`. An error other than the
    /// database's own (a lost connection, a protocol error) leaves the connection to be tested.
    pub(crate) fn settle<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.unsettled = matches!(result, Err(e) if !matches!(e, sqlx::Error::Database(_)));
    }

    /// Whether a statement began on the connection has not ended (it was cut off midway).
    pub(crate) fn unsettled(&self) -> bool {
        self.unsettled
    }

    /// Marks whether a transaction is open on the connection.
    pub(crate) fn in_transaction(&mut self, open: bool) {
        self.transaction = open;
    }

    /// The connection and its flag, for a statement whose rows are streamed: the caller clears
    /// the flag when the stream ends.
    pub(crate) fn split(&mut self) -> (&mut C, &mut bool) {
        self.unsettled = true;
        (&mut self.raw, &mut self.unsettled)
    }
}

/// Opens and tests the pool's connections.
pub(crate) struct Manager<C: Connection> {
    options: C::Options,
    max_lifetime: Option<Duration>,
}

impl<C: Connection> managed::Manager for Manager<C> {
    type Type = Pooled<C>;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Pooled<C>, sqlx::Error> {
        Ok(Pooled {
            raw: self.options.connect().await?,
            unsettled: false,
            transaction: false,
        })
    }

    async fn recycle(&self, conn: &mut Pooled<C>, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if self.max_lifetime.is_some_and(|max| metrics.age() >= max) {
            return Err(RecycleError::message("past its lifetime"));
        }
        // A transaction dropped open whose rollback never ran (its runtime ended): closing the
        // connection ends it.
        if conn.transaction {
            return Err(RecycleError::message("a transaction left open"));
        }
        if conn.unsettled {
            conn.raw.ping().await?;
            conn.unsettled = false;
        }
        Ok(())
    }
}

impl<C: Connection> Connections<C> {
    /// A pool with the connect options, size, wait and lifetime of sqlx's `pool`.
    pub(crate) fn like(pool: &sqlx::Pool<C::Database>) -> Result<Self, sqlx::Error>
    where
        C::Database: sqlx::Database<Connection = C>,
    {
        let options = pool.options();
        let manager = Manager {
            options: pool.connect_options().as_ref().clone(),
            max_lifetime: options.get_max_lifetime(),
        };
        let wait = options.get_acquire_timeout();
        managed::Pool::builder(manager)
            .max_size(usize::try_from(options.get_max_connections()).unwrap_or(1))
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .recycle_timeout(Some(wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map(Self)
            .map_err(|e| sqlx::Error::Configuration(Box::new(e)))
    }

    /// A connection: an idle one (tested first if its last use did not end cleanly) or a new
    /// one, waiting for one to come back when all are taken.
    pub(crate) async fn get(&self) -> Result<Conn<C>, sqlx::Error> {
        self.0.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
            PoolError::Closed => sqlx::Error::PoolClosed,
            other => sqlx::Error::Configuration(Box::new(other)),
        })
    }
}

/// Closes `conn` instead of giving it back (its state is unknown: the database ends a
/// transaction it left open).
pub(crate) fn discard<C: Connection>(conn: Conn<C>) {
    drop(Object::take(conn));
}
