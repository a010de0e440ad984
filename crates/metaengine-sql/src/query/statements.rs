//! The statements: list, count, get, exists, insert (one record or a batch), update, delete.

use super::column::{
    Col, ID, checked, is_datetime, is_uuid, key_text, param_cast, record_columns, resolve,
    write_param,
};
use super::cursor::cursor_key;
use super::expand::{Expansion, Link, alias, expansion_values, forward_lateral, record_object};
use super::prebuilt::prebuilt;
use super::record::{RecordColumns, record_select};
use super::render::{
    Binds, bind_id, bind_scope, filter_condition, id_condition, keyset_condition, order_by,
    scope_condition,
};
use super::row_filter::row_filter_condition;
use super::{
    ExpandColumns, Filter, ListQuery, MAX_BINDS, NewRow, QueryBuilder, QueryError, Related, Scope,
    Statement,
};
use crate::qualified_table;
use metaengine_core::ident::{SYSTEM_COLUMNS, quote_ident};
use metaengine_core::policy::RowFilter;
use metaengine_core::{FieldType, SqlValue};
use std::collections::HashSet;
use std::sync::Arc;

/// A row of a batch insert: its id and its values, in its shape's column order.
pub(super) type RowValues<'r> = (&'r str, Vec<SqlValue>);

/// Rows of a batch that write the same columns: the columns and the rows.
pub(super) type RowGroup<'a> = (Vec<Col<'a>>, Vec<RowValues<'a>>);

/// Order of a list without one: `createdAt` ascending.
const DEFAULT_ORDER: &str = "createdAt";

impl QueryBuilder<'_> {
    fn table(&self) -> Arc<str> {
        prebuilt(self.dialect, self.model).table.clone()
    }

    /// Every record column: the select list and its shape.
    fn all_columns(&self) -> (Arc<str>, RecordColumns) {
        let p = prebuilt(self.dialect, self.model);
        (p.record.clone(), p.record_columns.clone())
    }

    fn finish(sql: String, binds: Binds, record: RecordColumns) -> Result<Statement, QueryError> {
        if binds.values.len() > MAX_BINDS {
            return Err(QueryError::TooManyValues {
                count: binds.values.len(),
            });
        }
        Ok(Statement {
            sql,
            binds: binds.values,
            record,
            expand: Vec::new(),
        })
    }

    /// `WHERE tenant AND realm [AND (row filter)] [AND filter]… [AND ref IN (SELECT "id" FROM
    /// target WHERE scope AND (target's row filter) AND filter…)]…`.
    fn where_clause(
        &self,
        binds: &mut Binds,
        scope: Scope<'_>,
        row_filter: &RowFilter,
        filters: &[Filter],
        related: &[Related<'_>],
    ) -> Result<String, QueryError> {
        let mut sql = format!(" WHERE {}", scope_condition(binds, scope));
        sql.push_str(&row_filter_condition(binds, self.model, row_filter)?);
        for filter in filters {
            sql.push_str(" AND ");
            sql.push_str(&filter_condition(binds, self.model, filter)?);
        }
        for r in related {
            let field = self
                .model
                .field(r.field)
                .filter(|f| {
                    f.field_type == FieldType::Reference
                        && f.validator.reference_to.as_deref() == Some(r.target.entity.as_str())
                })
                .ok_or_else(|| QueryError::UnknownField {
                    field: r.field.to_owned(),
                })?;
            // Unqualified names inside the subquery are the target's columns.
            let mut inner = format!(
                "SELECT \"id\" FROM {} AS \"__f\" WHERE {}",
                qualified_table(self.dialect, &r.target.table_name),
                scope_condition(binds, scope)
            );
            inner.push_str(&row_filter_condition(binds, r.target, r.row_filter)?);
            for filter in r.filters {
                inner.push_str(" AND ");
                inner.push_str(&filter_condition(binds, r.target, filter)?);
            }
            sql.push_str(&format!(
                " AND {} IN ({inner})",
                quote_ident(&field.column_name)
            ));
        }
        Ok(sql)
    }

    /// A page of records: `SELECT record…, __k, __id … WHERE scope AND (row filter) AND filters
    /// [AND keyset] ORDER BY … LIMIT limit + 1 [OFFSET offset, when not 0]` (see the module
    /// docs).
    pub fn list(&self, q: &ListQuery<'_>) -> Result<Statement, QueryError> {
        let (order_name, descending) = q
            .order
            .map_or((DEFAULT_ORDER, false), |o| (o.field.as_str(), o.descending));
        let order = resolve(self.model, order_name)?;
        if order.ty == FieldType::Json {
            return Err(QueryError::NotOrderable {
                field: order.name.to_owned(),
                field_type: order.ty,
            });
        }
        let mut cols = record_columns(self.model);
        let (record, record_shape) = match q.fields {
            None => self.all_columns(),
            Some(names) => {
                let mut chosen = HashSet::new();
                for name in names {
                    chosen.insert(resolve(self.model, name)?.name);
                }
                cols.retain(|c| c.column == ID.column || chosen.contains(c.name));
                let (list, record) = record_select(self.dialect, &cols);
                (list.into(), record)
            }
        };
        let mut binds = Binds::new(self.dialect);
        let (record, expand, from) =
            self.expanded(&mut binds, q.scope, record, &record_shape, &cols, q.expand)?;
        let mut sql = format!(
            "SELECT {record}, {} AS \"__k\", {} AS \"__id\" FROM {from}",
            key_text(self.dialect, &order),
            key_text(self.dialect, &ID),
        );
        sql.push_str(&self.where_clause(
            &mut binds,
            q.scope,
            q.row_filter,
            q.filters,
            q.related,
        )?);
        if let Some(cursor) = q.after {
            let (key, id) = cursor_key(&order, cursor)?;
            sql.push_str(" AND ");
            sql.push_str(&keyset_condition(&mut binds, &order, descending, key, id)?);
        }
        sql.push_str(" ORDER BY ");
        sql.push_str(&order_by(self.dialect, &order, descending));
        // The page size is written as a number, not bound: a prepared statement whose `LIMIT`
        // is a parameter gets a generic plan costed for 10 % of the matching rows, which
        // PostgreSQL then judges worse than planning each execution anew (0.06–0.09 ms, as much
        // as running the page) once a table is big or skewed. A `u32` the server holds, never
        // text from the request; each page size is its own prepared statement.
        sql.push_str(&format!(" LIMIT {}", u64::from(q.limit) + 1));
        // No `OFFSET` for the first page: with an `OFFSET $n` of unknown value, PostgreSQL
        // never trusts a generic plan for the prepared statement and plans every execution
        // anew (about 90 µs, as much as running the page).
        if q.after.is_none() && q.offset > 0 {
            let offset = i64::try_from(q.offset)
                .map_err(|_| QueryError::InvalidOffset { offset: q.offset })?;
            let offset = binds.bind(SqlValue::Int(offset));
            sql.push_str(&format!(" OFFSET {offset}"));
        }
        Self::finish(sql, binds, record_shape).map(|s| s.with_expand(expand))
    }

    /// The number of records a list with the same scope, row filter and filters would show:
    /// `SELECT COUNT(*) AS "count" …`.
    pub fn count(
        &self,
        scope: Scope<'_>,
        row_filter: &RowFilter,
        filters: &[Filter],
        related: &[Related<'_>],
    ) -> Result<Statement, QueryError> {
        let mut binds = Binds::new(self.dialect);
        let mut sql = format!("SELECT COUNT(*) AS \"count\" FROM {}", self.table());
        sql.push_str(&self.where_clause(&mut binds, scope, row_filter, filters, related)?);
        Self::finish(sql, binds, RecordColumns::None)
    }

    pub(super) fn check_id(id: &str) -> Result<(), QueryError> {
        if is_uuid(id) {
            Ok(())
        } else {
            Err(QueryError::InvalidId { id: id.to_owned() })
        }
    }

    /// One record by id: `SELECT record [, expansions] … WHERE scope AND id [AND (row
    /// filter)]`.
    pub fn get(
        &self,
        scope: Scope<'_>,
        id: &str,
        row_filter: Option<&RowFilter>,
        expand: &[Expansion<'_>],
    ) -> Result<Statement, QueryError> {
        Self::check_id(id)?;
        if row_filter.is_none() && expand.is_empty() {
            // The common get: its text is the model's, only its values are the request's.
            let p = prebuilt(self.dialect, self.model);
            let mut binds = Binds::new(self.dialect);
            bind_scope(&mut binds, scope);
            bind_id(&mut binds, id);
            return Self::finish(p.get_by_id.to_string(), binds, p.record_columns.clone());
        }
        self.get_written(scope, id, row_filter, expand)
    }

    /// [`QueryBuilder::get`], its text written for this request.
    pub(super) fn get_written(
        &self,
        scope: Scope<'_>,
        id: &str,
        row_filter: Option<&RowFilter>,
        expand: &[Expansion<'_>],
    ) -> Result<Statement, QueryError> {
        let mut binds = Binds::new(self.dialect);
        let (record, record_shape) = self.all_columns();
        let cols = record_columns(self.model);
        let (record, expand, from) =
            self.expanded(&mut binds, scope, record, &record_shape, &cols, expand)?;
        let mut sql = format!(
            "SELECT {record} FROM {from} WHERE {} AND {}",
            scope_condition(&mut binds, scope),
            id_condition(&mut binds, id)
        );
        if let Some(row_filter) = row_filter {
            sql.push_str(&row_filter_condition(&mut binds, self.model, row_filter)?);
        }
        Self::finish(sql, binds, record_shape).map(|s| s.with_expand(expand))
    }

    /// The record's select list, the keys of the expansion columns that follow it (PostgreSQL)
    /// and the `FROM` table, with `expansions` added: on PostgreSQL one JSON text column
    /// `"__x<n>"` per expansion after the record's columns, on SQLite inside the record's JSON.
    /// The table is aliased `"__e0"` when there are expansions, for their subqueries to refer
    /// to (see the `expand` module).
    fn expanded(
        &self,
        binds: &mut Binds,
        scope: Scope<'_>,
        record: Arc<str>,
        shape: &RecordColumns,
        cols: &[Col<'_>],
        expansions: &[Expansion<'_>],
    ) -> Result<(Arc<str>, Vec<ExpandColumns>, String), QueryError> {
        if expansions.is_empty() {
            return Ok((record, Vec::new(), self.table().to_string()));
        }
        let mut from = format!("{} AS {}", self.table(), alias(0));
        if !matches!(shape, RecordColumns::Columns(_)) {
            let values = expansion_values(binds, scope, self.model, 0, expansions)?;
            let object = record_object(self.dialect, cols, &values);
            return Ok((format!("{object} AS \"record\"").into(), Vec::new(), from));
        }
        // PostgreSQL: a forward expansion joins its record's columns; a reverse one is a JSON
        // text column.
        let mut list = record.to_string();
        let mut columns = Vec::with_capacity(expansions.len());
        for (i, e) in expansions.iter().enumerate() {
            if let Link::Forward { .. } = e.link {
                let (join, carried) = forward_lateral(binds, scope, self.model, i, e)?;
                from.push_str(&join);
                list.push_str(&format!(", \"__j{i}\".*"));
                columns.push(carried);
            } else {
                let values =
                    expansion_values(binds, scope, self.model, 0, std::slice::from_ref(e))?;
                for (key, value) in values {
                    list.push_str(&format!(", {value} AS \"__x{i}\""));
                    columns.push(ExpandColumns::Json { key });
                }
            }
        }
        Ok((list.into(), columns, from))
    }

    /// Whether a record exists (reference checks): `SELECT 1 … WHERE scope AND id [AND (row
    /// filter)]`.
    pub fn exists(
        &self,
        scope: Scope<'_>,
        id: &str,
        row_filter: &RowFilter,
    ) -> Result<Statement, QueryError> {
        Self::check_id(id)?;
        let mut binds = Binds::new(self.dialect);
        let mut sql = format!(
            "SELECT 1 FROM {} WHERE {} AND {}",
            self.table(),
            scope_condition(&mut binds, scope),
            id_condition(&mut binds, id)
        );
        sql.push_str(&row_filter_condition(&mut binds, self.model, row_filter)?);
        Self::finish(sql, binds, RecordColumns::None)
    }

    /// The field columns of a write, each with its checked value; refuses unknown, system and
    /// repeated fields.
    pub(super) fn write_columns<'a>(
        &'a self,
        values: &'a [(String, SqlValue)],
    ) -> Result<Vec<(Col<'a>, SqlValue)>, QueryError> {
        // A few fields (the usual write) are checked for repeats by a scan, many by a set.
        let mut seen = HashSet::new();
        let few = values.len() <= 32;
        let mut out: Vec<(Col<'a>, SqlValue)> = Vec::with_capacity(values.len());
        for (name, value) in values {
            let col = resolve(self.model, name)?;
            if col.system {
                return Err(QueryError::NotWritable {
                    field: name.clone(),
                });
            }
            let repeated = if few {
                out.iter().any(|(c, _)| c.name == col.name)
            } else {
                !seen.insert(col.name)
            };
            if repeated {
                return Err(QueryError::DuplicateField {
                    field: name.clone(),
                });
            }
            out.push((col, checked(&col, value)?));
        }
        Ok(out)
    }

    pub(super) fn check_now(now: &str) -> Result<(), QueryError> {
        if is_datetime(now) {
            Ok(())
        } else {
            Err(QueryError::InvalidValue {
                field: "updatedAt".to_owned(),
                field_type: FieldType::Datetime,
            })
        }
    }

    /// A new record: `INSERT … VALUES (tenant, realm, id, now, now, actor, actor, 1, values…)
    /// RETURNING record…`. `now` is `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn insert(
        &self,
        scope: Scope<'_>,
        id: &str,
        actor: &str,
        now: &str,
        values: &[(String, SqlValue)],
    ) -> Result<Statement, QueryError> {
        Self::check_id(id)?;
        Self::check_now(now)?;
        let d = self.dialect;
        let fields = self.write_columns(values)?;
        let mut binds = Binds::new(d);
        let text = |s: &str| SqlValue::Text(s.to_owned());
        let mut params = vec![
            binds.bind(text(scope.tenant_id)),
            binds.bind(text(scope.realm_id)),
            write_param(d, FieldType::Reference, &binds.bind(text(id))),
            write_param(d, FieldType::Datetime, &binds.bind(text(now))),
            write_param(d, FieldType::Datetime, &binds.bind(text(now))),
            binds.bind(text(actor)),
            binds.bind(text(actor)),
            "1".to_owned(),
        ];
        let mut columns: Vec<String> = SYSTEM_COLUMNS.iter().map(|c| quote_ident(c)).collect();
        for (col, value) in fields {
            columns.push(quote_ident(col.column));
            params.push(write_param(d, col.ty, &binds.bind(value)));
        }
        let (record, record_shape) = self.all_columns();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {record}",
            self.table(),
            columns.join(", "),
            params.join(", "),
        );
        Self::finish(sql, binds, record_shape)
    }

    /// A batch of new records (an import): multi-row `INSERT … VALUES (…), (…), …` statements
    /// without `RETURNING`, each row `(tenant, realm, id, now, now, actor, actor, 1, values…)`.
    /// The tenant, realm, time and actor are bound once per statement (`$1`…`$4`, repeated in
    /// every row); each row binds its id and its values. Rows that give the same fields share a
    /// statement (an absent field keeps its column default, which `VALUES` cannot say on
    /// SQLite); a statement holds as many rows as fit in [`MAX_BINDS`] values. Rows keep their
    /// order within a shape. Every row is checked like [`QueryBuilder::insert`]: one bad row
    /// fails the whole batch, and no statement is returned.
    pub fn insert_many(
        &self,
        scope: Scope<'_>,
        actor: &str,
        now: &str,
        rows: &[NewRow<'_>],
    ) -> Result<Vec<Statement>, QueryError> {
        self.insert_many_with(scope, actor, now, rows, false)
    }

    /// [`QueryBuilder::insert_many`] whose statements return each inserted row's record (like
    /// [`QueryBuilder::insert`]) and `__id` (its id as text), for a
    /// batch that answers with every record. The rows' order in the answer is not promised:
    /// match them by `__id`.
    pub fn insert_many_returning(
        &self,
        scope: Scope<'_>,
        actor: &str,
        now: &str,
        rows: &[NewRow<'_>],
    ) -> Result<Vec<Statement>, QueryError> {
        self.insert_many_with(scope, actor, now, rows, true)
    }

    fn insert_many_with(
        &self,
        scope: Scope<'_>,
        actor: &str,
        now: &str,
        rows: &[NewRow<'_>],
        returning: bool,
    ) -> Result<Vec<Statement>, QueryError> {
        let mut statements = Vec::new();
        for (cols, members) in self.grouped_rows(now, rows)? {
            let per_row = 1 + cols.len();
            let rows_per_statement = ((MAX_BINDS - 4) / per_row).max(1);
            let mut members = members.into_iter().peekable();
            while members.peek().is_some() {
                let chunk = members.by_ref().take(rows_per_statement);
                statements.push(self.insert_rows(scope, actor, now, &cols, chunk, returning)?);
            }
        }
        Ok(statements)
    }

    /// The rows of a batch, each checked like [`QueryBuilder::insert`] (one bad row fails the
    /// batch), grouped by the columns they write, groups in order of first appearance and rows
    /// in their order within a group.
    pub(super) fn grouped_rows<'a>(
        &'a self,
        now: &str,
        rows: &[NewRow<'a>],
    ) -> Result<Vec<RowGroup<'a>>, QueryError> {
        Self::check_now(now)?;
        let mut groups: Vec<RowGroup<'a>> = Vec::new();
        for row in rows {
            Self::check_id(row.id)?;
            let fields = self.write_columns(row.values)?;
            let group = groups.iter_mut().find(|(cols, _)| {
                cols.len() == fields.len()
                    && cols
                        .iter()
                        .zip(&fields)
                        .all(|(a, (b, _))| a.column == b.column)
            });
            let (cols, values): (Vec<Col<'_>>, Vec<SqlValue>) = fields.into_iter().unzip();
            match group {
                Some((_, members)) => members.push((row.id, values)),
                None => groups.push((cols, vec![(row.id, values)])),
            }
        }
        Ok(groups)
    }

    /// One multi-row insert of rows that all write `cols` (see [`QueryBuilder::insert_many`]).
    fn insert_rows<'r>(
        &self,
        scope: Scope<'_>,
        actor: &str,
        now: &str,
        cols: &[Col<'_>],
        rows: impl Iterator<Item = RowValues<'r>>,
        returning: bool,
    ) -> Result<Statement, QueryError> {
        use std::fmt::Write as _;
        let d = self.dialect;
        let mut binds = Binds::new(d);
        let text = |s: &str| SqlValue::Text(s.to_owned());
        let tenant = binds.bind(text(scope.tenant_id));
        let realm = binds.bind(text(scope.realm_id));
        let now = write_param(d, FieldType::Datetime, &binds.bind(text(now)));
        let actor = binds.bind(text(actor));
        let mut columns: Vec<String> = SYSTEM_COLUMNS.iter().map(|c| quote_ident(c)).collect();
        columns.extend(cols.iter().map(|c| quote_ident(c.column)));
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table(),
            columns.join(", ")
        );
        let casts: Vec<&str> = cols.iter().map(|c| param_cast(d, c.ty)).collect();
        let id_cast = param_cast(d, FieldType::Reference);
        for (i, (id, values)) in rows.enumerate() {
            sql.push_str(if i > 0 { ", (" } else { "(" });
            let _ = write!(sql, "{tenant}, {realm}, ");
            binds.bind_into(text(id), id_cast, &mut sql);
            let _ = write!(sql, ", {now}, {now}, {actor}, {actor}, 1");
            for (value, cast) in values.into_iter().zip(&casts) {
                sql.push_str(", ");
                binds.bind_into(value, cast, &mut sql);
            }
            sql.push(')');
        }
        let mut record_shape = RecordColumns::None;
        if returning {
            let id = match d {
                crate::Dialect::Postgres => "\"id\"::text",
                crate::Dialect::Sqlite => "\"id\"",
            };
            let (record, all) = self.all_columns();
            let _ = write!(sql, " RETURNING {record}, {id} AS \"__id\"");
            record_shape = all;
        }
        Self::finish(sql, binds, record_shape)
    }

    /// A partial update: `UPDATE … SET values…, row_version + 1, updated_at, updated_by WHERE
    /// scope AND id [AND row_version = expected] RETURNING record…`. No row back means a missing
    /// record or, with `expected_row_version`, possibly a stale one (the caller tells them apart).
    pub fn update(
        &self,
        scope: Scope<'_>,
        id: &str,
        actor: &str,
        now: &str,
        values: &[(String, SqlValue)],
        expected_row_version: Option<i64>,
    ) -> Result<Statement, QueryError> {
        Self::check_id(id)?;
        Self::check_now(now)?;
        let d = self.dialect;
        let fields = self.write_columns(values)?;
        let mut binds = Binds::new(d);
        let mut sets = Vec::with_capacity(fields.len() + 3);
        for (col, value) in fields {
            let p = write_param(d, col.ty, &binds.bind(value));
            sets.push(format!("{} = {p}", quote_ident(col.column)));
        }
        let rv = quote_ident("row_version");
        sets.push(format!("{rv} = {rv} + 1"));
        let p = write_param(
            d,
            FieldType::Datetime,
            &binds.bind(SqlValue::Text(now.to_owned())),
        );
        sets.push(format!("{} = {p}", quote_ident("updated_at")));
        let p = binds.bind(SqlValue::Text(actor.to_owned()));
        sets.push(format!("{} = {p}", quote_ident("updated_by")));
        let mut sql = format!(
            "UPDATE {} SET {} WHERE {} AND {}",
            self.table(),
            sets.join(", "),
            scope_condition(&mut binds, scope),
            id_condition(&mut binds, id)
        );
        if let Some(expected) = expected_row_version {
            let p = binds.bind(SqlValue::Int(expected));
            sql.push_str(&format!(" AND {rv} = {p}"));
        }
        let (record, record_shape) = self.all_columns();
        sql.push_str(&format!(" RETURNING {record}"));
        Self::finish(sql, binds, record_shape)
    }

    /// A deletion: `DELETE … WHERE scope AND id [AND row_version = expected] RETURNING record…`
    /// (the deleted record, for the audit trail).
    pub fn delete(
        &self,
        scope: Scope<'_>,
        id: &str,
        expected_row_version: Option<i64>,
    ) -> Result<Statement, QueryError> {
        Self::check_id(id)?;
        let mut binds = Binds::new(self.dialect);
        let mut sql = format!(
            "DELETE FROM {} WHERE {} AND {}",
            self.table(),
            scope_condition(&mut binds, scope),
            id_condition(&mut binds, id)
        );
        if let Some(expected) = expected_row_version {
            let p = binds.bind(SqlValue::Int(expected));
            sql.push_str(&format!(" AND {} = {p}", quote_ident("row_version")));
        }
        let (record, record_shape) = self.all_columns();
        sql.push_str(&format!(" RETURNING {record}"));
        Self::finish(sql, binds, record_shape)
    }
}
