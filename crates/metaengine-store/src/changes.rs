//! The change log of the realtime feed (SPEC §14): one row per record created, updated or
//! deleted, written by the database in the writing transaction (see `metaengine_sql::query`'s
//! change capture), read back in commit order.

use crate::types::Timestamp;

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    /// The record was created.
    Create,
    /// The record was updated.
    Update,
    /// The record was deleted.
    Delete,
}

impl ChangeOp {
    /// The stored name (`create`, `update`, `delete`), also the SSE event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    /// The operation of a stored name.
    pub fn parse(name: &str) -> Option<ChangeOp> {
        [ChangeOp::Create, ChangeOp::Update, ChangeOp::Delete]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    /// Its position in the log: the event id, increasing in commit order.
    pub seq: i64,
    /// When the database recorded it (within the writing transaction).
    pub at: Timestamp,
    /// The record's tenant.
    pub tenant_id: String,
    /// The record's realm.
    pub realm_id: String,
    /// The record's entity.
    pub entity: String,
    /// The record's id.
    pub record_id: String,
    /// What happened.
    pub op: ChangeOp,
    /// The record's row version after the change (before it, for a delete).
    pub row_version: i64,
    /// The record after the change as JSON text (`None` for a delete).
    pub record: Option<String>,
    /// The record before the change as JSON text (`None` for a create).
    pub previous: Option<String>,
}

/// Where the log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeBounds {
    /// The highest event id that retention has purged (0: none).
    pub purged_through: i64,
    /// The highest event id recorded (0: none).
    pub last: i64,
}

/// What the feed reads at once: the final changes after its position, in commit order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeBatch {
    /// The changes (empty when they were not asked for).
    pub rows: Vec<ChangeRow>,
    /// Every change up to this id is final (and in `rows`, when they were asked for): the
    /// feed's next position.
    pub through: i64,
}
