//! What a reminder is, decoded once from its row: the store returns these,
//! the API's views and the events are built from them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{entity as reminder, offset::BeforeDue};
use crate::string_enum;

string_enum! {
    /// Where a reminder is in its life: it fires once, or is cancelled first.
    pub enum ReminderStatus as "ReminderStatus" {
        Pending => "pending",
        Fired => "fired",
        Cancelled => "cancelled",
    }
}

/// A reminder about one of a user's tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub task_id: Uuid,
    pub task_number: i64,
    pub remind_at: DateTime<Utc>,
    /// Set for a reminder that moves with its task's due time.
    pub before_due: Option<BeforeDue>,
    pub status: ReminderStatus,
    /// It fired more than `store::LATE_AFTER` after its time.
    pub late: bool,
    pub created_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl TryFrom<&reminder::Model> for Reminder {
    /// What makes no sense in the stored row.
    type Error = String;

    fn try_from(row: &reminder::Model) -> Result<Self, String> {
        let reminder::Model {
            id,
            user_id,
            task_id,
            task_number,
            remind_at,
            before_due_seconds,
            ref status,
            late,
            created_at,
            fired_at,
            cancelled_at,
        } = *row;
        let before_due = before_due_seconds
            .map(|seconds| {
                BeforeDue::from_seconds(seconds).ok_or_else(|| format!("before_due of {seconds} s"))
            })
            .transpose()?;
        Ok(Self {
            id,
            user_id,
            task_id,
            task_number,
            remind_at,
            before_due,
            status: ReminderStatus::parse_param(status)?,
            late,
            created_at,
            fired_at,
            cancelled_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_reminder_that_makes_no_sense_is_refused() {
        let row = |status: &str, before_due_seconds| reminder::Model {
            id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            task_id: Uuid::now_v7(),
            task_number: 1,
            remind_at: Utc::now(),
            before_due_seconds,
            status: status.into(),
            late: false,
            created_at: Utc::now(),
            fired_at: None,
            cancelled_at: None,
        };
        assert!(
            Reminder::try_from(&row("exploded", None)).is_err_and(|why| why.contains("exploded"))
        );
        assert!(
            Reminder::try_from(&row("pending", Some(-5))).is_err_and(|why| why.contains("-5 s"))
        );
        let fine = Reminder::try_from(&row("pending", Some(3600))).unwrap();
        assert_eq!(fine.status, ReminderStatus::Pending);
        assert_eq!(
            fine.before_due.map(|offset| offset.to_iso()).as_deref(),
            Some("PT1H")
        );
    }
}
