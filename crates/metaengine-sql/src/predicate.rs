//! A row filter [`Predicate`] rendered as SQL text with placeholders and the values to bind.
//!
//! Fields become columns through the caller's `column_of` and [`quote_ident`] only; every value is
//! a bound parameter, never SQL text. Placeholders are numbered from `first_placeholder`: `$n` on
//! PostgreSQL, `?n` on SQLite (its numbered form).
//!
//! The SQL keeps the evaluator's semantics ([`metaengine_core::policy::eval_predicate`]): each
//! comparison is written `(col op $n AND col IS NOT NULL)`, so a null column makes it false rather
//! than `NULL`, and `NOT` of it true, as in memory; a comparison with a null value is `FALSE`; null
//! values are left out of `IN` lists; [`Predicate::Unknown`] is `NULL`, which lets no row in, even
//! under `NOT`. Not covered: a value whose JSON type differs from the column's (PostgreSQL refuses
//! the query, which fails secure; the schema validator should refuse such a policy) and
//! `contains` on a JSON array column.

use crate::Dialect;
use metaengine_core::ident::quote_ident;
use metaengine_core::policy::{CompareOp, Predicate};
use serde_json::Value;
use std::fmt::Write as _;

/// Why a predicate could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredicateError {
    /// The predicate names a field the caller does not know.
    #[error("unknown field `{field}` in a row filter")]
    UnknownField {
        /// The field.
        field: String,
    },
}

/// Renders `p` as SQL text and the values to bind, in placeholder order.
pub fn render_predicate(
    dialect: Dialect,
    p: &Predicate,
    column_of: &dyn Fn(&str) -> Option<String>,
    first_placeholder: usize,
) -> Result<(String, Vec<Value>), PredicateError> {
    let mut r = Renderer {
        dialect,
        column_of,
        next: first_placeholder,
        sql: String::new(),
        binds: Vec::new(),
    };
    r.render(p)?;
    Ok((r.sql, r.binds))
}

struct Renderer<'a> {
    dialect: Dialect,
    column_of: &'a dyn Fn(&str) -> Option<String>,
    next: usize,
    sql: String,
    binds: Vec<Value>,
}

impl Renderer<'_> {
    fn column(&self, field: &str) -> Result<String, PredicateError> {
        (self.column_of)(field)
            .map(|c| quote_ident(&c))
            .ok_or_else(|| PredicateError::UnknownField {
                field: field.to_owned(),
            })
    }

    fn bind(&mut self, value: &Value) {
        let mark = match self.dialect {
            Dialect::Postgres => '$',
            Dialect::Sqlite => '?',
        };
        let _ = write!(self.sql, "{mark}{}", self.next);
        self.next += 1;
        self.binds.push(value.clone());
    }

    fn constant(&mut self, b: bool) {
        self.sql.push_str(match (self.dialect, b) {
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
        });
    }

    fn join(&mut self, parts: &[Predicate], sep: &str, empty: bool) -> Result<(), PredicateError> {
        if parts.is_empty() {
            self.constant(empty);
            return Ok(());
        }
        self.sql.push('(');
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(sep);
            }
            self.render(part)?;
        }
        self.sql.push(')');
        Ok(())
    }

    fn render(&mut self, p: &Predicate) -> Result<(), PredicateError> {
        match p {
            Predicate::And(parts) => self.join(parts, " AND ", true)?,
            Predicate::Or(parts) => self.join(parts, " OR ", false)?,
            Predicate::Not(inner) => {
                self.sql.push_str("NOT (");
                self.render(inner)?;
                self.sql.push(')');
            }
            Predicate::Compare { field, op, value } => {
                let col = self.column(field)?;
                if value.is_null() {
                    self.constant(false);
                    return Ok(());
                }
                let op = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Ne => "<>",
                    CompareOp::Gt => ">",
                    CompareOp::Gte => ">=",
                    CompareOp::Lt => "<",
                    CompareOp::Lte => "<=",
                };
                let _ = write!(self.sql, "({col} {op} ");
                self.bind(value);
                let _ = write!(self.sql, " AND {col} IS NOT NULL)");
            }
            Predicate::In {
                field,
                values,
                negated,
            } => {
                let col = self.column(field)?;
                let values: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
                if values.is_empty() {
                    if *negated {
                        let _ = write!(self.sql, "{col} IS NOT NULL");
                    } else {
                        self.constant(false);
                    }
                    return Ok(());
                }
                let not = if *negated { "NOT " } else { "" };
                let _ = write!(self.sql, "({col} {not}IN (");
                for (i, v) in values.into_iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.bind(v);
                }
                let _ = write!(self.sql, ") AND {col} IS NOT NULL)");
            }
            Predicate::IsNull { field, negated } => {
                let col = self.column(field)?;
                let not = if *negated { "NOT " } else { "" };
                let _ = write!(self.sql, "{col} IS {not}NULL");
            }
            Predicate::Contains { field, value } => {
                let col = self.column(field)?;
                if value.is_null() {
                    self.constant(false);
                    return Ok(());
                }
                let func = match self.dialect {
                    Dialect::Postgres => "strpos",
                    Dialect::Sqlite => "instr",
                };
                let _ = write!(self.sql, "({func}({col}, ");
                self.bind(value);
                let _ = write!(self.sql, ") > 0 AND {col} IS NOT NULL)");
            }
            Predicate::True => self.constant(true),
            Predicate::False => self.constant(false),
            Predicate::Unknown => self.sql.push_str("NULL"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column_of(field: &str) -> Option<String> {
        match field {
            "createdBy" => Some("created_by".to_owned()),
            "status" => Some("status".to_owned()),
            "customerName" => Some("customer_name".to_owned()),
            _ => None,
        }
    }

    fn render(dialect: Dialect, p: &Predicate, first: usize) -> (String, Vec<Value>) {
        render_predicate(dialect, p, &column_of, first).unwrap()
    }

    fn cmp(field: &str, op: CompareOp, value: Value) -> Predicate {
        Predicate::Compare {
            field: field.to_owned(),
            op,
            value,
        }
    }

    fn sample() -> Predicate {
        Predicate::And(vec![
            Predicate::Or(vec![
                cmp("createdBy", CompareOp::Eq, json!("u1")),
                Predicate::In {
                    field: "status".to_owned(),
                    values: vec![json!("draft"), Value::Null, json!("sent")],
                    negated: false,
                },
            ]),
            Predicate::Not(Box::new(Predicate::Contains {
                field: "customerName".to_owned(),
                value: json!("ACME"),
            })),
            Predicate::IsNull {
                field: "status".to_owned(),
                negated: true,
            },
        ])
    }

    #[test]
    fn postgres() {
        let (sql, binds) = render(Dialect::Postgres, &sample(), 3);
        assert_eq!(
            sql,
            r#"((("created_by" = $3 AND "created_by" IS NOT NULL) OR ("status" IN ($4, $5) AND "status" IS NOT NULL)) AND NOT ((strpos("customer_name", $6) > 0 AND "customer_name" IS NOT NULL)) AND "status" IS NOT NULL)"#
        );
        assert_eq!(
            binds,
            [json!("u1"), json!("draft"), json!("sent"), json!("ACME")]
        );
    }

    #[test]
    fn sqlite() {
        let (sql, binds) = render(Dialect::Sqlite, &sample(), 1);
        assert_eq!(
            sql,
            r#"((("created_by" = ?1 AND "created_by" IS NOT NULL) OR ("status" IN (?2, ?3) AND "status" IS NOT NULL)) AND NOT ((instr("customer_name", ?4) > 0 AND "customer_name" IS NOT NULL)) AND "status" IS NOT NULL)"#
        );
        assert_eq!(binds.len(), 4);
    }

    #[test]
    fn constants_and_edge_cases() {
        let (pg, _) = render(Dialect::Postgres, &Predicate::True, 1);
        let (lite, _) = render(Dialect::Sqlite, &Predicate::False, 1);
        assert_eq!((pg.as_str(), lite.as_str()), ("TRUE", "0"));
        let p = Predicate::Not(Box::new(Predicate::Unknown));
        assert_eq!(render(Dialect::Postgres, &p, 1).0, "NOT (NULL)");
        let p = cmp("status", CompareOp::Ne, Value::Null);
        assert_eq!(render(Dialect::Sqlite, &p, 1), ("0".to_owned(), vec![]));
        let p = Predicate::In {
            field: "status".to_owned(),
            values: vec![],
            negated: true,
        };
        assert_eq!(
            render(Dialect::Postgres, &p, 1).0,
            r#""status" IS NOT NULL"#
        );
        let p = cmp("status", CompareOp::Lte, json!(3));
        assert_eq!(
            render(Dialect::Postgres, &p, 7),
            (
                r#"("status" <= $7 AND "status" IS NOT NULL)"#.to_owned(),
                vec![json!(3)]
            )
        );
    }

    #[test]
    fn injection_stays_a_bound_value() {
        let evil = "x'; DROP TABLE ent_invoice; --";
        let p = cmp("createdBy", CompareOp::Eq, json!(evil));
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let (sql, binds) = render(dialect, &p, 1);
            assert!(!sql.contains("DROP"), "{sql}");
            assert_eq!(binds, [json!(evil)]);
        }
    }

    #[test]
    fn unknown_field_is_an_error_never_text() {
        let p = cmp(r#"x" = "x"#, CompareOp::Eq, json!(1));
        let err = render_predicate(Dialect::Postgres, &p, &column_of, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown field `x" = "x` in a row filter"#
        );
    }
}
