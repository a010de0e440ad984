//! Stage "indexes": the indexes a data table should have (SPEC §4).
//!
//! Every index leads with `tenant_id, realm_id`. Non-unique indexes end with `id`, in the direction
//! of the column before it, so that keyset pagination (`ORDER BY col, id`, either direction) is
//! served by the index. The primary key `(tenant_id, id)` is
//! part of the table, not of this list.

use super::types::CompiledIndex;
use crate::hash::sha256_hex;
use crate::ident::{MAX_IDENT_BYTES, column_name, field_column};
use crate::schema::{EntitySchema, FieldType};

/// Leading columns of every index.
const LEAD: [&str; 2] = ["tenant_id", "realm_id"];

/// The indexes of a table, deterministic and without duplicates (same columns and uniqueness):
/// per field `indexed: true` or of type `reference` `(tenant_id, realm_id, col, id)`; per field
/// `unique: true` a unique `(tenant_id, realm_id, col)`; per schema-level index its columns; and
/// the default `(tenant_id, realm_id, created_at, id)`.
pub fn compile_indexes(table: &str, schema: &EntitySchema) -> Vec<CompiledIndex> {
    let mut out: Vec<CompiledIndex> = Vec::new();
    for field in &schema.fields {
        let column = column_name(&field.name);
        if field.indexed || field.field_type == FieldType::Reference {
            push(&mut out, table, None, vec![(column.clone(), false)], false);
        }
        if field.unique {
            push(&mut out, table, None, vec![(column, false)], true);
        }
    }
    for def in &schema.indexes {
        let columns = def
            .columns()
            .into_iter()
            .map(|(name, desc)| (field_column(name), desc))
            .filter(|(column, _)| !LEAD.contains(&column.as_str()))
            .collect();
        push(&mut out, table, def.name.as_deref(), columns, def.unique);
    }
    push(
        &mut out,
        table,
        None,
        vec![("created_at".to_owned(), false)],
        false,
    );
    out
}

/// Adds an index over `LEAD + body (+ id when not unique)` unless an equal one is there already.
fn push(
    out: &mut Vec<CompiledIndex>,
    table: &str,
    explicit_name: Option<&str>,
    body: Vec<(String, bool)>,
    unique: bool,
) {
    let mut columns: Vec<(String, bool)> = LEAD.iter().map(|c| ((*c).to_owned(), false)).collect();
    columns.extend(body);
    if !unique && columns.last().is_none_or(|(c, _)| c != "id") {
        // `id` breaks ties in the direction of the column before it, so that one scan of the
        // index serves `ORDER BY col DESC, id DESC` (and, backwards, the ascending order).
        let desc = columns.last().is_some_and(|(_, desc)| *desc);
        columns.push(("id".to_owned(), desc));
    }
    if out
        .iter()
        .any(|i| i.columns == columns && i.unique == unique)
    {
        return;
    }
    let base = match explicit_name {
        Some(name) => format!("{table}_{name}"),
        None => {
            let parts: Vec<String> = columns
                .iter()
                .skip(LEAD.len())
                .map(|(c, desc)| {
                    if *desc {
                        format!("{c}_desc")
                    } else {
                        c.clone()
                    }
                })
                .collect();
            let suffix = if unique { "key" } else { "idx" };
            format!("{table}_{}_{suffix}", parts.join("_"))
        }
    };
    let mut name = index_name(&base);
    // Two different indexes may still spell the same name (`a_b` + `c` vs `a` + `b_c`, or an
    // explicit name): the later one gets a hash of its full definition.
    if out.iter().any(|i| i.name == name) {
        let definition = format!("{base}|{columns:?}|{unique}");
        name = hashed(&base, &sha256_hex(definition.as_bytes()));
    }
    out.push(CompiledIndex {
        name,
        columns,
        unique,
    });
}

/// An index name of at most 63 bytes: `full` itself when it fits, else its first bytes, `_` and
/// the first 8 hex characters of the SHA-256 of `full` (so two long names never collide).
pub fn index_name(full: &str) -> String {
    if full.len() <= MAX_IDENT_BYTES {
        return full.to_owned();
    }
    hashed(full, &sha256_hex(full.as_bytes()))
}

/// `prefix-of-base_hash8`, at most 63 bytes.
fn hashed(base: &str, hash_hex: &str) -> String {
    let hash8 = hash_hex.get(..8).unwrap_or(hash_hex);
    let mut cut = MAX_IDENT_BYTES
        .saturating_sub(hash8.len() + 1)
        .min(base.len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = base.get(..cut).unwrap_or_default().trim_end_matches('_');
    format!("{prefix}_{hash8}")
}
