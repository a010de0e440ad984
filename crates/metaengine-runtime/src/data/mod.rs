//! The generic data API (SPEC §7): list, get, count, create, update and delete the records of
//! any active entity, always inside the caller's tenant and realm, through the policy gate, with
//! every write validated by the compiled model and audited in its own transaction.
//!
//! Key decisions: records travel as the JSON text the database builds (no re-serialization on
//! the hot path); a record the caller may not read answers exactly like a missing one (404); every
//! update and delete is conditional on the row version read, so a policy decision can never be
//! taken on a stale record (one without `If-Match` that loses a race decides again).

mod batch;
mod error;
mod expand;
mod fields;
mod group_commit;
mod import;
mod record_locks;
mod references;
mod related;
mod statistics;

use std::sync::Arc;

use metaengine_core::policy::{Action, FieldAccess, RowFilter};
use metaengine_core::record::{WriteRejected, changed_fields, changes, created_record};
use metaengine_core::{ErrorCode, Problem};
use metaengine_sql::query::{
    Cursor, Filter, ListQuery, Order, Scope, decode_cursor, encode_cursor,
};
use metaengine_store::{EventType, NewAudit, PageRequest, RecordWrite, Store};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use batch::{BatchDone, BatchOp};
pub use error::{DataError, DataResult};
pub use expand::{MAX_EXPAND_DEPTH, MAX_EXPAND_PATHS, REVERSE_LIMIT, parse_expand};
pub use import::{
    BatchReport, DEFAULT_BATCH_SIZE, ImportOptions, ImportRow, Importer, RejectedRow,
};

use crate::actor::Actor;
use crate::audit_writer::AuditWriter;
use crate::cache::{ActiveModel, CacheError, ModelCache};
use crate::gate::{PolicyGate, WriteCheck};
use error::write_failed;
use record_locks::{Attempt, RecordLocks};
use references::KnownRecords;
use statistics::Statistics;

/// The default byte budget of a list page (4 MiB).
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Page sizes and other limits of the data API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// Page size when the request gives none.
    pub default_page_size: u32,
    /// Largest page size.
    pub max_page_size: u32,
    /// Most filters in one request.
    pub max_filters: usize,
    /// Most operations in one batch (`batch_max_operations`).
    pub max_batch_operations: usize,
    /// Most bytes of record JSON in one list page: a page ends early, with its `nextCursor`,
    /// once the next record would pass it (its first record is always sent).
    pub max_page_bytes: usize,
}

impl Default for DataLimits {
    fn default() -> Self {
        Self {
            default_page_size: PageRequest::DEFAULT_SIZE,
            max_page_size: PageRequest::MAX_SIZE,
            max_filters: 20,
            max_batch_operations: 1000,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
        }
    }
}

/// A list request, as parsed from the query string (SPEC §10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// 1-based page (ignored with `after`).
    pub page: Option<u32>,
    /// Rows per page.
    pub page_size: Option<u32>,
    /// A field name or `createdAt`/`updatedAt`/`id`.
    pub order_by: Option<String>,
    /// Whether `order_by` runs from the largest value down (`orderDir=desc`).
    pub descending: bool,
    /// Field selection.
    pub fields: Option<Vec<String>>,
    /// Each `filter[field][op]=value`.
    pub filters: Vec<FilterParam>,
    /// Opaque cursor of the previous page.
    pub after: Option<String>,
    /// Whether to count the total (`count=exact`, the default) or not (`count=none`).
    pub count: bool,
    /// The `expand` paths (SPEC §13): `customerId`, `customerId.accountManagerId`,
    /// `Invoice_via_customerId`.
    pub expand: Vec<String>,
}

/// One `filter[field][op]=value` as the client wrote it; the entity's validator types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterParam {
    /// The field named.
    pub field: String,
    /// The operator named (`eq`, `gt`, `in`…).
    pub operator: String,
    /// The value as text.
    pub value: String,
}

impl FilterParam {
    /// A filter of `field` with `operator` and `value`.
    pub fn new(field: &str, operator: &str, value: &str) -> Self {
        Self {
            field: field.to_owned(),
            operator: operator.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// Position and totals of a list page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// 1-based page.
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
    /// Cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
    /// Rows in all pages (absent with `count=none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Pages (absent with `count=none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<u64>,
}

/// One page of records (each the JSON text of a record).
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    /// The records.
    pub records: Vec<String>,
    /// Position and totals.
    pub meta: ListMeta,
}

impl ListPage {
    /// The page as the JSON text of `{ "data": [...], "meta": {...} }`, records spliced in as
    /// the database wrote them.
    pub fn to_json(&self) -> String {
        let meta = serde_json::to_string(&self.meta).unwrap_or_else(|_| "{}".to_owned());
        let mut out = String::with_capacity(
            self.records.iter().map(String::len).sum::<usize>() + meta.len() + 32,
        );
        out.push_str("{\"data\":[");
        for (i, record) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(record);
        }
        out.push_str("],\"meta\":");
        out.push_str(&meta);
        out.push('}');
        out
    }
}

/// The data API over the store, the model cache and the policy gate.
#[derive(Clone)]
pub struct DataService {
    store: Arc<dyn Store>,
    cache: ModelCache,
    gate: PolicyGate,
    audit: AuditWriter,
    limits: DataLimits,
    statistics: Statistics,
    /// Serialize the retries of unconditional updates and deletes of one record.
    record_locks: RecordLocks,
    /// Writes concurrent single creates together.
    creates: group_commit::GroupCommit,
    /// Told after every committed write: wakes this process's realtime feed.
    changes: crate::realtime::ChangeSignal,
}

impl std::fmt::Debug for DataService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataService")
            .field("limits", &self.limits)
            .finish()
    }
}

fn scope(actor: &Actor) -> Scope<'_> {
    Scope {
        tenant_id: &actor.tenant_id,
        realm_id: &actor.realm_id,
    }
}

/// A stored record's JSON text as an object. The error never carries the text: a record's
/// values (sensitive ones included) do not belong in a log line.
fn parse_record(text: &str) -> DataResult<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DataError::Internal(format!(
            "a stored record is not a JSON object ({} bytes)",
            text.len()
        ))),
    }
}

/// A record read as the database wrote it, parsed only if a policy looks at one of its fields
/// (most read policies do not), so a read does not pay for a parse it does not need.
struct LazyRecord<'t> {
    text: &'t str,
    /// `Some(None)` once a parse has failed.
    parsed: std::sync::OnceLock<Option<Map<String, Value>>>,
}

impl<'t> LazyRecord<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text,
            parsed: std::sync::OnceLock::new(),
        }
    }
}

impl LazyRecord<'_> {
    /// Whether a policy looked at the record and it could not be parsed: the decision was then
    /// taken on no fields at all, and must not stand (fail closed).
    fn unreadable(&self) -> bool {
        matches!(self.parsed.get(), Some(None))
    }
}

impl metaengine_core::policy::RecordView for LazyRecord<'_> {
    fn get(&self, field: &str) -> Option<&Value> {
        self.parsed
            .get_or_init(|| parse_record(self.text).ok())
            .as_ref()?
            .get(field)
    }
}

/// The row version of a record's JSON text, read without building the record.
fn row_version_of(text: &str) -> DataResult<i64> {
    #[derive(serde::Deserialize)]
    struct Version {
        #[serde(rename = "rowVersion", default)]
        row_version: i64,
    }
    serde_json::from_str::<Version>(text)
        .map(|v| v.row_version)
        .map_err(|_| DataError::Internal("a stored record is not a JSON object".to_owned()))
}

fn row_version(record: &Map<String, Value>) -> i64 {
    record
        .get("rowVersion")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

impl DataService {
    /// A data service; `audit` carries `data.read` and read-path policy events; `changes` is
    /// told after every committed write.
    pub fn new(
        store: Arc<dyn Store>,
        cache: ModelCache,
        gate: PolicyGate,
        audit: AuditWriter,
        limits: DataLimits,
        changes: crate::realtime::ChangeSignal,
    ) -> Self {
        Self {
            changes,
            statistics: Statistics::new(store.clone()),
            record_locks: RecordLocks::new(),
            creates: group_commit::GroupCommit::new(store.clone()),
            store,
            cache,
            gate,
            audit,
            limits,
        }
    }

    /// The active model of `entity` as data requests see it (404 when the entity does not
    /// exist, 404 `inactive` when no version is active).
    pub async fn model(&self, entity: &str) -> DataResult<Arc<ActiveModel>> {
        match self.cache.active_model(entity).await {
            Ok(model) => Ok(model),
            Err(CacheError::EntityNotFound(_)) => Err(DataError::NotFound(format!(
                "entity `{entity}` does not exist"
            ))),
            Err(CacheError::NoActiveVersion(_)) => Err(DataError::Inactive(entity.to_owned())),
            Err(CacheError::Store(e)) => Err(e.into()),
            Err(CacheError::Redis(e)) => Err(DataError::Internal(e.to_string())),
        }
    }

    async fn read_audit(&self, actor: &Actor, entity: &str, details: Value) {
        let event = NewAudit::success(EventType::DataRead, &actor.audit(), entity, Some(details));
        self.audit.record(event).await;
    }

    /// The filters of a list or count: on the entity's own fields, and across its references
    /// (`filter[customerId.name][eq]=…`, see [`related`]). A field `access` hides answers as an
    /// unknown field.
    async fn filters(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        access: &FieldAccess<'_>,
        raw: &[FilterParam],
    ) -> DataResult<(Vec<Filter>, Vec<related::RelatedFilter>)> {
        if raw.len() > self.limits.max_filters {
            return Err(DataError::bad_request(
                "",
                format!("at most {} filters are allowed", self.limits.max_filters),
            ));
        }
        let mut filters = Vec::with_capacity(raw.len());
        let mut across = Vec::new();
        let mut problems = Vec::new();
        let mut code = ErrorCode::InvalidFilter;
        for f in raw {
            if let Some((reference, field)) = f.field.split_once('.') {
                let done = self
                    .related_filter(
                        (model, access),
                        actor,
                        (reference, field),
                        (&f.operator, &f.value),
                        &mut across,
                    )
                    .await?;
                if let Err((rejected, problem)) = done {
                    if rejected == ErrorCode::UnknownField {
                        code = ErrorCode::UnknownField;
                    }
                    problems.push(problem);
                }
                continue;
            }
            if !access.allows(&f.field) {
                code = ErrorCode::UnknownField;
                problems.push(metaengine_core::record::unknown_filter_field(&f.field).problem);
                continue;
            }
            match model.validator.filter(&f.field, &f.operator, &f.value) {
                Ok(f) => filters.push(f),
                Err(rejected) => {
                    // A field the caller cannot name wins: the answer is `unknown_field`.
                    if rejected.code == ErrorCode::UnknownField {
                        code = ErrorCode::UnknownField;
                    }
                    problems.push(rejected.problem);
                }
            }
        }
        if problems.is_empty() {
            Ok((filters, across))
        } else {
            Err(DataError::BadRequest {
                code,
                message: problems
                    .iter()
                    .map(|p| p.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                errors: problems,
            })
        }
    }

    /// One page of records the caller may read.
    pub async fn list(
        &self,
        actor: &Actor,
        entity: &str,
        req: &ListRequest,
    ) -> DataResult<ListPage> {
        let model = self.model(entity).await?;
        let access = self.gate.field_access(&model, Action::Read, actor);
        let (filters, across) = self.filters(&model, actor, &access, &req.filters).await?;
        let related = related::related(&across);
        if let Some(order_by) = &req.order_by {
            fields::readable(&access, order_by)?;
        }
        let page_size = req.page_size.unwrap_or(self.limits.default_page_size);
        if page_size == 0 || page_size > self.limits.max_page_size {
            return Err(DataError::bad_request(
                "pageSize",
                format!(
                    "`pageSize` must be between 1 and {}",
                    self.limits.max_page_size
                ),
            ));
        }
        let page = req.page.unwrap_or(1);
        if page == 0 {
            return Err(DataError::bad_request(
                "page",
                "`page` starts at 1".to_owned(),
            ));
        }
        let order = req.order_by.as_ref().map(|field| Order {
            field: field.clone(),
            descending: req.descending,
        });
        let cursor: Option<Cursor> = match &req.after {
            Some(text) => Some(decode_cursor(text).map_err(|e| {
                DataError::bad_request_with(ErrorCode::InvalidCursor, "after", e.to_string())
            })?),
            None => None,
        };
        let row_filter = self.readable_rows(&model, actor).await?;
        let mut resolved = self.resolve_expand(&model, actor, &req.expand).await?;
        let fields = fields::selection(
            &access,
            expand::select_fields(req.fields.as_deref(), &mut resolved)?,
        )?;
        let expand = expand::expansions(&resolved);
        let query = ListQuery {
            scope: scope(actor),
            row_filter: &row_filter,
            filters: &filters,
            order: order.as_ref(),
            fields: fields.as_deref(),
            limit: page_size,
            offset: u64::from(page - 1) * u64::from(page_size),
            after: cursor.as_ref(),
            expand: &expand,
            related: &related,
        };
        let records = self
            .store
            .list_records(&model, &query, self.limits.max_page_bytes)
            .await?;
        let total = if req.count {
            Some(
                self.store
                    .count_records(&model, scope(actor), &row_filter, &filters, &related)
                    .await?,
            )
        } else {
            None
        };
        self.read_audit(
            actor,
            entity,
            json!({ "list": true, "returned": records.records.len() }),
        )
        .await;
        Ok(ListPage {
            meta: ListMeta {
                page,
                page_size,
                next_cursor: records.next.as_ref().map(encode_cursor),
                total,
                total_pages: total.map(|t| t.div_ceil(u64::from(page_size))),
            },
            records: records.records,
        })
    }

    /// How many records the caller may read match the filters.
    pub async fn count(
        &self,
        actor: &Actor,
        entity: &str,
        raw_filters: &[FilterParam],
    ) -> DataResult<u64> {
        let model = self.model(entity).await?;
        let access = self.gate.field_access(&model, Action::Read, actor);
        let (filters, across) = self.filters(&model, actor, &access, raw_filters).await?;
        let row_filter = self.readable_rows(&model, actor).await?;
        let n = self
            .store
            .count_records(
                &model,
                scope(actor),
                &row_filter,
                &filters,
                &related::related(&across),
            )
            .await?;
        self.read_audit(actor, entity, json!({ "count": n })).await;
        Ok(n)
    }

    /// Refreshes the planner's statistics of `entity`'s table now if the rows written since its
    /// last analysis call for it (the end of a bulk load); a failure is logged, not returned:
    /// statistics are an optimisation.
    pub async fn analyze_if_due(&self, entity: &str) {
        match self.model(entity).await {
            Ok(model) => self.statistics.analyze_if_due(&model.model).await,
            Err(e) => tracing::warn!(error = %e, entity, "analyze failed"),
        }
    }

    /// The rows of a list or count the caller may read. When policies let it read nothing at all,
    /// list and count alike answer forbidden (and audit the denial) rather than an empty result.
    async fn readable_rows(&self, model: &ActiveModel, actor: &Actor) -> DataResult<RowFilter> {
        let row_filter = self.gate.row_filter(model, Action::Read, actor);
        if matches!(row_filter, RowFilter::Nothing) {
            self.gate
                .authorize(model, Action::Read, actor, None, None)
                .await
                .map_err(|e| DataError::Forbidden(e.to_string()))?;
        }
        Ok(row_filter)
    }

    /// Which records of `entity` a realtime subscriber sees (SPEC §14): the active model and
    /// the predicate of the caller's read policies and `raw` filters, decided as a list decides
    /// them (403 when the caller may not list at all). A filter across a reference is refused:
    /// deciding it would read the database for every change.
    pub(crate) async fn visible_changes(
        &self,
        actor: &Actor,
        entity: &str,
        raw: &[FilterParam],
    ) -> DataResult<(
        Arc<ActiveModel>,
        metaengine_core::policy::Predicate,
        Vec<String>,
    )> {
        use metaengine_core::policy::{Predicate, filter_predicate};
        let model = self.model(entity).await?;
        if let Some(f) = raw.iter().find(|f| f.field.contains('.')) {
            return Err(DataError::bad_request_with(
                ErrorCode::InvalidFilter,
                &format!("filter[{}]", f.field),
                format!(
                    "a filter across a reference (`{}`) is not available on the event stream",
                    f.field
                ),
            ));
        }
        let access = self.gate.field_access(&model, Action::Read, actor);
        let (filters, _) = self.filters(&model, actor, &access, raw).await?;
        let rows = match self.readable_rows(&model, actor).await? {
            RowFilter::All => Predicate::True,
            RowFilter::Nothing => Predicate::False,
            RowFilter::Where(p) => p,
        };
        let mut all = vec![rows];
        all.extend(filters.iter().map(|f| filter_predicate(&model.model, f)));
        let hidden = access.hidden().map(str::to_owned).collect();
        drop(access);
        Ok((model, Predicate::And(all), hidden))
    }

    /// A record the caller may read, parsed, with its JSON text.
    async fn readable(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        id: &str,
    ) -> DataResult<(String, Map<String, Value>)> {
        let missing =
            || DataError::NotFound(format!("no `{}` record with id `{id}`", model.entity));
        let text = self
            .store
            .get_record(model, scope(actor), id, None, &[])
            .await?
            .ok_or_else(missing)?;
        let record = parse_record(&text)?;
        if self
            .gate
            .authorize(model, Action::Read, actor, Some(&record), Some(id))
            .await
            .is_err()
        {
            return Err(missing());
        }
        Ok((text, record))
    }

    /// One record (JSON text) with the records `expand` names under its `"expand"`, and its
    /// row version (the `ETag`).
    pub async fn get(
        &self,
        actor: &Actor,
        entity: &str,
        id: &str,
        expand: &[String],
    ) -> DataResult<(String, i64)> {
        let model = self.model(entity).await?;
        let missing =
            || DataError::NotFound(format!("no `{}` record with id `{id}`", model.entity));
        let resolved = self.resolve_expand(&model, actor, expand).await?;
        let text = self
            .store
            .get_record(
                &model,
                scope(actor),
                id,
                None,
                &expand::expansions(&resolved),
            )
            .await?
            .ok_or_else(missing)?;
        let record = LazyRecord::new(&text);
        let authorized = self
            .gate
            .authorize(&model, Action::Read, actor, Some(&record), Some(id))
            .await;
        if record.unreadable() {
            return Err(DataError::Internal(format!(
                "stored record `{id}` of `{}` is not a JSON object",
                model.entity
            )));
        }
        if authorized.is_err() {
            return Err(missing());
        }
        let version = row_version_of(&text)?;
        let text = self.as_readable(&model, actor, text)?;
        self.read_audit(actor, entity, json!({ "id": id })).await;
        Ok((text, version))
    }

    /// A record's text as the caller may read it (SPEC §15): without the fields its read
    /// policies hide (unchanged, unparsed, when none are).
    pub(crate) fn as_readable(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        text: String,
    ) -> DataResult<String> {
        let access = self.gate.field_access(model, Action::Read, actor);
        if matches!(access, FieldAccess::All) {
            return Ok(text);
        }
        let mut record = parse_record(&text)?;
        fields::strip(&access, &mut record);
        Ok(Value::Object(record).to_string())
    }

    fn rejected(e: WriteRejected) -> DataError {
        match e {
            WriteRejected::BadRequest(errors) => DataError::BadRequest {
                code: ErrorCode::BadRequest,
                message: errors
                    .iter()
                    .map(|p| p.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                errors,
            },
            WriteRejected::Invalid(errors) => DataError::Invalid { errors },
        }
    }

    /// Refuses (422) a write whose references name records that do not exist in the caller's
    /// scope (see [`references`]).
    async fn check_references(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        values: &[(String, metaengine_core::SqlValue)],
        known: &mut KnownRecords,
    ) -> DataResult<()> {
        let problems = self.missing_references(model, actor, values, known).await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DataError::Invalid { errors: problems })
        }
    }

    /// The audit row of a write: the fields written and `changes`, each changed field with its
    /// old and new values (a `sensitive` field named only; SPEC §16). `before` is the stored
    /// record (update, delete), `input` the body (create, update).
    fn write_audit(
        model: &ActiveModel,
        actor: &Actor,
        event: EventType,
        id: &str,
        values: &[(String, metaengine_core::SqlValue)],
        before: Option<&Map<String, Value>>,
        input: Option<&Value>,
    ) -> NewAudit {
        let input = input.and_then(Value::as_object);
        let changes = match (before, input) {
            // A delete: every field the record had.
            (Some(before), None) => changes(
                &model.model,
                model.model.fields.iter().map(|f| f.name.as_str()),
                Some(before),
                None,
            ),
            _ => changes(
                &model.model,
                values.iter().map(|(name, _)| name.as_str()),
                before,
                input,
            ),
        };
        NewAudit::success(
            event,
            &actor.audit(),
            &model.model.entity,
            Some(json!({ "id": id, "fields": changed_fields(values), "changes": changes })),
        )
    }

    /// The record as the policies see it after an update: the stored record with the written
    /// values and the new `updatedBy`. (A new record: [`NewRecordView`].)
    fn updated_record(
        before: &Map<String, Value>,
        input: &Value,
        actor: &Actor,
    ) -> Map<String, Value> {
        let mut after = before.clone();
        after.insert("updatedBy".to_owned(), Value::String(actor.user_id.clone()));
        if let Value::Object(input) = input {
            for (k, v) in input {
                after.insert(k.clone(), v.clone());
            }
        }
        after
    }

    async fn denied(&self, audit: Option<NewAudit>, e: impl ToString) -> DataError {
        if let Some(event) = audit {
            self.audit.record(event).await;
        }
        DataError::Forbidden(e.to_string())
    }

    /// Creates a record; returns its JSON text and id.
    pub async fn create(
        &self,
        actor: &Actor,
        entity: &str,
        input: &Value,
    ) -> DataResult<(String, String)> {
        let p = self
            .prepare_create(
                actor,
                entity,
                input,
                &mut KnownRecords::default(),
                CreateAudit::Own,
            )
            .await?;
        let (model, id) = (p.model.clone(), p.id.clone());
        let text = self
            .creates
            .insert(p, actor.clone())
            .await
            .map_err(|e| write_failed(&model, e))?;
        self.statistics.wrote(&model.model, 1);
        self.changes.changed();
        Ok((self.as_readable(&model, actor, text)?, id))
    }

    /// Updates some fields of a record; `if_match` is the row version the client read. Without
    /// it the client asked for last-writer-wins: a write that loses a race with another reads,
    /// decides and writes again (see `record_locks`).
    pub async fn update(
        &self,
        actor: &Actor,
        entity: &str,
        id: &str,
        input: &Value,
        if_match: Option<i64>,
    ) -> DataResult<(String, i64)> {
        let key = (actor.tenant_id.as_str(), entity, id);
        self.record_locks
            .write(key, if_match.is_some(), || async move {
                let p = self
                    .prepare_update(actor, entity, id, input, if_match)
                    .await?;
                let written = self
                    .store
                    .update_record(&p.model, p.write(actor), Some(p.read_version), &p.audits)
                    .await
                    .map_err(|e| write_failed(&p.model, e))?;
                Ok(match written {
                    Some(text) => {
                        self.changes.changed();
                        let version = row_version(&parse_record(&text)?);
                        Attempt::Written((self.as_readable(&p.model, actor, text)?, version))
                    }
                    None => Attempt::Lost(p.changed_meanwhile()),
                })
            })
            .await
    }

    /// Deletes a record; `if_match` is the row version the client read (without it, as
    /// [`DataService::update`]: a delete that loses a race decides again).
    pub async fn delete(
        &self,
        actor: &Actor,
        entity: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> DataResult<()> {
        let key = (actor.tenant_id.as_str(), entity, id);
        self.record_locks
            .write(key, if_match.is_some(), || async move {
                let p = self.prepare_delete(actor, entity, id, if_match).await?;
                let deleted = self
                    .store
                    .delete_record(&p.model, scope(actor), id, Some(p.read_version), &p.audits)
                    .await?;
                Ok(match deleted {
                    Some(_) => {
                        self.changes.changed();
                        Attempt::Written(())
                    }
                    None => Attempt::Lost(p.changed_meanwhile()),
                })
            })
            .await
    }

    /// Everything a create checks (the record's id, the field rules, the policies, the
    /// references), without writing: the single route and the batch run the result.
    async fn prepare_create(
        &self,
        actor: &Actor,
        entity: &str,
        input: &Value,
        known: &mut KnownRecords,
        audit: CreateAudit,
    ) -> DataResult<Prepared> {
        let model = self.model(entity).await?;
        let (id, input) = record_id(input)?;
        let values = model
            .validator
            .prepare_create(&input)
            .map_err(Self::rejected)?;
        let after = NewRecordView::new(&input, actor, &id);
        let (verdict, policy_event) = self.gate.check_write(
            &model,
            actor,
            WriteCheck {
                action: Action::Create,
                before: None,
                after: Some(&after),
                record_id: Some(&id),
            },
        );
        if let Err(e) = verdict {
            return Err(self.denied(policy_event, e).await);
        }
        fields::writable(
            &self.gate.field_access(&model, Action::Create, actor),
            &input,
        )?;
        self.check_references(&model, actor, &values, known).await?;
        let mut audits = Vec::with_capacity(2);
        let mut batch_record = None;
        match audit {
            CreateAudit::Own => audits.push(Self::write_audit(
                &model,
                actor,
                EventType::DataCreate,
                &id,
                &values,
                None,
                Some(&input),
            )),
            CreateAudit::ByBatch => {
                batch_record = Some(created_record(&model.model, &id, input.into_owned()));
            }
        }
        audits.extend(policy_event);
        Ok(Prepared {
            model,
            kind: WriteKind::Create,
            id,
            values,
            audits,
            batch_record,
            read_version: 0,
            if_match: None,
        })
    }

    /// Everything an update checks, without writing (see [`DataService::prepare_create`]).
    async fn prepare_update(
        &self,
        actor: &Actor,
        entity: &str,
        id: &str,
        input: &Value,
        if_match: Option<i64>,
    ) -> DataResult<Prepared> {
        let model = self.model(entity).await?;
        let values = model
            .validator
            .prepare_update(input)
            .map_err(Self::rejected)?;
        let (_, before) = self.readable(&model, actor, id).await?;
        let current = row_version(&before);
        if let Some(expected) = if_match.filter(|v| *v != current) {
            return Err(DataError::PreconditionFailed { expected, current });
        }
        let after = Self::updated_record(&before, input, actor);
        let (verdict, policy_event) = self.gate.check_write(
            &model,
            actor,
            WriteCheck {
                action: Action::Update,
                before: Some(&before),
                after: Some(&after),
                record_id: Some(id),
            },
        );
        if let Err(e) = verdict {
            return Err(self.denied(policy_event, e).await);
        }
        fields::writable(
            &self.gate.field_access(&model, Action::Update, actor),
            input,
        )?;
        self.check_references(&model, actor, &values, &mut KnownRecords::default())
            .await?;
        let mut audits = vec![Self::write_audit(
            &model,
            actor,
            EventType::DataUpdate,
            id,
            &values,
            Some(&before),
            Some(input),
        )];
        audits.extend(policy_event);
        Ok(Prepared {
            model,
            kind: WriteKind::Update,
            id: id.to_owned(),
            values,
            audits,
            batch_record: None,
            read_version: current,
            if_match,
        })
    }

    /// Everything a delete checks, without writing (see [`DataService::prepare_create`]).
    async fn prepare_delete(
        &self,
        actor: &Actor,
        entity: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> DataResult<Prepared> {
        let model = self.model(entity).await?;
        let (_, before) = self.readable(&model, actor, id).await?;
        let current = row_version(&before);
        if let Some(expected) = if_match.filter(|v| *v != current) {
            return Err(DataError::PreconditionFailed { expected, current });
        }
        let (verdict, policy_event) = self.gate.check_write(
            &model,
            actor,
            WriteCheck {
                action: Action::Delete,
                before: Some(&before),
                after: None,
                record_id: Some(id),
            },
        );
        if let Err(e) = verdict {
            return Err(self.denied(policy_event, e).await);
        }
        let mut audits = vec![Self::write_audit(
            &model,
            actor,
            EventType::DataDelete,
            id,
            &[],
            Some(&before),
            None,
        )];
        audits.extend(policy_event);
        Ok(Prepared {
            model,
            kind: WriteKind::Delete,
            id: id.to_owned(),
            values: Vec::new(),
            audits,
            batch_record: None,
            read_version: current,
            if_match,
        })
    }
}

/// A new record as the policies see it, for every create (single, batch, import), without
/// copying the input: the system fields a create sets, then the input's fields (which cannot
/// name a system field: the validators refuse that first).
pub(crate) struct NewRecordView<'a> {
    input: Option<&'a Map<String, Value>>,
    system: [(&'static str, Value); 5],
}

impl<'a> NewRecordView<'a> {
    pub(crate) fn new(input: &'a Value, actor: &Actor, id: &str) -> Self {
        let text = |s: &str| Value::String(s.to_owned());
        Self {
            input: input.as_object(),
            system: [
                ("id", text(id)),
                ("tenantId", text(&actor.tenant_id)),
                ("realmId", text(&actor.realm_id)),
                ("createdBy", text(&actor.user_id)),
                ("updatedBy", text(&actor.user_id)),
            ],
        }
    }
}

impl metaengine_core::policy::RecordView for NewRecordView<'_> {
    fn get(&self, field: &str) -> Option<&Value> {
        match self.system.iter().find(|(name, _)| *name == field) {
            Some((_, value)) => Some(value),
            None => self.input.and_then(|input| input.get(field)),
        }
    }
}

/// Which write a [`Prepared`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Create,
    Update,
    Delete,
}

/// Whether a prepared create carries its own `data.create` audit row (the single route), or
/// leaves it to its batch, which audits its creates as one row per entity (`batch_audits`)
/// holding every created record's values: a thousand audit rows (each sealed, chained and
/// indexed) cost more than the thousand records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateAudit {
    /// The create's own row, with its changes.
    Own,
    /// No row of its own: the batch writes one for all its creates, with their values.
    ByBatch,
}

/// A write every check of its route has passed, ready to run alone or in a batch.
pub(crate) struct Prepared {
    model: Arc<ActiveModel>,
    kind: WriteKind,
    /// The record's id (new on create).
    id: String,
    /// Field values, converted for their columns.
    values: Vec<(String, metaengine_core::SqlValue)>,
    /// The write's audit rows (and any policy event).
    audits: Vec<NewAudit>,
    /// A batch's create ([`CreateAudit::ByBatch`]): its entry in the batch row's
    /// `details.records` (see [`created_record`]).
    batch_record: Option<Value>,
    /// The row version the decision was taken on (update, delete).
    read_version: i64,
    /// The client's `If-Match`, if any.
    if_match: Option<i64>,
}

impl Prepared {
    fn write<'a>(&'a self, actor: &'a Actor) -> RecordWrite<'a> {
        RecordWrite {
            scope: scope(actor),
            id: &self.id,
            actor: &actor.user_id,
            values: &self.values,
        }
    }

    /// The answer when the conditional write matched no row: the record changed since it was
    /// read (412 when the client named a version, else a conflict).
    fn changed_meanwhile(&self) -> DataError {
        match self.if_match {
            Some(expected) => DataError::PreconditionFailed {
                expected,
                current: self.read_version + 1,
            },
            None => DataError::Conflict {
                code: ErrorCode::Conflict,
                message: "the record changed while it was being written; read it again and retry"
                    .to_owned(),
            },
        }
    }
}

/// The id of a new record: the body's `id` when it gives one (a UUID, SPEC §7; a UUIDv7 is
/// recommended), else a new UUIDv7; and the body without it, for the field rules.
fn record_id(input: &Value) -> DataResult<(String, std::borrow::Cow<'_, Value>)> {
    let Some(given) = input.get("id") else {
        // The usual create: a new id and the input as it is (not copied).
        return Ok((
            uuid::Uuid::now_v7().hyphenated().to_string(),
            std::borrow::Cow::Borrowed(input),
        ));
    };
    let id = given
        .as_str()
        .filter(|s| s.len() == 36)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or_else(|| DataError::Invalid {
            errors: vec![Problem::new(
                "/id",
                "`id` must be a UUID such as `0192f3a4-5b6c-7d8e-9f00-112233445566` (a UUIDv7 is recommended)",
            )],
        })?;
    let mut rest = input.clone();
    if let Value::Object(map) = &mut rest {
        map.remove("id");
    }
    Ok((id.hyphenated().to_string(), std::borrow::Cow::Owned(rest)))
}

#[cfg(test)]
mod tests {
    use super::LazyRecord;
    use metaengine_core::policy::RecordView;

    /// Issue 12 item 22: a stored record that does not parse is not an empty record to the
    /// policies; `get` refuses to answer on it.
    #[test]
    fn an_unparsable_record_is_unreadable_not_empty() {
        let broken = LazyRecord::new("{\"status\": ");
        assert!(broken.get("status").is_none());
        assert!(broken.unreadable());
        let fine = LazyRecord::new("{\"status\": \"paid\"}");
        assert!(!fine.unreadable());
        assert_eq!(fine.get("status"), Some(&serde_json::json!("paid")));
        assert!(!fine.unreadable());
    }
}
