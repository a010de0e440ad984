//! A bulk load on PostgreSQL: `COPY … FROM STDIN` in text format, the import's fast path.
//!
//! The statement names the table and the columns (from the model); the values travel in the
//! data stream, never in SQL text. In that stream a tab ends a value and a newline a row, so
//! every value is escaped (backslash, tab, newline, carriage return, as PostgreSQL's text format
//! requires): a value can never start another column or another row, say of another tenant.
//! Each value is checked for its column exactly as [`QueryBuilder::insert_many`] checks it.

use std::fmt::Write as _;

use super::column::Col;
use super::{NewRow, QueryBuilder, QueryError, Scope};
use crate::{Dialect, qualified_table};
use metaengine_core::SqlValue;
use metaengine_core::ident::{SYSTEM_COLUMNS, quote_ident};

/// One `COPY` of rows that all write the same fields: the statement and its data (PostgreSQL's
/// text format, one line per row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIn {
    /// `COPY "core"."ent_x" ("tenant_id", …) FROM STDIN`.
    pub sql: String,
    /// The rows, tab-separated values, newline-terminated.
    pub data: Vec<u8>,
    /// Rows in `data`.
    pub rows: u64,
}

impl QueryBuilder<'_> {
    /// The rows of a batch as `COPY`s, one per set of written fields (an absent field keeps its
    /// column default), rows in their order within a set; each row `(tenant, realm, id, now,
    /// now, actor, actor, 1, values…)`. PostgreSQL only: `None` on SQLite, which has no `COPY`
    /// (use [`QueryBuilder::insert_many`]). Every row is checked like [`QueryBuilder::insert`]:
    /// one bad row fails the whole batch.
    pub fn copy_rows(
        &self,
        scope: Scope<'_>,
        actor: &str,
        now: &str,
        rows: &[NewRow<'_>],
    ) -> Result<Option<Vec<CopyIn>>, QueryError> {
        if self.dialect != Dialect::Postgres {
            return Ok(None);
        }
        let mut copies = Vec::new();
        for (cols, members) in self.grouped_rows(now, rows)? {
            let mut copy = CopyIn {
                sql: self.copy_statement(&cols),
                data: Vec::new(),
                rows: 0,
            };
            for (id, values) in members {
                for system in [scope.tenant_id, scope.realm_id, id, now, now, actor, actor] {
                    text(&mut copy.data, system);
                    copy.data.push(b'\t');
                }
                copy.data.push(b'1');
                for value in &values {
                    copy.data.push(b'\t');
                    value_text(&mut copy.data, value);
                }
                copy.data.push(b'\n');
                copy.rows += 1;
            }
            copies.push(copy);
        }
        Ok(Some(copies))
    }

    fn copy_statement(&self, cols: &[Col<'_>]) -> String {
        let mut columns: Vec<String> = SYSTEM_COLUMNS.iter().map(|c| quote_ident(c)).collect();
        columns.extend(cols.iter().map(|c| quote_ident(c.column)));
        format!(
            "COPY {} ({}) FROM STDIN",
            qualified_table(self.dialect, &self.model.table_name),
            columns.join(", ")
        )
    }
}

/// A checked value in PostgreSQL's text format: `\N` for null, `t` / `f`, numbers as Rust
/// prints them (every digit of an `f64`, no exponent), text escaped.
fn value_text(out: &mut Vec<u8>, value: &SqlValue) {
    match value {
        SqlValue::Null => out.extend_from_slice(b"\\N"),
        SqlValue::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        SqlValue::Int(i) => {
            let mut s = String::new();
            let _ = write!(s, "{i}");
            out.extend_from_slice(s.as_bytes());
        }
        SqlValue::Float(f) => {
            let mut s = String::new();
            let _ = write!(s, "{f}");
            out.extend_from_slice(s.as_bytes());
        }
        SqlValue::Text(s) => text(out, s),
    }
}

/// Text with the four characters the format gives a meaning escaped.
fn text(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::tests::{ID1, invoice, lite, pg, scope};

    const ID2: &str = "0190f1a2-3b4c-7d5e-8f60-718293a4b5c7";

    const NOW: &str = "2026-11-26T10:00:00.000Z";

    fn t(s: &str) -> SqlValue {
        SqlValue::Text(s.to_owned())
    }

    #[test]
    fn rows_become_escaped_lines_grouped_by_their_fields() {
        let m = invoice();
        let a = vec![
            ("totalAmount".to_owned(), t("12.50")),
            ("status".to_owned(), t("paid\t\\N\nt2\tr1")),
        ];
        let b = vec![("totalAmount".to_owned(), t("3"))];
        let rows = [
            NewRow {
                id: ID1,
                values: &a,
            },
            NewRow {
                id: ID2,
                values: &b,
            },
        ];
        let copies = pg(&m)
            .copy_rows(scope(), "u\t1", NOW, &rows)
            .unwrap()
            .unwrap();
        assert_eq!(copies.len(), 2);
        assert_eq!(
            copies[0].sql,
            r#"COPY "core"."ent_invoice" ("tenant_id", "realm_id", "id", "created_at", "updated_at", "created_by", "updated_by", "row_version", "total_amount", "status") FROM STDIN"#
        );
        let line = String::from_utf8(copies[0].data.clone()).unwrap();
        assert_eq!(
            line,
            format!(
                "acme\tmain\t{ID1}\t{NOW}\t{NOW}\tu\\t1\tu\\t1\t1\t12.50\tpaid\\t\\\\N\\nt2\\tr1\n"
            )
        );
        // One line per row, whatever the values hold.
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(copies[0].rows, 1);
        assert!(
            copies[1]
                .sql
                .ends_with(r#""row_version", "total_amount") FROM STDIN"#)
        );
        assert!(
            lite(&m)
                .copy_rows(scope(), "u", NOW, &rows)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_bad_value_fails_the_whole_batch() {
        let m = invoice();
        let a = vec![("totalAmount".to_owned(), t("12.50"))];
        let b = vec![("totalAmount".to_owned(), t("twelve"))];
        let rows = [
            NewRow {
                id: ID1,
                values: &a,
            },
            NewRow {
                id: ID2,
                values: &b,
            },
        ];
        assert!(pg(&m).copy_rows(scope(), "u", NOW, &rows).is_err());
    }

    #[test]
    fn values_print_in_the_text_format() {
        let mut out = Vec::new();
        for v in [
            SqlValue::Null,
            SqlValue::Bool(true),
            SqlValue::Int(-7),
            SqlValue::Float(0.1),
            SqlValue::Float(1e20),
        ] {
            value_text(&mut out, &v);
            out.push(b' ');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\\N t -7 0.1 100000000000000000000 "
        );
    }
}
