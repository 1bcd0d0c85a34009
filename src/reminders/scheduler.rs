//! The reminder scheduler job: fires reminders as they come due, and at
//! start those that came due while no Errand was running (marked late).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::store;
use crate::{
    events::Source,
    jobs::{Backoff, Stop, Woken, until_due},
    metrics::Metrics,
};

/// The longest the scheduler sleeps: a reminder created by another process
/// fires within this of its time (well inside the 5 s promise).
const POLL: Duration = Duration::from_secs(1);

pub async fn run(db: DatabaseConnection, source: Source, metrics: Arc<Metrics>, mut stop: Stop) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let now = Utc::now();
        let wait = match store::fire_due(&db, &source, now).await {
            Ok(fired) => {
                backoff.succeeded();
                for reminder in &fired {
                    metrics.reminder_fired(
                        (now - reminder.remind_at.as_utc())
                            .to_std()
                            .unwrap_or_default(),
                    );
                    tracing::info!(
                        reminder = %reminder.id,
                        task_number = reminder.task_number,
                        remind_at = %reminder.remind_at,
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
