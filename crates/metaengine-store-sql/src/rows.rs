//! The engine's own rows ([`EntityRow`] and the others) read from a database row, column by
//! column: the row types stay plain structs in the trait crate, free of any database driver.

use metaengine_store::{AuditRow, EntityRow, StoreError, StoreResult, TenantRow, VersionRow};

use crate::db::Row;

/// `meta_entities`.
pub(crate) fn entity(r: &Row) -> StoreResult<EntityRow> {
    Ok(EntityRow {
        id: r.id("id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        active_version: r.opt_text("active_version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        created_by: r.text("created_by")?,
    })
}

/// `meta_versions`.
pub(crate) fn version(r: &Row) -> StoreResult<VersionRow> {
    Ok(VersionRow {
        id: r.id("id")?,
        entity_name: r.text("entity_name")?,
        version: r.text("version")?,
        schema: r.json("schema")?,
        is_active: r.bool("is_active")?,
        created_at: r.time("created_at")?,
        created_by: r.text("created_by")?,
        activated_at: r.opt_time("activated_at")?,
    })
}

/// `meta_audit`.
pub(crate) fn audit(r: &Row) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        id: r.id("id")?,
        event_id: r.text("event_id")?,
        event_type: r.text("event_type")?,
        timestamp: r.time("timestamp")?,
        user_id: r.text("user_id")?,
        tenant_id: r.text("tenant_id")?,
        realm_id: r.text("realm_id")?,
        action: r.text("action")?,
        resource: r.text("resource")?,
        details: r.opt_json("details")?,
        result: r.text("result")?,
        error_message: r.opt_text("error_message")?,
        seq: r.opt_int("seq")?,
        prev_hash: r.opt_text("prev_hash")?,
        hash: r.opt_text("hash")?,
        seal: r.opt_text("seal")?,
    })
}

/// `tenant`.
pub(crate) fn tenant(r: &Row) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        id: r.text("id")?,
        name: r.text("name")?,
        status: r
            .text("status")?
            .parse()
            .map_err(|e| StoreError::Database(Box::new(e)))?,
        created_at: r.time("created_at")?,
    })
}
