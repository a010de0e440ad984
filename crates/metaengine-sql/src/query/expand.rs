//! Expansions of a list or get (SPEC §13): the records a reference points at, or that point at
//! the record, added under the record's `"expand"` object by the SAME statement as the page.
//!
//! Each expansion is a correlated scalar subquery in the select list, whose value is JSON text
//! (or `NULL`):
//! - **forward** (`expand=customerId`): `(SELECT <target record> FROM <target> AS "__e1" WHERE
//!   <scope> AND "id" = "__e0"."customer_id" <target's row filter>)`, `NULL` when the reference
//!   is null or names no record the caller may read;
//! - **reverse** (`expand=Invoice_via_customerId`): the referring records, ordered by `id`, at
//!   most [`REVERSE_LIMIT`], as an array (`[]` when none): a derived table with `ORDER BY "id"
//!   LIMIT 100`, aggregated (`string_agg` on PostgreSQL, `json_group_array` on SQLite, each with
//!   its own `ORDER BY`).
//!
//! The table of each level is aliased `"__e<depth>"` (the page's own table `"__e0"`); a level
//! refers to its parent's row only through that alias, and everything else in it (its scope, the
//! target's row filter, the target's columns) is unqualified, so it resolves to its own table.
//! Nested expansions sit in the expanded record's own `"expand"`, built by the database: SQLite
//! with `json_object` and `json_insert`, PostgreSQL by concatenating each column's JSON text
//! (the same values as the page's records; see the module docs of `query`).
//!
//! One exception, for speed: on PostgreSQL a forward expansion of the page's own rows is a
//! `LEFT JOIN LATERAL` of the same subquery returning the target's columns
//! ([`forward_lateral`], [`ExpandColumns::Record`]), whose JSON the store writes as it does the
//! page's records.
//!
//! The caller resolves names (fields, entities) against the active models and gives the builder
//! the tree; the builder checks that every link is a reference between the two models, so a
//! wrong tree is a [`QueryError`], never SQL text.

use super::column::{Col, is_textual, pg_date_text, record_columns, resolve};
use super::record::{pg_column_as, shape_of, sqlite_json};
use super::render::{Binds, scope_condition};
use super::row_filter::row_filter_condition;
use super::{ExpandColumns, QueryError, Scope};
use crate::{Dialect, qualified_table};
use metaengine_core::ident::quote_ident;
use metaengine_core::policy::RowFilter;
use metaengine_core::{CompiledModel, FieldType};

/// Most records of a reverse expansion per parent record.
pub const REVERSE_LIMIT: u32 = 100;

/// Deepest nesting of expansions (`a.b.c`).
pub const MAX_EXPAND_DEPTH: usize = 3;

/// How an expansion's records are linked to the record they are expanded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link<'a> {
    /// The record's reference field `field` points at the target record (`expand=customerId`).
    Forward {
        /// The reference field of the parent's entity.
        field: &'a str,
    },
    /// The target's reference field `field` points at the record
    /// (`expand=Invoice_via_customerId`).
    Reverse {
        /// The reference field of the target's entity.
        field: &'a str,
    },
}

/// One expansion, resolved against the active models by the caller.
#[derive(Debug, Clone)]
pub struct Expansion<'a> {
    /// Its key under `"expand"`: the reference field, or `<Entity>_via_<field>`.
    pub key: &'a str,
    /// How the target's records are linked to the parent's.
    pub link: Link<'a>,
    /// The target entity's model.
    pub target: &'a CompiledModel,
    /// The target's rows the caller may read (its read policies).
    pub row_filter: &'a RowFilter,
    /// Expansions of the target's records.
    pub nested: Vec<Expansion<'a>>,
    /// Selection within the target's records (`fields=customerId.name`): their keys besides
    /// `id`; `None` for all.
    pub fields: Option<&'a [String]>,
}

/// The alias of the table at `depth` (the page's own table is depth 0).
pub(super) fn alias(depth: usize) -> String {
    format!("\"__e{depth}\"")
}

/// The expansions of records of `parent` (aliased at `depth`), each as `(key, SQL expression
/// of its JSON text)`.
pub(super) fn expansion_values(
    binds: &mut Binds,
    scope: Scope<'_>,
    parent: &CompiledModel,
    depth: usize,
    expansions: &[Expansion<'_>],
) -> Result<Vec<(String, String)>, QueryError> {
    if !expansions.is_empty() && depth >= MAX_EXPAND_DEPTH {
        return Err(QueryError::UnknownField {
            field: expansions
                .first()
                .map_or_else(String::new, |e| e.key.to_owned()),
        });
    }
    expansions
        .iter()
        .map(|e| Ok((e.key.to_owned(), subquery(binds, scope, parent, depth, e)?)))
        .collect()
}

/// The column of reference field `field` of `model` pointing at `to`, or the error naming it.
fn reference_column<'m>(
    model: &'m CompiledModel,
    field: &str,
    to: &str,
    key: &str,
) -> Result<&'m str, QueryError> {
    model
        .field(field)
        .filter(|f| {
            f.field_type == FieldType::Reference && f.validator.reference_to.as_deref() == Some(to)
        })
        .map(|f| f.column_name.as_str())
        .ok_or_else(|| QueryError::UnknownField {
            field: key.to_owned(),
        })
}

/// A forward expansion of the page's own rows on PostgreSQL as a `LEFT JOIN LATERAL` whose
/// columns are the target record's (see [`ExpandColumns::Record`]): the join's text (after the
/// `FROM` table), what its columns hold, and their alias. PostgreSQL returns plain columns for
/// the store to write, as for the page's own record, instead of building the target's JSON text
/// (which cost it about 5 µs per expanded record).
pub(super) fn forward_lateral(
    binds: &mut Binds,
    scope: Scope<'_>,
    parent: &CompiledModel,
    index: usize,
    e: &Expansion<'_>,
) -> Result<(String, ExpandColumns), QueryError> {
    let Link::Forward { field } = e.link else {
        return Err(QueryError::UnknownField {
            field: e.key.to_owned(),
        });
    };
    let column = reference_column(parent, field, &e.target.entity, e.key)?;
    let nested = expansion_values(binds, scope, e.target, 1, &e.nested)?;
    let cols = selected(e)?;
    let mut list: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(n, c)| pg_column_as(c, &format!("__x{index}_{n}")))
        .collect();
    for (n, (_, value)) in nested.iter().enumerate() {
        list.push(format!("{value} AS \"__x{index}_n{n}\""));
    }
    let scope = scope_condition(binds, scope);
    let rows = row_filter_condition(binds, e.target, e.row_filter)?;
    let join = format!(
        " LEFT JOIN LATERAL (SELECT {} FROM {} AS {} WHERE {scope} AND \"id\" = {}.{}{rows}) \
         AS \"__j{index}\" ON TRUE",
        list.join(", "),
        qualified_table(Dialect::Postgres, &e.target.table_name),
        alias(1),
        alias(0),
        quote_ident(column)
    );
    Ok((
        join,
        ExpandColumns::Record {
            key: e.key.to_owned(),
            shape: shape_of(&cols),
            nested: nested.into_iter().map(|(k, _)| k).collect(),
        },
    ))
}

/// The columns of an expansion's records: all of the target's, or `id` and those of
/// `fields=`.
fn selected<'m>(e: &Expansion<'m>) -> Result<Vec<Col<'m>>, QueryError> {
    let mut cols = record_columns(e.target);
    if let Some(names) = e.fields {
        for name in names {
            resolve(e.target, name).map_err(|_| QueryError::UnknownField {
                field: format!("{}.{name}", e.key),
            })?;
        }
        cols.retain(|c| c.column == "id" || names.iter().any(|n| n == c.name));
    }
    Ok(cols)
}

/// One expansion of `parent`'s row (aliased at `depth`) as a scalar subquery.
fn subquery(
    binds: &mut Binds,
    scope: Scope<'_>,
    parent: &CompiledModel,
    depth: usize,
    e: &Expansion<'_>,
) -> Result<String, QueryError> {
    let dialect = binds.dialect;
    let parent_alias = alias(depth);
    let own = alias(depth + 1);
    let table = qualified_table(dialect, &e.target.table_name);
    let link = match e.link {
        Link::Forward { field } => {
            let column = reference_column(parent, field, &e.target.entity, e.key)?;
            format!("\"id\" = {parent_alias}.{}", quote_ident(column))
        }
        Link::Reverse { field } => {
            let column = reference_column(e.target, field, &parent.entity, e.key)?;
            format!("{} = {parent_alias}.\"id\"", quote_ident(column))
        }
    };
    let nested = expansion_values(binds, scope, e.target, depth + 1, &e.nested)?;
    let cols = selected(e)?;
    let object = record_object(dialect, &cols, &nested);
    let scope = scope_condition(binds, scope);
    let rows = row_filter_condition(binds, e.target, e.row_filter)?;
    let from = format!("FROM {table} AS {own} WHERE {scope} AND {link}{rows}");
    Ok(match (e.link, dialect) {
        (Link::Forward { .. }, _) => format!("(SELECT {object} {from})"),
        (Link::Reverse { .. }, Dialect::Postgres) => format!(
            "(SELECT coalesce('[' || string_agg(\"__j\", ',' ORDER BY \"__o\") || ']', '[]') \
             FROM (SELECT {object} AS \"__j\", \"id\" AS \"__o\" {from} ORDER BY \"id\" \
             LIMIT {REVERSE_LIMIT}) AS \"__s{depth}\")"
        ),
        (Link::Reverse { .. }, Dialect::Sqlite) => format!(
            "(SELECT json_group_array(json(\"__j\") ORDER BY \"__o\") \
             FROM (SELECT {object} AS \"__j\", \"id\" AS \"__o\" {from} ORDER BY \"id\" \
             LIMIT {REVERSE_LIMIT}) AS \"__s{depth}\")"
        ),
    })
}

/// A record made of `cols` as JSON text built by the database, with `expand` (key, JSON text
/// or `NULL`) as its `"expand"` object when there are any.
pub(super) fn record_object(
    dialect: Dialect,
    cols: &[Col<'_>],
    expand: &[(String, String)],
) -> String {
    match dialect {
        Dialect::Sqlite => {
            let record = sqlite_json(cols);
            if expand.is_empty() {
                return record;
            }
            // `json(…)` gives the subquery's text its JSON type back (a `NULL` stays null).
            let members = expand
                .iter()
                .map(|(key, value)| format!("{}, json({value})", literal_text(key)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("json_insert({record}, '$.expand', json_object({members}))")
        }
        Dialect::Postgres => pg_object(cols, expand),
    }
}

/// The record as concatenated JSON text on PostgreSQL: literal text and each column's JSON
/// text (adjacent literals merged), then the expansions' texts under `"expand"`.
fn pg_object(cols: &[Col<'_>], expand: &[(String, String)]) -> String {
    let mut literal = String::from("{");
    let mut parts: Vec<String> = Vec::with_capacity(cols.len() * 2 + expand.len() * 2 + 1);
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        // Keys are field names (letters and digits): nothing to escape in JSON.
        literal.push_str(&format!("\"{}\":", c.name));
        let (value, quoted) = pg_json_text(c);
        if c.system {
            // Never NULL: the quotes join the literals around the value.
            if quoted {
                literal.push('"');
            }
            parts.push(literal_text(&std::mem::take(&mut literal)));
            parts.push(value);
            if quoted {
                literal.push('"');
            }
        } else {
            parts.push(literal_text(&std::mem::take(&mut literal)));
            parts.push(if quoted {
                format!("coalesce('\"' || {value} || '\"', 'null')")
            } else {
                format!("coalesce({value}, 'null')")
            });
        }
    }
    for (i, (key, value)) in expand.iter().enumerate() {
        literal.push_str(if i == 0 { ",\"expand\":{" } else { "," });
        literal.push_str(&format!("\"{key}\":"));
        parts.push(literal_text(&std::mem::take(&mut literal)));
        parts.push(format!("coalesce({value}, 'null')"));
    }
    if !expand.is_empty() {
        literal.push('}');
    }
    literal.push('}');
    parts.push(literal_text(&literal));
    format!("({})", parts.join(" || "))
}

/// The column's value as JSON text on PostgreSQL (`NULL` when the column is), and whether it
/// needs double quotes around it. Text goes through `to_json` (quotes, escapes); the other
/// types print no character that needs escaping.
fn pg_json_text(col: &Col<'_>) -> (String, bool) {
    let q = quote_ident(col.column);
    match col.ty {
        t if is_textual(t) => (format!("to_json({q})::text"), false),
        FieldType::Number => (format!("to_json({q})::text"), false),
        FieldType::Integer | FieldType::Boolean | FieldType::Json => (format!("{q}::text"), false),
        FieldType::Date | FieldType::Datetime => (pg_date_text(col), true),
        _ => (format!("{q}::text"), true),
    }
}

/// A string literal of JSON text made of model names and punctuation (quotes doubled all the
/// same).
pub(super) fn literal_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
