//! Reminder rows and their events. Every change writes its event in the
//! caller's transaction; nothing here reads the tasks table (the task a
//! reminder is for is the caller's business).

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{
    entity::{self as reminder},
    events::{self, TaskBrief},
    offset::BeforeDue,
    views::{ReminderStatus, ReminderView},
};
use crate::{
    db,
    events::{Event, EventType, Source, outbox},
    timestamp::Timestamp,
};

/// A reminder firing later than this after its time is marked late: it
/// came due while no Errand was running.
pub const LATE_AFTER: TimeDelta = TimeDelta::seconds(5);
/// Most pending reminders one task may have.
pub const MAX_PENDING_PER_TASK: u64 = 10;
/// Most reminders one scheduler round fires.
const FIRE_BATCH: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] DbErr),
    #[error("could not render an event")]
    Event(#[from] serde_json::Error),
    #[error("stored reminder {id} cannot be read: {why}")]
    Corrupt { id: Uuid, why: String },
}

type Result<T> = std::result::Result<T, StoreError>;

/// A reminder to create.
#[derive(Debug, Clone)]
pub struct NewReminder {
    pub user_id: Uuid,
    pub task_id: Uuid,
    pub task_number: i64,
    pub remind_at: DateTime<Utc>,
    pub before_due: Option<BeforeDue>,
}

fn view(row: &reminder::Model) -> Result<ReminderView> {
    let corrupt = |why: String| StoreError::Corrupt { id: row.id, why };
    let status = ReminderStatus::parse_param(&row.status).map_err(corrupt)?;
    let before_due = row
        .before_due_seconds
        .map(|seconds| {
            BeforeDue::from_seconds(seconds)
                .map(|offset| offset.to_iso())
                .ok_or_else(|| corrupt(format!("before_due of {seconds} s")))
        })
        .transpose()?;
    let utc = |at: DateTime<Utc>| Timestamp::from_utc(at).into();
    Ok(ReminderView {
        id: row.id,
        task_number: row.task_number,
        remind_at: utc(row.remind_at),
        before_due,
        status,
        late: row.late,
        created_at: utc(row.created_at),
        fired_at: row.fired_at.map(utc),
        cancelled_at: row.cancelled_at.map(utc),
    })
}

/// The event for a change to a reminder (see `reminders::events`).
fn event(source: &Source, kind: EventType, row: &reminder::Model) -> Result<Event> {
    event_about(source, kind, row, None)
}

fn event_about(
    source: &Source,
    kind: EventType,
    row: &reminder::Model,
    task: Option<&TaskBrief>,
) -> Result<Event> {
    events::reminder_event(source, kind, row, task).map_err(|error| match error {
        events::EventError::Corrupt(why) => StoreError::Corrupt { id: row.id, why },
        events::EventError::Render(error) => StoreError::Event(error),
    })
}

/// How many reminders of a task are waiting to fire.
pub async fn pending_count(conn: &impl ConnectionTrait, task_id: Uuid) -> Result<u64> {
    Ok(reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(task_id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()))
        .count(conn)
        .await?)
}

/// Creates a pending reminder (`reminder.scheduled`), in the caller's
/// transaction.
pub async fn create(
    conn: &impl ConnectionTrait,
    source: &Source,
    new: NewReminder,
) -> Result<ReminderView> {
    let row = reminder::Model {
        id: Uuid::now_v7(),
        user_id: new.user_id,
        task_id: new.task_id,
        task_number: new.task_number,
        remind_at: new.remind_at,
        before_due_seconds: new.before_due.map(|offset| offset.seconds()),
        status: ReminderStatus::Pending.as_str().to_owned(),
        late: false,
        created_at: Utc::now(),
        fired_at: None,
        cancelled_at: None,
    };
    reminder::Entity::insert(reminder::ActiveModel::from(row.clone()))
        .exec_without_returning(conn)
        .await?;
    outbox::append(conn, &event(source, EventType::ReminderScheduled, &row)?).await?;
    view(&row)
}

/// Every reminder of one task, soonest first.
pub async fn for_task(
    db: &DatabaseConnection,
    user_id: Uuid,
    task_id: Uuid,
) -> Result<Vec<ReminderView>> {
    reminder::Entity::find()
        .filter(reminder::Column::UserId.eq(user_id))
        .filter(reminder::Column::TaskId.eq(task_id))
        .order_by_asc(reminder::Column::RemindAt)
        .order_by_asc(reminder::Column::Id)
        .all(db)
        .await?
        .iter()
        .map(view)
        .collect()
}

/// The user's pending reminders, soonest first, up to `limit`, and only
/// those before `until` when given.
pub async fn upcoming(
    db: &DatabaseConnection,
    user_id: Uuid,
    until: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<ReminderView>> {
    let mut select = reminder::Entity::find()
        .filter(reminder::Column::UserId.eq(user_id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()));
    if let Some(until) = until {
        select = select.filter(reminder::Column::RemindAt.lt(until));
    }
    select
        .order_by_asc(reminder::Column::RemindAt)
        .order_by_asc(reminder::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .iter()
        .map(view)
        .collect()
}

/// What cancelling a reminder did.
#[derive(Debug)]
pub enum Cancelled {
    /// It was pending and is cancelled now (or was already cancelled).
    Cancelled(ReminderView),
    /// It had already fired.
    AlreadyFired(ReminderView),
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
) -> Result<Cancelled> {
    let txn = db::begin_write(db).await?;
    let Some(row) = reminder::Entity::find_by_id(id)
        .filter(reminder::Column::UserId.eq(user_id))
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(Cancelled::NotFound);
    };
    let outcome = match ReminderStatus::parse_param(&row.status) {
        Ok(ReminderStatus::Pending) => {
            let row = mark_cancelled(&txn, source, row).await?;
            Cancelled::Cancelled(view(&row)?)
        }
        Ok(ReminderStatus::Cancelled) => Cancelled::Cancelled(view(&row)?),
        Ok(ReminderStatus::Fired) => Cancelled::AlreadyFired(view(&row)?),
        Err(why) => return Err(StoreError::Corrupt { id: row.id, why }),
    };
    outbox::commit(txn).await?;
    Ok(outcome)
}

async fn mark_cancelled(
    conn: &impl ConnectionTrait,
    source: &Source,
    row: reminder::Model,
) -> Result<reminder::Model> {
    let mut active = reminder::ActiveModel::from(row);
    active.status = Set(ReminderStatus::Cancelled.as_str().to_owned());
    active.cancelled_at = Set(Some(Utc::now()));
    let row = active.update(conn).await?;
    outbox::append(conn, &event(source, EventType::ReminderCancelled, &row)?).await?;
    Ok(row)
}

/// A task's pending reminders, locked: a scheduler firing one of them
/// meanwhile is waited for, and PostgreSQL then re-checks `status`, so a
/// reminder that just fired is not also cancelled or moved.
fn pending_of(task_id: Uuid) -> sea_orm::Select<reminder::Entity> {
    reminder::Entity::find()
        .filter(reminder::Column::TaskId.eq(task_id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()))
        .lock_exclusive()
}

/// Cancels every pending reminder of a task that was completed or is being
/// deleted, in the caller's transaction. Returns how many.
pub async fn cancel_for_task(
    conn: &impl ConnectionTrait,
    source: &Source,
    task_id: Uuid,
) -> Result<usize> {
    let rows = pending_of(task_id).all(conn).await?;
    let count = rows.len();
    for row in rows {
        mark_cancelled(conn, source, row).await?;
    }
    Ok(count)
}

/// Follows a task's new due time, in the caller's transaction: reminders
/// set relative to it move (`reminder.scheduled` again); with the due time
/// removed they are cancelled, having nothing left to count back from.
pub async fn follow_due(
    conn: &impl ConnectionTrait,
    source: &Source,
    task_id: Uuid,
    due_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let rows = pending_of(task_id)
        .filter(reminder::Column::BeforeDueSeconds.is_not_null())
        .all(conn)
        .await?;
    for row in rows {
        let (Some(due_at), Some(seconds)) = (due_at, row.before_due_seconds) else {
            mark_cancelled(conn, source, row).await?;
            continue;
        };
        // Moved so far that its time has passed: it fires at once (on
        // time, not late; the move is what made it due).
        let remind_at = (due_at - TimeDelta::seconds(seconds)).max(Utc::now());
        if remind_at == row.remind_at {
            continue;
        }
        let mut active = reminder::ActiveModel::from(row);
        active.remind_at = Set(remind_at);
        let row = active.update(conn).await?;
        outbox::append(conn, &event(source, EventType::ReminderScheduled, &row)?).await?;
    }
    Ok(())
}

/// Claims the reminders due at `now`, in the caller's write transaction
/// (the scheduler's): on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so
/// schedulers in several processes never fire one twice; SQLite's write
/// lock serialises them.
pub async fn claim_due(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
) -> Result<Vec<reminder::Model>> {
    let due = reminder::Entity::find()
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()))
        .filter(reminder::Column::RemindAt.lte(now))
        .order_by_asc(reminder::Column::RemindAt)
        .limit(FIRE_BATCH);
    Ok(crate::db::claim(due, txn.get_database_backend())
        .all(txn)
        .await?)
}

/// Marks a claimed reminder fired and writes its `reminder.due` event,
/// which names the task (`task`, looked up by the caller) so that the
/// reminder can be told to a person.
pub async fn mark_fired(
    txn: &DatabaseTransaction,
    source: &Source,
    row: reminder::Model,
    now: DateTime<Utc>,
    task: Option<&TaskBrief>,
) -> Result<ReminderView> {
    let late = now - row.remind_at > LATE_AFTER;
    let mut active = reminder::ActiveModel::from(row);
    active.status = Set(ReminderStatus::Fired.as_str().to_owned());
    active.fired_at = Set(Some(now));
    active.late = Set(late);
    let row = active.update(txn).await?;
    outbox::append(
        txn,
        &event_about(source, EventType::ReminderDue, &row, task)?,
    )
    .await?;
    view(&row)
}

/// When the soonest pending reminder is due, if any.
pub async fn next_due_at(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(reminder::Entity::find()
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()))
        .order_by_asc(reminder::Column::RemindAt)
        .one(db)
        .await?
        .map(|row| row.remind_at))
}
