//! Task operations. Doc comments here are the operation text a GPT reads when
//! it chooses a tool, so they say what the operation does, when to use it and
//! what it returns.

use poem_openapi::{ApiResponse, OpenApi, param::Query};
use sea_orm::DatabaseConnection;

use super::{
    agenda::{AgendaWindow, SECTION_LIMIT, TimeZoneName},
    domain::{Tag, TaskNumber, TaskStatus},
    listing::{self, ListQuery, PageLimit, RawCursor, SearchText, SortKey, StatusFilter},
    store::{self, StoreError},
    views::{AgendaView, CreateTaskBody, TaskPage, TaskView, UpdateTaskBody},
};
use crate::{
    auth::{Authorized, Scope, TasksRead, TasksWrite},
    config::PublicUrl,
    events::Source,
    problem::Problem,
    reminders::{store as reminder_store, views::ReminderView},
    timestamp::Timestamp,
    web::{ApiTag, Json, JsonBody, Path},
};

/// How a store failure reaches the caller.
impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UnknownUser => Problem::unauthorized(
                "The account this access token belongs to no longer exists. Sign in again.",
                true,
            ),
            other => Problem::internal(other),
        }
    }
}

pub struct TasksApi {
    pub db: DatabaseConnection,
    pub public_url: PublicUrl,
    /// Names this deployment in the events the operations cause.
    pub events: Source,
}

#[derive(ApiResponse)]
pub enum CreatedTask {
    /// The task was created; tell the user its number.
    #[oai(status = 201)]
    Created(
        Json<TaskView>,
        /// The URL of the new task.
        #[oai(header = "Location")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum DeletedTask {
    /// The task was deleted.
    #[oai(status = 204)]
    Deleted,
}

/// The answer for a task number the user does not have (also used by the
/// operations on a task's reminders).
pub fn no_such_task(number: TaskNumber) -> Problem {
    Problem::not_found(format!(
        "You have no task number {number}. Call listTasks with status=all to find the right number."
    ))
}

fn found(task: Option<super::domain::Task>, number: TaskNumber) -> Result<Json<TaskView>, Problem> {
    task.map(|task| Json(task.into()))
        .ok_or_else(|| no_such_task(number))
}

#[OpenApi(prefix_path = "/v1")]
impl TasksApi {
    /// Create a task
    ///
    /// Adds a task for the user: use it when they ask to add, remember or schedule something. Returns the task with its number.
    #[oai(
        path = "/tasks",
        method = "post",
        operation_id = "createTask",
        tag = "ApiTag::Tasks"
    )]
    async fn create_task(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        body: JsonBody<CreateTaskBody>,
    ) -> Result<CreatedTask, Problem> {
        let new = body.0.into_new_task();
        let task = store::create(&self.db, &self.events, auth.user_id, new).await?;
        let location = self.public_url.join(&format!("/v1/tasks/{}", task.number));
        Ok(CreatedTask::Created(Json(task.into()), location))
    }

    /// List tasks
    ///
    /// Lists the user's tasks, open ones by default, with filters for tag, text, and due dates. Returns summaries and a cursor for the next page.
    #[expect(
        clippy::too_many_arguments,
        reason = "each query parameter of listTasks is one argument, as poem-openapi documents them"
    )]
    #[oai(
        path = "/tasks",
        method = "get",
        operation_id = "listTasks",
        tag = "ApiTag::Tasks"
    )]
    async fn list_tasks(
        &self,
        #[oai(scope = "Scope::TasksRead")] auth: Authorized<TasksRead>,
        /// open (default), done, or all.
        status: Query<Option<StatusFilter>>,
        /// Only tasks with this tag.
        tag: Query<Option<Tag>>,
        /// Only tasks whose title or notes contain this text (case-insensitive).
        q: Query<Option<SearchText>>,
        /// Only tasks due before this RFC 3339 time (exclusive).
        due_before: Query<Option<Timestamp>>,
        /// Only tasks due at or after this RFC 3339 time.
        due_after: Query<Option<Timestamp>>,
        /// due (soonest first, undated last; default), created (newest first), or priority (high first, then soonest).
        sort: Query<Option<SortKey>>,
        /// Tasks per page, 1-100 (default 20).
        limit: Query<Option<PageLimit>>,
        /// next_cursor from the previous page, to continue the same listing.
        cursor: Query<Option<RawCursor>>,
    ) -> Result<Json<TaskPage>, Problem> {
        let query = ListQuery {
            status: status.0.unwrap_or(StatusFilter::Open),
            tag: tag.0,
            text: q.0,
            due_before: due_before.0,
            due_after: due_after.0,
            sort: sort.0.unwrap_or(SortKey::Due),
        };
        let after = cursor
            .0
            .as_ref()
            .map(|cursor| cursor.position_for(&query))
            .transpose()
            .map_err(|why| Problem::invalid_field("cursor", why))?;
        let limit = limit.0.unwrap_or_default();
        let tasks = store::list(
            &self.db,
            auth.user_id,
            &query,
            after.as_ref(),
            listing::rows_for(limit),
        )
        .await?;
        Ok(Json(TaskPage::of(tasks, limit, &query)))
    }

    /// Get a task
    ///
    /// Returns one task by its number, with the full notes. Use it when the user asks about a specific task.
    #[oai(
        path = "/tasks/:number",
        method = "get",
        operation_id = "getTask",
        tag = "ApiTag::Tasks"
    )]
    async fn get_task(
        &self,
        #[oai(scope = "Scope::TasksRead")] auth: Authorized<TasksRead>,
        /// The task's number.
        number: Path<TaskNumber>,
    ) -> Result<Json<TaskView>, Problem> {
        found(
            store::get(&self.db, auth.user_id, number.0).await?,
            number.0,
        )
    }

    /// Update a task
    ///
    /// Changes a task's title, notes, due time, priority or tags; omitted fields stay as they are. Returns the updated task.
    #[oai(
        path = "/tasks/:number",
        method = "patch",
        operation_id = "updateTask",
        tag = "ApiTag::Tasks"
    )]
    async fn update_task(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        /// The task's number.
        number: Path<TaskNumber>,
        body: JsonBody<UpdateTaskBody>,
    ) -> Result<Json<TaskView>, Problem> {
        let patch = body.0.into_patch()?;
        found(
            store::update(&self.db, &self.events, auth.user_id, number.0, patch).await?,
            number.0,
        )
    }

    /// Complete a task
    ///
    /// Marks a task done when the user says they finished it. Safe to repeat. Returns the task.
    #[oai(
        path = "/tasks/:number/complete",
        method = "post",
        operation_id = "completeTask",
        tag = "ApiTag::Tasks"
    )]
    async fn complete_task(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        /// The task's number.
        number: Path<TaskNumber>,
    ) -> Result<Json<TaskView>, Problem> {
        let task = store::set_status(
            &self.db,
            &self.events,
            auth.user_id,
            number.0,
            TaskStatus::Done,
        )
        .await?;
        found(task, number.0)
    }

    /// Reopen a task
    ///
    /// Marks a done task open again, e.g. when it was completed by mistake. Safe to repeat. Returns the task.
    #[oai(
        path = "/tasks/:number/reopen",
        method = "post",
        operation_id = "reopenTask",
        tag = "ApiTag::Tasks"
    )]
    async fn reopen_task(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        /// The task's number.
        number: Path<TaskNumber>,
    ) -> Result<Json<TaskView>, Problem> {
        let task = store::set_status(
            &self.db,
            &self.events,
            auth.user_id,
            number.0,
            TaskStatus::Open,
        )
        .await?;
        found(task, number.0)
    }

    /// Delete a task
    ///
    /// Deletes a task permanently; it cannot be undone. Confirm with the user first. Prefer completeTask for finished tasks.
    #[oai(
        path = "/tasks/:number",
        method = "delete",
        operation_id = "deleteTask",
        tag = "ApiTag::Tasks"
    )]
    async fn delete_task(
        &self,
        #[oai(scope = "Scope::TasksWrite")] auth: Authorized<TasksWrite>,
        /// The task's number.
        number: Path<TaskNumber>,
    ) -> Result<DeletedTask, Problem> {
        if store::delete(&self.db, &self.events, auth.user_id, number.0).await? {
            Ok(DeletedTask::Deleted)
        } else {
            Err(no_such_task(number.0))
        }
    }

    /// Get the agenda
    ///
    /// What is on the user's plate: overdue tasks, tasks due today and in the next 7 days, by calendar day in their time zone. Use for "what's on my plate?".
    #[oai(
        path = "/agenda",
        method = "get",
        operation_id = "getAgenda",
        tag = "ApiTag::Agenda"
    )]
    async fn get_agenda(
        &self,
        #[oai(scope = "Scope::TasksRead")] auth: Authorized<TasksRead>,
        /// The user's IANA time zone, e.g. Europe/Paris (default UTC).
        tz: Query<Option<TimeZoneName>>,
    ) -> Result<Json<AgendaView>, Problem> {
        let zone = tz.0.unwrap_or_default();
        let window = AgendaWindow::at(zone.0, chrono::Utc::now());
        let sections = store::agenda(&self.db, auth.user_id, &window).await?;
        let reminders = reminder_store::upcoming(
            &self.db,
            auth.user_id,
            Some(window.end_of_upcoming.as_utc()),
            SECTION_LIMIT,
        )
        .await
        .map_err(Problem::internal)?;
        let reminders = reminders.into_iter().map(ReminderView::from).collect();
        Ok(Json(AgendaView::new(zone, &window, sections, reminders)))
    }
}
