//! Planner statistics kept fresh by the engine itself (`ANALYZE` of a data table; on PostgreSQL
//! `VACUUM (ANALYZE)`, which also marks the pages all-visible so that a count is answered from an
//! index alone), because nothing else may: PostgreSQL's autovacuum can be off or late, and SQLite
//! has none. Without statistics a planner picks the wrong index for a get or a filtered list of a
//! freshly filled table (issue 19: 8× slower gets on PostgreSQL).
//!
//! The rule is autovacuum's own analyze threshold, counted per table in this process: a table is
//! analyzed once the rows written to it since its last analysis exceed `500 + 10 %` of the rows
//! written before. A bulk load (an import) analyzes its table when it ends
//! (`DataService::analyze`). The analysis runs in the background, one at a time per table; a
//! failure is logged, never a request's error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metaengine_core::CompiledModel;
use metaengine_store::Store;

/// Rows written before a table's first analysis in this process.
const BASE_THRESHOLD: u64 = 500;
/// The share of rows already written that must be written again before the next analysis.
const SCALE_DIVISOR: u64 = 10;

#[derive(Debug, Default)]
struct Table {
    /// Rows written since the last analysis began.
    since: u64,
    /// Rows written before the last analysis began.
    before: u64,
    /// An analysis is running.
    running: bool,
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
            let due = !table.running && table.since > BASE_THRESHOLD + table.before / SCALE_DIVISOR;
            if due {
                table.before += table.since;
                table.since = 0;
                table.running = true;
            }
            due
        };
        if due {
            self.spawn(model.clone());
        }
    }

    fn spawn(&self, model: CompiledModel) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.store.analyze_records(&model).await {
                tracing::warn!(error = %e, table = %model.table_name, "analyze failed");
            } else {
                tracing::debug!(table = %model.table_name, "analyzed");
            }
            if let Ok(mut tables) = this.tables.lock()
                && let Some(table) = tables.get_mut(&model.table_name)
            {
                table.running = false;
            }
        });
    }
}
