//! The [`Store`] trait: the engine's storage, as domain verbs.

use async_trait::async_trait;
use metaengine_core::CompiledModel;
use metaengine_core::SqlValue;
use metaengine_core::plan::MigrationPlan;
use metaengine_core::policy::RowFilter;
use metaengine_sql::query::{Cursor, Expansion, Filter, ListQuery, NewRow, Related, Scope};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::audit::{AuditQuery, NewAudit};
use crate::changes::{ChangeBatch, ChangeBounds, ChangeRow};
use crate::error::StoreResult;
use crate::page::{Page, PageRequest};
use crate::rows::{AuditRow, EntityRow, TenantRow, TenantStatus, VersionRow};
use crate::types::Timestamp;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded default).
    Sqlite,
    /// PostgreSQL (production).
    Postgres,
}

/// Autovacuum's vacuum rule (`autovacuum_vacuum_threshold` 50, `…_scale_factor` 0.2): whether
/// `dead` row versions in a table of `live` rows call for a `VACUUM`. The engine applies it
/// itself to the tables it updates or purges (the audit trail, the change log), since autovacuum
/// may be off.
pub fn vacuum_due(dead: u64, live: u64) -> bool {
    dead > 50 + live / 5
}

/// A new entity.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntity {
    /// PascalCase name, already validated.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creator's user id.
    pub created_by: String,
}

/// A new version of an entity.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    /// Owning entity.
    pub entity_name: String,
    /// Version label, already validated.
    pub version: String,
    /// Schema document, already validated.
    pub schema: Value,
    /// Creator's user id.
    pub created_by: String,
}

/// A new tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// What activating a version does to the entity's data table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationPlan {
    /// Entity name.
    pub entity: String,
    /// The version to activate.
    pub version: String,
    /// The version active now, if any.
    pub previous: Option<String>,
    /// The version the data table reflects (the last one activated), if any.
    pub shaped_by: Option<String>,
    /// The data table (unquoted).
    pub table: String,
    /// The migration from the table's shape to the version's schema.
    pub plan: MigrationPlan,
    /// The DDL statements the plan takes on this database.
    pub statements: Vec<String>,
}

/// What an activation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    /// The version now active.
    pub version: VersionRow,
    /// The label of the version active before, if any.
    pub previous: Option<String>,
    /// The migration applied to the data table.
    pub plan: ActivationPlan,
}

/// The audit rows an activation writes, built from its plan (so `meta.migrate` can carry it).
pub type ActivationAudits<'a> = dyn Fn(&ActivationPlan) -> Vec<NewAudit> + Send + Sync + 'a;

/// One page of records, each the JSON text of one record, and the cursor of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordPage {
    /// The records, as JSON object texts built by the database.
    pub records: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// A record write: where, which record, who, and the values already converted for their columns.
#[derive(Debug, Clone, Copy)]
pub struct RecordWrite<'a> {
    /// The caller's tenant and realm.
    pub scope: Scope<'a>,
    /// The record's id (a new UUIDv7 on create).
    pub id: &'a str,
    /// The acting user (`created_by` / `updated_by`).
    pub actor: &'a str,
    /// Field values by field name.
    pub values: &'a [(String, SqlValue)],
}

/// One write of a batch ([`Store::write_batch`]), as the single-record verbs take it.
#[derive(Debug, Clone, Copy)]
pub enum BatchWrite<'a> {
    /// A new record.
    Insert {
        /// The record's entity.
        model: &'a CompiledModel,
        /// Where, which record, who, the values.
        write: RecordWrite<'a>,
    },
    /// Changed fields of a stored record, only at `expected_row_version`.
    Update {
        /// The record's entity.
        model: &'a CompiledModel,
        /// Where, which record, who, the values.
        write: RecordWrite<'a>,
        /// The row version the change was decided on.
        expected_row_version: i64,
    },
    /// A stored record removed, only at `expected_row_version`.
    Delete {
        /// The record's entity.
        model: &'a CompiledModel,
        /// The caller's tenant and realm.
        scope: Scope<'a>,
        /// The record.
        id: &'a str,
        /// The row version the deletion was decided on.
        expected_row_version: i64,
    },
}

/// What [`Store::write_batch`] did: everything, or nothing because of one write.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Every write, in order: the record each returned (the deleted one for a delete).
    Written(Vec<String>),
    /// Nothing was written: write `index` failed (a taken unique value, an invalid statement).
    Failed {
        /// The failed write's position.
        index: usize,
        /// Why.
        error: crate::StoreError,
    },
    /// Nothing was written: write `index` (an update or delete) matched no row, so the record
    /// changed or went away since it was read.
    NoRow {
        /// The write's position.
        index: usize,
    },
}

/// A batch of new records (an import): where, who, and each record's id and values, already
/// converted for their columns.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    /// The caller's tenant and realm.
    pub scope: Scope<'a>,
    /// The acting user (`created_by` and `updated_by` of every record).
    pub actor: &'a str,
    /// The records (new UUIDv7 ids).
    pub rows: &'a [NewRow<'a>],
}

/// A change to an entity's active model, seen by a process that may cache it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChange {
    /// This entity's active version changed (activated, deactivated, deleted).
    Entity(String),
    /// Changes may have been missed (the listener reconnected): forget every cached model.
    All,
}

/// The engine's storage. Every method is one transaction; methods that change something take the
/// audit event(s) to write in that same transaction, so a change and its audit row commit together
/// or not at all. Refusals that depend on the stored state (duplicates, immutability, the active
/// version) are decided inside the transaction, so concurrent callers cannot race past them.
///
/// Used as `Arc<dyn Store>`: the backend is chosen once at run time from the database URL, and a
/// boxed future per call costs nothing next to a database round trip.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Statements run outside transactions so far (every read of the data API is one of them): a
    /// diagnostic, with which tests count the statements of a request.
    fn statements_run(&self) -> u64;

    /// Applies the embedded migrations that are not applied yet; returns how many were applied.
    async fn migrate(&self) -> StoreResult<usize>;

    /// Whether the database answers and every embedded migration is applied.
    async fn is_ready(&self) -> StoreResult<bool>;

    // ---- entities ----

    /// Creates an entity (`EntityExists` if the name is taken).
    async fn create_entity(&self, new: &NewEntity, audit: &NewAudit) -> StoreResult<EntityRow>;

    /// One entity by name.
    async fn get_entity(&self, name: &str) -> StoreResult<Option<EntityRow>>;

    /// Entities by name, one page.
    async fn list_entities(&self, page: PageRequest) -> StoreResult<Page<EntityRow>>;

    /// Whether an entity of that name exists.
    async fn entity_exists(&self, name: &str) -> StoreResult<bool>;

    /// Sets (or clears) an entity's description.
    async fn update_entity(
        &self,
        name: &str,
        description: Option<&str>,
        audit: &NewAudit,
    ) -> StoreResult<EntityRow>;

    /// Deletes an entity, its versions and its data table. Refused with `HasRows` while the table
    /// holds rows unless `force`; returns whether a table was dropped (the audit says so too).
    async fn delete_entity(&self, name: &str, force: bool, audit: &NewAudit) -> StoreResult<bool>;

    /// Columns of the entity's data table that no field of the last activated schema uses
    /// (hidden by a field removal).
    async fn hidden_columns(&self, entity: &str) -> StoreResult<Vec<String>>;

    /// Drops the hidden columns (and their data) of the entity's table; returns their names.
    async fn prune_hidden_columns(
        &self,
        entity: &str,
        audit: &NewAudit,
    ) -> StoreResult<Vec<String>>;

    // ---- versions ----

    /// Creates a version (`EntityNotFound`, `VersionExists`).
    async fn create_version(&self, new: &NewVersion, audit: &NewAudit) -> StoreResult<VersionRow>;

    /// One version.
    async fn get_version(&self, entity: &str, version: &str) -> StoreResult<Option<VersionRow>>;

    /// The active version of an entity, if any.
    async fn active_version(&self, entity: &str) -> StoreResult<Option<VersionRow>>;

    /// All versions of an entity, oldest first.
    async fn list_versions(&self, entity: &str) -> StoreResult<Vec<VersionRow>>;

    /// Replaces the schema of a version that has never been active. `expected` is the schema the
    /// caller read and changed: if the stored one differs, nothing is written (`Concurrent`).
    async fn update_version_schema(
        &self,
        entity: &str,
        version: &str,
        expected: &Value,
        schema: &Value,
        audit: &NewAudit,
    ) -> StoreResult<VersionRow>;

    /// Deletes a version that is not active (`VersionActive`).
    async fn delete_version(
        &self,
        entity: &str,
        version: &str,
        audit: &NewAudit,
    ) -> StoreResult<()>;

    /// What activating `version` would do to the data table, changing nothing. A plan with
    /// breaking changes is returned, not refused: callers show it.
    async fn plan_activation(&self, entity: &str, version: &str) -> StoreResult<ActivationPlan>;

    /// What activating `schema` as version `version` of `entity` would do, whether or not that
    /// version (or the entity) is stored (a snapshot's dry run): nothing changes.
    async fn plan_schema(
        &self,
        entity: &str,
        version: &str,
        schema: &serde_json::Value,
    ) -> StoreResult<ActivationPlan>;

    /// Makes a version the active one, in one transaction: plans the data table's migration
    /// from the version that shaped it (refused with `Breaking` if the plan breaks anything),
    /// applies the DDL, deactivates the previous version, sets the entity's `active_version`,
    /// stamps the activation time and writes the audit rows `audits` builds from the plan.
    /// Concurrent activations of one entity are serialized.
    async fn activate_version(
        &self,
        entity: &str,
        version: &str,
        audits: &ActivationAudits<'_>,
    ) -> StoreResult<Activation>;

    /// Deactivates the active version (`VersionNotActive` if it is not the active one); the entity
    /// then has no active version.
    async fn deactivate_version(
        &self,
        entity: &str,
        version: &str,
        audit: &NewAudit,
    ) -> StoreResult<VersionRow>;

    /// Changes to active models made by any process on this database, for caches to follow:
    /// PostgreSQL forwards `NOTIFY`s, SQLite polls. Ends when the receiver is dropped.
    async fn model_changes(&self) -> StoreResult<mpsc::Receiver<ModelChange>>;

    // ---- records (every statement built by metaengine_sql's one query builder) ----

    /// One page of an entity's records: up to `query.limit`, and fewer when their JSON text
    /// would pass `max_bytes` (the first record is always returned); `next` is set whenever
    /// records remain, so a page ended early continues where it stopped.
    async fn list_records(
        &self,
        model: &CompiledModel,
        query: &ListQuery<'_>,
        max_bytes: usize,
    ) -> StoreResult<RecordPage>;

    /// How many records match.
    async fn count_records(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        row_filter: &RowFilter,
        filters: &[Filter],
        related: &[Related<'_>],
    ) -> StoreResult<u64>;

    /// One record (JSON text), if it exists in the scope and passes the row filter, with
    /// `expand`'s records under its `"expand"` (read by the same statement).
    async fn get_record(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        row_filter: Option<&RowFilter>,
        expand: &[Expansion<'_>],
    ) -> StoreResult<Option<String>>;

    /// Whether a record exists in the scope and passes the row filter (reference checks: the
    /// caller's read policies of the target).
    async fn record_exists(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        row_filter: &RowFilter,
    ) -> StoreResult<bool>;

    /// Inserts a record and its audit rows in one transaction (`Unique` on a duplicate value).
    async fn insert_record(
        &self,
        model: &CompiledModel,
        write: RecordWrite<'_>,
        audits: &[NewAudit],
    ) -> StoreResult<String>;

    /// Inserts a batch of records and its audit rows in one transaction, with multi-row inserts
    /// built by the one query builder (as few statements as the bind limit allows); all or
    /// nothing: `Unique` when a unique value is taken, by a stored record or by another record
    /// of the batch, and then nothing is written. Returns how many records were inserted.
    async fn insert_records(
        &self,
        model: &CompiledModel,
        batch: RecordBatch<'_>,
        audits: &[NewAudit],
    ) -> StoreResult<u64>;

    /// Runs `writes` in order and `audits` in ONE transaction: all or nothing (SPEC §7 batch).
    async fn write_batch(
        &self,
        writes: &[BatchWrite<'_>],
        audits: &[NewAudit],
    ) -> StoreResult<BatchOutcome>;

    /// Refreshes the planner's statistics of the entity's data table (`ANALYZE`) and returns the
    /// number of rows the analysis found (an estimate on PostgreSQL). PostgreSQL's autovacuum may
    /// be off or late, and SQLite has none: without statistics the planners pick the wrong index
    /// for a get or a filtered list of a freshly filled table.
    async fn analyze_records(&self, model: &CompiledModel) -> StoreResult<u64>;

    /// The rows the last analysis of the entity's data table found, by whoever ran it (this
    /// process before a restart, another instance, autovacuum), without analyzing; `None` when
    /// the table was never analyzed.
    async fn analyzed_records(&self, model: &CompiledModel) -> StoreResult<Option<u64>>;

    /// Updates a record (optionally only at `expected_row_version`) with its audit rows; `None`
    /// when no row matched (missing, or another row version).
    async fn update_record(
        &self,
        model: &CompiledModel,
        write: RecordWrite<'_>,
        expected_row_version: Option<i64>,
        audits: &[NewAudit],
    ) -> StoreResult<Option<String>>;

    /// Deletes a record with its audit rows; returns the deleted record, `None` when no row
    /// matched.
    async fn delete_record(
        &self,
        model: &CompiledModel,
        scope: Scope<'_>,
        id: &str,
        expected_row_version: Option<i64>,
        audits: &[NewAudit],
    ) -> StoreResult<Option<String>>;

    // ---- audit ----

    /// Appends events outside any other change (failures, reads).
    async fn append_audit(&self, events: &[NewAudit]) -> StoreResult<()>;

    /// Audit rows matching the query, newest first.
    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Page<AuditRow>>;

    /// Retention (SPEC §16): deletes each tenant's audit rows older than `before` from the
    /// start of its chain and appends one `audit.purge` checkpoint row per tenant that had any.
    async fn purge_audit(&self, before: Timestamp) -> StoreResult<crate::PurgeReport>;

    /// Verifies the audit hash chains of every tenant, or of `tenant` (SPEC §16), after
    /// chaining the sealed rows ([`Store::chain_audit`]).
    async fn verify_audit(&self, tenant: Option<&str>) -> StoreResult<crate::VerifyReport>;

    /// The chainer's pass: appends the audit rows that transactions wrote sealed and have
    /// committed to their tenants' chains (SPEC §16, `chain`); returns how many. Rows whose
    /// seal this store's key does not vouch for stay out, for `verify_audit` to report.
    async fn chain_audit(&self) -> StoreResult<u64>;

    /// [`Store::chain_audit`] for the rows sealed at least `age` ago only: the background
    /// chainer's periodic full pass, which leaves the rows its quick pass
    /// ([`Store::chain_written_audit`]) is about to chain to it (that pass need not read them
    /// back nor check their seals).
    async fn chain_audit_older_than(&self, age: std::time::Duration) -> StoreResult<u64>;

    /// The chainer's quick pass: like [`Store::chain_audit`], but only for the rows this store
    /// wrote sealed since the last such pass, read by their ids. Its cost does not grow with
    /// the list of waiting rows (where every row chained since the last VACUUM leaves a dead
    /// entry). A row whose transaction has not committed yet is looked for again in a later
    /// pass; the full pass finds any left behind.
    async fn chain_written_audit(&self) -> StoreResult<u64>;

    /// Reclaims the audit rows' old versions where the database keeps them (PostgreSQL: each
    /// row the chainer chains leaves a dead version, and an entry in each index, until a
    /// `VACUUM`; autovacuum may be off). The rows the table holds after it, or `None` where
    /// nothing needs doing (SQLite updates rows in place).
    async fn vacuum_audit(&self) -> StoreResult<Option<u64>>;

    /// Reclaims the space of the ids the chainer took off the list of sealed rows waiting for
    /// it, where the database keeps it (PostgreSQL: each leaves a dead row until a `VACUUM`,
    /// and autovacuum may be off); nothing elsewhere. The list is short at any time, so this
    /// is cheap: the chainer runs it every few thousand rows it chains.
    async fn vacuum_audit_pending(&self) -> StoreResult<()>;

    /// The audit table's dead row versions and live rows as the database counts them (its
    /// statistics, a little behind), or `None` where it keeps none (SQLite): what decides
    /// [`Store::vacuum_audit`].
    async fn audit_dead_rows(&self) -> StoreResult<Option<(u64, u64)>>;

    /// Waits until this store has written sealed audit rows since the last wait (the chainer's
    /// wake-up; it may come just before their commit).
    async fn wait_for_sealed_audit(&self);

    // ---- tenants ----

    /// One tenant.
    async fn get_tenant(&self, id: &str) -> StoreResult<Option<TenantRow>>;

    /// All tenants by id.
    async fn list_tenants(&self) -> StoreResult<Vec<TenantRow>>;

    /// Creates an active tenant (`TenantExists`).
    async fn create_tenant(&self, new: &NewTenant, audit: &NewAudit) -> StoreResult<TenantRow>;

    /// Renames and/or changes the status of a tenant.
    async fn update_tenant(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<TenantStatus>,
        audit: &NewAudit,
    ) -> StoreResult<TenantRow>;

    // ---- change log (realtime, SPEC §14) ----

    /// Up to `limit` changes after event id `after`, in commit order, each only once it is final:
    /// no transaction still running can record a change before it. The answer may stop short of
    /// changes already committed (a later read gets them); it never skips one. Without
    /// `records`, only how far the final changes go (`through`), none read.
    async fn changes_after(
        &self,
        after: i64,
        limit: u32,
        records: bool,
    ) -> StoreResult<ChangeBatch>;

    /// Up to `limit` changes of `entities` in one tenant and realm with ids in
    /// `after + 1 ..= through`, in order (a subscriber's replay; `through` is final).
    async fn changes_of(
        &self,
        scope: Scope<'_>,
        entities: &[String],
        after: i64,
        through: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChangeRow>>;

    /// The highest purged and the highest recorded event id.
    async fn change_bounds(&self) -> StoreResult<ChangeBounds>;

    /// The highest event id up to which every change is final (where a feed starts): waits a
    /// few seconds at most for the transactions writing changes at the time of the call.
    async fn settled_changes_end(&self) -> StoreResult<i64>;

    /// Deletes the changes recorded before `before`; returns how many.
    async fn purge_changes(&self, before: Timestamp) -> StoreResult<u64>;

    /// Wakes the feeds of other processes (PostgreSQL `NOTIFY`; nothing on SQLite, whose feeds
    /// poll).
    async fn announce_changes(&self) -> StoreResult<()>;

    /// A message each time another process announces changes, and when the listener
    /// reconnected (changes may have been announced meanwhile). SQLite: a receiver that never
    /// gets one.
    async fn watch_changes(&self) -> StoreResult<mpsc::Receiver<()>>;
}
