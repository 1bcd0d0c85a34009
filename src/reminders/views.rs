//! What reminder operations return.

use poem_openapi::Object;
use serde::Serialize;
use uuid::Uuid;

use super::domain::Reminder;
pub use super::domain::ReminderStatus;
use crate::timestamp::{Timestamp, UtcTimestamp};

/// A reminder about one of the user's tasks.
#[derive(Debug, Clone, PartialEq, Object, Serialize)]
#[oai(rename = "Reminder")]
pub struct ReminderView {
    /// The reminder's id; pass it to cancelReminder.
    pub id: Uuid,
    /// The number of the task it is about.
    pub task_number: i64,
    /// When it fires (or fired), in UTC.
    pub remind_at: UtcTimestamp,
    /// For a reminder set relative to the task's due time: how long before it, as an ISO 8601 duration (PT1H); it moves with the due time. Null for a reminder at a fixed time.
    #[oai(nullable)]
    pub before_due: Option<String>,
    pub status: ReminderStatus,
    /// True if it fired more than a few seconds after its time (Errand was not running then).
    pub late: bool,
    pub created_at: UtcTimestamp,
    /// When it fired, or null.
    #[oai(nullable)]
    pub fired_at: Option<UtcTimestamp>,
    /// When it was cancelled, or null.
    #[oai(nullable)]
    pub cancelled_at: Option<UtcTimestamp>,
}

impl From<Reminder> for ReminderView {
    fn from(reminder: Reminder) -> Self {
        // Destructured in full, so that a new field is a compile error here
        // until it is shown or deliberately left out.
        let Reminder {
            id,
            user_id: _,
            task_id: _,
            task_number,
            remind_at,
            before_due,
            status,
            late,
            created_at,
            fired_at,
            cancelled_at,
        } = reminder;
        let utc = |at| Timestamp::from_utc(at).into();
        Self {
            id,
            task_number,
            remind_at: utc(remind_at),
            before_due: before_due.map(|offset| offset.to_iso()),
            status,
            late,
            created_at: utc(created_at),
            fired_at: fired_at.map(utc),
            cancelled_at: cancelled_at.map(utc),
        }
    }
}
