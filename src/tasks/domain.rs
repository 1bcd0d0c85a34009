//! Task values that parse themselves: once constructed they are valid, so the
//! store never re-checks them. Their limits are the constants below, which
//! the OpenAPI schemas are built from as well.

use std::{collections::BTreeSet, fmt};

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::{
    openapi_param, openapi_via_serde,
    patch::Change,
    string_enum,
    text::{self, TextFault, shorten},
    timestamp::Timestamp,
};

pub const TITLE_MAX_CHARS: usize = 200;
pub const NOTES_MAX_CHARS: usize = 5_000;
pub const TAG_MAX_CHARS: usize = 32;
pub const TAGS_MAX: usize = 10;

string_enum! {
    /// How urgent a task is.
    pub enum Priority as "Priority" {
        Low => "low",
        Normal => "normal",
        High => "high",
    }
}

impl Priority {
    /// Stored as a number so that sorting by priority is a plain ORDER BY.
    pub fn rank(self) -> i16 {
        match self {
            Self::Low => 0,
            Self::Normal => 1,
            Self::High => 2,
        }
    }

    pub fn from_rank(rank: i16) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.rank() == rank)
    }
}

string_enum! {
    /// Whether a task still needs doing.
    pub enum TaskStatus as "TaskStatus" {
        Open => "open",
        Done => "done",
    }
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// A task's title: one line of 1 to 200 characters, not blank, stored
/// without surrounding white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    /// Checks the title as sent (what the schema describes), then trims it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        text::judge_line(raw).map_err(|fault| match fault {
            TextFault::Control(c) => format!(
                "must be a single line without control characters (found U+{:04X}); put longer \
                 text in notes",
                u32::from(c)
            ),
            TextFault::LineSeparator(_) => format!("{fault}; put longer text in notes"),
            TextFault::Blank => {
                format!("must not be blank; send 1 to {TITLE_MAX_CHARS} characters naming the task")
            }
            other => other.to_string(),
        })?;
        let len = char_count(raw);
        if len > TITLE_MAX_CHARS {
            return Err(format!(
                "must be at most {TITLE_MAX_CHARS} characters (got {len}); shorten it and put \
                 the rest in notes"
            ));
        }
        Ok(Self(raw.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("string");
        schema.min_length = Some(1);
        schema.max_length = Some(TITLE_MAX_CHARS);
        schema.pattern = Some(text::one_line_pattern());
        schema.example = Some("Renew passport".into());
        schema
    }
}

/// Free-form notes: up to 5,000 characters, line breaks allowed. Blank notes
/// are no notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNotes(String);

impl TaskNotes {
    /// Checks the notes as sent, then trims them.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        text::judge_lines(raw).map_err(|fault| fault.to_string())?;
        let len = char_count(raw);
        if len > NOTES_MAX_CHARS {
            return Err(format!(
                "must be at most {NOTES_MAX_CHARS} characters (got {len})"
            ));
        }
        let notes = raw.trim();
        Ok((!notes.is_empty()).then(|| Self(notes.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("string");
        schema.max_length = Some(NOTES_MAX_CHARS);
        schema.pattern = Some(text::multi_line_pattern());
        schema
    }
}

/// A label: 1 to 32 characters of `A-Z`, `a-z`, `0-9`, `-` and `_`, stored
/// lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// Checks the tag as sent (what the schema's pattern says), then
    /// lowercases it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if raw.is_empty() || raw.len() > TAG_MAX_CHARS || !valid_chars {
            return Err(format!(
                "must be 1 to {TAG_MAX_CHARS} characters of a-z, 0-9, - and _ (got `{}`)",
                shorten(raw)
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn parse_param(raw: &str) -> Result<Self, String> {
        Self::parse(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("string");
        schema.min_length = Some(1);
        schema.max_length = Some(TAG_MAX_CHARS);
        schema.pattern = Some("^[A-Za-z0-9_-]+$".to_owned());
        schema.example = Some("errands".into());
        schema
    }
}

/// Up to ten tags as sent, kept distinct and in alphabetical order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeSet<Tag>);

impl Tags {
    pub fn new(tags: Vec<Tag>) -> Result<Self, String> {
        if tags.len() > TAGS_MAX {
            return Err(format!(
                "must hold at most {TAGS_MAX} tags (got {})",
                tags.len()
            ));
        }
        Ok(Self(tags.into_iter().collect()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|t| t.0.clone()).collect()
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("array");
        schema.items = Some(Box::new(MetaSchemaRef::Inline(Box::new(Tag::schema()))));
        schema.max_items = Some(TAGS_MAX);
        schema
    }
}

/// A task's number: the user's own 1, 2, 3…, as shown in every listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskNumber(i64);

impl TaskNumber {
    pub fn new(number: i64) -> Option<Self> {
        (number >= 1).then_some(Self(number))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn parse_param(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse::<i64>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| {
                format!(
                    "must be a task number, a whole number from 1 up as shown by listTasks (got `{}`)",
                    shorten(raw)
                )
            })
    }

    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new_with_format("integer", "int64");
        schema.minimum = Some(1.0);
        schema.example = Some(12.into());
        schema
    }
}

impl crate::web::PathParamName for TaskNumber {
    const NAME: &'static str = "number";
}

impl fmt::Display for TaskNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// serde for the string newtypes: deserialize through `parse`, serialize the
/// inner string.
macro_rules! string_newtype_serde {
    ($ty:ty, $expecting:expr, |$raw:ident| $parse:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, $raw: &str) -> Result<$ty, E> {
                        $parse.map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

string_newtype_serde!(TaskTitle, "a string of 1 to 200 characters", |raw| {
    TaskTitle::parse(raw)
});
string_newtype_serde!(
    Tag,
    "a tag: 1 to 32 characters of a-z, 0-9, - and _",
    |raw| Tag::parse(raw)
);

/// Notes deserialize to `Option` because blank notes mean no notes; the
/// wrapper type only exists to carry the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotesInput(pub Option<TaskNotes>);

impl Serialize for NotesInput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(notes) => serializer.serialize_str(notes.as_str()),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for NotesInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = NotesInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string of at most 5,000 characters")
            }
            fn visit_str<E: de::Error>(self, raw: &str) -> Result<NotesInput, E> {
                TaskNotes::parse(raw).map(NotesInput).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tags = Vec::<Tag>::deserialize(deserializer)?;
        Tags::new(tags).map_err(de::Error::custom)
    }
}

impl Serialize for TaskNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for TaskNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = i64::deserialize(deserializer)?;
        Self::new(number).ok_or_else(|| de::Error::custom("must be a task number from 1 up"))
    }
}

openapi_via_serde!(TaskTitle, "TaskTitle", TaskTitle::schema());
openapi_via_serde!(NotesInput, "TaskNotes", TaskNotes::schema());
openapi_via_serde!(Tag, "Tag", Tag::schema());
openapi_param!(Tag);
openapi_via_serde!(Tags, "Tags", Tags::schema());
openapi_via_serde!(TaskNumber, "TaskNumber", TaskNumber::schema());
openapi_param!(TaskNumber);

/// A task as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: uuid::Uuid,
    pub number: TaskNumber,
    pub title: String,
    pub notes: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    pub due_at: Option<Timestamp>,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub version: i32,
}

/// What `createTask` asks for, validated.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: TaskTitle,
    pub notes: Option<TaskNotes>,
    pub due_at: Option<Timestamp>,
    pub priority: Priority,
    pub tags: Tags,
}

/// What `updateTask` asks for, validated.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<TaskTitle>,
    pub notes: Change<TaskNotes>,
    pub due_at: Change<Timestamp>,
    pub priority: Option<Priority>,
    pub tags: Option<Tags>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_bounded_as_sent_and_stored_trimmed() {
        assert_eq!(
            TaskTitle::parse("  Buy milk ").unwrap().as_str(),
            "Buy milk"
        );
        assert!(TaskTitle::parse("   ").is_err());
        assert!(
            TaskTitle::parse("\u{3000}").is_err(),
            "ideographic space is blank"
        );
        assert!(TaskTitle::parse(&"x".repeat(200)).is_ok());
        let err = TaskTitle::parse(&"x".repeat(201)).unwrap_err();
        assert!(err.contains("got 201"), "{err}");
        let err = TaskTitle::parse(&format!("{} ", "x".repeat(200))).unwrap_err();
        assert!(err.contains("got 201"), "trailing space counts: {err}");
        assert!(TaskTitle::parse("two\nlines").is_err());
        assert!(TaskTitle::parse("\tleading tab").is_err());
    }

    #[test]
    fn title_length_counts_characters_not_bytes() {
        assert!(TaskTitle::parse(&"é".repeat(200)).is_ok());
    }

    #[test]
    fn blank_notes_are_no_notes() {
        assert_eq!(TaskNotes::parse("  \n ").unwrap(), None);
        assert!(TaskNotes::parse(&"n".repeat(5_001)).is_err());
        assert!(TaskNotes::parse(&format!("{}  ", "n".repeat(4_999))).is_err());
        assert!(
            TaskNotes::parse("line one\nline two\tend")
                .unwrap()
                .is_some()
        );
        assert!(TaskNotes::parse("nul \0 byte").is_err());
    }

    #[test]
    fn tags_are_lowercased_and_checked() {
        assert_eq!(
            Tag::parse("Home-Office_2").unwrap().as_str(),
            "home-office_2"
        );
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse("has space").is_err());
        assert!(Tag::parse(" x ").is_err(), "checked as sent, not trimmed");
        assert!(Tag::parse(&"a".repeat(33)).is_err());
        assert!(Tag::parse("ümlaut").is_err());
        assert!(
            Tag::parse("\u{212a}").is_err(),
            "the Kelvin sign is not a k"
        );
    }

    #[test]
    fn tag_lists_are_deduplicated_and_capped_as_sent() {
        let tags = Tags::new(["b", "a", "B"].map(|t| Tag::parse(t).unwrap()).to_vec()).unwrap();
        assert_eq!(tags.to_strings(), ["a", "b"]);
        let eleven = (0..11).map(|i| Tag::parse(&format!("t{i}")).unwrap());
        assert!(Tags::new(eleven.collect()).is_err());
        let same_eleven = vec![Tag::parse("x").unwrap(); 11];
        assert!(Tags::new(same_eleven).is_err());
    }

    #[test]
    fn priorities_round_trip_through_rank() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_rank(p.rank()), Some(*p));
        }
        let err = Priority::parse_param("urgent").unwrap_err();
        assert!(err.contains("low, normal, high"), "{err}");
    }

    #[test]
    fn task_numbers_start_at_one() {
        assert!(TaskNumber::parse_param("0").is_err());
        assert!(TaskNumber::parse_param("abc").is_err());
        assert_eq!(TaskNumber::parse_param("12").unwrap().get(), 12);
    }
}
