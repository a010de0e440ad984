//! The pieces of a statement: bound values with numbered placeholders, the scope, the row filter,
//! the filters, the keyset condition and the order.

use super::column::{Col, ID, eq_expr, is_textual, resolve, sort_expr, write_param};
use super::{Filter, FilterOp, FilterValue, QueryError, Scope};
use crate::Dialect;
use metaengine_core::ident::quote_ident;
use metaengine_core::{CompiledModel, FieldType, SqlValue};

/// Values bound so far; hands out the next placeholder.
#[derive(Debug)]
pub(super) struct Binds {
    pub dialect: Dialect,
    pub values: Vec<SqlValue>,
}

impl Binds {
    pub fn new(dialect: Dialect) -> Self {
        Binds {
            dialect,
            values: Vec::new(),
        }
    }

    /// Binds `value`; returns its placeholder (`$n` / `?n`). `NULL` is written as the literal:
    /// a bound NULL would carry a parameter type (text) that PostgreSQL refuses to assign to a
    /// column of another type, and the literal is no user input.
    pub fn bind(&mut self, value: SqlValue) -> String {
        if value == SqlValue::Null {
            return "NULL".to_owned();
        }
        self.values.push(value);
        let mark = match self.dialect {
            Dialect::Postgres => '$',
            Dialect::Sqlite => '?',
        };
        format!("{mark}{}", self.values.len())
    }

    /// [`Binds::bind`] written straight into `sql`, with `cast` after the placeholder: the
    /// hot loop of a batch insert, without a `String` per value.
    pub fn bind_into(&mut self, value: SqlValue, cast: &str, sql: &mut String) {
        use std::fmt::Write as _;
        if value == SqlValue::Null {
            // Cast like a placeholder: a column of a multi-row `VALUES` that is `NULL` in every
            // row would otherwise be typed `text` on PostgreSQL.
            sql.push_str("NULL");
            sql.push_str(cast);
            return;
        }
        self.values.push(value);
        let mark = match self.dialect {
            Dialect::Postgres => '$',
            Dialect::Sqlite => '?',
        };
        let _ = write!(sql, "{mark}{}{cast}", self.values.len());
    }

    /// `TRUE`/`FALSE` on PostgreSQL, `1`/`0` on SQLite.
    pub fn constant(&self, b: bool) -> &'static str {
        match (self.dialect, b) {
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
        }
    }
}

/// `"tenant_id" = $1 AND "realm_id" = $2`.
pub(super) fn scope_condition(binds: &mut Binds, scope: Scope<'_>) -> String {
    let (t, r) = bind_scope(binds, scope);
    format!(
        "{} = {t} AND {} = {r}",
        quote_ident("tenant_id"),
        quote_ident("realm_id")
    )
}

/// The values of [`scope_condition`], bound in its order; their placeholders.
pub(super) fn bind_scope(binds: &mut Binds, scope: Scope<'_>) -> (String, String) {
    let t = binds.bind(SqlValue::Text(scope.tenant_id.to_owned()));
    let r = binds.bind(SqlValue::Text(scope.realm_id.to_owned()));
    (t, r)
}

/// `"id" = $n` (cast to uuid on PostgreSQL).
pub(super) fn id_condition(binds: &mut Binds, id: &str) -> String {
    let p = bind_id(binds, id);
    format!(
        "{} = {}",
        quote_ident("id"),
        write_param(binds.dialect, FieldType::Reference, &p)
    )
}

/// The value of [`id_condition`]; its placeholder.
pub(super) fn bind_id(binds: &mut Binds, id: &str) -> String {
    binds.bind(SqlValue::Text(id.to_owned()))
}

/// Whether `op` applies to a column of type `ty`.
fn applies(op: FilterOp, ty: FieldType) -> bool {
    match op {
        FilterOp::IsNull => true,
        _ if ty == FieldType::Json => false,
        FilterOp::Eq | FilterOp::Ne | FilterOp::In | FilterOp::Nin => true,
        FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => {
            !matches!(ty, FieldType::Boolean | FieldType::Reference)
        }
        FilterOp::Contains | FilterOp::StartsWith => is_textual(ty),
    }
}

/// One filter as a condition.
pub(super) fn filter_condition(
    binds: &mut Binds,
    model: &CompiledModel,
    filter: &Filter,
) -> Result<String, QueryError> {
    let col = resolve(model, &filter.field)?;
    let op = filter.op;
    if !applies(op, col.ty) {
        return Err(QueryError::OperatorNotApplicable {
            field: col.name.to_owned(),
            op,
            field_type: col.ty,
        });
    }
    let wrong = |expected| QueryError::WrongValueKind {
        field: col.name.to_owned(),
        op,
        expected,
    };
    let null = || QueryError::NullValue {
        field: col.name.to_owned(),
        op,
    };
    let dialect = binds.dialect;
    let q = quote_ident(col.column);
    match op {
        FilterOp::IsNull => match filter.value {
            FilterValue::Flag(true) => Ok(format!("{q} IS NULL")),
            FilterValue::Flag(false) => Ok(format!("{q} IS NOT NULL")),
            _ => Err(wrong("`true` or `false`")),
        },
        FilterOp::In | FilterOp::Nin => {
            let FilterValue::Many(values) = &filter.value else {
                return Err(wrong("a list of values"));
            };
            if values.is_empty() {
                return Ok(binds.constant(op == FilterOp::Nin).to_owned());
            }
            let mut params = Vec::with_capacity(values.len());
            for v in values {
                if *v == SqlValue::Null {
                    return Err(null());
                }
                let p = binds.bind(super::column::checked(&col, v)?);
                params.push(write_param(dialect, col.ty, &p));
            }
            let not = if op == FilterOp::Nin { "NOT " } else { "" };
            Ok(format!(
                "{} {not}IN ({})",
                eq_expr(dialect, &col),
                params.join(", ")
            ))
        }
        _ => {
            let FilterValue::One(v) = &filter.value else {
                return Err(wrong("one value"));
            };
            if *v == SqlValue::Null {
                return Err(null());
            }
            let v = super::column::checked(&col, v)?;
            one_value_condition(binds, &col, op, v)
        }
    }
}

fn one_value_condition(
    binds: &mut Binds,
    col: &Col<'_>,
    op: FilterOp,
    v: SqlValue,
) -> Result<String, QueryError> {
    let dialect = binds.dialect;
    let q = quote_ident(col.column);
    let sign = match op {
        FilterOp::Eq => "=",
        FilterOp::Ne => "<>",
        FilterOp::Gt => ">",
        FilterOp::Gte => ">=",
        FilterOp::Lt => "<",
        FilterOp::Lte => "<=",
        FilterOp::Contains => {
            let p = binds.bind(v);
            return Ok(match dialect {
                Dialect::Postgres => format!("strpos({q}, {p}) > 0"),
                Dialect::Sqlite => format!("instr({q}, {p}) > 0"),
            });
        }
        FilterOp::StartsWith => {
            return Ok(match dialect {
                Dialect::Postgres => format!("starts_with({q}, {})", binds.bind(v)),
                Dialect::Sqlite => {
                    let a = binds.bind(v.clone());
                    let b = binds.bind(v);
                    format!("substr({q}, 1, length({a})) = {b}")
                }
            });
        }
        FilterOp::In | FilterOp::Nin | FilterOp::IsNull => {
            return Err(QueryError::WrongValueKind {
                field: col.name.to_owned(),
                op,
                expected: "a list of values",
            });
        }
    };
    let expr = if matches!(op, FilterOp::Eq | FilterOp::Ne) {
        eq_expr(dialect, col)
    } else {
        sort_expr(dialect, col)
    };
    let p = binds.bind(v);
    Ok(format!(
        "{expr} {sign} {}",
        write_param(dialect, col.ty, &p)
    ))
}

/// The keyset condition "after the row whose sort key is `key` and id is `id`" (values already
/// coerced to the column's type), for the order of [`order_by`]: nulls are the smallest keys.
pub(super) fn keyset_condition(
    binds: &mut Binds,
    col: &Col<'_>,
    descending: bool,
    key: SqlValue,
    id: SqlValue,
) -> Result<String, QueryError> {
    let dialect = binds.dialect;
    let cmp = if descending { "<" } else { ">" };
    let id_col = quote_ident("id");
    let id_param = |binds: &mut Binds| {
        let p = binds.bind(id.clone());
        write_param(dialect, FieldType::Reference, &p)
    };
    if col.column == ID.column {
        let p = id_param(binds);
        return Ok(format!("{id_col} {cmp} {p}"));
    }
    let q = quote_ident(col.column);
    let e = sort_expr(dialect, col);
    if key == SqlValue::Null {
        if col.system {
            return Err(QueryError::InvalidCursor {
                reason: "its sort key is null",
            });
        }
        let p = id_param(binds);
        return Ok(if descending {
            format!("({q} IS NULL AND {id_col} < {p})")
        } else {
            format!("({q} IS NOT NULL OR {id_col} > {p})")
        });
    }
    let k1 = binds.bind(key.clone());
    let k1 = write_param(dialect, col.ty, &k1);
    let k2 = binds.bind(key);
    let k2 = write_param(dialect, col.ty, &k2);
    let p = id_param(binds);
    let after = format!("{e} {cmp} {k1} OR ({e} = {k2} AND {id_col} {cmp} {p})");
    Ok(match (col.system, descending) {
        (false, true) => format!("({after} OR {q} IS NULL)"),
        _ => format!("({after})"),
    })
}

/// `ORDER BY` terms for `col`, ties broken by `id`. Nulls are the smallest keys: first ascending,
/// last descending. That is SQLite's own order, and on PostgreSQL it is written out
/// (`NULLS FIRST` / `NULLS LAST`) to match the engine's indexes, so that an index over the column
/// serves the order in either direction without a sort.
pub(super) fn order_by(dialect: Dialect, col: &Col<'_>, descending: bool) -> String {
    let dir = if descending { " DESC" } else { "" };
    let id = quote_ident("id");
    if col.column == ID.column {
        return format!("{id}{dir}");
    }
    let e = sort_expr(dialect, col);
    let nulls = match (dialect, col.system, descending) {
        (Dialect::Sqlite, _, _) | (_, true, _) => "",
        (Dialect::Postgres, false, false) => " NULLS FIRST",
        (Dialect::Postgres, false, true) => " NULLS LAST",
    };
    format!("{e}{dir}{nulls}, {id}{dir}")
}
