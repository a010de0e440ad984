//! Storage of the metaengine: the [`Store`] trait, the row types of the engine's own tables, and
//! the conformance suite that every backend runs against itself (feature `testkit`).
//!
//! Key decision: the trait speaks in domain verbs (`create_entity`, `activate_version`…), never
//! raw SQL, and every verb that changes something takes its audit event and writes it in the same
//! transaction. This crate names no database driver: the implementation over sqlx is
//! `metaengine-store-sql`, opened on each database by its backend crate
//! (`metaengine-store-sqlite`, `metaengine-store-postgres`, each with its embedded migrations);
//! only the binary names them.
#![deny(missing_docs)]

pub mod audit;
pub mod chain;
pub mod changes;
pub mod error;
pub mod page;
pub mod rows;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod types;

pub use audit::{AuditActor, AuditQuery, AuditResult, EventType, NewAudit, UnknownName};
pub use chain::{Broken, PurgeReport, VerifyReport};
pub use changes::{ChangeBatch, ChangeBounds, ChangeOp, ChangeRow};
pub use error::{StoreError, StoreResult};
pub use page::{Page, PageMeta, PageRequest};
pub use rows::{AuditHeadRow, AuditRow, EntityRow, TableRow, TenantRow, TenantStatus, VersionRow};
pub use store::{
    Activation, ActivationAudits, ActivationPlan, Backend, BatchOutcome, BatchWrite, ModelChange,
    NewEntity, NewTenant, NewVersion, RecordPage, RecordWrite, Store, vacuum_due,
};
pub use types::{Id, Timestamp};
