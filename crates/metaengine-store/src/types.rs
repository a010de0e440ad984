//! Value types shared by every backend: ids and timestamps.
//!
//! PostgreSQL stores them natively (`uuid`, `timestamptz(3)`); SQLite stores both as text so the
//! file stays readable with the `sqlite3` shell and timestamps sort correctly as strings (the
//! encoding is `metaengine-store-sql`'s).

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A row id: a UUID (version 7 for new rows, so ids sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl Id {
    /// A new time-ordered id (UUIDv7).
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// The smallest time-ordered id (UUIDv7) made `age` ago or later: every id
    /// [`Id::new_v7`] made before then sorts below it.
    pub fn made_since(age: std::time::Duration) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = u64::try_from(now.saturating_sub(age).as_millis()).unwrap_or(u64::MAX);
        // Every bit after the time (and the version and variant) 0.
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A UTC instant with millisecond precision, shown in RFC 3339 (`2026-11-26T21:24:42.123Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Timestamp(#[serde(with = "rfc3339_millis")] pub DateTime<Utc>);

impl Timestamp {
    /// The current time, truncated to milliseconds.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// The RFC 3339 text form used in JSON and in SQLite (written field by field: chrono's
    /// `format` parses its pattern on every call, a visible share of verifying the audit chain).
    pub fn to_rfc3339(&self) -> String {
        use chrono::{Datelike, Timelike};
        let t = &self.0;
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.timestamp_subsec_millis().min(999)
        )
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t.trunc_subsecs(3))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

mod rfc3339_millis {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_milliseconds_only() {
        let t = Timestamp::from(
            DateTime::parse_from_rfc3339("2026-11-26T21:24:42.123456789Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        assert_eq!(t.to_rfc3339(), "2026-11-26T21:24:42.123Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-26T21:24:42.123Z\""
        );
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = Id::new_v7();
        let b = Id::new_v7();
        assert!(a < b);
        assert_eq!(a.0.get_version_num(), 7);
    }

    #[test]
    fn an_age_bounds_the_ids_made_before_it() {
        let old = Id::new_v7();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let bound = Id::made_since(std::time::Duration::from_millis(2));
        let new = Id::new_v7();
        assert!(old < bound && bound < new, "{old} {bound} {new}");
        assert_eq!(bound.0.get_version_num(), 7);
        assert_eq!(bound.0.get_variant(), uuid::Variant::RFC4122);
        // As text too (SQLite keeps ids as text).
        assert!(old.to_string() < bound.to_string() && bound.to_string() < new.to_string());
    }
}
