//! Instants as the API speaks them: RFC 3339 with an explicit offset in, UTC
//! with `Z` out, whole seconds.
//!
//! Whole seconds because nobody schedules a task to the millisecond, and
//! because SQLite keeps timestamps as text: a fixed width keeps text order
//! equal to time order.

use std::fmt;

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};
use poem_openapi::registry::MetaSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::text::shorten;

/// A `std` duration (how lifetimes are declared) as chrono's, for date
/// arithmetic. Lifetimes are constants far below chrono's range.
pub fn span(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::zero())
}

/// The instant `lifetime` from now.
pub fn from_now(lifetime: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + span(lifetime)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

pub const TIMESTAMP_HINT: &str =
    "an RFC 3339 timestamp with an offset, e.g. 2026-11-27T09:00:00+01:00 or 2026-11-27T08:00:00Z";

/// The years accepted, as written. Kept below 9999 so that the instant in
/// UTC still has a four-digit year (SQLite stores it as text, whose order
/// must be time order).
const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 9998;
/// The same range as a pattern on the text, for the schema.
const YEAR_PATTERN: &str = "^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-";

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().trunc_subsecs(0))
    }

    pub fn from_utc(at: DateTime<Utc>) -> Self {
        Self(at.trunc_subsecs(0))
    }

    pub fn as_utc(&self) -> DateTime<Utc> {
        self.0
    }

    /// Parses an RFC 3339 date-time exactly (a `T` between date and time,
    /// nothing around it); a date without a time, or a time without an
    /// offset, is rejected with a message saying what to add.
    pub fn parse_param(raw: &str) -> Result<Self, String> {
        let separator_ok = matches!(raw.as_bytes().get(10), Some(b'T' | b't'));
        let parsed = match DateTime::parse_from_rfc3339(raw) {
            Ok(parsed) if separator_ok => parsed,
            _ => {
                let hint = if raw.len() == 10 && raw.as_bytes().get(4) == Some(&b'-') {
                    " (a date alone is not enough: add a time and offset, e.g. T09:00:00+01:00)"
                } else if raw.contains('T')
                    && !raw.ends_with(['Z', 'z'])
                    && !raw.get(10..).unwrap_or_default().contains(['+', '-'])
                {
                    " (the offset is missing: add Z for UTC or the user's offset such as +01:00)"
                } else {
                    ""
                };
                return Err(format!(
                    "must be {TIMESTAMP_HINT} (got `{}`){hint}",
                    shorten(raw)
                ));
            }
        };
        if !(MIN_YEAR..=MAX_YEAR).contains(&parsed.year()) {
            return Err(format!(
                "must be between the years {MIN_YEAR} and {MAX_YEAR} (got `{}`)",
                shorten(raw)
            ));
        }
        Ok(Self::from_utc(parsed.with_timezone(&Utc)))
    }

    pub fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new_with_format("string", "date-time");
        schema.pattern = Some(YEAR_PATTERN.to_owned());
        schema.example = Some(serde_json::Value::from("2026-11-27T09:00:00+01:00"));
        schema
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rfc3339;
        impl de::Visitor<'_> for Rfc3339 {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(TIMESTAMP_HINT)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_param(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Rfc3339)
    }
}

crate::openapi_via_serde!(Timestamp, "Timestamp", Timestamp::schema());
crate::openapi_param!(Timestamp);

/// An instant as responses carry it: UTC with `Z`, whole seconds. Its schema
/// has no year pattern, unlike [`Timestamp`]'s: an instant written with an
/// offset at the edge of the accepted years can fall just outside them in
/// UTC (1900-01-01T00:00:00+14:00 is 1899-12-31T10:00:00Z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTimestamp(Timestamp);

impl From<Timestamp> for UtcTimestamp {
    fn from(at: Timestamp) -> Self {
        Self(at)
    }
}

impl fmt::Display for UtcTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for UtcTimestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Only so that the schema glue can read one back (responses are never parsed).
impl<'de> Deserialize<'de> for UtcTimestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Timestamp::deserialize(deserializer).map(Self)
    }
}

impl UtcTimestamp {
    pub fn as_utc(&self) -> DateTime<Utc> {
        self.0.as_utc()
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new_with_format("string", "date-time");
        schema.example = Some(serde_json::Value::from("2026-11-27T08:00:00Z"));
        schema
    }
}

crate::openapi_via_serde!(UtcTimestamp, "UtcTimestamp", UtcTimestamp::schema());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_converted_to_utc() {
        let at = Timestamp::parse_param("2026-11-27T09:00:00+01:00").unwrap();
        assert_eq!(at.to_string(), "2026-11-27T08:00:00Z");
    }

    #[test]
    fn fractions_are_dropped() {
        let at = Timestamp::parse_param("2026-11-27T09:00:00.987Z").unwrap();
        assert_eq!(at.to_string(), "2026-11-27T09:00:00Z");
    }

    #[test]
    fn a_bare_date_says_to_add_a_time() {
        let err = Timestamp::parse_param("2026-11-27").unwrap_err();
        assert!(err.contains("add a time and offset"), "{err}");
    }

    #[test]
    fn a_missing_offset_says_to_add_one() {
        let err = Timestamp::parse_param("2026-11-27T09:00:00").unwrap_err();
        assert!(err.contains("offset is missing"), "{err}");
    }

    #[test]
    fn years_are_checked_as_written() {
        assert!(Timestamp::parse_param("0099-01-01T00:00:00Z").is_err());
        assert!(Timestamp::parse_param("1900-01-01T00:00:00+14:00").is_ok());
        assert!(Timestamp::parse_param("9998-12-31T23:00:00-05:00").is_ok());
        assert!(Timestamp::parse_param("9999-01-01T00:00:00Z").is_err());
    }

    /// Output may fall just outside the accepted years, which is why it has a
    /// schema of its own.
    #[test]
    fn utc_output_of_edge_input_leaves_the_input_years() {
        let early = Timestamp::parse_param("1900-01-01T00:00:00+14:00").unwrap();
        assert_eq!(
            UtcTimestamp::from(early).to_string(),
            "1899-12-31T10:00:00Z"
        );
        assert!(UtcTimestamp::schema().pattern.is_none());
        assert!(Timestamp::schema().pattern.is_some());
    }

    #[test]
    fn only_rfc_3339_date_times_are_accepted() {
        assert!(Timestamp::parse_param("2026-11-27t09:00:00z").is_ok());
        assert!(Timestamp::parse_param("2026-11-27 09:00:00Z").is_err());
        assert!(Timestamp::parse_param(" 2026-11-27T09:00:00Z").is_err());
        assert!(Timestamp::parse_param("2026-11-27T09:00:00Z ").is_err());
    }
}
