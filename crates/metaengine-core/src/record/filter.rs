//! Filters of a list or count (SPEC §7, §10): `filter[<field>][<op>]=<value>` becomes a typed
//! [`Filter`] whose value is converted with the field's type. The query builder of
//! `metaengine-sql` takes these types as they are.
//!
//! A problem's pointer names the query parameter: `filter[foo]` for an unknown field,
//! `filter[<field>][<op>]` for an unknown operator or a bad value.

use super::RecordValidator;
use super::convert;
use crate::compile::CompiledModel;
use crate::schema::FieldType;
use crate::validate::Problem;
use crate::value::SqlValue;
use std::fmt;

/// Most values of one `in`/`nin` filter.
pub const MAX_LIST_VALUES: usize = 100;

/// A filter operator (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal (a `NULL` column does not match).
    Ne,
    /// `gt`: greater than.
    Gt,
    /// `gte`: greater than or equal.
    Gte,
    /// `lt`: less than.
    Lt,
    /// `lte`: less than or equal.
    Lte,
    /// `in`: one of a comma-separated list.
    In,
    /// `nin`: none of a comma-separated list.
    Nin,
    /// `contains`: has the value as a substring (case-sensitive).
    Contains,
    /// `startswith`: starts with the value (case-sensitive).
    StartsWith,
    /// `isnull`: is `NULL` (`true`) or is not (`false`).
    IsNull,
}

impl FilterOp {
    /// Every operator, in declaration order.
    pub const ALL: &'static [FilterOp] = &[
        FilterOp::Eq,
        FilterOp::Ne,
        FilterOp::Gt,
        FilterOp::Gte,
        FilterOp::Lt,
        FilterOp::Lte,
        FilterOp::In,
        FilterOp::Nin,
        FilterOp::Contains,
        FilterOp::StartsWith,
        FilterOp::IsNull,
    ];

    /// The query-string name of the operator.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Eq => "eq",
            FilterOp::Ne => "ne",
            FilterOp::Gt => "gt",
            FilterOp::Gte => "gte",
            FilterOp::Lt => "lt",
            FilterOp::Lte => "lte",
            FilterOp::In => "in",
            FilterOp::Nin => "nin",
            FilterOp::Contains => "contains",
            FilterOp::StartsWith => "startswith",
            FilterOp::IsNull => "isnull",
        }
    }

    /// The operator of this query-string name, if any (case-sensitive).
    pub fn parse(name: &str) -> Option<FilterOp> {
        FilterOp::ALL.iter().copied().find(|op| op.as_str() == name)
    }

    /// Whether the operator applies to a field of this type: `contains`/`startswith` only to
    /// string, text and enum; `gt`/`gte`/`lt`/`lte`/`in`/`nin` not to json, the order ones not to
    /// boolean either; `eq`, `ne` and `isnull` to every type.
    pub fn applies_to(self, field_type: FieldType) -> bool {
        let textual = matches!(
            field_type,
            FieldType::String | FieldType::Text | FieldType::Enum
        );
        match self {
            FilterOp::Eq | FilterOp::Ne | FilterOp::IsNull => true,
            FilterOp::In | FilterOp::Nin => field_type != FieldType::Json,
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
                !matches!(field_type, FieldType::Boolean | FieldType::Json)
            }
            FilterOp::Contains | FilterOp::StartsWith => textual,
        }
    }
}

impl fmt::Display for FilterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of a filter, typed by its field.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// One value: every operator but `in`, `nin` and `isnull`.
    One(SqlValue),
    /// The values of `in`/`nin` (at least one, at most [`MAX_LIST_VALUES`]).
    Many(Vec<SqlValue>),
    /// The flag of `isnull`.
    Flag(bool),
}

/// One parsed filter: `field op value`, the field a camelCase field name or a filterable system
/// field (the filterable ones of [`crate::ident::SYSTEM`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Field name (camelCase), as in the query string.
    pub field: String,
    /// The operator.
    pub op: FilterOp,
    /// The value, converted with the field's type.
    pub value: FilterValue,
}

/// Why a filter was refused: its code (`unknown_field` for a field the entity does not have,
/// `invalid_filter` for an operator or value that does not apply) and the problem, at the
/// parameter's name (`filter[dueDate][gt]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRejected {
    /// `unknown_field` or `invalid_filter`.
    pub code: crate::ErrorCode,
    /// What is wrong, and where.
    pub problem: Problem,
}

impl std::fmt::Display for FilterRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.problem.fmt(f)
    }
}

/// Parses the filter `filter[<field>][<op>]=<raw>` against `model` (`raw` already URL-decoded).
/// For repeated use, [`RecordValidator::filter`] does the same.
pub fn filter_value(
    model: &CompiledModel,
    field: &str,
    op: &str,
    raw: &str,
) -> Result<Filter, FilterRejected> {
    parse_with(
        &|name| model.field(name).map(|f| (f.field_type, f.sensitive)),
        field,
        op,
        raw,
    )
}

/// The refusal of a filter on a name that is no field of the entity; also the answer for a field
/// the caller may not read (SPEC §15), so that the two cannot be told apart.
pub fn unknown_filter_field(field: &str) -> FilterRejected {
    FilterRejected {
        code: crate::ErrorCode::UnknownField,
        problem: Problem::new(
            format!("filter[{field}]"),
            format!("unknown field `{field}` in a filter"),
        ),
    }
}

/// The field and operator of a query parameter name `filter[<field>][<op>]`; `None` for any
/// other shape.
pub fn parse_filter_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("filter[")?.strip_suffix(']')?;
    let (field, op) = rest.split_once("][")?;
    let bracket = |s: &str| s.contains(['[', ']']);
    (!field.is_empty() && !op.is_empty() && !bracket(field) && !bracket(op)).then_some((field, op))
}

pub(super) fn parse(
    validator: &RecordValidator,
    field: &str,
    op: &str,
    raw: &str,
) -> Result<Filter, FilterRejected> {
    parse_with(&|name| validator.field_kind(name), field, op, raw)
}

/// `field_type_of` gives a field's type and whether it is `sensitive` (a sensitive field's
/// filter values are never echoed in a refusal).
fn parse_with(
    field_type_of: &dyn Fn(&str) -> Option<(FieldType, bool)>,
    field: &str,
    op: &str,
    raw: &str,
) -> Result<Filter, FilterRejected> {
    let system = crate::ident::system_field(field)
        .filter(|f| f.filterable)
        .map(|f| (f.field_type, false));
    let Some((field_type, sensitive)) = field_type_of(field).or(system) else {
        if crate::ident::SYSTEM_FIELDS.contains(&field) {
            return Err(FilterRejected {
                code: crate::ErrorCode::UnknownField,
                problem: Problem::new(
                    format!("filter[{field}]"),
                    format!("system field `{field}` cannot be used in a filter"),
                ),
            });
        }
        return Err(unknown_filter_field(field));
    };
    let invalid = |at: String, msg: String| FilterRejected {
        code: crate::ErrorCode::InvalidFilter,
        problem: Problem::new(at, msg),
    };
    let at = || format!("filter[{field}][{op}]");
    let Some(parsed_op) = FilterOp::parse(op) else {
        let expected: Vec<String> = FilterOp::ALL.iter().map(|o| format!("`{o}`")).collect();
        let msg = format!(
            "unknown filter operator `{op}`; expected one of {}",
            expected.join(", ")
        );
        return Err(invalid(at(), msg));
    };
    if !parsed_op.applies_to(field_type) {
        let msg = format!(
            "filter operator `{op}` does not apply to field `{field}` of type `{field_type}`"
        );
        return Err(invalid(at(), msg));
    }
    let one = |text: &str| convert::from_text(field, field_type, text, sensitive);
    let value = match parsed_op {
        FilterOp::IsNull => match raw {
            "true" => Ok(FilterValue::Flag(true)),
            "false" => Ok(FilterValue::Flag(false)),
            _ if sensitive => Err("`isnull` takes `true` or `false`".to_owned()),
            _ => Err(format!("`isnull` takes `true` or `false`, found `{raw}`")),
        },
        FilterOp::In | FilterOp::Nin if raw.is_empty() => {
            Err(format!("`{op}` needs at least one value"))
        }
        FilterOp::In | FilterOp::Nin if raw.split(',').count() > MAX_LIST_VALUES => {
            Err(format!("`{op}` takes at most {MAX_LIST_VALUES} values"))
        }
        FilterOp::In | FilterOp::Nin => raw
            .split(',')
            .map(one)
            .collect::<Result<Vec<_>, _>>()
            .map(FilterValue::Many),
        _ => one(raw).map(FilterValue::One),
    };
    value
        .map(|value| Filter {
            field: field.to_owned(),
            op: parsed_op,
            value,
        })
        .map_err(|msg| invalid(at(), msg))
}
