//! Task operations. Doc comments here are the operation text a GPT reads when
//! it chooses a tool, so they say what the operation does, when to use it and
//! what it returns.

use poem_openapi::{ApiResponse, Object, OpenApi, param::Query};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    agenda::{AgendaWindow, SECTION_LIMIT, TimeZoneName},
    domain::{
        NewTask, NotesInput, Priority, Tag, Tags, TaskNumber, TaskPatch, TaskStatus, TaskTitle,
    },
    listing::{self, ListQuery, PageLimit, RawCursor, SearchText, SortKey, StatusFilter},
    store::{self, StoreError},
    views::{AgendaView, TaskPage, TaskView},
};
use crate::{
    auth::{Authorized, Scope, TasksRead, TasksWrite},
    config::PublicUrl,
    events::Source,
    patch::Change,
    problem::{FieldIssue, Problem},
    reminders::{store as reminder_store, views::ReminderView},
    timestamp::Timestamp,
    web::{ApiTag, BodyRules, Json, JsonBody, Path},
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

/// The fields of a new task. Optional fields may be omitted or null.
#[derive(Debug, Object, Deserialize)]
#[oai(rename = "NewTask")]
pub struct CreateTaskBody {
    /// What to do, one line (1-200 characters), e.g. "Renew passport".
    title: TaskTitle,
    /// Longer details (at most 5,000 characters).
    #[oai(nullable)]
    notes: Option<NotesInput>,
    /// When it is due: RFC 3339 with the user's offset, e.g. 2026-11-27T09:00:00+01:00. Omit if no date was given.
    #[oai(nullable)]
    due_at: Option<Timestamp>,
    /// low, normal (default) or high.
    #[oai(nullable)]
    priority: Option<Priority>,
    /// Up to 10 labels of a-z, 0-9, - and _ (lowercased), e.g. ["errands"].
    #[oai(nullable)]
    tags: Option<Tags>,
}

impl BodyRules for CreateTaskBody {}

/// The fields to change. Omit a field to keep it; null clears notes, due_at or tags.
#[derive(Debug, Object, Deserialize)]
#[oai(rename = "TaskChanges")]
pub struct UpdateTaskBody {
    /// New title (1-200 characters).
    #[serde(default)]
    title: Change<TaskTitle>,
    /// New notes; null or "" removes them.
    #[oai(nullable)]
    #[serde(default)]
    notes: Change<NotesInput>,
    /// New due time (RFC 3339 with offset); null removes the due date.
    #[oai(nullable)]
    #[serde(default)]
    due_at: Change<Timestamp>,
    /// low, normal or high.
    #[serde(default)]
    priority: Change<Priority>,
    /// The complete new list of tags, replacing the old one; null or [] removes all.
    #[oai(nullable)]
    #[serde(default)]
    tags: Change<Tags>,
}

impl UpdateTaskBody {
    fn into_patch(self) -> Result<TaskPatch, Problem> {
        let mut issues = Vec::new();
        let mut not_null = |field: &str, hint: &str| {
            issues.push(FieldIssue::new(field, format!("cannot be null; {hint}")));
        };
        let title = match self.title {
            Change::Keep => None,
            Change::Clear => {
                not_null("title", "omit title to keep it, or send a new title");
                None
            }
            Change::Set(title) => Some(title),
        };
        let priority = match self.priority {
            Change::Keep => None,
            Change::Clear => {
                not_null("priority", "send low, normal or high, or omit it");
                None
            }
            Change::Set(priority) => Some(priority),
        };
        let tags = match self.tags {
            Change::Keep => None,
            Change::Clear => Some(Tags::default()),
            Change::Set(tags) => Some(tags),
        };
        let notes = match self.notes {
            Change::Set(NotesInput(None)) | Change::Clear => Change::Clear,
            Change::Set(NotesInput(Some(notes))) => Change::Set(notes),
            Change::Keep => Change::Keep,
        };
        if !issues.is_empty() {
            return Err(Problem::invalid(issues));
        }
        Ok(TaskPatch {
            title,
            notes,
            due_at: self.due_at,
            priority,
            tags,
        })
    }
}

/// An update must change something: an empty body is refused (and the
/// schema says `minProperties: 1`).
impl BodyRules for UpdateTaskBody {
    const MIN_FIELDS: usize = 1;
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
        let body = body.0;
        let new = NewTask {
            title: body.title,
            notes: body.notes.and_then(|n| n.0),
            due_at: body.due_at,
            priority: body.priority.unwrap_or(Priority::Normal),
            tags: body.tags.unwrap_or_default(),
        };
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
