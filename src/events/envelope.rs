//! The CloudEvents 1.0 envelope every event travels in (JSON event format).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::config::PublicUrl;

/// What happened: the `type` attribute of the envelope, and the filter a
/// webhook subscription names. The one list of event types: the webhook
/// schema, the subscription check, the intake and the README table all come
/// from it (`message` is the table's "when"; `dataschema` names the version
/// of the `data` it carries, see [`EventType::data_schema`]; `chat`, on the
/// events a chat may subscribe to over MCP, says what it means to a person).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumMessage,
    strum::EnumProperty,
)]
pub enum EventType {
    #[strum(
        serialize = "task.created",
        message = "a task was added",
        props(
            dataschema = "urn:errand:event-data:task:1",
            chat = "A task was added to the user's list."
        )
    )]
    TaskCreated,
    #[strum(
        serialize = "task.updated",
        message = "a task's title, notes, due time, priority or tags changed (a change that changes nothing publishes nothing)",
        props(
            dataschema = "urn:errand:event-data:task:1",
            chat = "One of the user's tasks was changed (title, notes, due time, priority or tags)."
        )
    )]
    TaskUpdated,
    #[strum(
        serialize = "task.completed",
        message = "a task was marked done",
        props(
            dataschema = "urn:errand:event-data:task:1",
            chat = "One of the user's tasks was marked done."
        )
    )]
    TaskCompleted,
    #[strum(
        serialize = "task.reopened",
        message = "a done task was opened again",
        props(
            dataschema = "urn:errand:event-data:task:1",
            chat = "One of the user's done tasks was opened again."
        )
    )]
    TaskReopened,
    #[strum(
        serialize = "task.deleted",
        message = "a task was deleted (the event carries the task as it was)",
        props(
            dataschema = "urn:errand:event-data:task:1",
            chat = "One of the user's tasks was deleted."
        )
    )]
    TaskDeleted,
    #[strum(
        serialize = "reminder.scheduled",
        message = "a reminder was set, or moved with its task's due time",
        props(dataschema = "urn:errand:event-data:reminder:1")
    )]
    ReminderScheduled,
    #[strum(
        serialize = "reminder.due",
        message = "a reminder fired (`data.reminder.late` says whether it was late)",
        props(
            dataschema = "urn:errand:event-data:reminder:1",
            chat = "A reminder the user set came due: tell the user about the task it is for."
        )
    )]
    ReminderDue,
    #[strum(
        serialize = "reminder.cancelled",
        message = "a reminder was cancelled by the user, or with its task",
        props(dataschema = "urn:errand:event-data:reminder:1")
    )]
    ReminderCancelled,
}

impl EventType {
    /// Every event type, in the order the documentation lists them.
    pub fn all() -> impl Iterator<Item = Self> {
        <Self as strum::IntoEnumIterator>::iter()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }

    /// When it is published, in a phrase (the README's table).
    pub fn when(self) -> &'static str {
        strum::EnumMessage::get_message(&self).unwrap_or_default()
    }

    /// What the event means to the person in a chat, for the events a chat
    /// client may subscribe to (MCP `events/list`); `None` for the others.
    pub fn chat_description(self) -> Option<&'static str> {
        strum::EnumProperty::get_str(&self, "chat")
    }

    /// The CloudEvents `dataschema`: which shape, and which version of it,
    /// `data` has. A change a consumer could trip on gets a new version.
    pub fn data_schema(self) -> &'static str {
        strum::EnumProperty::get_str(&self, "dataschema").unwrap_or_default()
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The envelope's `source`: the deployment's public URL, which tells one
/// Errand's events from another's when several publish to one cluster.
#[derive(Debug, Clone)]
pub struct Source(String);

impl Source {
    pub fn new(public_url: &PublicUrl) -> Self {
        Self(public_url.as_str().to_owned())
    }
}

/// An event ready for the outbox: the envelope rendered once, at the time
/// of the change, so that what is published is exactly what was committed.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub kind: EventType,
    /// The Kafka message key: the task the event is about.
    pub key: Uuid,
    pub time: DateTime<Utc>,
    /// The CloudEvents JSON document.
    pub payload: String,
}

#[derive(Serialize)]
struct Envelope<'a, D> {
    specversion: &'static str,
    id: Uuid,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    dataschema: &'static str,
    data: &'a D,
}

impl Event {
    /// Renders an event. `subject` names the object within the source, such
    /// as `tasks/<id>`; `data` is the event's own payload type (never an
    /// API view, so the API can change without changing what consumers
    /// parse), of the version `kind` states.
    pub fn new<D: Serialize>(
        source: &Source,
        kind: EventType,
        key: Uuid,
        subject: &str,
        data: &D,
    ) -> Result<Self, serde_json::Error> {
        let id = Uuid::now_v7();
        let time = Utc::now();
        let payload = serde_json::to_string(&Envelope {
            specversion: "1.0",
            id,
            source: &source.0,
            kind: kind.as_str(),
            subject,
            time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
            datacontenttype: "application/json",
            dataschema: kind.data_schema(),
            data,
        })?;
        Ok(Self {
            id,
            kind,
            key,
            time,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_has_every_required_cloudevents_attribute() {
        let source = Source::new(&PublicUrl::parse("https://errand.example.com").unwrap());
        let key = Uuid::now_v7();
        let event = Event::new(
            &source,
            EventType::TaskCompleted,
            key,
            &format!("tasks/{key}"),
            &serde_json::json!({"user_id": "u", "task": {"number": 1}}),
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(doc["specversion"], "1.0");
        assert_eq!(doc["id"], event.id.to_string());
        assert_eq!(doc["source"], "https://errand.example.com");
        assert_eq!(doc["type"], "task.completed");
        assert_eq!(doc["subject"], format!("tasks/{key}"));
        assert_eq!(doc["datacontenttype"], "application/json");
        assert_eq!(doc["dataschema"], "urn:errand:event-data:task:1");
        assert_eq!(doc["data"]["task"]["number"], 1);
        assert!(
            DateTime::parse_from_rfc3339(doc["time"].as_str().unwrap()).is_ok(),
            "time is RFC 3339"
        );
    }

    #[test]
    fn event_types_round_trip_through_their_names_and_say_when_and_what() {
        for kind in EventType::all() {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert!(!kind.when().is_empty(), "{kind} says when it happens");
            assert!(
                kind.data_schema().starts_with("urn:errand:event-data:"),
                "{kind} names its data schema"
            );
        }
        assert_eq!(EventType::all().count(), 8);
        assert_eq!(EventType::parse("task.exploded"), None);
        assert_eq!(EventType::parse("Task.Created"), None);
    }

    /// The README's table of event types is this enum, row for row.
    #[test]
    fn the_readme_lists_every_event_type_as_the_enum_says() {
        let mut table = String::from("| type | when |\n| --- | --- |\n");
        for kind in EventType::all() {
            table.push_str(&format!("| `{kind}` | {} |\n", kind.when()));
        }
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&table),
            "README.md's event table should read:\n{table}"
        );
    }
}
