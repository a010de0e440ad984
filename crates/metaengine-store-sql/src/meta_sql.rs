//! The SQL text of the engine's own tables, shared by both backends.
//!
//! Both dialects accept `$n` placeholders; they differ only in table prefixes (PostgreSQL keeps the
//! engine tables in schemas `meta` and `core`, SQLite has no schemas) and in row locking (`FOR
//! UPDATE` on PostgreSQL; SQLite serializes writers with `BEGIN IMMEDIATE` instead). Every value is
//! a bound parameter; the only text spliced in is these fixed table names.

/// Prebuilt statements for one dialect, built once when a store connects.
#[derive(Debug, Clone)]
pub struct MetaSql {
    /// `SELECT * FROM entities WHERE name = $1`
    pub entity_by_name: String,
    /// Same, locking the row until the transaction ends (serializes changes to one entity).
    pub entity_by_name_locked: String,
    /// `INSERT INTO entities … RETURNING *`: $1 id, $2 name, $3 description, $4 now, $5 created_by
    pub insert_entity: String,
    /// One page of entities by name: $1 limit, $2 offset.
    pub list_entities: String,
    /// Number of entities.
    pub count_entities: String,
    /// `UPDATE entities SET description = $2, updated_at = $3 WHERE name = $1 RETURNING *`
    pub update_entity: String,
    /// `DELETE FROM entities WHERE name = $1`
    pub delete_entity: String,
    /// Sets `active_version` = $2 (may be NULL), `updated_at` = $3 of entity $1.
    pub set_active_version: String,
    /// `INSERT INTO versions … RETURNING *`: $1 id, $2 entity, $3 version, $4 schema, $5 now, $6 by
    pub insert_version: String,
    /// One version: $1 entity, $2 version.
    pub version: String,
    /// Same, locked.
    pub version_locked: String,
    /// The active version of entity $1.
    pub active_version: String,
    /// `entity_name, schema` of every active version.
    pub active_schemas: String,
    /// `entity_name, schema` of the active versions with a field whose `referenceTo` is $1.
    pub referring_schemas: String,
    /// All versions of entity $1, oldest first.
    pub list_versions: String,
    /// Replaces the schema: $1 id, $2 schema.
    pub update_version_schema: String,
    /// `DELETE FROM versions WHERE id = $1`
    pub delete_version: String,
    /// Clears `is_active` on every version of entity $1.
    pub deactivate_all: String,
    /// Sets `is_active` on version id $1 and stamps `activated_at` = $2.
    pub activate: String,
    /// `INSERT INTO audit (<the seed's 12 columns>, seq, prev_hash, hash)`; the rows' `VALUES`
    /// are appended.
    pub insert_audit: String,
    /// `INSERT INTO audit (<the seed's 12 columns>, seal)`: a row chained later; the rows'
    /// `VALUES` are appended.
    pub insert_sealed_audit: String,
    /// The audit table's name.
    pub audit_table: String,
    /// The audit chain heads' table name.
    pub audit_heads: String,
    /// The table of the sealed audit rows waiting for the chainer (their ids).
    pub audit_pending: String,
    /// `INSERT INTO audit_heads AS h (tenant_id, seq, before_hash, hash)`: `VALUES` and
    /// `LOCK_AUDIT_HEADS_END` are appended; creates the missing heads, locks them all and
    /// returns them.
    pub lock_audit_heads: String,
    /// Moves the chain end of tenant $1 to position $2 and hash $4, from hash $3.
    pub update_audit_head: String,
    /// `SELECT * FROM audit_heads` (a `WHERE` may be appended).
    pub select_audit_heads: String,
    /// `SELECT * FROM audit` (the query builder appends WHERE/ORDER/LIMIT).
    pub select_audit: String,
    /// `SELECT count(*) FROM audit` (the query builder appends WHERE).
    pub count_audit: String,
    /// Tenants with audit rows older than $1, in order.
    pub purge_audit_tenants: String,
    /// The last position of tenant $1 older than $2 in its chain, with its hash.
    pub purge_audit_point: String,
    /// Deletes the audit rows of tenant $1 up to position $2.
    pub purge_audit_through: String,
    /// One tenant by id.
    pub tenant: String,
    /// All tenants by id.
    pub list_tenants: String,
    /// Inserts an active tenant: $1 id, $2 name, $3 now.
    pub insert_tenant: String,
    /// Updates a tenant: $1 id, $2 name or NULL, $3 status or NULL.
    pub update_tenant: String,
    /// Whether the data table $1 (unquoted name) exists.
    pub table_exists: String,
    /// Column names of the data table $1, in table order.
    pub table_columns: String,
    /// Column names and catalog types of the data table $1 (PostgreSQL's `format_type`, SQLite's
    /// declared type).
    pub table_column_types: String,
    /// Tells other processes that entity $1's model changed (PostgreSQL only).
    pub notify_model_change: Option<String>,
}

/// Ends [`MetaSql::lock_audit_heads`] after its `VALUES`: a no-op update of an existing head,
/// which locks it until the transaction ends.
pub const LOCK_AUDIT_HEADS_END: &str =
    " ON CONFLICT (tenant_id) DO UPDATE SET seq = h.seq RETURNING tenant_id, seq, hash";

/// The channel on which model changes are announced (PostgreSQL `LISTEN`/`NOTIFY`).
pub const MODEL_CHANGES_CHANNEL: &str = "metaengine_models";

impl MetaSql {
    /// Statements for PostgreSQL.
    pub fn postgres() -> Self {
        Self {
            referring_schemas: "SELECT entity_name, schema FROM meta.meta_versions WHERE is_active \
                                AND schema @> jsonb_build_object('fields', \
                                jsonb_build_array(jsonb_build_object('referenceTo', $1::text)))"
                .to_owned(),
            table_exists: "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
                           WHERE table_schema = 'core' AND table_name = $1)"
                .to_owned(),
            table_columns: "SELECT column_name::text FROM information_schema.columns \
                            WHERE table_schema = 'core' AND table_name = $1 ORDER BY ordinal_position"
                .to_owned(),
            table_column_types: "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                                 WHERE n.nspname = 'core' AND c.relname = $1 AND a.attnum > 0 \
                                 AND NOT a.attisdropped ORDER BY a.attnum"
                .to_owned(),
            notify_model_change: Some(format!(
                "SELECT pg_notify('{MODEL_CHANGES_CHANNEL}', $1)"
            )),
            ..Self::build("meta.", "core.", " FOR UPDATE")
        }
    }

    /// Statements for SQLite.
    pub fn sqlite() -> Self {
        Self {
            referring_schemas: "SELECT entity_name, schema FROM meta_versions WHERE is_active \
                                AND EXISTS (SELECT 1 FROM json_each(schema, '$.fields') \
                                WHERE json_extract(value, '$.referenceTo') = $1)"
                .to_owned(),
            table_exists: "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                           WHERE type = 'table' AND name = $1)"
                .to_owned(),
            table_columns: "SELECT name FROM pragma_table_info($1) ORDER BY cid".to_owned(),
            table_column_types: "SELECT name, type FROM pragma_table_info($1) ORDER BY cid"
                .to_owned(),
            notify_model_change: None,
            ..Self::build("", "", "")
        }
    }

    fn build(meta: &str, core: &str, lock: &str) -> Self {
        let e = format!("{meta}meta_entities");
        let v = format!("{meta}meta_versions");
        let a = format!("{meta}meta_audit");
        let h = format!("{meta}meta_audit_heads");
        let p = format!("{meta}meta_audit_pending");
        let t = format!("{core}tenant");
        Self {
            entity_by_name: format!("SELECT * FROM {e} WHERE name = $1"),
            entity_by_name_locked: format!("SELECT * FROM {e} WHERE name = $1{lock}"),
            insert_entity: format!(
                "INSERT INTO {e} (id, name, description, active_version, created_at, updated_at, \
                 created_by) VALUES ($1, $2, $3, NULL, $4, $4, $5) RETURNING *"
            ),
            list_entities: format!("SELECT * FROM {e} ORDER BY name LIMIT $1 OFFSET $2"),
            count_entities: format!("SELECT count(*) FROM {e}"),
            update_entity: format!(
                "UPDATE {e} SET description = $2, updated_at = $3 WHERE name = $1 RETURNING *"
            ),
            delete_entity: format!("DELETE FROM {e} WHERE name = $1"),
            set_active_version: format!(
                "UPDATE {e} SET active_version = $2, updated_at = $3 WHERE name = $1"
            ),
            insert_version: format!(
                "INSERT INTO {v} (id, entity_name, version, schema, is_active, created_at, \
                 created_by, activated_at) VALUES ($1, $2, $3, $4, FALSE, $5, $6, NULL) RETURNING *"
            ),
            version: format!("SELECT * FROM {v} WHERE entity_name = $1 AND version = $2"),
            version_locked: format!(
                "SELECT * FROM {v} WHERE entity_name = $1 AND version = $2{lock}"
            ),
            active_version: format!("SELECT * FROM {v} WHERE entity_name = $1 AND is_active"),
            active_schemas: format!("SELECT entity_name, schema FROM {v} WHERE is_active"),
            referring_schemas: String::new(),
            list_versions: format!(
                "SELECT * FROM {v} WHERE entity_name = $1 ORDER BY created_at, id"
            ),
            update_version_schema: format!("UPDATE {v} SET schema = $2 WHERE id = $1 RETURNING *"),
            delete_version: format!("DELETE FROM {v} WHERE id = $1"),
            deactivate_all: format!(
                "UPDATE {v} SET is_active = FALSE WHERE entity_name = $1 AND is_active"
            ),
            activate: format!(
                "UPDATE {v} SET is_active = TRUE, activated_at = $2 WHERE id = $1 RETURNING *"
            ),
            insert_audit: format!(
                "INSERT INTO {a} (id, event_id, event_type, timestamp, user_id, tenant_id, \
                 realm_id, action, resource, details, result, error_message, seq, prev_hash, hash)"
            ),
            insert_sealed_audit: format!(
                "INSERT INTO {a} (id, event_id, event_type, timestamp, user_id, tenant_id, \
                 realm_id, action, resource, details, result, error_message, seal)"
            ),
            lock_audit_heads: format!("INSERT INTO {h} AS h (tenant_id, seq, before_hash, hash)"),
            update_audit_head: format!(
                "UPDATE {h} SET seq = $2, before_hash = $3, hash = $4 WHERE tenant_id = $1"
            ),
            select_audit_heads: format!("SELECT * FROM {h}"),
            audit_heads: h,
            audit_pending: p,
            audit_table: a.clone(),
            select_audit: format!("SELECT * FROM {a}"),
            count_audit: format!("SELECT count(*) FROM {a}"),
            purge_audit_tenants: format!(
                "SELECT DISTINCT tenant_id FROM {a} WHERE timestamp < $1 ORDER BY tenant_id"
            ),
            purge_audit_point: format!(
                "SELECT seq, hash FROM {a} WHERE tenant_id = $1 AND timestamp < $2 \
                 AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
            ),
            purge_audit_through: format!("DELETE FROM {a} WHERE tenant_id = $1 AND seq <= $2"),
            tenant: format!("SELECT * FROM {t} WHERE id = $1"),
            list_tenants: format!("SELECT * FROM {t} ORDER BY id"),
            insert_tenant: format!(
                "INSERT INTO {t} (id, name, status, created_at) VALUES ($1, $2, 'active', $3) \
                 RETURNING *"
            ),
            update_tenant: format!(
                "UPDATE {t} SET name = COALESCE($2, name), status = COALESCE($3, status) \
                 WHERE id = $1 RETURNING *"
            ),
            table_exists: String::new(),
            table_columns: String::new(),
            table_column_types: String::new(),
            notify_model_change: None,
        }
    }
}
