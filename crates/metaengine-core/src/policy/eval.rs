//! Evaluation of one condition, in three-valued (Kleene) logic: a condition holds, does not hold,
//! or cannot be evaluated ([`Tri::Error`]).
//!
//! The same functions decide a condition for [`super::PolicySet::can`] and a leaf of a row filter
//! for [`super::eval_predicate`], so the two cannot drift apart.
//!
//! Semantics (SPEC §6, made precise):
//! - a missing or `null` value on either side makes every operator false except `exists` (as a
//!   SQL comparison with `NULL` excludes the row, and as `NOT` of it must not let it in either);
//! - `eq`/`ne` compare values of one JSON type (numbers numerically, arrays element by element);
//!   values of different types are an error;
//! - `gt`/`gte`/`lt`/`lte` compare numbers numerically and strings lexicographically (byte
//!   order); anything else is an error;
//! - a condition on a decimal, date, datetime or reference field compares by the field's
//!   [`Comparison`]: both sides brought to the canonical text of the type (decimals then compared
//!   numerically, timestamps as instants), as the databases compare the columns; a value that
//!   is not of the type cannot be compared (an error; an element of an `in` list is unequal), and
//!   `contains` does not apply;
//! - `in`/`not_in` need an array on the right; an element of another type is simply not equal;
//! - `contains` on a string is a case-sensitive substring test, on an array an element test;
//! - `exists` holds when the value is present and not null (`"value": false`: absent or null);
//! - `user.role` is any one of the user's roles: `eq`/`in`/`gt`/… hold when one role satisfies
//!   them, `ne`/`not_in` when no role equals (is in) the other side; roles compare by element
//!   equality, never with a type error;
//! - a `record.*` path on the right side is only supported with `eq`, `ne`, `gt`, `gte`, `lt`,
//!   `lte` (with a request-side subject or another record field); other shapes are errors (they
//!   have no row filter form).

use crate::compile::{CompiledCondition, ConditionValue, ValuePath};
use crate::record::Comparison;
use crate::schema::Operator;
use serde_json::Value;
use std::cmp::Ordering;

use super::{RecordView, RequestContext};

/// A three-valued truth: an error is the SQL `NULL` of a predicate (it never lets a row in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    /// The condition could not be evaluated; the text says why.
    Error(&'static str),
}

impl Tri {
    pub(crate) fn from_bool(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }

    /// Kleene `AND`: false wins over an error, an error over true.
    pub(crate) fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::Error(e), _) | (_, Tri::Error(e)) => Tri::Error(e),
            _ => Tri::True,
        }
    }

    /// Kleene `OR`: true wins over an error, an error over false.
    pub(crate) fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::Error(e), _) | (_, Tri::Error(e)) => Tri::Error(e),
            _ => Tri::False,
        }
    }

    /// Kleene `NOT`: an error stays an error.
    pub(crate) fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            e @ Tri::Error(_) => e,
        }
    }
}

pub(crate) const INCOMPATIBLE: &str = "values of incompatible types";
pub(crate) const NOT_AN_ARRAY: &str = "`in` and `not_in` need an array";
pub(crate) const BAD_EXISTS: &str = "`exists` needs `true` or `false`";
pub(crate) const NO_VALUE: &str = "condition has no value";
pub(crate) const UNKNOWN_PATH: &str = "unknown path";
pub(crate) const NO_RECORD: &str = "condition on `record` without a record";
pub(crate) const UNSUPPORTED_SHAPE: &str = "`record` path on the right side is not supported here";

/// One side of a condition, resolved without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operand<'a> {
    /// A JSON value (a literal or a record field).
    Json(&'a Value),
    /// A request string (`user.id`, `context.tenantId`…).
    Str(&'a str),
    /// A whole list of roles (`user.roles`, `context.roles`).
    Strs(&'a [String]),
    /// Any one of the user's roles (`user.role`).
    AnyRole(&'a [String]),
    /// A list of JSON values (the values of a [`super::Predicate::In`]).
    Values(&'a [Value]),
    /// An absent record field.
    Missing,
    /// No value given (`exists` without a value).
    NoValue,
}

/// A value as the comparisons see it.
#[derive(Clone, Copy)]
enum V<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    JsonArr(&'a [Value]),
    StrArr(&'a [String]),
    Obj(&'a serde_json::Map<String, Value>),
}

fn view(v: &Value) -> V<'_> {
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => n.as_f64().map_or(V::Null, V::Num),
        Value::String(s) => V::Str(s),
        Value::Array(a) => V::JsonArr(a),
        Value::Object(o) => V::Obj(o),
    }
}

fn view_operand<'a>(o: &Operand<'a>) -> V<'a> {
    match *o {
        Operand::Json(v) => view(v),
        Operand::Str(s) => V::Str(s),
        Operand::Strs(s) | Operand::AnyRole(s) => V::StrArr(s),
        Operand::Values(v) => V::JsonArr(v),
        Operand::Missing | Operand::NoValue => V::Null,
    }
}

/// Equality of two non-null values of one type; `None` when the types differ.
fn strict_eq(a: V<'_>, b: V<'_>) -> Option<bool> {
    match (a, b) {
        (V::Null, V::Null) => Some(true),
        (V::Bool(x), V::Bool(y)) => Some(x == y),
        (V::Num(x), V::Num(y)) => Some(x == y),
        (V::Str(x), V::Str(y)) => Some(x == y),
        (V::Obj(x), V::Obj(y)) => Some(x == y),
        (V::JsonArr(_) | V::StrArr(_), V::JsonArr(_) | V::StrArr(_)) => {
            Some(arr_len(a) == arr_len(b) && (0..arr_len(a)).all(|i| loose_eq(at(a, i), at(b, i))))
        }
        _ => None,
    }
}

/// Equality where values of different types are simply unequal.
fn loose_eq(a: V<'_>, b: V<'_>) -> bool {
    strict_eq(a, b) == Some(true)
}

fn arr_len(a: V<'_>) -> usize {
    match a {
        V::JsonArr(x) => x.len(),
        V::StrArr(x) => x.len(),
        _ => 0,
    }
}

fn at(a: V<'_>, i: usize) -> V<'_> {
    match a {
        V::JsonArr(x) => x.get(i).map_or(V::Null, view),
        V::StrArr(x) => x.get(i).map_or(V::Null, |s| V::Str(s)),
        _ => V::Null,
    }
}

/// Whether `list` (an array) has an element equal to `needle`.
fn any_elem(list: V<'_>, needle: V<'_>) -> bool {
    any_elem_as(Comparison::Json, list, needle)
}

/// Whether `list` (an array) has an element equal to `needle` by `cmp`.
fn any_elem_as(cmp: Comparison, list: V<'_>, needle: V<'_>) -> bool {
    (0..arr_len(list)).any(|i| eq_as(cmp, at(list, i), needle))
}

/// The canonical text of a scalar by a typed comparison (see [`Comparison::canonical`]).
fn canonical(cmp: Comparison, v: V<'_>) -> Option<String> {
    match v {
        V::Str(s) => cmp.canonical_str(s),
        V::Num(f) => cmp.canonical_f64(f),
        _ => None,
    }
}

/// `a` against `b` by a typed comparison; `None` when either is not a value of the type.
fn typed_cmp(cmp: Comparison, a: V<'_>, b: V<'_>) -> Option<Ordering> {
    Some(cmp.cmp_canonical(&canonical(cmp, a)?, &canonical(cmp, b)?))
}

/// Equality by `cmp`, where values that cannot be compared are simply unequal.
fn eq_as(cmp: Comparison, a: V<'_>, b: V<'_>) -> bool {
    match cmp {
        Comparison::Json => loose_eq(a, b),
        _ => typed_cmp(cmp, a, b) == Some(Ordering::Equal),
    }
}

fn is_arr(v: V<'_>) -> bool {
    matches!(v, V::JsonArr(_) | V::StrArr(_))
}

/// `a op b` for operands that are not `user.role`.
fn eval_plain(op: Operator, a: &Operand<'_>, b: &Operand<'_>, cmp: Comparison) -> Tri {
    if matches!(b, Operand::NoValue) && op != Operator::Exists {
        return Tri::Error(NO_VALUE);
    }
    let (x, y) = (view_operand(a), view_operand(b));
    let null = matches!(x, V::Null) || matches!(y, V::Null);
    match op {
        Operator::Exists => match b {
            Operand::NoValue => Tri::from_bool(!matches!(x, V::Null)),
            _ => match y {
                V::Bool(flag) => Tri::from_bool(flag != matches!(x, V::Null)),
                _ => Tri::Error(BAD_EXISTS),
            },
        },
        _ if !is_arr(y) && matches!(op, Operator::In | Operator::NotIn) => Tri::Error(NOT_AN_ARRAY),
        _ if null => Tri::False,
        Operator::In => Tri::from_bool(any_elem_as(cmp, y, x)),
        Operator::NotIn => Tri::from_bool(!any_elem_as(cmp, y, x)),
        Operator::Eq | Operator::Ne if cmp != Comparison::Json => match typed_cmp(cmp, x, y) {
            None => Tri::Error(INCOMPATIBLE),
            Some(o) => Tri::from_bool((o == Ordering::Equal) == (op == Operator::Eq)),
        },
        Operator::Eq => strict_eq(x, y).map_or(Tri::Error(INCOMPATIBLE), Tri::from_bool),
        Operator::Ne => strict_eq(x, y).map_or(Tri::Error(INCOMPATIBLE), |e| Tri::from_bool(!e)),
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
            let ord = match (cmp, x, y) {
                (Comparison::Json, V::Num(p), V::Num(q)) => p.partial_cmp(&q),
                (Comparison::Json, V::Str(p), V::Str(q)) => Some(p.cmp(q)),
                (Comparison::Json, _, _) => None,
                _ => typed_cmp(cmp, x, y),
            };
            match ord {
                None => Tri::Error(INCOMPATIBLE),
                Some(o) => Tri::from_bool(match op {
                    Operator::Gt => o == Ordering::Greater,
                    Operator::Gte => o != Ordering::Less,
                    Operator::Lt => o == Ordering::Less,
                    _ => o != Ordering::Greater,
                }),
            }
        }
        Operator::Contains if cmp != Comparison::Json => Tri::Error(INCOMPATIBLE),
        Operator::Contains => match (x, y) {
            (V::Str(hay), V::Str(needle)) => Tri::from_bool(hay.contains(needle)),
            (V::JsonArr(_) | V::StrArr(_), _) => Tri::from_bool(any_elem(x, y)),
            _ => Tri::Error(INCOMPATIBLE),
        },
    }
}

/// `a op b` compared by `cmp`, where either side may be `user.role` (any one of the user's
/// roles).
pub(crate) fn eval_op(op: Operator, a: &Operand<'_>, b: &Operand<'_>, cmp: Comparison) -> Tri {
    let (roles, other, role_is_subject) = match (a, b) {
        (Operand::AnyRole(r), _) => (*r, b, true),
        (_, Operand::AnyRole(r)) => (*r, a, false),
        _ => return eval_plain(op, a, b, cmp),
    };
    let other_view = view_operand(other);
    match op {
        Operator::Eq | Operator::Ne => {
            if matches!(other_view, V::Null) {
                return Tri::False;
            }
            let any = roles.iter().any(|r| eq_as(cmp, V::Str(r), other_view));
            Tri::from_bool(any == (op == Operator::Eq))
        }
        Operator::Exists if role_is_subject => eval_plain(op, &Operand::Strs(roles), b, cmp),
        Operator::In | Operator::NotIn | Operator::Exists if !role_is_subject => {
            Tri::Error(NOT_AN_ARRAY)
        }
        Operator::In | Operator::NotIn => {
            if !is_arr(other_view) {
                return Tri::Error(NOT_AN_ARRAY);
            }
            let any = roles
                .iter()
                .any(|r| any_elem_as(cmp, other_view, V::Str(r)));
            Tri::from_bool(any == (op == Operator::In))
        }
        _ => roles.iter().fold(Tri::False, |acc, r| {
            let role = Operand::Str(r);
            let t = if role_is_subject {
                eval_plain(op, &role, other, cmp)
            } else {
                eval_plain(op, other, &role, cmp)
            };
            acc.or(t)
        }),
    }
}

/// The operator seen from the other side: `a gt b` is `b lt a`.
pub(crate) fn flip(op: Operator) -> Operator {
    match op {
        Operator::Gt => Operator::Lt,
        Operator::Gte => Operator::Lte,
        Operator::Lt => Operator::Gt,
        Operator::Lte => Operator::Gte,
        other => other,
    }
}

/// Whether a condition with a `record.*` path on the right side has a supported shape.
pub(crate) fn right_record_supported(c: &CompiledCondition) -> bool {
    matches!(
        c.operator,
        Operator::Eq | Operator::Ne | Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte
    )
}

/// A request-side path (never `record.*`) as an operand; `None` for an unknown path.
pub(crate) fn request_operand<'a>(
    path: &ValuePath,
    ctx: &RequestContext<'a>,
) -> Option<Operand<'a>> {
    Some(match path {
        ValuePath::UserId | ValuePath::ContextUserId => Operand::Str(ctx.user_id),
        ValuePath::ContextTenantId => Operand::Str(ctx.tenant_id),
        ValuePath::ContextRealmId => Operand::Str(ctx.realm_id),
        ValuePath::UserRole => Operand::AnyRole(ctx.roles),
        ValuePath::UserRoles | ValuePath::ContextRoles => Operand::Strs(ctx.roles),
        ValuePath::Record(_) | ValuePath::Unknown(_) => return None,
    })
}

/// A path resolved against the request and, for `record.*`, the record.
fn resolve<'a>(
    path: &ValuePath,
    ctx: &RequestContext<'a>,
    record: Option<&'a dyn RecordView>,
) -> Result<Operand<'a>, &'static str> {
    match path {
        ValuePath::Record(field) => match record {
            None => Err(NO_RECORD),
            Some(r) => Ok(r.get(field).map_or(Operand::Missing, Operand::Json)),
        },
        ValuePath::Unknown(_) => Err(UNKNOWN_PATH),
        other => request_operand(other, ctx).ok_or(UNKNOWN_PATH),
    }
}

/// Evaluates one condition against a request and an optional record.
pub(crate) fn eval_condition<'a>(
    c: &'a CompiledCondition,
    ctx: &RequestContext<'a>,
    record: Option<&'a dyn RecordView>,
) -> Tri {
    let a = match resolve(&c.subject, ctx, record) {
        Ok(a) => a,
        Err(e) => return Tri::Error(e),
    };
    let b = match &c.value {
        ConditionValue::Literal(v) => Operand::Json(v),
        ConditionValue::None => Operand::NoValue,
        ConditionValue::Path(p) => {
            if matches!(p, ValuePath::Record(_)) && !right_record_supported(c) {
                return Tri::Error(UNSUPPORTED_SHAPE);
            }
            match resolve(p, ctx, record) {
                Ok(b) => b,
                Err(e) => return Tri::Error(e),
            }
        }
    };
    eval_op(c.operator, &a, &b, c.comparison)
}
