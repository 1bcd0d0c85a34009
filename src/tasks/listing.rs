//! What `listTasks` can ask for, and the opaque cursor that continues a listing.
//!
//! Paging is by keyset: the cursor holds the sort key of the last task shown,
//! and the next page starts strictly after it. Tasks added or changed while a
//! caller pages are therefore never shown twice, and no task that existed
//! throughout is skipped. A cursor also carries a fingerprint of the filters
//! it was issued for, so reusing it with other filters is an error rather than
//! a silently wrong page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use poem_openapi::registry::MetaSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::domain::{Tag, Task};
use crate::{
    openapi_param, openapi_via_serde, string_enum,
    text::{self, TextFault, shorten},
    timestamp::Timestamp,
};

/// Characters of JSON a listing page stays under. ChatGPT drops action
/// responses over 100,000 characters, so a page of long tasks ends early,
/// with a cursor, rather than exceeding that.
pub const PAGE_CHAR_BUDGET: usize = 95_000;

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;
pub const SEARCH_MAX_CHARS: usize = 200;

string_enum! {
    /// Which tasks to list by status.
    pub enum StatusFilter as "StatusFilter" {
        Open => "open",
        Done => "done",
        All => "all",
    }
}

string_enum! {
    /// The order of a listing.
    pub enum SortKey as "TaskSort" {
        Due => "due",
        Created => "created",
        Priority => "priority",
    }
}

/// How many tasks a page holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageLimit(u32);

impl PageLimit {
    pub fn get(self) -> u32 {
        self.0
    }

    pub fn parse_param(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .map(Self)
            .ok_or_else(|| {
                format!(
                    "must be a whole number from 1 to {MAX_PAGE_SIZE} (got `{}`)",
                    shorten(raw)
                )
            })
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new_with_format("integer", "int32");
        schema.minimum = Some(1.0);
        schema.maximum = Some(f64::from(MAX_PAGE_SIZE));
        schema.default = Some(DEFAULT_PAGE_SIZE.into());
        schema
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(DEFAULT_PAGE_SIZE)
    }
}

/// Text to look for in titles and notes, case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchText(String);

impl SearchText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the text as sent (what the schema describes), then trims it.
    pub fn parse_param(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if len > SEARCH_MAX_CHARS {
            return Err(format!(
                "must be 1 to {SEARCH_MAX_CHARS} characters of text to look for (got {len})"
            ));
        }
        text::judge_line(raw).map_err(|fault| match fault {
            TextFault::Blank => format!(
                "must be 1 to {SEARCH_MAX_CHARS} characters of text to look for, not only spaces"
            ),
            other => other.to_string(),
        })?;
        Ok(Self(raw.trim().to_owned()))
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("string");
        schema.min_length = Some(1);
        schema.max_length = Some(SEARCH_MAX_CHARS);
        schema.pattern = Some(text::one_line_pattern());
        schema
    }
}

/// The filters and order of one listing.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub status: StatusFilter,
    pub tag: Option<Tag>,
    pub text: Option<SearchText>,
    /// Only tasks due strictly before this instant.
    pub due_before: Option<Timestamp>,
    /// Only tasks due at or after this instant.
    pub due_after: Option<Timestamp>,
    pub sort: SortKey,
}

impl ListQuery {
    /// Identifies the filters a cursor belongs to. Not a secret: it only
    /// catches a cursor being replayed against another query.
    pub fn fingerprint(&self) -> String {
        let canonical = format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.status,
            self.tag.as_ref().map_or("", Tag::as_str),
            self.text.as_ref().map_or("", SearchText::as_str),
            self.due_before.map(|t| t.to_string()).unwrap_or_default(),
            self.due_after.map(|t| t.to_string()).unwrap_or_default(),
            self.sort,
        );
        let digest = Sha256::digest(canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..9])
    }
}

/// Where the previous page ended: the sort key of its last task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub number: i64,
    pub priority: i16,
    /// Seconds since the epoch; `None` for a task without a due date.
    pub due_at: Option<i64>,
}

impl Position {
    pub fn of(task: &Task) -> Self {
        Self {
            number: task.number.get(),
            priority: task.priority.rank(),
            due_at: task.due_at.map(|t| t.as_utc().timestamp()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CursorPayload {
    /// Filter fingerprint.
    f: String,
    /// Position.
    p: Position,
}

const CURSOR_PREFIX: &str = "c1.";

/// The wire form of a cursor, parsed lazily because checking it needs the
/// query it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawCursor(String);

impl RawCursor {
    pub fn parse_param(raw: &str) -> Result<Self, String> {
        Ok(Self(raw.trim().to_owned()))
    }

    fn schema() -> MetaSchema {
        MetaSchema::new("string")
    }

    /// The position to continue after, if this cursor was issued for `query`.
    pub fn position_for(&self, query: &ListQuery) -> Result<Position, String> {
        let invalid = || {
            "is not a cursor this service issued; pass next_cursor exactly as returned, or omit \
             cursor to start from the first page"
                .to_owned()
        };
        let encoded = self.0.strip_prefix(CURSOR_PREFIX).ok_or_else(invalid)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| invalid())?;
        let payload: CursorPayload = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if payload.f != query.fingerprint() {
            return Err(
                "was issued for a listing with other filters or sort; repeat the call with the \
                 same status, tag, q, due_before, due_after and sort, or omit cursor to start over"
                    .to_owned(),
            );
        }
        Ok(payload.p)
    }

    /// The cursor that continues `query` after `position`.
    pub fn at(position: Position, query: &ListQuery) -> Self {
        let payload = CursorPayload {
            f: query.fingerprint(),
            p: position,
        };
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        Self(format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(json)))
    }

    /// The text a client passes back as `cursor`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// How many tasks to read for a page of `limit`: the one beyond it says
/// whether another page follows.
pub fn rows_for(limit: PageLimit) -> u64 {
    u64::from(limit.get()) + 1
}

openapi_via_serde!(PageLimit, "PageLimit", PageLimit::schema());
openapi_param!(PageLimit);
openapi_via_serde!(SearchText, "SearchText", SearchText::schema());
openapi_param!(SearchText);
openapi_via_serde!(RawCursor, "Cursor", RawCursor::schema());
openapi_param!(RawCursor);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::domain::{Priority, TaskNumber, TaskStatus};

    fn query(status: StatusFilter) -> ListQuery {
        ListQuery {
            status,
            tag: None,
            text: None,
            due_before: None,
            due_after: None,
            sort: SortKey::Due,
        }
    }

    fn task() -> Task {
        let now = Timestamp::now();
        Task {
            id: uuid::Uuid::new_v4(),
            number: TaskNumber::new(7).unwrap(),
            title: "t".into(),
            notes: None,
            status: TaskStatus::Open,
            priority: Priority::High,
            due_at: Some(now),
            tags: vec![],
            created_at: now,
            updated_at: now,
            completed_at: None,
            version: 1,
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_query() {
        let q = query(StatusFilter::Open);
        let cursor = RawCursor::at(Position::of(&task()), &q);
        let position = cursor.position_for(&q).unwrap();
        assert_eq!(position.number, 7);
        assert_eq!(position.priority, 2);
    }

    #[test]
    fn a_cursor_is_refused_for_other_filters() {
        let cursor = RawCursor::at(Position::of(&task()), &query(StatusFilter::Open));
        let err = cursor.position_for(&query(StatusFilter::All)).unwrap_err();
        assert!(err.contains("other filters"), "{err}");
    }

    #[test]
    fn a_forged_cursor_is_refused() {
        let err = RawCursor("c1.bm9wZQ".into())
            .position_for(&query(StatusFilter::Open))
            .unwrap_err();
        assert!(err.contains("not a cursor"), "{err}");
    }

    #[test]
    fn page_limits_are_bounded() {
        assert!(PageLimit::parse_param("0").is_err());
        assert!(PageLimit::parse_param("101").is_err());
        assert_eq!(PageLimit::parse_param("100").unwrap().get(), 100);
    }
}
