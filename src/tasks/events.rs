//! What `task.*` events carry: their `data`, version 1
//! (`urn:errand:event-data:task:1`).
//!
//! Its own types, not the API's `TaskView`: consumers on Kafka and webhooks
//! parse these, and an API change must not change them by accident. Version 1
//! has the fields `TaskView` had when the two were split; a field may be
//! added here, and one removed or re-typed only with a new version (a new
//! `dataschema` on the event types in `events::envelope`). The golden test
//! below pins the shape.

use serde::Serialize;
use uuid::Uuid;

use super::domain::{Priority, Task, TaskStatus};
use crate::{
    events::{Event, EventType, Source},
    timestamp::UtcTimestamp,
};

/// The `data` of a task event.
#[derive(Serialize)]
struct TaskEventData<'a> {
    user_id: Uuid,
    task: TaskSnapshot<'a>,
}

/// The task as it is after the change (before it, for `task.deleted`).
#[derive(Serialize)]
struct TaskSnapshot<'a> {
    id: Uuid,
    number: i64,
    title: &'a str,
    notes: Option<&'a str>,
    status: TaskStatus,
    priority: Priority,
    due_at: Option<UtcTimestamp>,
    tags: &'a [String],
    created_at: UtcTimestamp,
    updated_at: UtcTimestamp,
    completed_at: Option<UtcTimestamp>,
    version: i32,
}

impl<'a> From<&'a Task> for TaskSnapshot<'a> {
    fn from(task: &'a Task) -> Self {
        // Every field named, no `..`: a field added to `Task` fails to
        // compile here until it is published (added above) or left out on
        // purpose (`field: _`).
        let Task {
            id,
            number,
            title,
            notes,
            status,
            priority,
            due_at,
            tags,
            created_at,
            updated_at,
            completed_at,
            version,
        } = task;
        Self {
            id: *id,
            number: number.get(),
            title,
            notes: notes.as_deref(),
            status: *status,
            priority: *priority,
            due_at: due_at.map(UtcTimestamp::from),
            tags,
            created_at: (*created_at).into(),
            updated_at: (*updated_at).into(),
            completed_at: completed_at.map(UtcTimestamp::from),
            version: *version,
        }
    }
}

/// The event `kind` about `task`, whose owner is `user_id`, keyed by the
/// task so that its events stay in order.
pub fn task_event(
    source: &Source,
    kind: EventType,
    user_id: Uuid,
    task: &Task,
) -> Result<Event, serde_json::Error> {
    Event::new(
        source,
        kind,
        task.id,
        &format!("tasks/{}", task.id),
        &TaskEventData {
            user_id,
            task: TaskSnapshot::from(task),
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{config::PublicUrl, tasks::domain::TaskNumber, timestamp::Timestamp};

    /// Version 1, field for field: a change here is a change to what every
    /// consumer parses, and needs a new version instead.
    #[test]
    fn version_one_of_the_task_data_is_pinned() {
        let at = |raw: &str| Timestamp::parse_param(raw).unwrap();
        let id = Uuid::parse_str("01936f6e-0000-7000-8000-000000000011").unwrap();
        let user_id = Uuid::parse_str("01936f6e-0000-7000-8000-000000000022").unwrap();
        let task = Task {
            id,
            number: TaskNumber::new(3).unwrap(),
            title: "Renew passport".into(),
            notes: None,
            status: TaskStatus::Done,
            priority: Priority::High,
            due_at: Some(at("2026-12-01T08:00:00Z")),
            tags: vec!["errands".into()],
            created_at: at("2026-11-27T08:00:00Z"),
            updated_at: at("2026-11-28T09:30:00Z"),
            completed_at: Some(at("2026-11-28T09:30:00Z")),
            version: 2,
        };
        let source = Source::new(&PublicUrl::parse("https://errand.example.com").unwrap());
        let event = task_event(&source, EventType::TaskCompleted, user_id, &task).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(doc["dataschema"], "urn:errand:event-data:task:1");
        assert_eq!(doc["subject"], format!("tasks/{id}"));
        assert_eq!(
            doc["data"],
            json!({
                "user_id": user_id,
                "task": {
                    "id": id, "number": 3, "title": "Renew passport", "notes": null,
                    "status": "done", "priority": "high", "due_at": "2026-12-01T08:00:00Z",
                    "tags": ["errands"], "created_at": "2026-11-27T08:00:00Z",
                    "updated_at": "2026-11-28T09:30:00Z",
                    "completed_at": "2026-11-28T09:30:00Z", "version": 2
                }
            })
        );
    }
}
