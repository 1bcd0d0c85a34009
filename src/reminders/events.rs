//! What `reminder.*` events carry: their `data`, version 1
//! (`urn:errand:event-data:reminder:1`).
//!
//! Its own types, built from the domain's `Reminder`, not the API's `ReminderView`:
//! consumers parse these, and an API change must not change them by
//! accident. A field may be added here, and one removed or re-typed only
//! with a new version (a new `dataschema` on the event types in
//! `events::envelope`). The golden test below pins the shape.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::domain::{Reminder, ReminderStatus};
use crate::{
    events::{Event, EventType, Source},
    timestamp::{Timestamp, UtcTimestamp},
};

/// What a `reminder.due` event says about its task, so that whoever is told
/// (a webhook receiver, a chat, a mail) can say what the reminder is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskBrief {
    pub number: i64,
    pub title: String,
    pub due_at: Option<UtcTimestamp>,
    pub tags: Vec<String>,
}

/// The `data` of a reminder event.
#[derive(Serialize)]
struct ReminderEventData<'a> {
    user_id: Uuid,
    task_id: Uuid,
    reminder: ReminderSnapshot,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<&'a TaskBrief>,
}

#[derive(Serialize)]
struct ReminderSnapshot {
    id: Uuid,
    task_number: i64,
    remind_at: UtcTimestamp,
    /// ISO 8601 (`PT1H`), for a reminder that moves with its task's due time.
    before_due: Option<String>,
    status: ReminderStatus,
    late: bool,
    created_at: UtcTimestamp,
    fired_at: Option<UtcTimestamp>,
    cancelled_at: Option<UtcTimestamp>,
}

impl ReminderSnapshot {
    fn of(reminder: &Reminder) -> Self {
        let utc = |at: DateTime<Utc>| UtcTimestamp::from(Timestamp::from_utc(at));
        Self {
            id: reminder.id,
            task_number: reminder.task_number,
            remind_at: utc(reminder.remind_at),
            before_due: reminder.before_due.map(|offset| offset.to_iso()),
            status: reminder.status,
            late: reminder.late,
            created_at: utc(reminder.created_at),
            fired_at: reminder.fired_at.map(utc),
            cancelled_at: reminder.cancelled_at.map(utc),
        }
    }
}

/// The event `kind` about `reminder`, keyed by its task so that it stays in
/// order with the task's own events; `task` for `reminder.due`.
pub fn reminder_event(
    source: &Source,
    kind: EventType,
    reminder: &Reminder,
    task: Option<&TaskBrief>,
) -> serde_json::Result<Event> {
    let data = ReminderEventData {
        user_id: reminder.user_id,
        task_id: reminder.task_id,
        reminder: ReminderSnapshot::of(reminder),
        task,
    };
    Event::new(
        source,
        kind,
        reminder.task_id,
        &format!("reminders/{}", reminder.id),
        &data,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::PublicUrl;

    /// Version 1, field for field: a change here is a change to what every
    /// consumer parses, and needs a new version instead.
    #[test]
    fn version_one_of_the_reminder_data_is_pinned() {
        let at = |raw: &str| Timestamp::parse_param(raw).unwrap();
        let uuid =
            |n: u8| Uuid::parse_str(&format!("01936f6e-0000-7000-8000-0000000000{n:02}")).unwrap();
        let reminder = Reminder {
            id: uuid(1),
            user_id: uuid(2),
            task_id: uuid(3),
            task_number: 7,
            remind_at: at("2026-12-01T07:00:00Z").as_utc(),
            before_due: Some("PT1H".parse().unwrap()),
            status: ReminderStatus::Fired,
            late: false,
            created_at: at("2026-11-27T08:00:00Z").as_utc(),
            fired_at: Some(at("2026-12-01T07:00:01Z").as_utc()),
            cancelled_at: None,
        };
        let brief = TaskBrief {
            number: 7,
            title: "Renew passport".into(),
            due_at: Some(at("2026-12-01T08:00:00Z").into()),
            tags: vec![],
        };
        let source = Source::new(&PublicUrl::parse("https://errand.example.com").unwrap());
        let event =
            reminder_event(&source, EventType::ReminderDue, &reminder, Some(&brief)).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(doc["dataschema"], "urn:errand:event-data:reminder:1");
        assert_eq!(doc["subject"], format!("reminders/{}", uuid(1)));
        assert_eq!(
            doc["data"],
            json!({
                "user_id": uuid(2), "task_id": uuid(3),
                "reminder": {
                    "id": uuid(1), "task_number": 7, "remind_at": "2026-12-01T07:00:00Z",
                    "before_due": "PT1H", "status": "fired", "late": false,
                    "created_at": "2026-11-27T08:00:00Z", "fired_at": "2026-12-01T07:00:01Z",
                    "cancelled_at": null
                },
                "task": { "number": 7, "title": "Renew passport",
                          "due_at": "2026-12-01T08:00:00Z", "tags": [] }
            })
        );
    }
}
