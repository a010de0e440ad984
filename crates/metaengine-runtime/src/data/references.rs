//! THE reference check of every write path (single writes, the batch route, import): each
//! reference of a record must name a record of its entity in the caller's tenant and realm that
//! the caller may read (the target's read policies, SPEC §13). A missing and an unreadable
//! target get the same answer, so a reference never reveals a record the caller cannot see.
//! [`KnownRecords`] carries what a multi-record write already knows: the records it creates
//! itself (a batch may refer to a record created earlier in it) and the lookups already made (an
//! import of thousands of rows usually refers to few targets).

use std::collections::{HashMap, HashSet};

use metaengine_core::policy::Action;
use metaengine_core::{Problem, SqlValue};

use super::{DataResult, DataService, scope};
use crate::actor::Actor;
use crate::cache::{ActiveModel, CacheError};

/// What the references of the next records of one write may resolve against without a lookup.
#[derive(Debug, Default)]
pub(crate) struct KnownRecords {
    /// `(entity, id)` of the records this write creates.
    created: HashSet<(String, String)>,
    /// `(entity, id)` looked up already, and whether it exists.
    looked_up: HashMap<(String, String), bool>,
}

impl KnownRecords {
    /// Remembers a record this write creates; `false` when it was already remembered (the
    /// same id twice).
    pub(crate) fn created(&mut self, entity: &str, id: &str) -> bool {
        self.created.insert((entity.to_owned(), id.to_owned()))
    }

    /// Whether this write creates the record.
    pub(crate) fn creates(&self, entity: &str, id: &str) -> bool {
        // A single write creates nothing else: no key to build on its path.
        !self.created.is_empty() && self.created.contains(&(entity.to_owned(), id.to_owned()))
    }
}

impl DataService {
    /// The references of `values` that name no record in the caller's scope, one problem each
    /// at `/<field>`; lookups are remembered in `known`.
    pub(crate) async fn missing_references(
        &self,
        model: &ActiveModel,
        actor: &Actor,
        values: &[(String, SqlValue)],
        known: &mut KnownRecords,
    ) -> DataResult<Vec<Problem>> {
        let mut problems = Vec::new();
        for reference in model.validator.references(values) {
            if known.creates(reference.entity, reference.id) {
                continue;
            }
            let key = (reference.entity.to_owned(), reference.id.to_owned());
            let exists = match known.looked_up.get(&key) {
                Some(exists) => *exists,
                None => {
                    let exists = match self.cache.active_model(reference.entity).await {
                        Ok(target) => {
                            let readable = self.gate.row_filter(&target, Action::Read, actor);
                            self.store
                                .record_exists(&target, scope(actor), reference.id, &readable)
                                .await?
                        }
                        Err(CacheError::Store(e)) => return Err(e.into()),
                        Err(_) => false,
                    };
                    known.looked_up.insert(key, exists);
                    exists
                }
            };
            if !exists {
                problems.push(Problem::new(
                    format!("/{}", reference.field),
                    format!(
                        "`{}` refers to `{}` record `{}`, which does not exist",
                        reference.field, reference.entity, reference.id
                    ),
                ));
            }
        }
        Ok(problems)
    }
}
