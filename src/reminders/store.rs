//! Reminder rows and their events. Every change writes its event in the
//! caller's transaction (the workflows in `reminders::workflows` and
//! `tasks::workflows` own the transactions); nothing here reads the tasks
//! table (the task a reminder is for is the caller's business). Rows are
//! decoded into the domain's [`Reminder`] once, here.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    domain::{Reminder, ReminderStatus},
    entity::{self as reminder},
    events::{self, TaskBrief},
    offset::BeforeDue,
};
use crate::events::{EventType, Source, outbox};

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

fn decode(row: &reminder::Model) -> Result<Reminder> {
    Reminder::try_from(row).map_err(|why| StoreError::Corrupt { id: row.id, why })
}

fn decode_all(rows: Vec<reminder::Model>) -> Result<Vec<Reminder>> {
    rows.iter().map(decode).collect()
}

/// Writes the event `kind` about `reminder` to the outbox (see
/// `reminders::events`).
async fn append_event(
    conn: &impl ConnectionTrait,
    source: &Source,
    kind: EventType,
    reminder: &Reminder,
    task: Option<&TaskBrief>,
) -> Result<()> {
    let event = events::reminder_event(source, kind, reminder, task)?;
    outbox::append(conn, &event).await?;
    Ok(())
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
) -> Result<Reminder> {
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
    let created = decode(&row)?;
    reminder::Entity::insert(reminder::ActiveModel::from(row))
        .exec_without_returning(conn)
        .await?;
    append_event(conn, source, EventType::ReminderScheduled, &created, None).await?;
    Ok(created)
}

/// Every reminder of one task, soonest first.
pub async fn for_task(
    db: &DatabaseConnection,
    user_id: Uuid,
    task_id: Uuid,
) -> Result<Vec<Reminder>> {
    let rows = reminder::Entity::find()
        .filter(reminder::Column::UserId.eq(user_id))
        .filter(reminder::Column::TaskId.eq(task_id))
        .order_by_asc(reminder::Column::RemindAt)
        .order_by_asc(reminder::Column::Id)
        .all(db)
        .await?;
    decode_all(rows)
}

/// The user's pending reminders, soonest first, up to `limit`, and only
/// those before `until` when given.
pub async fn upcoming(
    db: &DatabaseConnection,
    user_id: Uuid,
    until: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<Reminder>> {
    let mut select = reminder::Entity::find()
        .filter(reminder::Column::UserId.eq(user_id))
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()));
    if let Some(until) = until {
        select = select.filter(reminder::Column::RemindAt.lt(until));
    }
    let rows = select
        .order_by_asc(reminder::Column::RemindAt)
        .order_by_asc(reminder::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    decode_all(rows)
}

/// One of the user's reminders, locked for a change in the caller's
/// transaction.
pub async fn find_locked(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Reminder>> {
    reminder::Entity::find_by_id(id)
        .filter(reminder::Column::UserId.eq(user_id))
        .lock_exclusive()
        .one(conn)
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Marks a pending reminder cancelled (`reminder.cancelled`), in the
/// caller's transaction.
pub async fn mark_cancelled(
    conn: &impl ConnectionTrait,
    source: &Source,
    mut reminder: Reminder,
) -> Result<Reminder> {
    let now = Utc::now();
    reminder::Entity::update_many()
        .col_expr(
            reminder::Column::Status,
            Expr::value(ReminderStatus::Cancelled.as_str()),
        )
        .col_expr(reminder::Column::CancelledAt, Expr::value(now))
        .filter(reminder::Column::Id.eq(reminder.id))
        .exec(conn)
        .await?;
    reminder.status = ReminderStatus::Cancelled;
    reminder.cancelled_at = Some(now);
    append_event(conn, source, EventType::ReminderCancelled, &reminder, None).await?;
    Ok(reminder)
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
    let pending = decode_all(pending_of(task_id).all(conn).await?)?;
    let count = pending.len();
    for reminder in pending {
        mark_cancelled(conn, source, reminder).await?;
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
    let relative = pending_of(task_id)
        .filter(reminder::Column::BeforeDueSeconds.is_not_null())
        .all(conn)
        .await?;
    for mut reminder in decode_all(relative)? {
        let (Some(due_at), Some(offset)) = (due_at, reminder.before_due) else {
            mark_cancelled(conn, source, reminder).await?;
            continue;
        };
        // Moved so far that its time has passed: it fires at once (on
        // time, not late; the move is what made it due).
        let remind_at = (due_at - offset.as_duration()).max(Utc::now());
        if remind_at == reminder.remind_at {
            continue;
        }
        reminder::Entity::update_many()
            .col_expr(reminder::Column::RemindAt, Expr::value(remind_at))
            .filter(reminder::Column::Id.eq(reminder.id))
            .exec(conn)
            .await?;
        reminder.remind_at = remind_at;
        append_event(conn, source, EventType::ReminderScheduled, &reminder, None).await?;
    }
    Ok(())
}

/// Claims the reminders due at `now`, in the caller's write transaction
/// (the scheduler's): on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so
/// schedulers in several processes never fire one twice; SQLite's write
/// lock serialises them.
pub async fn claim_due(txn: &DatabaseTransaction, now: DateTime<Utc>) -> Result<Vec<Reminder>> {
    let due = reminder::Entity::find()
        .filter(reminder::Column::Status.eq(ReminderStatus::Pending.as_str()))
        .filter(reminder::Column::RemindAt.lte(now))
        .order_by_asc(reminder::Column::RemindAt)
        .limit(FIRE_BATCH);
    decode_all(
        crate::db::claim(due, txn.get_database_backend())
            .all(txn)
            .await?,
    )
}

/// Marks a claimed reminder fired and writes its `reminder.due` event,
/// which names the task (`task`, looked up by the caller) so that the
/// reminder can be told to a person.
pub async fn mark_fired(
    txn: &DatabaseTransaction,
    source: &Source,
    mut reminder: Reminder,
    now: DateTime<Utc>,
    task: Option<&TaskBrief>,
) -> Result<Reminder> {
    let late = now - reminder.remind_at > LATE_AFTER;
    reminder::Entity::update_many()
        .col_expr(
            reminder::Column::Status,
            Expr::value(ReminderStatus::Fired.as_str()),
        )
        .col_expr(reminder::Column::FiredAt, Expr::value(now))
        .col_expr(reminder::Column::Late, Expr::value(late))
        .filter(reminder::Column::Id.eq(reminder.id))
        .exec(txn)
        .await?;
    reminder.status = ReminderStatus::Fired;
    reminder.fired_at = Some(now);
    reminder.late = late;
    append_event(txn, source, EventType::ReminderDue, &reminder, task).await?;
    Ok(reminder)
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
