//! Filters across a reference (SPEC §13): `filter[customerId.name][eq]=Acme` keeps the records
//! whose `customerId` names a Customer, in the caller's scope and readable by the caller (the
//! target's read policies), whose `name` is `Acme`. One level: the part before the dot is a
//! reference field of the listed entity, the part after a field of its target, typed and checked
//! by the target's validator, with every operator the target's field takes.

use std::sync::Arc;

use metaengine_core::policy::{Action, FieldAccess, RowFilter};
use metaengine_core::{ErrorCode, FieldType, Problem};
use metaengine_sql::query::{Filter, Related};

use super::{DataError, DataResult, DataService};
use crate::actor::Actor;
use crate::cache::{ActiveModel, CacheError};

/// The filters on one reference's target, owning what the builder's [`Related`] borrows.
#[derive(Debug)]
pub(crate) struct RelatedFilter {
    field: String,
    target: Arc<ActiveModel>,
    row_filter: RowFilter,
    filters: Vec<Filter>,
}

/// The builder's view of related filters.
pub(crate) fn related(filters: &[RelatedFilter]) -> Vec<Related<'_>> {
    filters
        .iter()
        .map(|r| Related {
            field: &r.field,
            target: &r.target.model,
            row_filter: &r.row_filter,
            filters: &r.filters,
        })
        .collect()
}

/// Why a filter across a reference was refused: its code and problem.
pub(crate) type Refused = (ErrorCode, Problem);

impl DataService {
    /// Adds `filter[<reference>.<field>][op]=value` to the filters of `related`, as `actor` may
    /// read the reference's target; the inner error is the caller's (a 400), the outer one a
    /// failure to load the target's model.
    pub(crate) async fn related_filter(
        &self,
        (model, access): (&ActiveModel, &FieldAccess<'_>),
        actor: &Actor,
        (reference, field): (&str, &str),
        (op, value): (&str, &str),
        related: &mut Vec<RelatedFilter>,
    ) -> DataResult<Result<(), Refused>> {
        let name = format!("{reference}.{field}");
        let unknown = || {
            (
                ErrorCode::UnknownField,
                Problem::new(
                    format!("filter[{name}][{op}]"),
                    format!(
                        "unknown field `{name}`: `{reference}` is not a reference field of `{}`",
                        model.model.entity
                    ),
                ),
            )
        };
        let Some(to) = model
            .model
            .field(reference)
            .filter(|f| f.field_type == FieldType::Reference && access.allows(reference))
            .and_then(|f| f.validator.reference_to.clone())
        else {
            return Ok(Err(unknown()));
        };
        let index = match related.iter().position(|r| r.field == reference) {
            Some(i) => i,
            None => {
                let target = match self.cache.active_model(&to).await {
                    Ok(target) => target,
                    Err(CacheError::Store(e)) => return Err(e.into()),
                    Err(CacheError::Redis(e)) => return Err(DataError::Internal(e.to_string())),
                    Err(_) => return Ok(Err(unknown())),
                };
                let row_filter = self.gate.row_filter(&target, Action::Read, actor);
                related.push(RelatedFilter {
                    field: reference.to_owned(),
                    target,
                    row_filter,
                    filters: Vec::new(),
                });
                related.len() - 1
            }
        };
        let Some(entry) = related.get_mut(index) else {
            return Ok(Err(unknown()));
        };
        let target_access = self.gate.field_access(&entry.target, Action::Read, actor);
        let parsed = if target_access.allows(field) {
            entry.target.validator.filter(field, op, value)
        } else {
            Err(metaengine_core::record::unknown_filter_field(field))
        };
        Ok(match parsed {
            Ok(filter) => {
                entry.filters.push(filter);
                Ok(())
            }
            Err(rejected) => {
                let mut problem = rejected.problem;
                problem.message = format!("`{name}`: {}", problem.message);
                Err((rejected.code, problem))
            }
        })
    }
}
