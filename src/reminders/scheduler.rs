//! The reminder scheduler job: fires reminders as they come due, and at
//! start those that came due while no Errand was running (marked late).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{domain::Reminder, store};
use crate::{
    db,
    events::{Source, outbox},
    jobs::{Backoff, Stop, Woken, until_due},
    metrics::Metrics,
    tasks::store as task_store,
    timestamp::Timestamp,
};

#[derive(Debug, thiserror::Error)]
enum FireError {
    #[error(transparent)]
    Reminders(#[from] store::StoreError),
    #[error(transparent)]
    Tasks(#[from] task_store::StoreError),
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}

/// Fires the reminders due at `now`, in one transaction: each is marked
/// fired and its `reminder.due` event, naming the task, written.
async fn fire_due(
    db: &DatabaseConnection,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Vec<Reminder>, FireError> {
    let txn = db::begin_write(db).await?;
    let mut fired = Vec::new();
    for reminder in store::claim_due(&txn, now).await? {
        let task = task_store::brief(&txn, reminder.task_id).await?;
        fired.push(store::mark_fired(&txn, source, reminder, now, task.as_ref()).await?);
    }
    if fired.is_empty() {
        txn.commit().await?;
    } else {
        outbox::commit(txn).await?;
    }
    Ok(fired)
}

/// The longest the scheduler sleeps: a reminder created by another process
/// fires within this of its time (well inside the 5 s promise).
const POLL: Duration = Duration::from_secs(1);

pub async fn run(db: DatabaseConnection, source: Source, metrics: Arc<Metrics>, mut stop: Stop) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let now = Utc::now();
        let wait = match fire_due(&db, &source, now).await {
            Ok(fired) => {
                backoff.succeeded();
                for reminder in &fired {
                    metrics.reminder_fired((now - reminder.remind_at).to_std().unwrap_or_default());
                    tracing::info!(
                        reminder = %reminder.id,
                        task_number = reminder.task_number,
                        remind_at = %Timestamp::from_utc(reminder.remind_at),
                        late = reminder.late,
                        "reminder fired"
                    );
                }
                until_due(store::next_due_at(&db).await.ok().flatten(), POLL)
            }
            Err(err) => {
                let delay = backoff.failed();
                tracing::warn!(error = %err, retry_in = ?delay, "scheduler: could not fire reminders");
                delay
            }
        };
        if stop.pause(wait, std::future::pending()).await == Woken::Stopping {
            return;
        }
    }
}
