//! Stable hash of an entity schema (SPEC §4): same schema, same hash, on any machine.
//!
//! The hash is the SHA-256 (lowercase hex) of the schema's canonical JSON: the typed schema is
//! serialized (so options left at their default and `null` options disappear), object keys are
//! sorted recursively by their UTF-8 bytes, and nothing but the JSON tokens is written. Array order
//! is kept: the order of fields, policies and indexes carries meaning.

use crate::schema::EntitySchema;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// SHA-256 hex of the canonical JSON of `schema`. Key order in the input document does not matter;
/// array order does.
pub fn schema_hash(schema: &EntitySchema) -> String {
    // Serializing these plain data types into a `Value` cannot fail (all map keys are strings and
    // no `Serialize` impl returns an error); `Null` keeps the function total.
    let value = serde_json::to_value(schema).unwrap_or(Value::Null);
    sha256_hex(canonical_json(&value).as_bytes())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Canonical JSON of a value: object keys sorted recursively (by UTF-8 bytes), no whitespace,
/// strings escaped as `serde_json` does, numbers as `serde_json` prints them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out, |n, out| {
        let _ = write!(out, "{n}");
    });
    out
}

/// Appends `value` as canonical JSON to `out`: object keys sorted recursively by their UTF-8
/// bytes, array order kept, no whitespace, strings as [`write_json_string`] writes them, and each
/// number as `number` writes it (the schema hash and the audit chain print numbers differently).
pub fn write_canonical(value: &Value, out: &mut String, number: fn(&Number, &mut String)) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => number(n, out),
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out, number);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_canonical(item, out, number);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes it: `"` and `\`, and
/// the control characters below U+0020 (`\b \f \n \r \t` by name, the others as `\u00XX`);
/// everything else as it is. The runs between escapes are copied whole.
pub fn write_json_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut copied = 0;
    for (i, byte) in s.bytes().enumerate() {
        let named = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `byte` is ASCII, so `i` is a character boundary.
        out.push_str(&s[copied..i]);
        if named.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(named);
        }
        copied = i + 1;
    }
    out.push_str(&s[copied..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(doc: Value) -> EntitySchema {
        serde_json::from_value(doc).expect("valid schema")
    }

    #[test]
    fn canonical_json_sorts_keys_recursively_and_keeps_array_order() {
        let v = json!({"b": 1, "a": {"d": [3, 1, {"z": null, "y": true}], "c": "x\"\n\u{1}"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x\"\n\u0001","d":[3,1,{"y":true,"z":null}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_string_escaping_matches_serde_json() {
        let s = "quote\" back\\ tab\t nl\n cr\r bs\u{8} ff\u{c} nul\u{0} us\u{1f} é ✓ 😀 \u{7f}";
        let ours = canonical_json(&Value::String(s.into()));
        let theirs = serde_json::to_string(s).expect("serializes");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn key_order_in_the_input_does_not_matter() {
        let a = schema(json!({
            "fields": [{"name": "total", "type": "decimal", "required": true, "min": 0}],
            "policies": [{"name": "p", "effect": "allow", "action": "read"}]
        }));
        let b = schema(json!({
            "policies": [{"action": "read", "name": "p", "effect": "allow"}],
            "fields": [{"min": 0, "required": true, "type": "decimal", "name": "total"}]
        }));
        assert_eq!(schema_hash(&a), schema_hash(&b));
    }

    #[test]
    fn defaults_spelled_out_do_not_change_the_hash() {
        let a = schema(json!({"fields": [{"name": "a", "type": "string"}]}));
        let b = schema(json!({
            "fields": [{"name": "a", "type": "string", "required": false, "label": null}],
            "policies": [], "indexes": []
        }));
        assert_eq!(schema_hash(&a), schema_hash(&b));
    }

    #[test]
    fn a_changed_field_changes_the_hash() {
        let a = schema(json!({"fields": [{"name": "a", "type": "string"}]}));
        let b = schema(json!({"fields": [{"name": "a", "type": "text"}]}));
        let c = schema(json!({"fields": [{"name": "a", "type": "string", "required": true}]}));
        assert_ne!(schema_hash(&a), schema_hash(&b));
        assert_ne!(schema_hash(&a), schema_hash(&c));
    }

    #[test]
    fn field_order_matters() {
        let a = schema(
            json!({"fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "string"}]}),
        );
        let b = schema(
            json!({"fields": [{"name": "b", "type": "string"}, {"name": "a", "type": "string"}]}),
        );
        assert_ne!(schema_hash(&a), schema_hash(&b));
    }

    #[test]
    fn hash_is_pinned() {
        // If this changes, every stored hash changes: that needs a deliberate migration.
        let s = schema(json!({
            "fields": [
                {"name": "title", "type": "string", "required": true, "maxLength": 200},
                {"name": "amount", "type": "decimal", "min": 0}
            ],
            "policies": [{"name": "read all", "effect": "allow", "action": "read"}]
        }));
        let v = serde_json::to_value(&s).expect("serializes");
        assert_eq!(
            canonical_json(&v),
            concat!(
                r#"{"fields":[{"maxLength":200,"name":"title","required":true,"type":"string"},"#,
                r#"{"min":0,"name":"amount","type":"decimal"}],"indexes":[],"#,
                r#""policies":[{"action":"read","conditions":[],"effect":"allow","name":"read all","priority":0}]}"#
            )
        );
        assert_eq!(
            schema_hash(&s),
            "bc0aa837f2f978ccbeffc403a9e17ce516541a48d7f6021f532ffd711ba8b7cb"
        );
    }
}
