//! What deleting a record does to the records that refer to it (SPEC §13, a reference field's
//! `onDelete`): `restrict` is the database's own refusal (see `metaengine_sql::ReferenceLink`);
//! `setNull` and `cascade` are carried out here, in the delete's transaction, each changed or
//! deleted record with its own audit row (`data.update` / `data.delete`, naming the record whose
//! delete caused it).
//!
//! The records to delete are found first, breadth first from the deleted record (a cascade may
//! reach further: an invoice's lines), then cleared references are written, then the found
//! records are deleted deepest first, so no delete leaves a row referring to a deleted one
//! before the statement ends (PostgreSQL checks a foreign key at the end of each statement). A
//! record reached twice (a cycle) is deleted once; a `restrict` reference anywhere on the way
//! refuses the whole delete.

use std::collections::HashSet;

use metaengine_core::ident::{column_name, table_name};
use metaengine_core::{EntitySchema, FieldType, OnDelete};
use metaengine_sql::{Dialect, ReferenceLink};
use metaengine_store::{EventType, NewAudit, StoreError, StoreResult, Timestamp};
use serde_json::json;

use crate::db::{Bind, Row, Tx, query};
use crate::meta_sql::MetaSql;

/// A reference to an entity's records from one field of an active version.
#[derive(Debug, Clone)]
pub(crate) struct Referrer {
    /// The referring entity.
    pub entity: String,
    /// Its reference field.
    pub field: String,
    /// The tables and column.
    pub link: ReferenceLink,
    /// What deleting a target does.
    pub rule: OnDelete,
}

/// The references of `owner`'s active schema (a row's `schema` column), to `only` when given.
pub(crate) fn references_in(
    owner: &str,
    schema: serde_json::Value,
    only: Option<&str>,
) -> StoreResult<Vec<Referrer>> {
    let schema: EntitySchema =
        serde_json::from_value(schema).map_err(|e| StoreError::Database(Box::new(e)))?;
    Ok(schema
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::Reference)
        .filter_map(|f| {
            let to = f.reference_to.as_deref()?;
            only.is_none_or(|o| o == to).then(|| Referrer {
                entity: owner.to_owned(),
                field: f.name.clone(),
                link: ReferenceLink {
                    table: table_name(owner),
                    column: column_name(&f.name),
                    target: table_name(to),
                },
                rule: f.on_delete.unwrap_or_default(),
            })
        })
        .collect())
}

/// The references to `entity`'s records among the rows of [`MetaSql::referring_schemas`].
pub(crate) fn referrers_in(rows: &[Row], entity: &str) -> StoreResult<Vec<Referrer>> {
    let mut out = Vec::new();
    for row in rows {
        out.extend(references_in(&row.text(0)?, row.json(1)?, Some(entity))?);
    }
    Ok(out)
}

/// Every reference of an active version to `entity`'s records, read in `tx`.
pub(crate) async fn referrers_of(
    tx: &mut Tx,
    sql: &MetaSql,
    entity: &str,
) -> StoreResult<Vec<Referrer>> {
    let q = query(&sql.referring_schemas).bind(Bind::Text(entity));
    referrers_in(&tx.fetch_all(&q).await?, entity)
}

/// Carries out the `setNull` and `cascade` rules of a delete of record `id` of `entity` in
/// `tenant`, in `tx`; the audit rows of what it changed. `audit` is the delete's own audit row
/// (its actor acts for the changes).
pub(crate) async fn apply(
    tx: &mut Tx,
    sql: &MetaSql,
    dialect: Dialect,
    (tenant, entity, id): (&str, &str, &str),
    audit: &NewAudit,
) -> StoreResult<Vec<NewAudit>> {
    let now = Timestamp::now();
    let actor = &audit.actor;
    let mut audits = Vec::new();
    // Breadth first: (referrer, its record, the record whose delete reaches it).
    let mut reached: HashSet<(String, String)> = HashSet::new();
    reached.insert((entity.to_owned(), id.to_owned()));
    let mut queue = vec![(entity.to_owned(), id.to_owned())];
    let mut to_delete: Vec<(Referrer, String, (String, String))> = Vec::new();
    let mut next = 0;
    while let Some((target, target_id)) = queue.get(next).cloned() {
        next += 1;
        for r in referrers_of(tx, sql, &target).await? {
            let cause = json!({ "entity": target, "id": target_id });
            match r.rule {
                OnDelete::Restrict => {}
                OnDelete::SetNull => {
                    let text = r.link.set_null(dialect);
                    let q = query(&text).bind_all([
                        Bind::Text(tenant),
                        Bind::Text(&target_id),
                        Bind::Time(now),
                        Bind::Text(&actor.user_id),
                    ]);
                    for row in tx.fetch_all(&q).await? {
                        let changed = row.text(0)?;
                        audits.push(NewAudit::success(
                            EventType::DataUpdate,
                            actor,
                            &r.entity,
                            Some(json!({ "id": changed, "fields": [r.field], "cause": cause })),
                        ));
                    }
                }
                OnDelete::Cascade => {
                    let text = r.link.referrer_ids(dialect);
                    let q = query(&text).bind_all([Bind::Text(tenant), Bind::Text(&target_id)]);
                    for row in tx.fetch_all(&q).await? {
                        let child = row.text(0)?;
                        if reached.insert((r.entity.clone(), child.clone())) {
                            queue.push((r.entity.clone(), child.clone()));
                            to_delete.push((r.clone(), child, (target.clone(), target_id.clone())));
                        }
                    }
                }
            }
        }
    }
    // Deepest first.
    for (r, child, (cause_entity, cause_id)) in to_delete.iter().rev() {
        let text = r.link.delete_referrer(dialect);
        let q = query(&text).bind_all([Bind::Text(tenant), Bind::Text(child)]);
        if tx.execute(&q).await? > 0 {
            audits.push(NewAudit::success(
                EventType::DataDelete,
                actor,
                &r.entity,
                Some(json!({ "id": child, "cause": { "entity": cause_entity, "id": cause_id } })),
            ));
        }
    }
    Ok(audits)
}
