//! Reminder operations. The text here is what a GPT reads to turn "remind
//! me Friday morning" into one call.

use poem_openapi::{ApiResponse, Object, OpenApi, param::Query};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    offset::BeforeDue,
    store::{self, MAX_PENDING_PER_TASK, StoreError},
    views::ReminderView,
    workflows::{self, Cancelled, SetRefused, When},
};
use crate::{
    auth::{Authorized, Scope, TasksRead, TasksWrite},
    config::PublicUrl,
    events::Source,
    problem::{Problem, ProblemKind},
    tasks::api::no_such_task,
    tasks::domain::TaskNumber,
    tasks::store as task_store,
    timestamp::Timestamp,
    uuid_param,
    web::{ApiTag, BodyRules, Json, JsonBody, Path},
};

/// Most reminders listed by one call.
const LIST_LIMIT: u64 = 100;

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        Problem::internal(err)
    }
}

uuid_param! {
    /// A reminder's id.
    pub struct ReminderId as "ReminderId", param "reminder_id", of "a reminder"
}

pub struct RemindersApi {
    pub db: DatabaseConnection,
    pub public_url: PublicUrl,
    pub events: Source,
}

/// When to remind: give exactly one of `remind_at` and `before_due`.
#[derive(Debug, Object, Deserialize)]
#[oai(rename = "NewReminder")]
pub struct CreateReminderBody {
    /// A fixed moment: RFC 3339 with the user's offset, e.g. 2026-11-27T09:00:00+01:00 for "Friday morning" (use 09:00 for "morning" unless the user said otherwise). Must be in the future.
    #[oai(nullable)]
    remind_at: Option<Timestamp>,
    /// A time before the task's due time, as an ISO 8601 duration: PT15M (15 minutes), PT1H (an hour), P1D (a day), P1W (a week). Follows the due time when it moves. The task must have a due time.
    #[oai(nullable)]
    before_due: Option<String>,
}

/// Which of the two fields is needed is explained by the operation itself,
/// better than a generic "send at least one field".
impl BodyRules for CreateReminderBody {}

#[derive(ApiResponse)]
pub enum CreatedReminder {
    /// The reminder was set; tell the user when it will fire.
    #[oai(status = 201)]
    Created(
        Json<ReminderView>,
        /// The URL of the task's reminders.
        #[oai(header = "Location")]
        String,
    ),
}

/// Reminders, soonest first.
#[derive(Debug, Object, serde::Serialize)]
#[oai(rename = "ReminderList")]
pub struct ReminderList {
    pub reminders: Vec<ReminderView>,
}

#[OpenApi(prefix_path = "/v1")]
impl RemindersApi {
    /// Set a reminder
    ///
    /// Reminds the user about a task: remind_at for a fixed time ("remind me Friday morning": that Friday 09:00 in the user's time zone, with its offset) or before_due relative to the task's due time ("an hour before": PT1H). Returns the reminder; tell the user when it fires.
    #[oai(
        path = "/tasks/:number/reminders",
        method = "post",
        operation_id = "createReminder",
        tag = "ApiTag::Reminders"
    )]
    async fn create_reminder(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        /// The task's number.
        number: Path<TaskNumber>,
        body: JsonBody<CreateReminderBody>,
    ) -> Result<CreatedReminder, Problem> {
        let body = body.0;
        let when = match (body.remind_at, body.before_due.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(Problem::invalid_field(
                    "before_due",
                    "give either remind_at (a fixed time) or before_due (relative to the due time), not both",
                ));
            }
            (None, None) => {
                return Err(Problem::invalid_field(
                    "remind_at",
                    "give remind_at (a fixed time such as 2026-11-27T09:00:00+01:00) or before_due (such as PT1H)",
                ));
            }
            (None, Some(raw)) => When::BeforeDue(
                BeforeDue::parse(raw)
                    .map_err(|err| Problem::invalid_field("before_due", err.to_string()))?,
            ),
            (Some(at), None) => When::At(at.as_utc()),
        };
        let reminder = workflows::set(&self.db, &self.events, auth.user_id, number.0, when)
            .await
            .map_err(|refused| set_refused(number.0, refused))?;
        let location = self
            .public_url
            .join(&format!("/v1/reminders?task={}", number.0));
        Ok(CreatedReminder::Created(Json(reminder.into()), location))
    }

    /// List reminders
    ///
    /// With task: every reminder of that task (pending, fired and cancelled). Without: the user's upcoming reminders across all tasks, soonest first. Use it for "what reminders do I have?" and to find a reminder's id before cancelling it.
    #[oai(
        path = "/reminders",
        method = "get",
        operation_id = "listReminders",
        tag = "ApiTag::Reminders"
    )]
    async fn list_reminders(
        &self,
        #[oai(scope = "Scope::TasksRead")] auth: Authorized<TasksRead>,
        /// A task's number, to list that task's reminders only.
        task: Query<Option<TaskNumber>>,
    ) -> Result<Json<ReminderList>, Problem> {
        let reminders = match task.0 {
            Some(number) => {
                let task = task_store::get(&self.db, auth.user_id, number)
                    .await?
                    .ok_or_else(|| no_such_task(number))?;
                store::for_task(&self.db, auth.user_id, task.id).await?
            }
            None => store::upcoming(&self.db, auth.user_id, None, LIST_LIMIT).await?,
        };
        Ok(Json(ReminderList {
            reminders: reminders.into_iter().map(ReminderView::from).collect(),
        }))
    }

    /// Cancel a reminder
    ///
    /// Cancels a pending reminder so it does not fire. Safe to repeat. Get the id from listReminders. Returns the reminder.
    #[oai(
        path = "/reminders/:reminder_id",
        method = "delete",
        operation_id = "cancelReminder",
        tag = "ApiTag::Reminders"
    )]
    async fn cancel_reminder(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        /// The reminder's id, from listReminders.
        reminder_id: Path<ReminderId>,
    ) -> Result<Json<ReminderView>, Problem> {
        match workflows::cancel(&self.db, &self.events, auth.user_id, reminder_id.0.0).await? {
            Cancelled::Cancelled(reminder) => Ok(Json(reminder.into())),
            Cancelled::AlreadyFired(reminder) => Err(Problem::new(
                ProblemKind::Conflict,
                format!(
                    "That reminder already fired at {}; there is nothing to cancel.",
                    Timestamp::from_utc(reminder.fired_at.unwrap_or(reminder.remind_at))
                ),
            )),
            Cancelled::NotFound => Err(Problem::not_found(
                "You have no reminder with that id. Call listReminders to find it.",
            )),
        }
    }
}

/// A refused reminder, told so that the model knows what to do instead.
fn set_refused(number: TaskNumber, refused: SetRefused) -> Problem {
    let utc = Timestamp::from_utc;
    match refused {
        SetRefused::NoSuchTask => no_such_task(number),
        SetRefused::TaskDone => Problem::new(
            ProblemKind::Conflict,
            format!(
                "Task {number} is completed, so there is nothing to remind about. Reopen it with reopenTask first if the user still needs it."
            ),
        ),
        SetRefused::NoDueTime => Problem::new(
            ProblemKind::Conflict,
            format!(
                "Task {number} has no due time to count back from. Give remind_at instead, or set a due time with updateTask first."
            ),
        ),
        SetRefused::AtPassed { at, now } => Problem::invalid_field(
            "remind_at",
            format!(
                "{} has already passed (it is now {}); give a time in the future",
                utc(at),
                utc(now)
            ),
        ),
        SetRefused::OffsetPassed { offset, due, at } => Problem::invalid_field(
            "before_due",
            format!(
                "{offset} before the due time ({}) is {}, which has already passed; give a shorter offset or remind_at",
                utc(due),
                utc(at)
            ),
        ),
        SetRefused::TooMany => Problem::new(
            ProblemKind::Conflict,
            format!(
                "Task {number} already has {MAX_PENDING_PER_TASK} pending reminders, the most one task may have. Cancel one with cancelReminder first."
            ),
        ),
        SetRefused::Reminders(err) => Problem::internal(err),
        SetRefused::Tasks(err) => err.into(),
        SetRefused::Database(err) => Problem::internal(err),
    }
}
