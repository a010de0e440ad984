//! Services of the metaengine, over the [`Store`](metaengine_store::Store) trait only: the
//! [`Registry`] of entities and versions, with access rules and a transactional audit trail.
//!
//! Key decision: every metadata change goes through one path (`Registry::change`) that checks the
//! caller, runs the change with its audit event in one transaction, and records a failure event
//! when anything refuses it, so no change and no refusal escapes the audit trail.
#![deny(missing_docs)]

pub mod actor;
pub mod audit_chainer;
pub mod audit_writer;
pub mod cache;
pub mod codegen;
pub mod data;
pub mod error;
pub mod gate;
pub mod realtime;
pub mod registry;
pub mod retention;
pub mod services;
pub mod snapshot;
pub mod tenants;

pub use actor::{AccessConfig, Actor};
pub use audit_writer::{AuditWriter, AuditWriterConfig};
pub use cache::{ActiveModel, CacheConfig, CacheError, ModelCache};
pub use data::{
    BatchDone, BatchOp, DEFAULT_MAX_PAGE_BYTES, DataError, DataLimits, DataService, FilterParam,
    ListPage, ListRequest, MAX_EXPAND_DEPTH, MAX_EXPAND_PATHS, REVERSE_LIMIT, parse_expand,
};
pub use error::{RegistryError, RegistryResult};
pub use gate::PolicyGate;
pub use realtime::{
    ChangeSignal, Delivery, Event, Realtime, RealtimeConfig, SubscribeRequest, Subscription,
};
pub use registry::Registry;
pub use services::{Services, ServicesConfig};
pub use tenants::{TenantAccessError, TenantService};
