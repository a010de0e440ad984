//! The `expand` parameter of list and get (SPEC §13): its dotted paths resolved against the
//! active models into the tree the query builder turns into subqueries of the page's own
//! statement, each level with the caller's read policies of its entity.
//!
//! A path segment is a reference field of the entity at its level (`customerId`: forward, the
//! record it points at) or `<Entity>_via_<field>` (reverse: the records of `Entity` whose
//! reference `field` points at this one). Paths sharing a prefix share its node
//! (`customerId,customerId.accountManagerId` expands the customer once, with its manager).
//! Anything else, a path deeper than [`MAX_EXPAND_DEPTH`], or an entity without an active
//! version is `400 unknown_field`.

use std::sync::Arc;

use metaengine_core::ErrorCode;
use metaengine_core::FieldType;
use metaengine_core::policy::{Action, RowFilter};
use metaengine_sql::query::{Expansion, Link};
pub use metaengine_sql::query::{MAX_EXPAND_DEPTH, REVERSE_LIMIT};

use super::{DataError, DataResult, DataService};
use crate::actor::Actor;
use crate::cache::{ActiveModel, CacheError};

/// Most paths one `expand` may name.
pub const MAX_EXPAND_PATHS: usize = 10;

/// One expansion resolved against the active models; owns what the query builder's
/// [`Expansion`] borrows.
#[derive(Debug)]
pub(crate) struct Resolved {
    key: String,
    reverse: bool,
    field: String,
    target: Arc<ActiveModel>,
    row_filter: RowFilter,
    nested: Vec<Resolved>,
    /// The target's fields `fields=` selects (`customerId.name`).
    fields: Option<Vec<String>>,
    /// The target's fields the caller may read, when some are hidden (SPEC §15).
    readable: Option<Vec<String>>,
}

impl Resolved {
    /// The builder's view of it.
    pub(crate) fn expansion(&self) -> Expansion<'_> {
        Expansion {
            key: &self.key,
            link: if self.reverse {
                Link::Reverse { field: &self.field }
            } else {
                Link::Forward { field: &self.field }
            },
            target: &self.target.model,
            row_filter: &self.row_filter,
            nested: self.nested.iter().map(Resolved::expansion).collect(),
            fields: self.fields.as_deref().or(self.readable.as_deref()),
        }
    }
}

/// The builder's view of resolved expansions.
pub(crate) fn expansions(resolved: &[Resolved]) -> Vec<Expansion<'_>> {
    resolved.iter().map(Resolved::expansion).collect()
}

/// Splits a list's `fields` into the record's own (plain names) and the selections within
/// expansions (`customerId.name`: the expansion `customerId`, field `name`), which go on the
/// resolved nodes; a dotted name whose expansion is not asked for is `400 unknown_field`.
pub(crate) fn select_fields(
    fields: Option<&[String]>,
    resolved: &mut [Resolved],
) -> Result<Option<Vec<String>>, DataError> {
    let Some(fields) = fields else {
        return Ok(None);
    };
    let mut own = Vec::new();
    for name in fields {
        let Some((path, field)) = name.rsplit_once('.') else {
            own.push(name.clone());
            continue;
        };
        let segments: Vec<&str> = path.split('.').collect();
        let node = node_mut(resolved, &segments).ok_or_else(|| {
            DataError::bad_request_with(
                ErrorCode::UnknownField,
                "fields",
                format!("`fields` names `{name}`, but `expand` does not ask for `{path}`"),
            )
        })?;
        if node
            .readable
            .as_ref()
            .is_some_and(|readable| !readable.iter().any(|r| r == field))
            && node.target.model.field(field).is_some()
        {
            // A field the caller may not read answers as one the target does not have.
            return Err(super::fields::unknown_field(name));
        }
        node.fields
            .get_or_insert_with(Vec::new)
            .push(field.to_owned());
    }
    Ok(Some(own))
}

/// The node at `path` (keys from the top).
fn node_mut<'r>(level: &'r mut [Resolved], path: &[&str]) -> Option<&'r mut Resolved> {
    let (first, rest) = path.split_first()?;
    let node = level.iter_mut().find(|r| r.key == *first)?;
    if rest.is_empty() {
        Some(node)
    } else {
        node_mut(&mut node.nested, rest)
    }
}

/// The paths of an `expand` parameter (`a,b.c`) as a list; empty entries are ignored.
pub fn parse_expand(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `400 unknown_field` for an `expand` that cannot be resolved.
fn unknown(message: String) -> DataError {
    DataError::bad_request_with(ErrorCode::UnknownField, "expand", message)
}

impl DataService {
    /// Resolves `paths` for records of `model`, as `actor` may read them.
    pub(crate) async fn resolve_expand(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        paths: &[String],
    ) -> DataResult<Vec<Resolved>> {
        if paths.len() > MAX_EXPAND_PATHS {
            return Err(DataError::bad_request(
                "expand",
                format!("`expand` names at most {MAX_EXPAND_PATHS} paths"),
            ));
        }
        let mut roots: Vec<Resolved> = Vec::new();
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            if segments.len() > MAX_EXPAND_DEPTH {
                return Err(unknown(format!(
                    "`expand` path `{path}` is deeper than {MAX_EXPAND_DEPTH} levels"
                )));
            }
            let mut level = &mut roots;
            let mut parent: Option<Arc<ActiveModel>> = None;
            for segment in segments {
                let index = match level.iter().position(|r| r.key == segment) {
                    Some(i) => i,
                    None => {
                        let owner = parent.as_deref().unwrap_or(model);
                        let node = self.resolve_segment(owner, actor, segment, path).await?;
                        level.push(node);
                        level.len() - 1
                    }
                };
                let Some(node) = level.get_mut(index) else {
                    return Err(DataError::Internal("expansion node vanished".into()));
                };
                parent = Some(node.target.clone());
                level = &mut node.nested;
            }
        }
        Ok(roots)
    }

    /// One segment of an `expand` path on records of `owner`.
    async fn resolve_segment(
        &self,
        owner: &ActiveModel,
        actor: &Actor,
        segment: &str,
        path: &str,
    ) -> DataResult<Resolved> {
        let not_found = || {
            unknown(format!(
                "`expand` path `{path}`: `{segment}` is neither a reference field of `{}` nor \
                 `<Entity>_via_<field>` of a reference to it",
                owner.model.entity
            ))
        };
        let owner_access = self.gate.field_access(owner, Action::Read, actor);
        let (target_entity, field, reverse) = match owner.model.field(segment) {
            Some(_) if !owner_access.allows(segment) => return Err(not_found()),
            Some(f) if f.field_type == FieldType::Reference => {
                let to = f.validator.reference_to.clone().ok_or_else(not_found)?;
                (to, segment.to_owned(), false)
            }
            Some(_) => return Err(not_found()),
            None => {
                let (entity, field) = segment.split_once("_via_").ok_or_else(not_found)?;
                (entity.to_owned(), field.to_owned(), true)
            }
        };
        let target = match self.cache.active_model(&target_entity).await {
            Ok(target) => target,
            Err(CacheError::Store(e)) => return Err(e.into()),
            Err(CacheError::Redis(e)) => return Err(DataError::Internal(e.to_string())),
            Err(_) => return Err(not_found()),
        };
        let target_access = self.gate.field_access(&target, Action::Read, actor);
        if reverse {
            let points_back = target.model.field(&field).is_some_and(|f| {
                f.field_type == FieldType::Reference
                    && f.validator.reference_to.as_deref() == Some(owner.model.entity.as_str())
            });
            if !points_back || !target_access.allows(&field) {
                return Err(not_found());
            }
        }
        let row_filter = self.gate.row_filter(&target, Action::Read, actor);
        let readable = super::fields::readable_columns(&target_access);
        drop(target_access);
        Ok(Resolved {
            key: segment.to_owned(),
            reverse,
            field,
            target,
            row_filter,
            nested: Vec::new(),
            fields: None,
            readable,
        })
    }
}
