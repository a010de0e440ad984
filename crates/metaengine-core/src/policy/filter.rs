//! Row-level filtering: the policies of list and count as a [`Predicate`] over record fields.
//!
//! Conditions on `user.*` and `context.*` are constants for one request and are evaluated at once;
//! each remaining `record.<field>` condition becomes a leaf. The rows visible are
//! `(allow₁ OR allow₂ …) AND NOT (deny₁ OR deny₂ …)`, each policy the `AND` of its conditions.
//!
//! Leaves follow the evaluator's semantics (`eval.rs`): a missing or null field makes every leaf
//! but [`Predicate::IsNull`] false — in SQL a renderer writes `col <> $1 AND col IS NOT NULL`
//! so that `NOT` of it stays false's negation — and [`Predicate::Unknown`] is an evaluation error,
//! SQL `NULL`, which lets no row in, even under `NOT`.

use super::eval::{
    Operand, Tri, UNKNOWN_PATH, eval_condition, eval_op, flip, request_operand,
    right_record_supported,
};
use super::{Action, PolicySet, RecordView, RequestContext};
use crate::compile::{CompiledCondition, CompiledModel, ConditionValue, ValuePath};
use crate::record::{Comparison, Filter, FilterOp, FilterValue};
use crate::schema::{Effect, Operator};
use crate::value::SqlValue;
use serde_json::Value;

/// A comparison operator of a [`Predicate::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `=`.
    Eq,
    /// `<>`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
}

impl CompareOp {
    fn operator(self) -> Operator {
        match self {
            CompareOp::Eq => Operator::Eq,
            CompareOp::Ne => Operator::Ne,
            CompareOp::Gt => Operator::Gt,
            CompareOp::Gte => Operator::Gte,
            CompareOp::Lt => Operator::Lt,
            CompareOp::Lte => Operator::Lte,
        }
    }
}

/// A condition on record fields (by camelCase name), with bound values only.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// All hold.
    And(Vec<Predicate>),
    /// One holds.
    Or(Vec<Predicate>),
    /// Does not hold (an [`Predicate::Unknown`] stays unknown).
    Not(Box<Predicate>),
    /// `field op value`; false when the field is missing or null.
    Compare {
        /// Field name.
        field: String,
        /// Operator.
        op: CompareOp,
        /// Value to compare with.
        value: Value,
        /// How the values compare (the field's type).
        comparison: Comparison,
    },
    /// `left op right`, two fields of the same record; false when either is missing or null.
    CompareFields {
        /// Field name on the left.
        left: String,
        /// Operator.
        op: CompareOp,
        /// Field name on the right.
        right: String,
        /// How the values compare (the fields' type).
        comparison: Comparison,
    },
    /// `field IN (values)` (or `NOT IN` when `negated`); false when the field is missing or null.
    In {
        /// Field name.
        field: String,
        /// Values.
        values: Vec<Value>,
        /// `NOT IN`.
        negated: bool,
        /// How the values compare (the field's type).
        comparison: Comparison,
    },
    /// The field is missing or null (not, when `negated`).
    IsNull {
        /// Field name.
        field: String,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// The field contains `value` (a case-sensitive substring); false when missing or null.
    Contains {
        /// Field name.
        field: String,
        /// The substring (a string in every filter this module builds).
        value: Value,
        /// How the values compare (the field's type): only [`Comparison::Json`] fields contain.
        comparison: Comparison,
    },
    /// The field starts with `value` (case-sensitive); false when missing or null. Only the
    /// list filter `startswith` makes one (policies have no such operator).
    StartsWith {
        /// Field name.
        field: String,
        /// The prefix.
        value: String,
    },
    /// Always holds.
    True,
    /// Never holds.
    False,
    /// Cannot be evaluated (SQL `NULL`): lets no row in, and neither does its negation.
    Unknown,
}

/// Which rows of a list or count the caller may see.
#[derive(Debug, Clone, PartialEq)]
pub enum RowFilter {
    /// Every row.
    All,
    /// No row.
    Nothing,
    /// The rows where the predicate holds.
    Where(Predicate),
}

impl Predicate {
    fn constant(t: Tri) -> Predicate {
        match t {
            Tri::True => Predicate::True,
            Tri::False => Predicate::False,
            Tri::Error(_) => Predicate::Unknown,
        }
    }

    /// `AND`, folding constants (Kleene). An unknown member is kept when others remain: under
    /// `NOT` it matters (`NOT (x AND NULL)` is true where `x` is false).
    fn and(parts: Vec<Predicate>) -> Predicate {
        Self::fold(parts, Predicate::True, Predicate::False, Predicate::And)
    }

    /// `OR`, folding constants (Kleene); see [`Predicate::and`] for unknown members.
    fn or(parts: Vec<Predicate>) -> Predicate {
        Self::fold(parts, Predicate::False, Predicate::True, Predicate::Or)
    }

    fn fold(
        parts: Vec<Predicate>,
        unit: Predicate,
        absorbing: Predicate,
        build: fn(Vec<Predicate>) -> Predicate,
    ) -> Predicate {
        let mut out = Vec::with_capacity(parts.len());
        let mut unknown = false;
        for p in parts {
            if p == absorbing {
                return absorbing;
            } else if p == Predicate::Unknown {
                unknown = true;
            } else if p != unit {
                out.push(p);
            }
        }
        match (unknown, out.len()) {
            (true, 0) => Predicate::Unknown,
            (true, _) => build(out.into_iter().chain([Predicate::Unknown]).collect()),
            (false, 0) => unit,
            (false, 1) => out.pop().unwrap_or(unit),
            _ => build(out),
        }
    }

    fn not(p: Predicate) -> Predicate {
        match p {
            Predicate::True => Predicate::False,
            Predicate::False => Predicate::True,
            Predicate::Unknown => Predicate::Unknown,
            other => Predicate::Not(Box::new(other)),
        }
    }
}

/// Evaluates `p` on one record, as SQL's `WHERE` would: an unknown result lets the row out.
pub fn eval_predicate(p: &Predicate, record: &dyn RecordView) -> bool {
    eval_tri(p, record) == Tri::True
}

fn eval_tri(p: &Predicate, record: &dyn RecordView) -> Tri {
    let field_of = |f: &str| record.get(f).map_or(Operand::Missing, Operand::Json);
    match p {
        Predicate::And(v) => v
            .iter()
            .fold(Tri::True, |acc, q| acc.and(eval_tri(q, record))),
        Predicate::Or(v) => v
            .iter()
            .fold(Tri::False, |acc, q| acc.or(eval_tri(q, record))),
        Predicate::Not(q) => eval_tri(q, record).not(),
        Predicate::Compare {
            field,
            op,
            value,
            comparison,
        } => eval_op(
            op.operator(),
            &field_of(field),
            &Operand::Json(value),
            *comparison,
        ),
        Predicate::CompareFields {
            left,
            op,
            right,
            comparison,
        } => eval_op(
            op.operator(),
            &field_of(left),
            &field_of(right),
            *comparison,
        ),
        Predicate::In {
            field,
            values,
            negated,
            comparison,
        } => {
            let op = if *negated {
                Operator::NotIn
            } else {
                Operator::In
            };
            eval_op(op, &field_of(field), &Operand::Values(values), *comparison)
        }
        Predicate::IsNull { field, negated } => eval_op(
            Operator::Exists,
            &field_of(field),
            &Operand::Json(&Value::Bool(*negated)),
            Comparison::Json,
        ),
        Predicate::Contains {
            field,
            value,
            comparison,
        } => eval_op(
            Operator::Contains,
            &field_of(field),
            &Operand::Json(value),
            *comparison,
        ),
        Predicate::StartsWith { field, value } => match record.get(field) {
            None | Some(Value::Null) => Tri::False,
            Some(Value::String(s)) => Tri::from_bool(s.starts_with(value.as_str())),
            Some(_) => Tri::Error(super::eval::INCOMPATIBLE),
        },
        Predicate::True => Tri::True,
        Predicate::False => Tri::False,
        Predicate::Unknown => Tri::Error(UNKNOWN_PATH),
    }
}

impl PolicySet {
    /// The rows of a list or count that `ctx` may see with `action` (normally [`Action::Read`]).
    pub fn row_filter(&self, action: Action, ctx: &RequestContext<'_>) -> RowFilter {
        if self.is_admin(ctx) {
            return RowFilter::All;
        }
        let (mut allows, mut denies) = (Vec::new(), Vec::new());
        for policy in self.applicable(action).filter(|p| p.decides_action()) {
            let conds = policy
                .conditions
                .iter()
                .map(|c| condition_predicate(c, ctx));
            let term = Predicate::and(conds.collect());
            match policy.effect {
                Effect::Allow => allows.push(term),
                Effect::Deny => denies.push(term),
            }
        }
        let visible = Predicate::and(vec![
            Predicate::or(allows),
            Predicate::not(Predicate::or(denies)),
        ]);
        match visible {
            Predicate::True => RowFilter::All,
            Predicate::False | Predicate::Unknown => RowFilter::Nothing,
            p => RowFilter::Where(p),
        }
    }
}

/// One condition as a predicate: a constant when it involves no record field.
fn condition_predicate(c: &CompiledCondition, ctx: &RequestContext<'_>) -> Predicate {
    let value_record = match &c.value {
        ConditionValue::Path(ValuePath::Record(f)) => Some(f.as_str()),
        _ => None,
    };
    let (field, op, other) = match (&c.subject, value_record) {
        (ValuePath::Record(left), Some(right)) => {
            return match compare_op(c.operator) {
                Some(op) => Predicate::CompareFields {
                    left: left.clone(),
                    op,
                    right: right.to_owned(),
                    comparison: c.comparison,
                },
                None => Predicate::Unknown,
            };
        }
        (ValuePath::Record(f), None) => {
            let other = match &c.value {
                ConditionValue::Literal(v) => Operand::Json(v),
                ConditionValue::None => Operand::NoValue,
                ConditionValue::Path(p) => match request_operand(p, ctx) {
                    Some(o) => o,
                    None => return Predicate::Unknown,
                },
            };
            (f.as_str(), c.operator, other)
        }
        (subject, Some(f)) => {
            if !right_record_supported(c) {
                return Predicate::Unknown;
            }
            match request_operand(subject, ctx) {
                Some(o) => (f, flip(c.operator), o),
                None => return Predicate::Unknown,
            }
        }
        (_, None) => {
            let no_record: Option<&dyn RecordView> = None;
            return Predicate::constant(eval_condition(c, ctx, no_record));
        }
    };
    leaf(field, op, &other, c.comparison)
}

/// The comparison operator of `op`, if it is one.
fn compare_op(op: Operator) -> Option<CompareOp> {
    Some(match op {
        Operator::Eq => CompareOp::Eq,
        Operator::Ne => CompareOp::Ne,
        Operator::Gt => CompareOp::Gt,
        Operator::Gte => CompareOp::Gte,
        Operator::Lt => CompareOp::Lt,
        Operator::Lte => CompareOp::Lte,
        _ => return None,
    })
}

/// `field op other`, with `other` a request value or a literal, compared by `comparison`.
fn leaf(field: &str, op: Operator, other: &Operand<'_>, comparison: Comparison) -> Predicate {
    let field_s = || field.to_owned();
    if let Operand::AnyRole(roles) = other {
        let roles: Vec<Value> = roles.iter().map(|r| Value::String(r.clone())).collect();
        return match op {
            Operator::Eq | Operator::Ne => Predicate::In {
                field: field_s(),
                values: roles,
                negated: op == Operator::Ne,
                comparison,
            },
            Operator::In | Operator::NotIn | Operator::Exists => Predicate::Unknown,
            _ => Predicate::or(
                roles
                    .into_iter()
                    .map(|r| leaf(field, op, &Operand::Json(&r), comparison))
                    .collect(),
            ),
        };
    }
    let value = match operand_value(other) {
        Some(v) => v,
        None if op == Operator::Exists => Value::Bool(true),
        None => return Predicate::Unknown,
    };
    let compare = |op| Predicate::Compare {
        field: field_s(),
        op,
        value: value.clone(),
        comparison,
    };
    match op {
        Operator::Eq => compare(CompareOp::Eq),
        Operator::Ne => compare(CompareOp::Ne),
        Operator::Gt => compare(CompareOp::Gt),
        Operator::Gte => compare(CompareOp::Gte),
        Operator::Lt => compare(CompareOp::Lt),
        Operator::Lte => compare(CompareOp::Lte),
        Operator::In | Operator::NotIn => match value {
            Value::Array(values) => Predicate::In {
                field: field_s(),
                values,
                negated: op == Operator::NotIn,
                comparison,
            },
            _ => Predicate::Unknown,
        },
        Operator::Contains => Predicate::Contains {
            field: field_s(),
            value,
            comparison,
        },
        Operator::Exists => match value {
            Value::Bool(negated) => Predicate::IsNull {
                field: field_s(),
                negated,
            },
            _ => Predicate::Unknown,
        },
    }
}

/// A constant operand as an owned JSON value; `None` for "no value".
fn operand_value(o: &Operand<'_>) -> Option<Value> {
    match *o {
        Operand::Json(v) => Some(v.clone()),
        Operand::Str(s) => Some(Value::String(s.to_owned())),
        Operand::Strs(s) | Operand::AnyRole(s) => Some(Value::Array(
            s.iter().map(|r| Value::String(r.clone())).collect(),
        )),
        Operand::Values(v) => Some(Value::Array(v.to_vec())),
        Operand::Missing => Some(Value::Null),
        Operand::NoValue => None,
    }
}

/// A list filter (`filter[<field>][<op>]=<value>`, already typed by the model) as a predicate on
/// the record's JSON, for deciding in memory what the SQL condition of the same filter decides
/// (the realtime feed's `filter[...]`): a missing or null field matches only `isnull=true`, an
/// `ne`/`nin` included, as SQL's `NULL` makes them; values compare by the field's type.
pub fn filter_predicate(model: &CompiledModel, filter: &Filter) -> Predicate {
    let field_type = model
        .field(&filter.field)
        .map(|f| f.field_type)
        .or_else(|| crate::ident::system_field(&filter.field).map(|f| f.field_type));
    let Some(field_type) = field_type else {
        return Predicate::Unknown;
    };
    let comparison = Comparison::of(field_type);
    let field = || filter.field.clone();
    let compare = |op, v: &SqlValue| Predicate::Compare {
        field: field(),
        op,
        value: json_value(v),
        comparison,
    };
    match (filter.op, &filter.value) {
        (FilterOp::IsNull, FilterValue::Flag(flag)) => Predicate::IsNull {
            field: field(),
            negated: !flag,
        },
        (FilterOp::In | FilterOp::Nin, FilterValue::Many(values)) => Predicate::In {
            field: field(),
            values: values.iter().map(json_value).collect(),
            negated: filter.op == FilterOp::Nin,
            comparison,
        },
        (FilterOp::Eq, FilterValue::One(v)) => compare(CompareOp::Eq, v),
        (FilterOp::Ne, FilterValue::One(v)) => compare(CompareOp::Ne, v),
        (FilterOp::Gt, FilterValue::One(v)) => compare(CompareOp::Gt, v),
        (FilterOp::Gte, FilterValue::One(v)) => compare(CompareOp::Gte, v),
        (FilterOp::Lt, FilterValue::One(v)) => compare(CompareOp::Lt, v),
        (FilterOp::Lte, FilterValue::One(v)) => compare(CompareOp::Lte, v),
        (FilterOp::Contains, FilterValue::One(v)) => Predicate::Contains {
            field: field(),
            value: json_value(v),
            comparison,
        },
        (FilterOp::StartsWith, FilterValue::One(SqlValue::Text(prefix))) => Predicate::StartsWith {
            field: field(),
            value: prefix.clone(),
        },
        // A shape the parser never produces.
        _ => Predicate::Unknown,
    }
}

/// The JSON value a record holds for a typed value (decimals, dates, timestamps and uuids are
/// text in both).
fn json_value(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Text(s) => Value::String(s.clone()),
        SqlValue::Int(i) => Value::from(*i),
        SqlValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        SqlValue::Bool(b) => Value::Bool(*b),
    }
}
