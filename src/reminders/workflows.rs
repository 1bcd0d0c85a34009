//! What a caller can do to reminders, each in one transaction that holds
//! its rules: setting one (the task must be open, have a due time to count
//! back from, and room for another) and cancelling one. Handlers and any
//! future caller only map the outcome; the outbox is rung by the commit.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    domain::{Reminder, ReminderStatus},
    offset::BeforeDue,
    store::{self, MAX_PENDING_PER_TASK, NewReminder, StoreError},
};
use crate::{
    db,
    events::{Source, outbox},
    tasks::{
        domain::{TaskNumber, TaskStatus},
        store as task_store,
    },
};

/// How far in the past a `remind_at` may be and still be taken as "now"
/// (clocks differ, and a model may say "remind me now").
pub const PAST_SLACK: TimeDelta = TimeDelta::seconds(60);

/// When a new reminder fires, as the caller gave it.
#[derive(Debug, Clone, Copy)]
pub enum When {
    At(DateTime<Utc>),
    BeforeDue(BeforeDue),
}

/// Why a reminder was not set; the caller words it for its audience.
#[derive(Debug, thiserror::Error)]
pub enum SetRefused {
    #[error("no such task")]
    NoSuchTask,
    #[error("the task is completed")]
    TaskDone,
    #[error("the task has no due time")]
    NoDueTime,
    #[error("{at} has already passed")]
    AtPassed {
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("{offset} before {due} has already passed")]
    OffsetPassed {
        offset: BeforeDue,
        due: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error("the task has {MAX_PENDING_PER_TASK} pending reminders")]
    TooMany,
    #[error(transparent)]
    Reminders(#[from] StoreError),
    #[error(transparent)]
    Tasks(#[from] task_store::StoreError),
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

/// Sets a reminder on the user's task `number` (`reminder.scheduled`). The
/// task is locked while the rules are checked, so a completion or a second
/// reminder racing this one is waited for, not slipped past.
pub async fn set(
    db: &DatabaseConnection,
    source: &Source,
    user_id: Uuid,
    number: TaskNumber,
    when: When,
) -> Result<Reminder, SetRefused> {
    let now = Utc::now();
    let txn = db::begin_write(db).await?;
    let task = task_store::lock(&txn, user_id, number)
        .await?
        .ok_or(SetRefused::NoSuchTask)?;
    if task.status == TaskStatus::Done {
        return Err(SetRefused::TaskDone);
    }
    let (remind_at, before_due) = match when {
        When::At(at) if at < now - PAST_SLACK => return Err(SetRefused::AtPassed { at, now }),
        When::At(at) => (at, None),
        When::BeforeDue(offset) => {
            let due = task.due_at.ok_or(SetRefused::NoDueTime)?.as_utc();
            let at = due - offset.as_duration();
            if at < now - PAST_SLACK {
                return Err(SetRefused::OffsetPassed { offset, due, at });
            }
            (at, Some(offset))
        }
    };
    if store::pending_count(&txn, task.id).await? >= MAX_PENDING_PER_TASK {
        return Err(SetRefused::TooMany);
    }
    let reminder = store::create(
        &txn,
        source,
        NewReminder {
            user_id,
            task_id: task.id,
            task_number: task.number.get(),
            remind_at,
            before_due,
        },
    )
    .await?;
    outbox::commit(txn).await?;
    Ok(reminder)
}

/// What cancelling a reminder did.
#[derive(Debug)]
pub enum Cancelled {
    /// It was pending and is cancelled now (or was already cancelled).
    Cancelled(Reminder),
    /// It had already fired.
    AlreadyFired(Reminder),
    /// The user has no reminder with that id.
    NotFound,
}

/// Cancels one of the user's reminders (`reminder.cancelled`). Cancelling a
/// cancelled reminder changes nothing, so repeating the call is safe.
pub async fn cancel(
    db: &DatabaseConnection,
    source: &Source,
    user_id: Uuid,
    id: Uuid,
) -> Result<Cancelled, StoreError> {
    let txn = db::begin_write(db).await?;
    let Some(reminder) = store::find_locked(&txn, user_id, id).await? else {
        return Ok(Cancelled::NotFound);
    };
    // Only a pending reminder changes; the rest end the transaction
    // without ringing the relay for nothing.
    let outcome = match reminder.status {
        ReminderStatus::Pending => {
            let cancelled = store::mark_cancelled(&txn, source, reminder).await?;
            outbox::commit(txn).await?;
            return Ok(Cancelled::Cancelled(cancelled));
        }
        ReminderStatus::Cancelled => Cancelled::Cancelled(reminder),
        ReminderStatus::Fired => Cancelled::AlreadyFired(reminder),
    };
    txn.commit().await?;
    Ok(outcome)
}
