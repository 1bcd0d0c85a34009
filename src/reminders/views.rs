//! What reminder operations return, and the `data` of reminder events.

use poem_openapi::Object;
use serde::Serialize;
use uuid::Uuid;

use crate::{string_enum, timestamp::UtcTimestamp};

string_enum! {
    /// Where a reminder is in its life: it fires once, or is cancelled first.
    pub enum ReminderStatus as "ReminderStatus" {
        Pending => "pending",
        Fired => "fired",
        Cancelled => "cancelled",
    }
}

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
