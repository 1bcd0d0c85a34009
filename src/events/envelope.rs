//! The CloudEvents 1.0 envelope every event travels in (JSON event format).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::config::PublicUrl;

/// What happened. The `type` attribute of the envelope, and the filter a
/// webhook subscription names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    TaskCreated,
    TaskUpdated,
    TaskCompleted,
    TaskReopened,
    TaskDeleted,
    ReminderScheduled,
    ReminderDue,
    ReminderCancelled,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        Self::TaskCreated,
        Self::TaskUpdated,
        Self::TaskCompleted,
        Self::TaskReopened,
        Self::TaskDeleted,
        Self::ReminderScheduled,
        Self::ReminderDue,
        Self::ReminderCancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskCreated => "task.created",
            Self::TaskUpdated => "task.updated",
            Self::TaskCompleted => "task.completed",
            Self::TaskReopened => "task.reopened",
            Self::TaskDeleted => "task.deleted",
            Self::ReminderScheduled => "reminder.scheduled",
            Self::ReminderDue => "reminder.due",
            Self::ReminderCancelled => "reminder.cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
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
    data: &'a D,
}

impl Event {
    /// Renders an event. `subject` names the object within the source, such
    /// as `tasks/<id>`; `data` is the object as the API shows it together
    /// with the user id.
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
        assert_eq!(doc["data"]["task"]["number"], 1);
        assert!(
            DateTime::parse_from_rfc3339(doc["time"].as_str().unwrap()).is_ok(),
            "time is RFC 3339"
        );
    }

    #[test]
    fn event_types_round_trip_through_their_names() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("task.exploded"), None);
    }
}
