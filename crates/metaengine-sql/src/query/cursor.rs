//! Keyset cursors: what the client gets as `nextCursor` and gives back as `after`.
//!
//! A cursor is the sort key of the last row of a page and its id, `[key, id]`, as a compact JSON
//! array, base64url-encoded without padding: opaque to clients and safe in a URL. The list builds
//! one from the `__k` and `__id` columns of the last row ([`Cursor::from_row`]).
//!
//! The order is `ORDER BY col, id` with nulls as the smallest keys (first ascending, last
//! descending; PostgreSQL says `NULLS FIRST` / `NULLS LAST`), which one index over
//! `(tenant_id, realm_id, col, id)` serves in both directions. "After the row `(k, c)`",
//! ascending: `(col > k OR (col = k AND id > c))`, or with a null `k`
//! `(col IS NOT NULL OR id > c)`; descending: `(col < k OR (col = k AND id < c) OR col IS NULL)`,
//! or with a null `k` `(col IS NULL AND id < c)`. System columns are `NOT NULL` and need no null
//! terms; `id` alone sorts by `id`. Written out rather than as a row value `(col, id) > (k, c)`,
//! which would mishandle nulls.
//!
//! A cursor is not signed: a forged one can only move within the rows the scope, row filter and
//! filters let the caller see anyway. It is checked against the order's column type (a key that
//! does not fit is [`QueryError::InvalidCursor`]); a cursor of another order that happens to fit
//! gives a page of that order from an odd place, nothing worse.

use super::QueryError;
use super::column::{Col, checked, is_uuid};
use metaengine_core::{FieldType, SqlValue};
use serde_json::Value;

/// Longest cursor text accepted.
const MAX_CURSOR_LEN: usize = 2048;

/// Where a keyset page ends: the sort key of its last row, then that row's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// The sort key of the last row (`Null` for a null key), then its id (`Text`).
    pub values: Vec<SqlValue>,
}

impl Cursor {
    /// The cursor after a list row, from its `__k` (the sort key as text, `None` when null) and
    /// `__id` columns.
    pub fn from_row(key: Option<String>, id: String) -> Cursor {
        Cursor {
            values: vec![
                key.map_or(SqlValue::Null, SqlValue::Text),
                SqlValue::Text(id),
            ],
        }
    }
}

/// The cursor as an opaque URL-safe string.
pub fn encode_cursor(cursor: &Cursor) -> String {
    let array: Vec<Value> = cursor
        .values
        .iter()
        .map(|v| match v {
            SqlValue::Null => Value::Null,
            SqlValue::Text(s) => Value::String(s.clone()),
            SqlValue::Int(i) => Value::from(*i),
            SqlValue::Float(f) => Value::from(*f),
            SqlValue::Bool(b) => Value::Bool(*b),
        })
        .collect();
    base64url_encode(Value::Array(array).to_string().as_bytes())
}

/// The cursor an [`encode_cursor`] string stands for.
pub fn decode_cursor(text: &str) -> Result<Cursor, QueryError> {
    let invalid = |reason| QueryError::InvalidCursor { reason };
    if text.len() > MAX_CURSOR_LEN {
        return Err(invalid("it is too long"));
    }
    let bytes = base64url_decode(text).ok_or_else(|| invalid("it is not base64url"))?;
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(invalid("it does not hold a list of values"));
    };
    if items.len() != 2 {
        return Err(invalid("it does not hold a sort key and an id"));
    }
    let values = items
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(SqlValue::Null),
            Value::Bool(b) => Ok(SqlValue::Bool(b)),
            Value::String(s) => Ok(SqlValue::Text(s)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(SqlValue::Int(i)),
                None => n.as_f64().map(SqlValue::Float).ok_or(invalid("bad number")),
            },
            Value::Array(_) | Value::Object(_) => Err(invalid("it holds a nested value")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cursor { values })
}

/// The cursor's `(key, id)`, the key converted to the type of the order column `col`.
pub(super) fn cursor_key(
    col: &Col<'_>,
    cursor: &Cursor,
) -> Result<(SqlValue, SqlValue), QueryError> {
    let invalid = |reason| QueryError::InvalidCursor { reason };
    let [key, id] = cursor.values.as_slice() else {
        return Err(invalid("it does not hold a sort key and an id"));
    };
    match id {
        SqlValue::Text(s) if is_uuid(s) => {}
        _ => return Err(invalid("its id is not a record id")),
    }
    let misfit = || invalid("its sort key does not fit the order");
    let key = match (col.ty, key) {
        (_, SqlValue::Null) => SqlValue::Null,
        (FieldType::Integer, SqlValue::Text(s)) => SqlValue::Int(s.parse().map_err(|_| misfit())?),
        (FieldType::Number, SqlValue::Text(s)) => SqlValue::Float(s.parse().map_err(|_| misfit())?),
        (FieldType::Number, SqlValue::Int(i)) => SqlValue::Float(*i as f64),
        (FieldType::Boolean, SqlValue::Text(s)) => match s.as_str() {
            "true" => SqlValue::Bool(true),
            "false" => SqlValue::Bool(false),
            _ => return Err(misfit()),
        },
        (_, other) => other.clone(),
    };
    let key = checked(col, &key).map_err(|_| misfit())?;
    Ok((key, id.clone()))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url (RFC 4648 §5) without padding.
fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for s in sextets.iter().take(chunk.len() + 1) {
            if let Some(c) = ALPHABET.get(*s as usize) {
                out.push(char::from(*c));
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|a| *a == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// The bytes of a base64url text without padding; `None` for anything else.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= sextet(*c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = n.to_be_bytes();
        let decoded = [b0, b1, b2];
        let take = chunk.len() - 1;
        // Non-canonical trailing bits would let two texts decode alike: refuse them.
        if decoded.iter().skip(take).any(|b| *b != 0) {
            return None;
        }
        out.extend(decoded.iter().take(take));
    }
    Some(out)
}
