//! Import: many records of one entity at once, as `metaengine data import` (NDJSON or CSV) and
//! any embedding application feed them.
//!
//! Every row goes through what [`DataService::create`] does to one record: the compiled
//! validators, the policy gate (action `create`, the record as it would be), and the reference
//! checks. The rows that pass are written in batches: one transaction per batch, multi-row
//! inserts built by the one query builder ([`Store::insert_records`]), and ONE `data.create`
//! audit row per batch (`{"import": true, "count", "firstId", "lastId", "records"}`: each
//! record's values, as SPEC §16 asks of every data change, `sensitive` fields named only; see
//! [`created_record`]). Rows that fail are reported with their line number and every problem, and
//! skipped.
//!
//! A unique value that is taken (by a stored record, or by an earlier row of the same batch)
//! fails the batch's transaction, which then writes nothing; the batch is split in halves and
//! each half retried, down to the single rows that collide, so every other row still lands and
//! nothing is ever half-written. The first of two rows with the same unique value wins.
//!
//! [`Importer`] drives the batches: it keeps up to [`ImportOptions::in_flight`] batches running
//! while the caller reads the next rows, and hands back their reports in input order.
//!
//! [`Store::insert_records`]: metaengine_store::Store::insert_records

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use metaengine_core::policy::Action;
use metaengine_core::record::{CsvColumns, created_record};
use metaengine_core::{ErrorCode, Problem, SqlValue};
use metaengine_sql::query::NewRow;
use metaengine_store::store::RecordBatch;
use metaengine_store::{EventType, NewAudit, StoreError};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::error::unique_violation;
use super::references::KnownRecords;
use super::{DataError, DataResult, DataService, NewRecordView, scope};
use crate::actor::Actor;
use crate::cache::ActiveModel;
use crate::gate::WriteCheck;

/// Rows per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 1_000;

/// One row of an import: where it came from and the record it holds (or why it holds none).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// Line number in the source (1-based), for messages.
    pub line: u64,
    /// The record as a JSON object, or the problems that kept it from being read.
    pub record: Result<Value, Vec<Problem>>,
}

/// A row that was not imported, with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Line number in the source.
    pub line: u64,
    /// Each problem, pointer `/<fieldName>` (or `""` for the row as a whole).
    pub problems: Vec<Problem>,
}

impl fmt::Display for RejectedRow {
    /// One line per problem: `line 17: /totalAmount: `totalAmount` must be at least 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.pointer.is_empty() {
                write!(f, "line {}: {}", self.line, p.message)?;
            } else {
                write!(f, "line {}: {}: {}", self.line, p.pointer, p.message)?;
            }
        }
        Ok(())
    }
}

/// What one batch did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Rows written (in a dry run: rows that passed every check).
    pub imported: u64,
    /// Rows skipped, in line order.
    pub rejected: Vec<RejectedRow>,
    /// Lines the batch covered (its rows, imported or not).
    pub rows: u64,
}

/// How an import runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Rows per batch (one transaction, one audit row each).
    pub batch_size: usize,
    /// Check every row and write nothing.
    pub dry_run: bool,
    /// Batches written at the same time while the next rows are read.
    pub in_flight: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH_SIZE,
            dry_run: false,
            in_flight: 2,
        }
    }
}

/// A row that passed every check, ready to write.
struct Ready {
    line: u64,
    id: String,
    values: Vec<(String, SqlValue)>,
    /// Its entry in the batch's audit row's `details.records` (none in a dry run).
    audited: Option<Value>,
    /// The `policy.allow` event, when the gate audits allows.
    policy_event: Option<NewAudit>,
}

impl DataService {
    /// Checks a batch of rows like [`DataService::create`] checks one record and, unless
    /// `dry_run`, writes the rows that pass (see the module docs). Errors are those of the whole
    /// batch (unknown or inactive entity, a store failure); a row's problems are in the report.
    pub async fn import_batch(
        &self,
        actor: &Actor,
        entity: &str,
        rows: Vec<ImportRow>,
        dry_run: bool,
    ) -> DataResult<BatchReport> {
        let model = self.model(entity).await?;
        let mut report = BatchReport {
            rows: rows.len() as u64,
            ..BatchReport::default()
        };
        let mut ready = Vec::with_capacity(rows.len());
        let mut known = KnownRecords::default();
        for row in rows {
            match self
                .check_row(&model, actor, row, dry_run, &mut known)
                .await?
            {
                Ok(row) => ready.push(row),
                Err(rejected) => report.rejected.push(rejected),
            }
        }
        if dry_run {
            report.imported = ready.len() as u64;
            return Ok(report);
        }
        let (imported, duplicates) = self.write_ready(&model, actor, &ready).await?;
        report.imported = imported;
        report.rejected.extend(duplicates);
        report.rejected.sort_by_key(|r| r.line);
        Ok(report)
    }

    /// The checks of one row: ready to write, or rejected with its problems.
    async fn check_row(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        row: ImportRow,
        dry_run: bool,
        known: &mut KnownRecords,
    ) -> DataResult<Result<Ready, RejectedRow>> {
        let line = row.line;
        let reject = |problems| Ok(Err(RejectedRow { line, problems }));
        let input = match row.record {
            Ok(input) => input,
            Err(problems) => return reject(problems),
        };
        let values = match model.validator.prepare_create(&input) {
            Ok(values) => values,
            Err(e) => return reject(e.problems().to_vec()),
        };
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        let after = NewRecordView::new(&input, actor, &id);
        let (verdict, policy_event) = self.gate.check_write(
            model,
            actor,
            WriteCheck {
                action: Action::Create,
                before: None,
                after: Some(&after),
                record_id: Some(&id),
            },
        );
        if let Err(e) = verdict {
            if let (false, Some(event)) = (dry_run, policy_event) {
                self.audit.record(event).await;
            }
            return reject(vec![Problem::new("", format!("denied: {e}"))]);
        }
        let access = self.gate.field_access(model, Action::Create, actor);
        if let Err(super::DataError::FieldForbidden { errors }) =
            super::fields::writable(&access, &input)
        {
            return reject(errors);
        }
        let missing = self
            .missing_references(model, actor, &values, known)
            .await?;
        if !missing.is_empty() {
            return reject(missing);
        }
        let audited = (!dry_run).then(|| created_record(&model.model, &id, input));
        Ok(Ok(Ready {
            line,
            id,
            values,
            audited,
            policy_event,
        }))
    }

    /// Writes the rows, one transaction per (sub-)batch; a batch refused for a taken unique
    /// value is split in halves until the colliding rows stand alone. Returns how many rows
    /// were written and the rows refused.
    async fn write_ready(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        ready: &[Ready],
    ) -> DataResult<(u64, Vec<RejectedRow>)> {
        let mut imported = 0;
        let mut rejected = Vec::new();
        // Ranges still to write, the next one last (so rows land in input order).
        let mut pending = Vec::with_capacity(16);
        pending.push(0..ready.len());
        while let Some(range) = pending.pop() {
            let Some(part) = ready.get(range.clone()).filter(|p| !p.is_empty()) else {
                continue;
            };
            match self.write_part(model, actor, part).await {
                Ok(n) => imported += n,
                Err(DataError::Conflict {
                    code: ErrorCode::UniqueViolation,
                    ..
                }) if part.len() > 1 => {
                    let middle = range.start + part.len() / 2;
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
                Err(DataError::Conflict {
                    code: ErrorCode::UniqueViolation,
                    ..
                }) => {
                    rejected.extend(part.iter().map(|row| RejectedRow {
                        line: row.line,
                        problems: vec![unique_problem(model)],
                    }));
                }
                Err(e) => return Err(e),
            }
        }
        Ok((imported, rejected))
    }

    /// One transaction: the rows and their one `data.create` audit row with their values (plus
    /// any `policy.allow` events). `Conflict` when a unique value is taken.
    async fn write_part(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        part: &[Ready],
    ) -> DataResult<u64> {
        let (Some(first), Some(last)) = (part.first(), part.last()) else {
            return Ok(0);
        };
        let rows: Vec<NewRow<'_>> = part
            .iter()
            .map(|r| NewRow {
                id: &r.id,
                values: &r.values,
            })
            .collect();
        let mut details = json!({
            "import": true,
            "count": part.len(),
            "firstId": first.id,
            "lastId": last.id,
        });
        // Inserted, not through `json!`, which would copy the records once more by serializing
        // them (the part's own copy stays for a retry of its halves).
        let records = part.iter().filter_map(|r| r.audited.clone()).collect();
        if let Some(details) = details.as_object_mut() {
            details.insert("records".to_owned(), Value::Array(records));
        }
        let mut audits = vec![NewAudit::success(
            EventType::DataCreate,
            &actor.audit(),
            &model.entity,
            Some(details),
        )];
        audits.extend(part.iter().filter_map(|r| r.policy_event.clone()));
        let batch = RecordBatch {
            scope: scope(actor),
            actor: &actor.user_id,
            rows: &rows,
        };
        match self.store.insert_records(model, batch, &audits).await {
            Ok(n) => {
                self.statistics.loaded(&model.model, n);
                self.changes.changed();
                Ok(n)
            }
            Err(e @ StoreError::Unique(_)) => Err(e.into()),
            Err(e) => {
                tracing::error!(error = ?e, entity = %model.entity, "an import batch failed");
                Err(e.into())
            }
        }
    }

    /// Whether `entity` can take records now (it exists and has an active version): the
    /// importer's first question, before any row is read.
    pub async fn check_importable(&self, entity: &str) -> DataResult<()> {
        self.model(entity).await.map(|_| ())
    }

    /// An importer of `entity`'s records acting as `actor` (see [`Importer`]).
    pub fn importer(&self, actor: Actor, entity: &str, options: ImportOptions) -> Importer {
        Importer {
            data: self.clone(),
            actor: Arc::new(actor),
            entity: Arc::from(entity),
            options: ImportOptions {
                batch_size: options.batch_size.max(1),
                in_flight: options.in_flight.max(1),
                ..options
            },
            pending: Vec::new(),
            running: VecDeque::new(),
        }
    }

    /// How CSV cells under `header` become a record of `entity` (see [`CsvColumns`]). Refused
    /// (400) when the header names an unknown or system field, or a field twice.
    pub async fn csv_columns(&self, entity: &str, header: &[String]) -> DataResult<CsvColumns> {
        let model = self.model(entity).await?;
        let mut problems = Vec::new();
        let mut columns = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            let pointer = format!("/{i}");
            match model.field(name) {
                Some(_) if header.iter().take(i).any(|h| h == name) => problems.push(Problem::new(
                    pointer,
                    format!("column `{name}` appears more than once"),
                )),
                Some(field) => columns.push((name.clone(), field.field_type)),
                None if metaengine_core::ident::SYSTEM_FIELDS.contains(&name.as_str()) => {
                    problems.push(Problem::new(
                        pointer,
                        format!("column `{name}` is a system field, which cannot be imported"),
                    ));
                }
                None => problems.push(Problem::new(
                    pointer,
                    format!("column `{name}` is not a field of `{entity}`"),
                )),
            }
        }
        if problems.is_empty() {
            Ok(CsvColumns::new(columns))
        } else {
            Err(DataError::BadRequest {
                code: ErrorCode::BadRequest,
                message: format!(
                    "the CSV header does not fit `{entity}`: {}",
                    problems
                        .iter()
                        .map(|p| p.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                errors: problems,
            })
        }
    }
}

/// The problem of a row whose unique value is taken (the message of every write path).
fn unique_problem(model: &ActiveModel) -> Problem {
    let (pointer, message) = unique_violation(model);
    Problem::new(pointer, message)
}

/// Runs an import: gathers rows into batches and keeps up to `in_flight` batches running while
/// the caller reads the next rows. Reports come back in input order.
pub struct Importer {
    data: DataService,
    actor: Arc<Actor>,
    entity: Arc<str>,
    options: ImportOptions,
    pending: Vec<ImportRow>,
    running: VecDeque<JoinHandle<DataResult<BatchReport>>>,
}

impl fmt::Debug for Importer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Importer")
            .field("entity", &self.entity)
            .field("options", &self.options)
            .field("pending", &self.pending.len())
            .field("running", &self.running.len())
            .finish()
    }
}

impl Importer {
    /// Adds a row. When it completes a batch, the batch starts (after waiting for the oldest
    /// one while `in_flight` are running); the reports of the batches that finished are
    /// returned.
    pub async fn push(&mut self, row: ImportRow) -> DataResult<Vec<BatchReport>> {
        self.pending.push(row);
        if self.pending.len() < self.options.batch_size {
            return Ok(Vec::new());
        }
        let mut done = Vec::new();
        while self.running.len() >= self.options.in_flight {
            done.push(self.wait_oldest().await?);
        }
        self.start_batch();
        while self.running.front().is_some_and(JoinHandle::is_finished) {
            done.push(self.wait_oldest().await?);
        }
        Ok(done)
    }

    /// Writes the last rows and waits for every batch; returns the reports not returned yet.
    pub async fn finish(mut self) -> DataResult<Vec<BatchReport>> {
        self.start_batch();
        let mut done = Vec::new();
        while !self.running.is_empty() {
            done.push(self.wait_oldest().await?);
        }
        if !self.options.dry_run {
            // A bulk load changes the table's statistics: refresh them before the importer
            // returns (a CLI import exits right after), if it wrote enough to matter.
            self.data.analyze_if_due(&self.entity).await;
        }
        Ok(done)
    }

    fn start_batch(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rows = std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(self.options.batch_size),
        );
        let (data, actor, entity) = (self.data.clone(), self.actor.clone(), self.entity.clone());
        let dry_run = self.options.dry_run;
        self.running.push_back(tokio::spawn(async move {
            data.import_batch(&actor, &entity, rows, dry_run).await
        }));
    }

    async fn wait_oldest(&mut self) -> DataResult<BatchReport> {
        let Some(task) = self.running.pop_front() else {
            return Ok(BatchReport::default());
        };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(DataError::Internal(format!("an import batch stopped: {e}"))),
        }
    }
}

impl Drop for Importer {
    /// An importer dropped before [`Importer::finish`] (an error, a cancelled caller) stops the
    /// batches that have not finished; each is one transaction, so none is half-written.
    fn drop(&mut self) {
        for task in &self.running {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_row_prints_one_line_per_problem() {
        let row = RejectedRow {
            line: 17,
            problems: vec![
                Problem::new("/totalAmount", "`totalAmount` must be at least 0"),
                Problem::new("", "denied"),
            ],
        };
        assert_eq!(
            row.to_string(),
            "line 17: /totalAmount: `totalAmount` must be at least 0\nline 17: denied"
        );
    }
}
