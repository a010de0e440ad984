//! Batch writes (SPEC §7): up to `batch_max_operations` creates, updates and deletes in ONE
//! transaction, each checked exactly like its single-record route (the same `prepare_*` step:
//! validation, references, policies, row versions), all or nothing.
//!
//! Decisions: every operation is prepared (read, checked) before the transaction opens, and the
//! transaction then runs conditional writes only, so it is short and holds no lock while a
//! policy is evaluated; a record changed in between makes its conditional write match no row,
//! which fails the whole batch like a stale `If-Match`. A create may name its record's `id`, and
//! a later operation may then refer to that record through a reference field. An update or
//! delete of a record created in the same batch is refused (it would need the write to have
//! happened before its check); two updates of one stored record in one batch conflict. The
//! creates are audited as one `data.create` row per entity naming every id and holding every
//! created record's values (see `batch_audits`), updates and deletes one row each.

use std::collections::HashMap;

use metaengine_core::{ErrorCode, Problem};
use metaengine_store::{BatchOutcome, BatchWrite};
use serde_json::Value;

use super::error::write_failed;
use super::references::KnownRecords;
use super::{CreateAudit, DataError, DataResult, DataService, Prepared, WriteKind, scope};
use crate::actor::Actor;

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOp {
    /// `{"op": "create", "entity", "record"}`.
    Create {
        /// The entity.
        entity: String,
        /// The new record (it may give its `id`).
        record: Value,
    },
    /// `{"op": "update", "entity", "id", "ifMatch"?, "record"}`.
    Update {
        /// The entity.
        entity: String,
        /// The record.
        id: String,
        /// The row version the client read.
        if_match: Option<i64>,
        /// The fields to change.
        record: Value,
    },
    /// `{"op": "delete", "entity", "id", "ifMatch"?}`.
    Delete {
        /// The entity.
        entity: String,
        /// The record.
        id: String,
        /// The row version the client read.
        if_match: Option<i64>,
    },
}

/// What one operation of a written batch did, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchDone {
    /// Created: the record's JSON text.
    Created(String),
    /// Updated: the record's JSON text.
    Updated(String),
    /// Deleted.
    Deleted,
}

impl DataService {
    /// Runs `ops` in one transaction: all of them, or none and the first failure, as
    /// [`DataError::InBatch`] naming the operation.
    pub async fn batch(&self, actor: &Actor, ops: &[BatchOp]) -> DataResult<Vec<BatchDone>> {
        let max = self.limits.max_batch_operations;
        if ops.len() > max {
            return Err(DataError::bad_request(
                "/operations",
                format!("a batch takes at most {max} operations, not {}", ops.len()),
            ));
        }
        let mut known = KnownRecords::default();
        let mut prepared: Vec<Prepared> = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let at = |error| DataError::InBatch {
                index,
                error: Box::new(error),
            };
            let p = match op {
                BatchOp::Create { entity, record } => {
                    self.prepare_create(actor, entity, record, &mut known, CreateAudit::ByBatch)
                        .await
                }
                BatchOp::Update { entity, id, .. } | BatchOp::Delete { entity, id, .. }
                    if known.creates(entity, id) =>
                {
                    Err(DataError::bad_request_with(
                        ErrorCode::BadRequest,
                        "/id",
                        format!("record `{id}` is created by this batch; change it in the create"),
                    ))
                }
                BatchOp::Update {
                    entity,
                    id,
                    if_match,
                    record,
                } => {
                    self.prepare_update(actor, entity, id, record, *if_match)
                        .await
                }
                BatchOp::Delete {
                    entity,
                    id,
                    if_match,
                } => self.prepare_delete(actor, entity, id, *if_match).await,
            }
            .map_err(at)?;
            if let BatchOp::Create { entity, .. } = op
                && !known.created(entity, &p.id)
            {
                return Err(at(DataError::Conflict {
                    code: ErrorCode::UniqueViolation,
                    message: format!("id `{}` is given twice in this batch", p.id),
                }));
            }
            prepared.push(p);
        }
        let audits = batch_audits(actor, &mut prepared);
        let writes: Vec<BatchWrite<'_>> = prepared
            .iter()
            .map(|p| match p.kind {
                WriteKind::Create => BatchWrite::Insert {
                    model: &p.model.model,
                    write: p.write(actor),
                },
                WriteKind::Update => BatchWrite::Update {
                    model: &p.model.model,
                    write: p.write(actor),
                    expected_row_version: p.read_version,
                },
                WriteKind::Delete => BatchWrite::Delete {
                    model: &p.model.model,
                    scope: scope(actor),
                    id: &p.id,
                    expected_row_version: p.read_version,
                },
            })
            .collect();
        match self.store.write_batch(&writes, &audits).await? {
            BatchOutcome::Written(records) => {
                let mut written: HashMap<&str, (&metaengine_core::CompiledModel, u64)> =
                    HashMap::new();
                for p in &prepared {
                    written
                        .entry(p.model.model.table_name.as_str())
                        .or_insert((&p.model.model, 0))
                        .1 += 1;
                }
                for (model, n) in written.values() {
                    self.statistics.wrote(model, *n);
                }
                self.changes.changed();
                prepared
                    .iter()
                    .zip(records)
                    .map(|(p, text)| {
                        Ok(match p.kind {
                            WriteKind::Create => {
                                BatchDone::Created(self.as_readable(&p.model, actor, text)?)
                            }
                            WriteKind::Update => {
                                BatchDone::Updated(self.as_readable(&p.model, actor, text)?)
                            }
                            WriteKind::Delete => BatchDone::Deleted,
                        })
                    })
                    .collect()
            }
            BatchOutcome::Failed { index, error } => Err(DataError::InBatch {
                index,
                error: Box::new(match prepared.get(index) {
                    Some(p) => write_failed(&p.model, error),
                    None => error.into(),
                }),
            }),
            BatchOutcome::NoRow { index } => {
                let error = prepared.get(index).map_or_else(
                    || DataError::Internal("a batch failed at an unknown operation".to_owned()),
                    Prepared::changed_meanwhile,
                );
                Err(DataError::InBatch {
                    index,
                    error: Box::new(error),
                })
            }
        }
    }
}

/// The batch's audit rows: its creates as ONE `data.create` row per entity, as an import writes
/// them (`{"batch": true, "count", "ids", "fields", "records"}`: every id, the fields written,
/// and each record's values, `sensitive` ones named only; SPEC §16, see `created_record`);
/// each update and delete its own row, as on its single route; every policy event. Takes the
/// creates' entries out of `prepared`.
fn batch_audits(actor: &Actor, prepared: &mut [Prepared]) -> Vec<metaengine_store::NewAudit> {
    use metaengine_store::{EventType, NewAudit};
    struct Creates<'a> {
        entity: &'a str,
        ids: Vec<&'a str>,
        fields: std::collections::BTreeSet<&'a str>,
        records: Vec<Value>,
    }
    let mut creates: Vec<Creates<'_>> = Vec::new();
    let mut audits = Vec::new();
    for p in prepared.iter_mut() {
        audits.extend(p.audits.iter().cloned());
        if p.kind != WriteKind::Create {
            continue;
        }
        // A batch's create has no audit row of its own (`CreateAudit::ByBatch`); its
        // rows are policy events.
        let entity = p.model.model.entity.as_str();
        let slot = match creates.iter().position(|c| c.entity == entity) {
            Some(i) => i,
            None => {
                creates.push(Creates {
                    entity,
                    ids: Vec::new(),
                    fields: Default::default(),
                    records: Vec::new(),
                });
                creates.len() - 1
            }
        };
        if let Some(c) = creates.get_mut(slot) {
            c.ids.push(&p.id);
            c.fields.extend(p.values.iter().map(|(f, _)| f.as_str()));
            c.records.extend(p.batch_record.take());
        }
    }
    for c in creates {
        let mut details = serde_json::json!({
            "batch": true,
            "count": c.ids.len(),
            "ids": c.ids,
            "fields": c.fields,
        });
        // Moved in: `json!` would copy the records once more by serializing them.
        if let Some(details) = details.as_object_mut() {
            details.insert("records".to_owned(), Value::Array(c.records));
        }
        audits.push(NewAudit::success(
            EventType::DataCreate,
            &actor.audit(),
            c.entity,
            Some(details),
        ));
    }
    audits
}

impl DataError {
    /// The problems of an error inside a batch, each pointing into the request
    /// (`/operations/3/record/totalAmount`, or `/operations/3` for the operation as a whole).
    pub fn batch_problems(index: usize, error: &DataError) -> Vec<Problem> {
        let at = format!("/operations/{index}");
        match error {
            DataError::BadRequest { errors, .. }
            | DataError::Invalid { errors }
            | DataError::FieldForbidden { errors }
                if !errors.is_empty() =>
            {
                errors
                    .iter()
                    .map(|p| Problem::new(format!("{at}/record{}", p.pointer), p.message.clone()))
                    .collect()
            }
            other => vec![Problem::new(at, other.to_string())],
        }
    }
}
