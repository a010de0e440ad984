//! The policies' row filter ([`RowFilter`]) as a condition, rendered with the same typed column
//! expressions as the list filters (`column.rs`): text compared in byte order (`COLLATE "C"` on
//! PostgreSQL), decimals as numbers on SQLite, every placeholder cast to the column's type where
//! PostgreSQL needs it, and every value converted to the column's type before it is bound, so
//! that one SQL text always runs with parameters of one type (a prepared statement that the
//! driver caches by its text can never receive a float where it was prepared for an integer).
//!
//! The SQL keeps the in-memory evaluator's semantics ([`metaengine_core::policy::eval_predicate`])
//! exactly, row for row:
//! - a comparison is `(col op $n AND col IS NOT NULL)`: false for a null column, and its `NOT`
//!   true, as in memory;
//! - a value of another type than the column's (a user id compared with an integer field, a
//!   number with a string field, an ordering on a boolean) is an evaluation error in memory
//!   unless the column is null, so it is written `(col IS NOT NULL AND NULL)`: false for a null
//!   column, SQL `NULL` (no row, even under `NOT`) otherwise;
//! - `IN` lists keep the values that can equal a value of the column (others are simply unequal
//!   in memory too); an integer column compared with a non-integral number compares as a double,
//!   as in memory;
//! - two record fields compared with each other need both to be non-null;
//! - [`Predicate::Unknown`] is `NULL`.
//!
//! - a decimal, date, datetime or reference column compares with the value's canonical text for
//!   its type ([`Comparison::canonical`], the evaluator's own conversion): decimals as exact
//!   numbers (`numeric` on PostgreSQL, the `decimal` collation on SQLite), timestamps as
//!   instants, uuids as 128-bit values; a value without one is a mismatch.
//!
//! The schema validator refuses the conditions this cannot keep exact (conditions on JSON fields
//! other than `exists`: JSON has no order, and the databases' equality of JSON differs).

use super::column::{Col, eq_expr, is_textual, resolve, sort_expr, value_fits, write_param};
use super::render::Binds;
use super::{FieldType, QueryError};
use crate::Dialect;
use metaengine_core::ident::quote_ident;
use metaengine_core::policy::{CompareOp, Predicate, RowFilter};
use metaengine_core::record::Comparison;
use metaengine_core::{CompiledModel, SqlValue};
use serde_json::Value;

/// The row filter as ` AND …` (empty for [`RowFilter::All`]), placeholders continued.
pub(super) fn row_filter_condition(
    binds: &mut Binds,
    model: &CompiledModel,
    row_filter: &RowFilter,
) -> Result<String, QueryError> {
    match row_filter {
        RowFilter::All => Ok(String::new()),
        RowFilter::Nothing => Ok(format!(" AND {}", binds.constant(false))),
        RowFilter::Where(p) => {
            let mut r = Renderer { binds, model };
            let sql = r.render(p)?;
            Ok(format!(" AND ({sql})"))
        }
    }
}

/// A predicate value converted for a column.
enum Typed {
    /// A value of the column's own type.
    Exact(SqlValue),
    /// A non-integral number against an integer column: compared as a double.
    FloatOnInteger(f64),
    /// A value no value of the column can be compared with.
    Mismatch,
}

/// `value` (non-null) as a value of a column of type `ty`, the way the in-memory evaluator
/// compares them: numbers with numbers, strings with strings, booleans with booleans.
fn typed(ty: FieldType, value: &Value) -> Typed {
    let exact = |v: SqlValue| {
        if value_fits(ty, &v) {
            Typed::Exact(v)
        } else {
            Typed::Mismatch
        }
    };
    match (ty, value) {
        (FieldType::Integer, Value::Number(n)) => match n.as_i64() {
            Some(i) => Typed::Exact(SqlValue::Int(i)),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
                    #[expect(clippy::cast_possible_truncation, reason = "integral and in range")]
                    let i = f as i64;
                    Typed::Exact(SqlValue::Int(i))
                }
                Some(f) if f.is_finite() => Typed::FloatOnInteger(f),
                _ => Typed::Mismatch,
            },
        },
        (FieldType::Number, Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => Typed::Exact(SqlValue::Float(f)),
            _ => Typed::Mismatch,
        },
        (FieldType::Decimal | FieldType::Date | FieldType::Datetime | FieldType::Reference, v) => {
            match Comparison::of(ty).canonical(v) {
                Some(text) => exact(SqlValue::Text(text)),
                None => Typed::Mismatch,
            }
        }
        (FieldType::Boolean, Value::Bool(b)) => Typed::Exact(SqlValue::Bool(*b)),
        (FieldType::Json | FieldType::Integer | FieldType::Number | FieldType::Boolean, _) => {
            Typed::Mismatch
        }
        (_, Value::String(s)) => exact(SqlValue::Text(s.clone())),
        _ => Typed::Mismatch,
    }
}

/// Whether `op` orders (rather than compares for equality).
fn ordering(op: CompareOp) -> bool {
    !matches!(op, CompareOp::Eq | CompareOp::Ne)
}

fn sign(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Gt => ">",
        CompareOp::Gte => ">=",
        CompareOp::Lt => "<",
        CompareOp::Lte => "<=",
    }
}

/// Values of the two types compare in memory (numbers with numbers, strings with strings,
/// booleans with booleans for equality, decimals, dates, timestamps and uuids each with their
/// own kind).
fn comparable(a: FieldType, b: FieldType, op: CompareOp) -> bool {
    let numeric = |t| matches!(t, FieldType::Integer | FieldType::Number);
    let typed = Comparison::of(a);
    (numeric(a) && numeric(b))
        || (is_textual(a) && is_textual(b))
        || (a == FieldType::Boolean && b == FieldType::Boolean && !ordering(op))
        || (typed != Comparison::Json && typed == Comparison::of(b))
}

struct Renderer<'b, 'm> {
    binds: &'b mut Binds,
    model: &'m CompiledModel,
}

impl<'m> Renderer<'_, 'm> {
    fn column(&self, field: &str) -> Result<Col<'m>, QueryError> {
        resolve(self.model, field).map_err(|_| QueryError::RowFilterField {
            field: field.to_owned(),
        })
    }

    fn constant(&self, b: bool) -> String {
        self.binds.constant(b).to_owned()
    }

    /// False for a null column, unknown otherwise: a comparison the evaluator cannot make.
    fn mismatch(q: &str) -> String {
        format!("({q} IS NOT NULL AND NULL)")
    }

    fn join(&mut self, parts: &[Predicate], sep: &str, empty: bool) -> Result<String, QueryError> {
        if parts.is_empty() {
            return Ok(self.constant(empty));
        }
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            out.push(self.render(part)?);
        }
        Ok(format!("({})", out.join(sep)))
    }

    fn render(&mut self, p: &Predicate) -> Result<String, QueryError> {
        Ok(match p {
            Predicate::And(parts) => self.join(parts, " AND ", true)?,
            Predicate::Or(parts) => self.join(parts, " OR ", false)?,
            Predicate::Not(inner) => format!("NOT ({})", self.render(inner)?),
            Predicate::Compare {
                field, op, value, ..
            } => self.compare(field, *op, value)?,
            Predicate::CompareFields {
                left, op, right, ..
            } => self.compare_fields(left, *op, right)?,
            Predicate::In {
                field,
                values,
                negated,
                ..
            } => self.in_list(field, values, *negated)?,
            Predicate::IsNull { field, negated } => {
                let q = quote_ident(self.column(field)?.column);
                let not = if *negated { "NOT " } else { "" };
                format!("{q} IS {not}NULL")
            }
            Predicate::Contains { field, value, .. } => self.contains(field, value)?,
            Predicate::StartsWith { field, value } => self.starts_with(field, value)?,
            Predicate::True => self.constant(true),
            Predicate::False => self.constant(false),
            Predicate::Unknown => "NULL".to_owned(),
        })
    }

    fn compare(&mut self, field: &str, op: CompareOp, value: &Value) -> Result<String, QueryError> {
        let col = self.column(field)?;
        let dialect = self.binds.dialect;
        let q = quote_ident(col.column);
        if value.is_null() {
            return Ok(self.constant(false));
        }
        let ordered_ok = !ordering(op) || !matches!(col.ty, FieldType::Boolean | FieldType::Json);
        let (expr, param) = match typed(col.ty, value) {
            Typed::Mismatch => return Ok(Self::mismatch(&q)),
            _ if !ordered_ok => return Ok(Self::mismatch(&q)),
            Typed::Exact(v) => {
                let expr = if ordering(op) {
                    sort_expr(dialect, &col)
                } else {
                    eq_expr(dialect, &col)
                };
                let p = self.binds.bind(v);
                (expr, write_param(dialect, col.ty, &p))
            }
            Typed::FloatOnInteger(f) => {
                let p = self.binds.bind(SqlValue::Float(f));
                let param = match dialect {
                    Dialect::Postgres => format!("{p}::float8"),
                    Dialect::Sqlite => p,
                };
                (q.clone(), param)
            }
        };
        Ok(format!("({expr} {} {param} AND {q} IS NOT NULL)", sign(op)))
    }

    fn compare_fields(
        &mut self,
        left: &str,
        op: CompareOp,
        right: &str,
    ) -> Result<String, QueryError> {
        let (a, b) = (self.column(left)?, self.column(right)?);
        let dialect = self.binds.dialect;
        let (qa, qb) = (quote_ident(a.column), quote_ident(b.column));
        let both = format!("{qa} IS NOT NULL AND {qb} IS NOT NULL");
        if !comparable(a.ty, b.ty, op) {
            return Ok(format!("({both} AND NULL)"));
        }
        let expr = |c: &Col<'_>| {
            if ordering(op) {
                sort_expr(dialect, c)
            } else {
                eq_expr(dialect, c)
            }
        };
        Ok(format!(
            "({} {} {} AND {both})",
            expr(&a),
            sign(op),
            expr(&b)
        ))
    }

    fn in_list(
        &mut self,
        field: &str,
        values: &[Value],
        negated: bool,
    ) -> Result<String, QueryError> {
        let col = self.column(field)?;
        let dialect = self.binds.dialect;
        let q = quote_ident(col.column);
        let mut params = Vec::new();
        if col.ty != FieldType::Json {
            for v in values.iter().filter(|v| !v.is_null()) {
                if let Typed::Exact(v) = typed(col.ty, v) {
                    let p = self.binds.bind(v);
                    params.push(write_param(dialect, col.ty, &p));
                }
            }
        }
        if params.is_empty() {
            return Ok(if negated {
                format!("{q} IS NOT NULL")
            } else {
                self.constant(false)
            });
        }
        let not = if negated { "NOT " } else { "" };
        Ok(format!(
            "({} {not}IN ({}) AND {q} IS NOT NULL)",
            eq_expr(dialect, &col),
            params.join(", ")
        ))
    }

    fn contains(&mut self, field: &str, value: &Value) -> Result<String, QueryError> {
        let col = self.column(field)?;
        let q = quote_ident(col.column);
        if value.is_null() {
            return Ok(self.constant(false));
        }
        let (true, Value::String(s)) = (is_textual(col.ty), value) else {
            return Ok(Self::mismatch(&q));
        };
        let p = self.binds.bind(SqlValue::Text(s.clone()));
        Ok(match self.binds.dialect {
            Dialect::Postgres => format!("(strpos({q}, {p}) > 0 AND {q} IS NOT NULL)"),
            Dialect::Sqlite => format!("(instr({q}, {p}) > 0 AND {q} IS NOT NULL)"),
        })
    }

    /// `field` starts with `prefix` (a textual column; anything else cannot be compared).
    fn starts_with(&mut self, field: &str, prefix: &str) -> Result<String, QueryError> {
        let col = self.column(field)?;
        let q = quote_ident(col.column);
        if !is_textual(col.ty) {
            return Ok(Self::mismatch(&q));
        }
        Ok(match self.binds.dialect {
            Dialect::Postgres => {
                let p = self.binds.bind(SqlValue::Text(prefix.to_owned()));
                format!("(starts_with({q}, {p}) AND {q} IS NOT NULL)")
            }
            Dialect::Sqlite => {
                let a = self.binds.bind(SqlValue::Text(prefix.to_owned()));
                let b = self.binds.bind(SqlValue::Text(prefix.to_owned()));
                format!("(substr({q}, 1, length({a})) = {b} AND {q} IS NOT NULL)")
            }
        })
    }
}
