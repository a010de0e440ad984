//! The record's JSON text from a row, as the statement's [`RecordColumns`] say it is carried: on
//! SQLite the text the database built, on PostgreSQL written here from one plain column per key
//! ([`RecordColumn`] says what each column holds). Why the two differ is in the docs of
//! `metaengine_sql::query::record`: it is speed alone, the JSON is the same (keys in record order,
//! strings escaped by serde_json, integral `number`s below 2^53 as integers and other ones in the
//! shortest form that reads back the same double, decimals, dates, datetimes and uuids as
//! strings, a json field's document as it is stored).

use std::io::Write as _;

use chrono::{DateTime, Datelike as _, NaiveDate, Timelike as _, Utc};
use metaengine_core::FieldType;
use metaengine_sql::query::{ExpandColumns, RecordColumn, RecordColumns, Statement};
use metaengine_store::{StoreError, StoreResult};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::db::{Row, database};

/// Integral doubles below this magnitude print as integers (JavaScript's safe integers).
const SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// The record `row` carries, as JSON text.
pub(crate) fn record_json(row: &Row, record: &RecordColumns) -> StoreResult<String> {
    match (record, row) {
        (RecordColumns::Json, row) => row.text(0),
        (RecordColumns::Columns(shape), Row::Postgres(r)) => from_columns(r, shape),
        (RecordColumns::Columns(_), Row::Sqlite(_)) | (RecordColumns::None, _) => {
            Err(StoreError::Database(
                "the statement's rows do not carry the record in this form".into(),
            ))
        }
    }
}

/// The record a row of `statement` carries, with the expansions the statement returns in
/// columns of their own (PostgreSQL; see [`Statement::expand`]) written under its `"expand"`.
pub(crate) fn expanded_record_json(row: &Row, statement: &Statement) -> StoreResult<String> {
    let (Row::Postgres(r), RecordColumns::Columns(shape)) = (row, &statement.record) else {
        return record_json(row, &statement.record);
    };
    if statement.expand.is_empty() {
        return from_columns(r, shape);
    }
    let mut out = Vec::with_capacity(64 + 32 * shape.len());
    object_at(r, shape, 0, &mut out)?;
    // The object's `}` goes after the expansions.
    out.pop();
    out.extend_from_slice(b",\"expand\":{");
    let mut at = shape.len();
    for (i, e) in statement.expand.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match e {
            ExpandColumns::Json { key } => {
                key_of(key, &mut out);
                json_text(r, at, &mut out)?;
                at += 1;
            }
            ExpandColumns::Record { key, shape, nested } => {
                key_of(key, &mut out);
                // `id` is never null in a table: a null one is no record to show.
                if r.try_get::<Option<Uuid>, _>(at)
                    .map_err(database)?
                    .is_none()
                {
                    null(&mut out);
                } else {
                    object_at(r, shape, at, &mut out)?;
                    if !nested.is_empty() {
                        out.pop();
                        out.extend_from_slice(b",\"expand\":{");
                        for (n, key) in nested.iter().enumerate() {
                            if n > 0 {
                                out.push(b',');
                            }
                            key_of(key, &mut out);
                            json_text(r, at + shape.len() + n, &mut out)?;
                        }
                        out.extend_from_slice(b"}}");
                    }
                }
                at += shape.len() + nested.len();
            }
        }
    }
    out.extend_from_slice(b"}}");
    String::from_utf8(out).map_err(|e| StoreError::Database(Box::new(e)))
}

/// `"key":` (keys are field and entity names: letters, digits, `_`, nothing to escape).
fn key_of(key: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Column `i`: JSON text the database built, or `NULL` (written `null`).
fn json_text(r: &PgRow, i: usize, out: &mut Vec<u8>) -> StoreResult<()> {
    match r.try_get::<Option<&str>, _>(i).map_err(database)? {
        Some(text) => out.extend_from_slice(text.as_bytes()),
        None => null(out),
    }
    Ok(())
}

/// The record carried by the first `shape.len()` columns of a PostgreSQL row.
fn from_columns(r: &PgRow, shape: &[RecordColumn]) -> StoreResult<String> {
    let mut out = Vec::with_capacity(32 + 32 * shape.len());
    object_at(r, shape, 0, &mut out)?;
    String::from_utf8(out).map_err(|e| StoreError::Database(Box::new(e)))
}

/// The object carried by the columns `start..start + shape.len()` of a PostgreSQL row.
fn object_at(
    r: &PgRow,
    shape: &[RecordColumn],
    start: usize,
    out: &mut Vec<u8>,
) -> StoreResult<()> {
    out.push(b'{');
    for (i, col) in shape.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key_of(&col.key, out);
        postgres_value(r, start + i, col.ty, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn postgres_value(r: &PgRow, i: usize, ty: FieldType, out: &mut Vec<u8>) -> StoreResult<()> {
    match ty {
        // A decimal comes as `numeric::text`: all its digits, as a string.
        FieldType::String | FieldType::Text | FieldType::Enum | FieldType::Decimal => {
            string(r.try_get::<Option<&str>, _>(i).map_err(database)?, out)
        }
        FieldType::Integer => integer(r.try_get(i).map_err(database)?, out),
        FieldType::Number => number(r.try_get(i).map_err(database)?, out),
        FieldType::Boolean => boolean(r.try_get(i).map_err(database)?, out),
        FieldType::Date => {
            if let Some(d) = r.try_get::<Option<NaiveDate>, _>(i).map_err(database)? {
                date(d, out)?;
            } else {
                null(out);
            }
            Ok(())
        }
        FieldType::Datetime => {
            if let Some(t) = r.try_get::<Option<DateTime<Utc>>, _>(i).map_err(database)? {
                datetime(t, out)?;
            } else {
                null(out);
            }
            Ok(())
        }
        FieldType::Reference => {
            if let Some(id) = r.try_get::<Option<Uuid>, _>(i).map_err(database)? {
                write!(out, "\"{id}\"").map_err(io)?;
            } else {
                null(out);
            }
            Ok(())
        }
        // `jsonb::text`: a document PostgreSQL wrote itself.
        FieldType::Json => {
            match r.try_get::<Option<&str>, _>(i).map_err(database)? {
                Some(doc) => out.extend_from_slice(doc.as_bytes()),
                None => null(out),
            }
            Ok(())
        }
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

/// A JSON string, escaped.
fn string(s: Option<&str>, out: &mut Vec<u8>) -> StoreResult<()> {
    match s {
        Some(s) => {
            serde_json::to_writer(&mut *out, s).map_err(|e| StoreError::Database(Box::new(e)))
        }
        None => {
            null(out);
            Ok(())
        }
    }
}

fn integer(v: Option<i64>, out: &mut Vec<u8>) -> StoreResult<()> {
    match v {
        Some(v) => write!(out, "{v}").map_err(io),
        None => {
            null(out);
            Ok(())
        }
    }
}

/// A double: integral values below 2^53 as integers (`100`, not `100.0`), others in the
/// shortest text that reads back the same double; `null` for a NaN or an infinity, which JSON
/// cannot say (the write path never stores one).
fn number(v: Option<f64>, out: &mut Vec<u8>) -> StoreResult<()> {
    match v {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < SAFE_INTEGER => {
            // Exact: |v| < 2^53 fits an i64 without rounding.
            #[expect(clippy::cast_possible_truncation, reason = "integral and below 2^53")]
            let int = v as i64;
            write!(out, "{int}").map_err(io)
        }
        Some(v) if v.is_finite() => {
            serde_json::to_writer(&mut *out, &v).map_err(|e| StoreError::Database(Box::new(e)))
        }
        _ => {
            null(out);
            Ok(())
        }
    }
}

fn boolean(v: Option<bool>, out: &mut Vec<u8>) -> StoreResult<()> {
    out.extend_from_slice(match v {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
    Ok(())
}

/// `"YYYY-MM-DD"`.
fn date(d: NaiveDate, out: &mut Vec<u8>) -> StoreResult<()> {
    write!(out, "\"{:04}-{:02}-{:02}\"", d.year(), d.month(), d.day()).map_err(io)
}

/// `"YYYY-MM-DDTHH:MM:SS.mmmZ"` in UTC (milliseconds truncated, as the column keeps them).
fn datetime(t: DateTime<Utc>, out: &mut Vec<u8>) -> StoreResult<()> {
    let millis = (t.nanosecond() % 1_000_000_000) / 1_000_000;
    write!(
        out,
        "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z\"",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
    .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>) -> StoreResult<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_like_the_api_promises() {
        assert_eq!(text(|o| number(Some(100.0), o)), "100");
        assert_eq!(text(|o| number(Some(-0.0), o)), "0");
        assert_eq!(text(|o| number(Some(1.5), o)), "1.5");
        assert_eq!(text(|o| number(Some(0.1), o)), "0.1");
        assert_eq!(
            text(|o| number(Some(9_007_199_254_740_991.0), o)),
            "9007199254740991"
        );
        let big: f64 = text(|o| number(Some(1e20), o)).parse().unwrap();
        assert_eq!(big, 1e20);
        assert_eq!(text(|o| number(Some(f64::NAN), o)), "null");
        assert_eq!(text(|o| number(None, o)), "null");
        assert_eq!(text(|o| integer(Some(-42), o)), "-42");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            text(|o| string(Some("a\"b\\c\n\u{1}é"), o)),
            r#""a\"b\\c\n\u0001é""#
        );
        assert_eq!(text(|o| string(None, o)), "null");
    }

    #[test]
    fn dates_and_times_in_the_api_form() {
        let d = NaiveDate::from_ymd_opt(26, 1, 2).unwrap();
        assert_eq!(text(|o| date(d, o)), r#""0026-01-02""#);
        let t = DateTime::parse_from_rfc3339("2026-11-26T21:24:42.123456+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(text(|o| datetime(t, o)), r#""2026-11-26T19:24:42.123Z""#);
    }
}
