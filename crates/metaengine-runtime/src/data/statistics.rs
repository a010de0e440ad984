//! Planner statistics kept fresh by the engine itself (`ANALYZE` of a data table; on PostgreSQL
//! `VACUUM (ANALYZE)` when autovacuum's own rules call for a vacuum, which also marks the pages
//! all-visible so that a count is answered from an index alone: `metaengine_sql::VACUUM_DUE`),
//! because nothing else may: PostgreSQL's autovacuum can be off or late, and SQLite
//! has none. Without statistics a planner picks the wrong index for a get or a filtered list of a
//! freshly filled table (issue 19: 8× slower gets on PostgreSQL).
//!
//! The rule is autovacuum's own analyze threshold: a table is analyzed once the rows written to
//! it (counted in this process) since its last analysis exceed `500 + 10 %` of the rows that
//! analysis found. The first time a table crosses 500 writes in this process, the engine reads
//! what the database's last analysis found (`Store::analyzed_records`: by this process before a
//! restart, another instance, autovacuum) and analyzes only if the writes exceed the threshold
//! of that size; a table never analyzed is analyzed then. So a table of 100,000 rows is
//! analyzed every 10,500 writes (and, like autovacuum, at most once a minute unless it has
//! doubled since: [`SPACING`]), not every few hundred, nor after the first 500 writes of each
//! restart (each `VACUUM (ANALYZE)` of a table of 450,000 rows cost PostgreSQL about a second of
//! CPU in the HTTP benchmark). Single writes and batches ([`Statistics::wrote`]) start the analysis
//! in the background, one at a time per table. A bulk load (an import) only counts its rows as
//! it goes ([`Statistics::loaded`]: analyzing a table that grows by 10 % every few batches would
//! cost more than the load) and, when it ends, analyzes the table by the same rule and waits
//! for it ([`Statistics::analyze_if_due`]), so a freshly imported table is planned right from
//! the start. A failure is logged, never a request's error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metaengine_core::CompiledModel;
use metaengine_store::Store;

/// Rows written before a table's first analysis in this process.
const BASE_THRESHOLD: u64 = 500;
/// The share of rows already written that must be written again before the next analysis.
const SCALE_DIVISOR: u64 = 10;
/// The least time between two analyses of a table that single writes and batches start
/// (autovacuum's `autovacuum_naptime`), unless the table has doubled since the last one: under a
/// stream of batches a table of 150,000 rows crossed its threshold twice a second, and each
/// `ANALYZE` cost PostgreSQL 0.4 s. An analysis it holds back runs when it ends, whether or not
/// more writes come ([`Table::defer`]).
const SPACING: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Table {
    /// Rows written since the last analysis began.
    since: u64,
    /// Rows the last analysis found (0 while not `known`, or for a table never analyzed).
    rows: u64,
    /// An analysis (or the lookup of the last one) is running.
    running: bool,
    /// `rows` is what the database's last analysis found (looked up, or run by this process).
    known: bool,
    /// When this process started its last analysis of the table.
    started: Option<Instant>,
    /// An analysis the spacing held back is waiting for its end.
    deferred: bool,
}

impl Table {
    /// Whether the writes since the last analysis call for another one, at least `spacing`
    /// after the last one this process started (or at once if the table has doubled since).
    fn due(&self, spacing: Duration) -> bool {
        !self.running
            && self.since > BASE_THRESHOLD + self.rows / SCALE_DIVISOR
            && (self.since >= self.rows || self.started.is_none_or(|at| at.elapsed() >= spacing))
    }

    /// Marks an analysis running if one is due (see [`Table::due`]); whether it is. The writes
    /// counted so far are kept while the last analysis is looked up (they decide, against its
    /// size, whether to analyze at all).
    fn start(&mut self, spacing: Duration) -> bool {
        let due = self.due(spacing);
        if due {
            self.running = true;
            if self.known {
                self.since = 0;
                self.started = Some(Instant::now());
            }
        }
        due
    }

    /// When the writes call for an analysis that only the spacing holds back, and none waits for
    /// its end yet: how long until it ends (and one now waits).
    fn defer(&mut self, spacing: Duration) -> Option<Duration> {
        let started = self.started?;
        let held = !self.running
            && !self.deferred
            && self.since > BASE_THRESHOLD + self.rows / SCALE_DIVISOR
            && !self.due(spacing);
        held.then(|| {
            self.deferred = true;
            spacing.saturating_sub(started.elapsed())
        })
    }
}

/// Counts writes per data table and analyzes a table when enough has changed.
#[derive(Clone)]
pub(crate) struct Statistics {
    store: Arc<dyn Store>,
    tables: Arc<Mutex<HashMap<String, Table>>>,
}

impl std::fmt::Debug for Statistics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statistics").finish_non_exhaustive()
    }
}

impl Statistics {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tables: Arc::default(),
        }
    }

    /// Notes `rows` rows written to `model`'s table; starts an analysis when they cross the
    /// threshold.
    pub(crate) fn wrote(&self, model: &CompiledModel, rows: u64) {
        let due = {
            let Ok(mut tables) = self.tables.lock() else {
                return;
            };
            // The per-create path: the table's name is copied only on its first write.
            if !tables.contains_key(&model.table_name) {
                tables.insert(model.table_name.clone(), Table::default());
            }
            let Some(table) = tables.get_mut(&model.table_name) else {
                return;
            };
            table.since += rows;
            if table.start(SPACING) {
                Some(Duration::ZERO)
            } else {
                table.defer(SPACING)
            }
        };
        // Due now, or once the spacing ends (even if no write comes then).
        if let Some(wait) = due {
            let this = self.clone();
            let model = model.clone();
            tokio::spawn(async move {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                    let due = match this.tables.lock() {
                        Ok(mut tables) => tables.get_mut(&model.table_name).is_some_and(|t| {
                            t.deferred = false;
                            t.start(SPACING)
                        }),
                        Err(_) => false,
                    };
                    if !due {
                        return;
                    }
                }
                this.analyze(&model, SPACING).await;
            });
        }
    }

    /// Analyzes `model`'s table, marked running by [`Table::start`]: after looking up the last
    /// analysis first, when this process has not seen one yet.
    async fn analyze(&self, model: &CompiledModel, spacing: Duration) {
        if !self.learn(model, spacing).await {
            return;
        }
        let rows = self.run(model).await;
        self.finished(model, rows);
    }

    /// Takes in what the database's last analysis of `model`'s table found, if this process
    /// did not know it; whether the writes still call for an analysis (if not, it is no longer
    /// running).
    async fn learn(&self, model: &CompiledModel, spacing: Duration) -> bool {
        let known = match self.tables.lock() {
            Ok(tables) => tables.get(&model.table_name).is_some_and(|t| t.known),
            Err(_) => return false,
        };
        if known {
            return true;
        }
        let found = match self.store.analyzed_records(model).await {
            Ok(rows) => rows.unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, table = %model.table_name, "reading the table's statistics failed");
                0
            }
        };
        let Ok(mut tables) = self.tables.lock() else {
            return false;
        };
        let table = tables.entry(model.table_name.clone()).or_default();
        table.rows = found;
        table.known = true;
        table.running = false;
        table.start(spacing)
    }

    /// Notes `rows` rows of a bulk load written to `model`'s table, without starting an
    /// analysis (see [`Statistics::analyze_if_due`]).
    pub(crate) fn loaded(&self, model: &CompiledModel, rows: u64) {
        if let Ok(mut tables) = self.tables.lock() {
            tables.entry(model.table_name.clone()).or_default().since += rows;
        }
    }

    /// Analyzes `model`'s table now and waits for it, if the writes since its last analysis
    /// call for one (the end of a bulk load: however recent the last analysis).
    pub(crate) async fn analyze_if_due(&self, model: &CompiledModel) {
        let due = match self.tables.lock() {
            Ok(mut tables) => tables
                .entry(model.table_name.clone())
                .or_default()
                .start(Duration::ZERO),
            Err(_) => false,
        };
        if due {
            self.analyze(model, Duration::ZERO).await;
        }
    }

    /// Runs one analysis: the rows it found, `None` when it failed (logged).
    async fn run(&self, model: &CompiledModel) -> Option<u64> {
        match self.store.analyze_records(model).await {
            Ok(rows) => {
                tracing::debug!(table = %model.table_name, rows, "analyzed");
                Some(rows)
            }
            Err(e) => {
                tracing::warn!(error = %e, table = %model.table_name, "analyze failed");
                None
            }
        }
    }

    /// Records the end of an analysis that found `rows` (`None`: it failed).
    fn finished(&self, model: &CompiledModel, rows: Option<u64>) {
        let Ok(mut tables) = self.tables.lock() else {
            return;
        };
        let table = tables.entry(model.table_name.clone()).or_default();
        if let Some(rows) = rows {
            table.rows = rows;
            table.known = true;
        }
        table.running = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_table_is_analyzed_after_ten_percent_of_its_rows() {
        let mut t = Table {
            since: 501,
            ..Table::default()
        };
        assert!(t.due(SPACING), "unknown size: after 500 writes");
        t.rows = 100_000;
        assert!(!t.due(SPACING));
        t.since = 10_500;
        assert!(!t.due(SPACING));
        t.since = 10_501;
        assert!(t.due(SPACING));
        t.running = true;
        assert!(!t.due(SPACING), "one analysis at a time");
    }

    #[test]
    fn a_table_is_analyzed_at_most_once_a_minute_unless_it_doubled() {
        let mut t = Table {
            rows: 100_000,
            known: true,
            since: 20_000,
            ..Table::default()
        };
        assert!(t.start(SPACING));
        assert!(t.started.is_some());
        t.running = false;
        t.since = 20_000;
        assert!(!t.due(SPACING), "a second after the last");
        assert!(
            t.due(Duration::ZERO),
            "the end of an import waits for no spacing"
        );
        t.since = 100_000;
        assert!(t.due(SPACING), "doubled since the last");
        t.since = 20_000;
        let wait = t.defer(SPACING).expect("held back by the spacing");
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert_eq!(t.defer(SPACING), None, "one waits already");
        t.deferred = false;
        t.since = 20_000;
        t.started = Instant::now().checked_sub(SPACING);
        assert!(t.due(SPACING), "a minute after the last");
        assert_eq!(t.defer(SPACING), None, "not held back");
    }
}
