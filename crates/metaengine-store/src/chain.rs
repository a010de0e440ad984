//! The audit trail's hash chain (SPEC §16): the content a row's hash covers, the hash itself,
//! and the verification of a tenant's rows in chain order.
//!
//! Each tenant's rows form one chain in insertion order: row `seq` carries `prev_hash` (the hash
//! of row `seq - 1`, or [`GENESIS`] for the first row) and `hash = sha256(prev_hash ‖ content)`,
//! where the content is the canonical JSON of the row's other columns ([`content`]). The chain's
//! end is kept in `meta_audit_heads` (one row per tenant, locked by every append, which is what
//! serializes a tenant's appends). Retention deletes the oldest rows and appends an `audit.purge`
//! row that names the last purged row's position and hash ([`Checkpoint`]), from which the rest of
//! the chain verifies.
//!
//! A request's own transaction does not lock its tenant's chain: that would serialize the
//! tenant's writes through every commit (about two thousand a second on a small machine). It
//! writes its audit rows *sealed* instead (no position yet, `seal = HMAC(key, content)` with a
//! [`SealKey`] that is not in the database), and a chainer appends committed sealed rows to their
//! chains in batches after the commit. The seal tells a row the engine wrote and has not chained
//! yet from one inserted by hand, which `verify` reports.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::rows::AuditRow;
use crate::types::{Id, Timestamp};

/// The `prev_hash` of a tenant's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `sha256(prev ‖ content)` in lowercase hex. PostgreSQL's `meta.audit_hash(prev, content)`
/// computes the same.
pub fn link(prev: &str, content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(content.as_bytes());
    format!("{:x}", hasher.finalize())
}

/// The key of the seals of audit rows written but not chained yet: `HMAC-SHA256(key, content)`.
/// Every instance and command line on one database must use the same key, or the rows one writes
/// look inserted by hand to another (`audit_key`, or the data directory's `audit-key` file).
#[derive(Clone)]
pub struct SealKey(Hmac<Sha256>);

impl SealKey {
    /// A key from secret bytes (any length).
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length; the error type exists for fixed-size MACs only.
        match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(mac) => Self(mac),
            Err(_) => Self(Hmac::<Sha256>::new(&Default::default())),
        }
    }

    /// A random key: rows sealed with it can be chained only by this process (tests, and stores
    /// opened without a configured key).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            // The operating system gave no randomness: uuid's own generator.
            let ids = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            bytes[..16].copy_from_slice(ids.0.as_bytes());
            bytes[16..].copy_from_slice(ids.1.as_bytes());
        }
        Self::new(&bytes)
    }

    /// The seal of a row with this content, in lowercase hex.
    pub fn seal(&self, content: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(content.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `seal` is this key's seal of `content` (compared in constant time).
    pub fn vouches(&self, content: &str, seal: &str) -> bool {
        let Some(bytes) = unhex(seal) else {
            return false;
        };
        let mut mac = self.0.clone();
        mac.update(content.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// The columns of an audit row that its hash covers: all of them but `seq`, `prev_hash`, `hash`
/// and `seal`.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// Row id.
    pub id: &'a Id,
    /// Event id.
    pub event_id: &'a str,
    /// Event type.
    pub event_type: &'a str,
    /// Time of the event.
    pub timestamp: Timestamp,
    /// Acting user.
    pub user_id: &'a str,
    /// Acting user's tenant (the chain's).
    pub tenant_id: &'a str,
    /// Acting user's realm.
    pub realm_id: &'a str,
    /// Action word.
    pub action: &'a str,
    /// Resource.
    pub resource: &'a str,
    /// Details.
    pub details: Option<&'a Value>,
    /// `success` or `failure`.
    pub result: &'a str,
    /// Error message.
    pub error_message: Option<&'a str>,
}

impl<'a> From<&'a AuditRow> for Content<'a> {
    fn from(r: &'a AuditRow) -> Self {
        Self {
            id: &r.id,
            event_id: &r.event_id,
            event_type: &r.event_type,
            timestamp: r.timestamp,
            user_id: &r.user_id,
            tenant_id: &r.tenant_id,
            realm_id: &r.realm_id,
            action: &r.action,
            resource: &r.resource,
            details: r.details.as_ref(),
            result: &r.result,
            error_message: r.error_message.as_deref(),
        }
    }
}

/// The canonical JSON of a row's content: an object of the API's camelCase names in byte order,
/// no whitespace, keys of `details` sorted at every depth, numbers in one form (see
/// [`canonical_json`]). What is written and what is read back give the same text on both
/// backends, although PostgreSQL's `jsonb` reorders keys and rewrites numbers.
pub fn content(c: &Content<'_>) -> String {
    let mut out = String::with_capacity(320);
    let text = |out: &mut String, key: &str, value: &str| {
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        push_string(out, value);
        out.push(',');
    };
    out.push('{');
    text(&mut out, "action", c.action);
    out.push_str("\"details\":");
    match c.details {
        Some(v) => canonical_json(v, &mut out),
        None => out.push_str("null"),
    }
    out.push(',');
    match c.error_message {
        Some(m) => text(&mut out, "errorMessage", m),
        None => out.push_str("\"errorMessage\":null,"),
    }
    text(&mut out, "eventId", c.event_id);
    text(&mut out, "eventType", c.event_type);
    text(&mut out, "id", &c.id.to_string());
    text(&mut out, "realmId", c.realm_id);
    text(&mut out, "resource", c.resource);
    text(&mut out, "result", c.result);
    text(&mut out, "tenantId", c.tenant_id);
    text(&mut out, "timestamp", &c.timestamp.to_rfc3339());
    out.push_str("\"userId\":");
    push_string(&mut out, c.user_id);
    out.push('}');
    out
}

fn push_string(out: &mut String, s: &str) {
    metaengine_core::hash::write_json_string(s, out);
}

/// Appends `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace;
/// an integral number within ±2⁵³ written as an integer (so `1.0` and `1` are one number, as
/// `jsonb` makes them), any other number in its shortest round-trip form, `-0` as `0`.
pub fn canonical_json(value: &Value, out: &mut String) {
    metaengine_core::hash::write_canonical(value, out, jsonb_number);
}

/// A number as [`canonical_json`] writes it.
fn jsonb_number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        if f == 0.0 {
            out.push('0');
        } else if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            // Exact: the value is an integer below 2⁵³.
            let _ = write!(out, "{}", f as i64);
        } else {
            out.push_str(&Value::from(f).to_string());
        }
    }
}

/// A tenant's chain end (`meta_audit_heads`): the position and hash of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Position of the last row (0: no row yet).
    pub seq: i64,
    /// Hash of the last row ([`GENESIS`] before the first).
    pub hash: String,
}

impl Head {
    /// The end of a chain with no row yet.
    pub fn new() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }

    /// Appends a row with this content: its position, `prev_hash` and `hash`.
    pub fn append(&mut self, content: &str) -> Link {
        let hash = link(&self.hash, content);
        self.seq += 1;
        let prev = std::mem::replace(&mut self.hash, hash.clone());
        Link {
            seq: self.seq,
            prev_hash: prev,
            hash,
        }
    }
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

/// A row's place in its tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Position (1 for the tenant's first row).
    pub seq: i64,
    /// Hash of the row before.
    pub prev_hash: String,
    /// Hash of this row.
    pub hash: String,
}

/// What an `audit.purge` row's details say about the rows it deleted: the chain starts again
/// after `throughSeq`, from `throughHash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Position of the last deleted row.
    pub through_seq: i64,
    /// Hash of the last deleted row.
    pub through_hash: String,
}

/// The answer of `audit verify` (SPEC §16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Tenants whose chains were checked.
    pub tenants: u64,
    /// Rows checked.
    pub rows: u64,
    /// Whether every chain held.
    pub verified: bool,
    /// The first row found broken (tenants in order, rows in chain order).
    pub first_broken: Option<Broken>,
}

/// A row where a chain does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Broken {
    /// The chain's tenant.
    pub tenant_id: String,
    /// The row's event id; `null` when the tenant has no row left to name.
    pub event_id: Option<String>,
    /// What is wrong, in words.
    pub reason: String,
}

/// What a retention purge did (SPEC §16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// Tenants that had rows to purge (one `audit.purge` row each).
    pub tenants: u64,
    /// Rows deleted.
    pub rows: u64,
}

/// Checks chains row by row, for rows that arrive ordered by tenant, then by position.
#[derive(Debug)]
pub struct Verifier {
    heads: HashMap<String, Head>,
    checkpoints: HashMap<String, HashSet<Checkpoint>>,
    seen: HashSet<String>,
    /// The last row read: tenant, position, hash, event id.
    current: Option<(String, i64, String, String)>,
    rows: u64,
    broken: Option<Broken>,
}

impl Verifier {
    /// A verifier for chains that end at `heads`, with the `audit.purge` checkpoints found in
    /// the rows (by tenant).
    pub fn new(
        heads: HashMap<String, Head>,
        checkpoints: HashMap<String, HashSet<Checkpoint>>,
    ) -> Self {
        Self {
            heads,
            checkpoints,
            seen: HashSet::new(),
            current: None,
            rows: 0,
            broken: None,
        }
    }

    /// Whether a broken row has been found (later rows need not be read).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Marks the chains broken at a row outside every chain (no position: inserted by hand).
    pub fn unchained(&mut self, tenant_id: &str, event_id: &str) {
        self.fail(
            tenant_id,
            Some(event_id),
            "the row has no place in the chain (inserted by hand?)",
        );
    }

    fn fail(&mut self, tenant_id: &str, event_id: Option<&str>, reason: &str) {
        if self.broken.is_none() {
            self.broken = Some(Broken {
                tenant_id: tenant_id.to_owned(),
                event_id: event_id.map(str::to_owned),
                reason: reason.to_owned(),
            });
        }
    }

    /// Checks the next row (its position must be set).
    pub fn row(&mut self, row: &AuditRow) {
        if self.is_broken() {
            return;
        }
        self.rows += 1;
        let (Some(seq), Some(prev), Some(hash)) = (row.seq, &row.prev_hash, &row.hash) else {
            return self.unchained(&row.tenant_id, &row.event_id);
        };
        let fail = |v: &mut Self, reason: &str| v.fail(&row.tenant_id, Some(&row.event_id), reason);
        if link(prev, &content(&Content::from(row))) != *hash {
            return fail(
                self,
                "the row's content does not match its hash (changed by hand?)",
            );
        }
        let head_seq = self.heads.get(&row.tenant_id).map(|h| h.seq);
        if head_seq.is_none_or(|end| seq > end) {
            return fail(
                self,
                "the row is past the end of the tenant's chain (inserted by hand?)",
            );
        }
        let same_tenant = matches!(&self.current, Some((t, ..)) if *t == row.tenant_id);
        if same_tenant {
            if let Some((_, last_seq, last_hash, _)) = &self.current {
                if seq != last_seq + 1 {
                    return fail(self, "the row before it in the chain is missing");
                }
                if prev != last_hash {
                    return fail(
                        self,
                        "its prev_hash is not the hash of the row before it (changed or inserted by hand?)",
                    );
                }
            }
        } else {
            if !self.end_of_tenant() {
                return;
            }
            self.seen.insert(row.tenant_id.clone());
            let starts = if seq == 1 {
                prev == GENESIS
            } else {
                let point = Checkpoint {
                    through_seq: seq - 1,
                    through_hash: prev.clone(),
                };
                self.checkpoints
                    .get(&row.tenant_id)
                    .is_some_and(|c| c.contains(&point))
            };
            if !starts {
                return fail(
                    self,
                    "the tenant's first row neither starts the chain nor follows a purge (rows before it deleted by hand?)",
                );
            }
        }
        self.current = Some((
            row.tenant_id.clone(),
            seq,
            hash.clone(),
            row.event_id.clone(),
        ));
    }

    /// Checks that the tenant whose rows were last read ends where its head says; false when
    /// it does not.
    fn end_of_tenant(&mut self) -> bool {
        let Some((tenant, seq, hash, event_id)) = self.current.take() else {
            return true;
        };
        let ok = self
            .heads
            .get(&tenant)
            .is_some_and(|h| h.seq == seq && h.hash == hash);
        if !ok {
            // The last row read is there; the rows after it are not.
            self.broken = Some(Broken {
                tenant_id: tenant,
                event_id: Some(event_id),
                reason: "the rows after it in the chain are missing (deleted by hand?)".to_owned(),
            });
        }
        ok
    }

    /// The report, once every row has been read.
    pub fn finish(mut self) -> VerifyReport {
        if !self.is_broken() && self.end_of_tenant() {
            // A head without any row: every row of that tenant was deleted.
            let mut empty: Vec<&String> = self
                .heads
                .iter()
                .filter(|(t, h)| h.seq > 0 && !self.seen.contains(*t))
                .map(|(t, _)| t)
                .collect();
            empty.sort();
            if let Some(tenant) = empty.first() {
                self.broken = Some(Broken {
                    tenant_id: (*tenant).clone(),
                    event_id: None,
                    reason: "every row of the tenant's chain is missing (deleted by hand?)"
                        .to_owned(),
                });
            }
        }
        let mut tenants = self.seen.clone();
        tenants.extend(self.heads.keys().cloned());
        VerifyReport {
            tenants: tenants.len() as u64,
            rows: self.rows,
            verified: self.broken.is_none(),
            first_broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_vouches_only_for_its_content_under_its_key() {
        let key = SealKey::new(b"the instance's key");
        let seal = key.seal("{\"a\":1}");
        assert_eq!(seal.len(), 64);
        assert!(key.vouches("{\"a\":1}", &seal));
        assert!(!key.vouches("{\"a\":2}", &seal), "changed content");
        assert!(!SealKey::new(b"another key").vouches("{\"a\":1}", &seal));
        assert!(!SealKey::random().vouches("{\"a\":1}", &seal));
        assert!(!key.vouches("{\"a\":1}", &"ab".repeat(32)), "made-up seal");
        assert!(!key.vouches("{\"a\":1}", "not hex"));
        assert!(!key.vouches("{\"a\":1}", &seal[..62]));
        // The same key from the same secret: another process seals alike.
        assert_eq!(SealKey::new(b"the instance's key").seal("x"), key.seal("x"));
        assert_eq!(format!("{key:?}"), "SealKey([redacted])");
    }

    /// The canonical form is what every stored hash and seal covers: it must never change.
    /// This text was written by the first implementation (serde_json's string escaping, keys
    /// sorted through lookups); any rewrite must give it byte for byte.
    #[test]
    fn the_canonical_form_of_stored_rows_does_not_change() {
        let details = serde_json::json!({
            "z": [1, 1.0, -0.0, 0.5, 1e300, 9007199254740993u64, 18446744073709551615u64, -42],
            "a": {"quote\"": "back\\ tab\t nl\n cr\r bs\u{8} ff\u{c} nul\u{0} us\u{1f} del\u{7f}"},
            "é": "é ✓ 😀",
            "B": [null, true, false, {"y": [], "x": {}}],
            "": ""
        });
        let id = Id(uuid::Uuid::from_u128(
            0x0190f1a2_3b4c_7d5e_8f60_718293a4b5c6,
        ));
        let timestamp = Timestamp::from(
            chrono::DateTime::parse_from_rfc3339("2026-12-07T20:50:00.123456Z")
                .expect("a time")
                .with_timezone(&chrono::Utc),
        );
        let row = Content {
            id: &id,
            event_id: "0190f1a2-3b4c-7d5e-8f60-718293a4b5c7",
            event_type: "data.create",
            timestamp,
            user_id: "al\"ice",
            tenant_id: "acme",
            realm_id: "main",
            action: "create",
            resource: "Invoice/1",
            details: Some(&details),
            result: "success",
            error_message: Some("line 1\nline 2"),
        };
        assert_eq!(content(&row), GOLDEN);
    }

    const GOLDEN: &str = "{\"action\":\"create\",\"details\":{\"\":\"\",\"B\":[null,true,false,{\"x\":{},\"y\":[]}],\"a\":{\"quote\\\"\":\"back\\\\ tab\\t nl\\n cr\\r bs\\b ff\\f nul\\u0000 us\\u001f del\u{7f}\"},\"z\":[1,1,0,0.5,1e+300,9007199254740993,18446744073709551615,-42],\"é\":\"é ✓ 😀\"},\"errorMessage\":\"line 1\\nline 2\",\"eventId\":\"0190f1a2-3b4c-7d5e-8f60-718293a4b5c7\",\"eventType\":\"data.create\",\"id\":\"0190f1a2-3b4c-7d5e-8f60-718293a4b5c6\",\"realmId\":\"main\",\"resource\":\"Invoice/1\",\"result\":\"success\",\"tenantId\":\"acme\",\"timestamp\":\"2026-12-07T20:50:00.123Z\",\"userId\":\"al\\\"ice\"}";
}
