//! What a subscriber receives for one change: decided from the record before and after it, and
//! written once per change and kind, whatever the number of subscribers it goes to.

use std::sync::{Arc, OnceLock};

use metaengine_core::policy::{Predicate, eval_predicate};
use metaengine_store::{ChangeOp, ChangeRow, Timestamp};
use serde_json::{Map, Value};

/// One event of the stream (SPEC §14): `id`, `event` and `data` of the SSE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The change's id in the log (increasing in commit order); the SSE `id`.
    pub id: i64,
    /// `create`, `update` or `delete`; the SSE `event`.
    pub name: &'static str,
    /// The SSE `data`: `{"entity", "id", "rowVersion", "record"}` (no record for a delete; a
    /// `"reason"` for a move into or out of the subscriber's reach).
    pub data: Arc<str>,
    /// When the database recorded the change.
    pub at: Timestamp,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A change the subscriber may see.
    Event(Arc<Event>),
    /// The subscriber must reload: its `Last-Event-ID` is older than the log keeps, or it fell
    /// too far behind (then the stream ends after it).
    Reset,
}

/// How a change looks to one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    /// An update brought the record into reach (`"reason": "inScope"`).
    CreateInScope,
    Update,
    Delete,
    /// An update took the record out of reach (`"reason": "outOfScope"`).
    DeleteOutOfScope,
}

impl Kind {
    const ALL: usize = 5;

    fn index(self) -> usize {
        self as usize
    }
}

/// A change as the dispatcher handles it: its records parsed once, at the first subscriber that
/// needs them, and each kind of event written once.
pub(crate) struct Change {
    row: ChangeRow,
    record: OnceLock<Option<Map<String, Value>>>,
    previous: OnceLock<Option<Map<String, Value>>>,
    events: [OnceLock<Arc<Event>>; Kind::ALL],
}

fn parse(text: Option<&str>) -> Option<Map<String, Value>> {
    match serde_json::from_str(text?) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

impl Change {
    pub(crate) fn new(row: ChangeRow) -> Self {
        Self {
            row,
            record: OnceLock::new(),
            previous: OnceLock::new(),
            events: Default::default(),
        }
    }

    /// The change as the log holds it.
    pub(crate) fn row(&self) -> &ChangeRow {
        &self.row
    }

    /// Whether `visible` lets the subscriber see the record after (`after`) or before the
    /// change. A record that cannot be parsed is seen by no one (fail closed).
    fn sees(&self, visible: &Predicate, after: bool) -> bool {
        let (cell, text) = if after {
            (&self.record, self.row.record.as_deref())
        } else {
            (&self.previous, self.row.previous.as_deref())
        };
        cell.get_or_init(|| parse(text))
            .as_ref()
            .is_some_and(|r| eval_predicate(visible, r))
    }

    /// The event a subscriber whose visible records are `visible` gets, if any: a create it
    /// sees, an update seen before and after, a delete it saw; an update seen on one side only
    /// is a create (`inScope`) or a delete (`outOfScope`).
    /// `hidden` names the fields the subscriber may not read (SPEC §15): its event is its own,
    /// with a record that lacks them; every other subscriber shares one event per kind.
    pub(crate) fn event_for(&self, visible: &Predicate, hidden: &[String]) -> Option<Arc<Event>> {
        let kind = match self.row.op {
            ChangeOp::Create => self.sees(visible, true).then_some(Kind::Create),
            ChangeOp::Delete => self.sees(visible, false).then_some(Kind::Delete),
            ChangeOp::Update => match (self.sees(visible, false), self.sees(visible, true)) {
                (true, true) => Some(Kind::Update),
                (false, true) => Some(Kind::CreateInScope),
                (true, false) => Some(Kind::DeleteOutOfScope),
                (false, false) => None,
            },
        }?;
        if !hidden.is_empty() {
            return Some(Arc::new(self.event_without(kind, hidden)));
        }
        let cell = self.events.get(kind.index())?;
        Some(
            cell.get_or_init(|| Arc::new(self.event(kind, None)))
                .clone(),
        )
    }

    /// The event of `kind` with a record that lacks the `hidden` fields.
    fn event_without(&self, kind: Kind, hidden: &[String]) -> Event {
        let record = self
            .record
            .get_or_init(|| parse(self.row.record.as_deref()))
            .as_ref()
            .map(|record| {
                let mut record = record.clone();
                for field in hidden {
                    record.remove(field);
                }
                Value::Object(record).to_string()
            });
        self.event(kind, Some(record.as_deref()))
    }

    /// The event of `kind`; `record` replaces the logged record's text when given.
    fn event(&self, kind: Kind, record: Option<Option<&str>>) -> Event {
        let row = &self.row;
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let mut data = format!(
            "{{\"entity\":{},\"id\":{},\"rowVersion\":{}",
            quoted(&row.entity),
            quoted(&row.record_id),
            row.row_version
        );
        let record = match kind {
            Kind::Create | Kind::CreateInScope | Kind::Update => {
                record.unwrap_or(row.record.as_deref())
            }
            Kind::Delete | Kind::DeleteOutOfScope => None,
        };
        if let Some(record) = record {
            data.push_str(",\"record\":");
            data.push_str(record);
        }
        match kind {
            Kind::CreateInScope => data.push_str(",\"reason\":\"inScope\""),
            Kind::DeleteOutOfScope => data.push_str(",\"reason\":\"outOfScope\""),
            _ => {}
        }
        data.push('}');
        let name = match kind {
            Kind::Create | Kind::CreateInScope => "create",
            Kind::Update => "update",
            Kind::Delete | Kind::DeleteOutOfScope => "delete",
        };
        Event {
            id: row.seq,
            name,
            data: Arc::from(data),
            at: row.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metaengine_core::policy::CompareOp;
    use metaengine_core::record::Comparison;
    use serde_json::json;

    fn change(op: ChangeOp, before: Option<Value>, after: Option<Value>) -> Change {
        Change::new(ChangeRow {
            seq: 7,
            at: Timestamp::now(),
            tenant_id: "t".into(),
            realm_id: "r".into(),
            entity: "Invoice".into(),
            record_id: "id-1".into(),
            op,
            row_version: 2,
            record: after.map(|v| v.to_string()),
            previous: before.map(|v| v.to_string()),
        })
    }

    fn paid() -> Predicate {
        Predicate::Compare {
            field: "status".into(),
            op: CompareOp::Eq,
            value: json!("paid"),
            comparison: Comparison::Json,
        }
    }

    fn data(e: &Event) -> Value {
        serde_json::from_str(&e.data).unwrap_or(Value::Null)
    }

    #[test]
    fn an_update_across_the_boundary_is_a_create_or_a_delete_with_its_reason() {
        let into = change(
            ChangeOp::Update,
            Some(json!({"status": "open"})),
            Some(json!({"status": "paid"})),
        );
        let e = into.event_for(&paid(), &[]).map(|e| (e.name, data(&e)));
        assert_eq!(
            e,
            Some((
                "create",
                json!({"entity": "Invoice", "id": "id-1", "rowVersion": 2,
                       "record": {"status": "paid"}, "reason": "inScope"})
            ))
        );
        let out = change(
            ChangeOp::Update,
            Some(json!({"status": "paid"})),
            Some(json!({"status": "open"})),
        );
        let e = out.event_for(&paid(), &[]).map(|e| (e.name, data(&e)));
        assert_eq!(
            e,
            Some((
                "delete",
                json!({"entity": "Invoice", "id": "id-1", "rowVersion": 2,
                       "reason": "outOfScope"})
            ))
        );
        let neither = change(
            ChangeOp::Update,
            Some(json!({"status": "open"})),
            Some(json!({"status": "void"})),
        );
        assert_eq!(neither.event_for(&paid(), &[]), None);
    }

    #[test]
    fn a_delete_goes_to_those_who_saw_the_record_and_carries_no_record() {
        let gone = change(ChangeOp::Delete, Some(json!({"status": "paid"})), None);
        let e = gone.event_for(&paid(), &[]);
        assert_eq!(e.as_ref().map(|e| e.name), Some("delete"));
        assert_eq!(e.map(|e| data(&e).get("record").is_none()), Some(true));
        let hidden = change(ChangeOp::Delete, Some(json!({"status": "open"})), None);
        assert_eq!(hidden.event_for(&paid(), &[]), None);
    }

    #[test]
    fn an_unreadable_record_is_seen_by_no_one() {
        let mut c = change(ChangeOp::Create, None, None);
        c.row.record = Some("not json".into());
        assert_eq!(c.event_for(&Predicate::True, &[]), None);
    }

    #[test]
    fn each_kind_of_event_is_written_once() {
        let c = change(ChangeOp::Create, None, Some(json!({"status": "paid"})));
        let (a, b) = (
            c.event_for(&paid(), &[]),
            c.event_for(&Predicate::True, &[]),
        );
        assert!(matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(&a, &b)));
    }
}
