//! The parts of a model's statements that depend only on the model and the dialect (the
//! qualified table and the record's select list, most of a statement's text), built once per
//! model and dialect and shared by every request, so a request only adds its own conditions.
//!
//! The memo is keyed by dialect and table, and an entry is used only if the model's fields (name,
//! column, type, in order) are the ones it was built from: another version of the entity simply
//! replaces it. It holds at most [`MAX_MODELS`] entries (cleared when full).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock};

use super::Scope;
use super::column::record_columns;
use super::record::{RecordColumns, record_select};
use super::render::{Binds, id_condition, scope_condition};
use crate::{Dialect, qualified_table};
use metaengine_core::{CompiledModel, FieldType};

/// Most models kept (a bound, not a working set: entities × dialects in one process).
const MAX_MODELS: usize = 4096;

/// The scope a prebuilt statement is written with: its values are bound per request.
const PLACEHOLDER_SCOPE: Scope<'static> = Scope {
    tenant_id: "",
    realm_id: "",
};

/// The prebuilt fragments of one model in one dialect.
#[derive(Debug)]
pub(super) struct Prebuilt {
    dialect: Dialect,
    table_name: String,
    fields: Vec<(String, String, FieldType)>,
    /// `"core"."ent_invoice"` / `"ent_invoice"`.
    pub table: Arc<str>,
    /// The select list of the whole record (see [`RecordColumns`]).
    pub record: Arc<str>,
    /// What it holds.
    pub record_columns: RecordColumns,
    /// A get by id with nothing else (no expansion, no row filter): `SELECT record FROM table
    /// WHERE scope AND id`, its values bound by [`super::render::bind_scope`] then
    /// [`super::render::bind_id`]; written by the same functions as any other get.
    pub get_by_id: Arc<str>,
}

impl Prebuilt {
    fn build(dialect: Dialect, model: &CompiledModel) -> Prebuilt {
        let (record, columns) = record_select(dialect, &record_columns(model));
        let table = qualified_table(dialect, &model.table_name);
        let mut binds = Binds::new(dialect);
        let get_by_id = format!(
            "SELECT {record} FROM {table} WHERE {} AND {}",
            scope_condition(&mut binds, PLACEHOLDER_SCOPE),
            id_condition(&mut binds, "")
        );
        Prebuilt {
            dialect,
            table_name: model.table_name.clone(),
            fields: model
                .fields
                .iter()
                .map(|f| (f.name.clone(), f.column_name.clone(), f.field_type))
                .collect(),
            table: table.into(),
            record: record.into(),
            record_columns: columns,
            get_by_id: get_by_id.into(),
        }
    }

    fn fits(&self, dialect: Dialect, model: &CompiledModel) -> bool {
        self.dialect == dialect
            && self.table_name == model.table_name
            && self.fields.len() == model.fields.len()
            && self
                .fields
                .iter()
                .zip(&model.fields)
                .all(|((name, column, ty), f)| {
                    *ty == f.field_type && *name == f.name && *column == f.column_name
                })
    }
}

type Memo = RwLock<HashMap<u64, Arc<Prebuilt>>>;

static MEMO: OnceLock<Memo> = OnceLock::new();

fn key(dialect: Dialect, model: &CompiledModel) -> u64 {
    let mut h = DefaultHasher::new();
    dialect.hash(&mut h);
    model.table_name.hash(&mut h);
    h.finish()
}

/// The fragments of `model` in `dialect`, from the memo or built (and remembered) now.
pub(super) fn prebuilt(dialect: Dialect, model: &CompiledModel) -> Arc<Prebuilt> {
    let memo = MEMO.get_or_init(Memo::default);
    let key = key(dialect, model);
    if let Ok(map) = memo.read()
        && let Some(found) = map.get(&key).filter(|p| p.fits(dialect, model))
    {
        return found.clone();
    }
    let built = Arc::new(Prebuilt::build(dialect, model));
    if let Ok(mut map) = memo.write() {
        if map.len() >= MAX_MODELS {
            map.clear();
        }
        map.insert(key, built.clone());
    }
    built
}
