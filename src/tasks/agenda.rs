//! The agenda's calendar arithmetic: "today" and "the next 7 days" are
//! calendar days in the user's time zone, so their boundaries are local
//! midnights, which are 23, 24 or 25 hours apart around DST changes.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use poem_openapi::registry::MetaSchema;
use serde::{Deserialize, Serialize};

use super::domain::Task;
use crate::{openapi_param, openapi_via_serde, text::shorten, timestamp::Timestamp};

/// How many days after today the agenda looks ahead.
pub const UPCOMING_DAYS: u64 = 7;

/// Most tasks listed per agenda section.
pub const SECTION_LIMIT: u64 = 25;

/// Open tasks in one part of the agenda: the soonest [`SECTION_LIMIT`] and
/// how many there are in all.
#[derive(Debug, Clone, Default)]
pub struct Due {
    pub tasks: Vec<Task>,
    pub total: u64,
}

/// The agenda's three parts, as the store reads them.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    pub overdue: Due,
    pub due_today: Due,
    pub upcoming: Due,
}

/// An IANA time zone such as `Europe/Paris`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(pub Tz);

impl TimeZoneName {
    /// An IANA name exactly as the database spells it; a near miss (other
    /// case, surrounding spaces) is refused with the right spelling.
    pub fn parse_param(raw: &str) -> Result<Self, String> {
        if let Ok(tz) = raw.parse::<Tz>() {
            return Ok(Self(tz));
        }
        let hint = match Tz::from_str_insensitive(raw.trim()) {
            Ok(tz) => format!("; did you mean `{}`?", tz.name()),
            Err(_) => "; ask the user where they are if unsure".to_owned(),
        };
        Err(format!(
            "must be an IANA time zone name such as Europe/Paris, America/New_York or UTC, \
             spelt exactly (got `{}`){hint}",
            shorten(raw)
        ))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Every accepted name, so that the document says exactly what the
    /// server takes.
    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("string");
        schema.enum_items = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name().into())
            .collect();
        schema.default = Some("UTC".into());
        schema.example = Some("Europe/Paris".into());
        schema
    }
}

impl Default for TimeZoneName {
    fn default() -> Self {
        Self(Tz::UTC)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse_param(&raw).map_err(serde::de::Error::custom)
    }
}

openapi_via_serde!(TimeZoneName, "TimeZone", TimeZoneName::schema());
openapi_param!(TimeZoneName);

/// The boundaries of an agenda computed at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgendaWindow {
    pub tz: Tz,
    pub now: Timestamp,
    /// The local calendar date at `now`.
    pub today: NaiveDate,
    /// Local midnight at the start of tomorrow.
    pub end_of_today: Timestamp,
    /// Local midnight after the last upcoming day.
    pub end_of_upcoming: Timestamp,
}

impl AgendaWindow {
    pub fn at(tz: Tz, now: DateTime<Utc>) -> Self {
        let today = now.with_timezone(&tz).date_naive();
        let midnight_after = |days: u64| {
            today
                .checked_add_days(Days::new(days))
                .map_or(now, |date| local_midnight(tz, date))
        };
        Self {
            tz,
            now: Timestamp::from_utc(now),
            today,
            end_of_today: Timestamp::from_utc(midnight_after(1)),
            end_of_upcoming: Timestamp::from_utc(midnight_after(1 + UPCOMING_DAYS)),
        }
    }

    /// `at` in the window's zone, as RFC 3339 with the local offset.
    pub fn local(&self, at: Timestamp) -> String {
        at.as_utc()
            .with_timezone(&self.tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// The first instant of `date` in `tz`. Where a DST change skips midnight
/// (e.g. America/Santiago), the day starts at the first local time that exists.
fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(start) = tz.from_local_datetime(&local).earliest() {
            return start.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn today_ends_at_local_midnight() {
        let window = AgendaWindow::at(chrono_tz::Europe::Paris, utc("2026-11-26T22:30:00Z"));
        // 23:30 in Paris: still the 26th there, which ends at 23:00 UTC.
        assert_eq!(window.today.to_string(), "2026-11-26");
        assert_eq!(window.end_of_today.to_string(), "2026-11-26T23:00:00Z");
        assert_eq!(window.end_of_upcoming.to_string(), "2026-12-03T23:00:00Z");
    }

    #[test]
    fn a_late_utc_evening_is_tomorrow_further_east() {
        let window = AgendaWindow::at(chrono_tz::Asia::Tokyo, utc("2026-11-26T16:00:00Z"));
        assert_eq!(window.today.to_string(), "2026-11-27");
    }

    #[test]
    fn the_upcoming_window_spans_a_dst_change_in_local_days() {
        // Paris leaves summer time on 2026-10-25: that day has 25 hours.
        let window = AgendaWindow::at(chrono_tz::Europe::Paris, utc("2026-10-20T10:00:00Z"));
        assert_eq!(window.end_of_today.to_string(), "2026-10-20T22:00:00Z");
        assert_eq!(window.end_of_upcoming.to_string(), "2026-10-27T23:00:00Z");
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_the_first_real_time() {
        // Santiago springs forward at local midnight on 2026-09-06.
        let start = local_midnight(
            chrono_tz::America::Santiago,
            NaiveDate::from_ymd_opt(2026, 9, 6).unwrap(),
        );
        assert_eq!(start.to_rfc3339(), "2026-09-06T04:00:00+00:00");
    }

    #[test]
    fn time_zone_names_are_exact_and_near_misses_say_the_spelling() {
        assert_eq!(
            TimeZoneName::parse_param("Europe/Paris").unwrap().name(),
            "Europe/Paris"
        );
        let err = TimeZoneName::parse_param(" europe/paris").unwrap_err();
        assert!(err.contains("did you mean `Europe/Paris`?"), "{err}");
        let err = TimeZoneName::parse_param("Mars/Olympus").unwrap_err();
        assert!(
            err.contains("IANA") && !err.contains("did you mean"),
            "{err}"
        );
    }

    #[test]
    fn the_schema_lists_exactly_the_names_accepted() {
        let schema = TimeZoneName::schema();
        assert!(schema.enum_items.len() > 400);
        for name in &schema.enum_items {
            let name = name.as_str().unwrap();
            assert!(TimeZoneName::parse_param(name).is_ok(), "{name}");
        }
    }
}
