//! The shapes task operations take and return on the wire: the request
//! bodies with their conversion to the domain's values, and the views built
//! from a `Task`. One file for both sides, so that a field that callers set
//! and see is added in one place of the API. Field doc comments become the
//! schema text the GPT reads.

use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    agenda::{AgendaWindow, Due, Sections, TimeZoneName},
    domain::{NewTask, NotesInput, Priority, Tags, Task, TaskPatch, TaskStatus, TaskTitle},
    listing::{ListQuery, PAGE_CHAR_BUDGET, PageLimit, Position, RawCursor},
};
use crate::{
    patch::Change,
    problem::{FieldIssue, Problem},
    reminders::views::ReminderView,
    timestamp::{Timestamp, UtcTimestamp},
    web::BodyRules,
};

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

impl CreateTaskBody {
    pub fn into_new_task(self) -> NewTask {
        NewTask {
            title: self.title,
            notes: self.notes.and_then(|n| n.0),
            due_at: self.due_at,
            priority: self.priority.unwrap_or(Priority::Normal),
            tags: self.tags.unwrap_or_default(),
        }
    }
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
    /// The patch, or why a field cannot be null (title and priority
    /// cannot be cleared, only changed).
    pub fn into_patch(self) -> Result<TaskPatch, Problem> {
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

/// Longest notes excerpt in listings, in characters. Full notes come from getTask.
pub const NOTES_PREVIEW_CHARS: usize = 120;

/// A task with all its fields.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Task")]
pub struct TaskView {
    /// Stable unique id, for integrators.
    pub id: Uuid,
    /// The user's own number for this task (1, 2, 3…). Use it in every task operation and show it to the user.
    pub number: i64,
    pub title: String,
    /// Free-form notes, or null.
    #[oai(nullable)]
    pub notes: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    /// When the task is due, in UTC, or null if it has no due date.
    #[oai(nullable)]
    pub due_at: Option<UtcTimestamp>,
    /// Tags in alphabetical order.
    pub tags: Vec<String>,
    pub created_at: UtcTimestamp,
    pub updated_at: UtcTimestamp,
    /// When the task was completed, or null while it is open.
    #[oai(nullable)]
    pub completed_at: Option<UtcTimestamp>,
    /// Incremented on every change.
    pub version: i32,
}

impl From<Task> for TaskView {
    fn from(task: Task) -> Self {
        // Every field named, no `..`: a field added to `Task` fails to
        // compile here until the API shows it or leaves it out on purpose.
        let Task {
            id,
            number,
            title,
            notes,
            status,
            priority,
            due_at,
            tags,
            created_at,
            updated_at,
            completed_at,
            version,
        } = task;
        Self {
            id,
            number: number.get(),
            title,
            notes,
            status,
            priority,
            due_at: due_at.map(UtcTimestamp::from),
            tags,
            created_at: created_at.into(),
            updated_at: updated_at.into(),
            completed_at: completed_at.map(UtcTimestamp::from),
            version,
        }
    }
}

/// A task in a listing: notes are shortened to a preview.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "TaskSummary")]
pub struct TaskSummary {
    pub id: Uuid,
    /// The user's own number for this task; show it to the user.
    pub number: i64,
    pub title: String,
    /// The start of the notes (at most 120 characters, ending in … when cut), or null. getTask returns the full notes.
    #[oai(nullable)]
    pub notes_preview: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    /// When the task is due, in UTC, or null.
    #[oai(nullable)]
    pub due_at: Option<UtcTimestamp>,
    pub tags: Vec<String>,
    pub created_at: UtcTimestamp,
    pub updated_at: UtcTimestamp,
    #[oai(nullable)]
    pub completed_at: Option<UtcTimestamp>,
    pub version: i32,
}

impl TaskSummary {
    /// An upper bound on the characters this summary takes as JSON, without
    /// serialising it. Strings can only double when escaped: titles and tags
    /// hold no control characters and previews have none left, so the worst
    /// case is every character being a quote or backslash.
    pub fn json_chars_upper_bound(&self) -> usize {
        /// Keys, punctuation, id, timestamps, enums and numbers at their widest.
        const FIXED: usize = 400;
        let escaped = |s: &str| 2 * s.chars().count() + 2;
        FIXED
            + escaped(&self.title)
            + self.notes_preview.as_deref().map_or(0, escaped)
            + self.tags.iter().map(|t| escaped(t) + 1).sum::<usize>()
    }
}

/// The first [`NOTES_PREVIEW_CHARS`] characters of the notes on one line.
pub fn notes_preview(notes: &str) -> String {
    let flat: String = notes.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= NOTES_PREVIEW_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(NOTES_PREVIEW_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

impl From<Task> for TaskSummary {
    fn from(task: Task) -> Self {
        Self {
            id: task.id,
            number: task.number.get(),
            title: task.title,
            notes_preview: task.notes.as_deref().map(notes_preview),
            status: task.status,
            priority: task.priority,
            due_at: task.due_at.map(UtcTimestamp::from),
            tags: task.tags,
            created_at: task.created_at.into(),
            updated_at: task.updated_at.into(),
            completed_at: task.completed_at.map(UtcTimestamp::from),
            version: task.version,
        }
    }
}

/// One page of tasks.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "TaskPage")]
pub struct TaskPage {
    pub tasks: Vec<TaskSummary>,
    /// Pass as `cursor` to get the next page; null when there are no more tasks.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// The page of a listing from the tasks read for it ([`super::listing::rows_for`]): at most
/// `limit` of them, fewer if more would exceed [`PAGE_CHAR_BUDGET`], and the
/// cursor that continues after the last one shown when any are left.
impl TaskPage {
    pub fn of(mut tasks: Vec<Task>, limit: PageLimit, query: &ListQuery) -> Self {
        let limit = limit.get() as usize;
        let more_in_store = tasks.len() > limit;
        tasks.truncate(limit);
        let available = tasks.len();
        let mut shown = Vec::with_capacity(available);
        let mut used = 0;
        let mut last_shown = None;
        for task in tasks {
            let position = Position::of(&task);
            let summary = TaskSummary::from(task);
            let size = summary.json_chars_upper_bound() + 1;
            if used + size > PAGE_CHAR_BUDGET && !shown.is_empty() {
                break;
            }
            used += size;
            shown.push(summary);
            last_shown = Some(position);
        }
        let cut_short = shown.len() < available;
        let next_cursor = last_shown
            .filter(|_| more_in_store || cut_short)
            .map(|position| RawCursor::at(position, query).into_string());
        Self {
            tasks: shown,
            next_cursor,
        }
    }
}

/// A task on the agenda.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "AgendaTask")]
pub struct AgendaTask {
    /// The user's own number for this task; show it to the user.
    pub number: i64,
    pub title: String,
    pub priority: Priority,
    /// Due time in UTC.
    pub due_at: UtcTimestamp,
    /// Due time in the requested time zone, with its offset. Use this when talking to the user.
    pub due_local: String,
    pub tags: Vec<String>,
}

/// Open tasks in one part of the agenda.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "AgendaSection")]
pub struct AgendaSection {
    /// How many open tasks fall in this part; may exceed the tasks listed.
    pub total: i64,
    /// The soonest of them, at most 25. Use listTasks with due_before/due_after for the rest.
    pub tasks: Vec<AgendaTask>,
}

impl AgendaSection {
    pub fn new(window: &AgendaWindow, due: Due) -> Self {
        let Due { tasks, total } = due;
        let tasks = tasks
            .into_iter()
            .filter_map(|task| {
                let due_at = task.due_at?;
                Some(AgendaTask {
                    number: task.number.get(),
                    title: task.title,
                    priority: task.priority,
                    due_at: due_at.into(),
                    due_local: window.local(due_at),
                    tags: task.tags,
                })
            })
            .collect();
        Self {
            total: i64::try_from(total).unwrap_or(i64::MAX),
            tasks,
        }
    }
}

/// What is on the user's plate, by calendar day in their time zone.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Agenda")]
pub struct AgendaView {
    /// The IANA time zone the days were computed in.
    pub timezone: String,
    /// The moment the agenda was computed, in UTC.
    pub now: UtcTimestamp,
    /// Today's date in that time zone (YYYY-MM-DD).
    pub today: String,
    /// Open tasks whose due time has passed.
    pub overdue: AgendaSection,
    /// Open tasks due from now until the end of today.
    pub due_today: AgendaSection,
    /// Open tasks due in the 7 days after today.
    pub upcoming: AgendaSection,
    /// Reminders that will fire from now until the end of those 7 days, soonest first (at most 25).
    pub reminders: Vec<ReminderView>,
}

impl AgendaView {
    pub fn new(
        zone: TimeZoneName,
        window: &AgendaWindow,
        sections: Sections,
        reminders: Vec<ReminderView>,
    ) -> Self {
        Self {
            timezone: zone.name().to_owned(),
            now: window.now.into(),
            today: window.today.to_string(),
            overdue: AgendaSection::new(window, sections.overdue),
            due_today: AgendaSection::new(window, sections.due_today),
            upcoming: AgendaSection::new(window, sections.upcoming),
            reminders,
        }
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;
    use crate::timestamp::Timestamp;

    #[test]
    fn the_size_bound_holds_for_the_widest_summary() {
        let at = Timestamp::now();
        let widest = TaskSummary {
            id: Uuid::new_v4(),
            number: i64::MAX,
            title: "\"".repeat(200),
            notes_preview: Some(notes_preview(&"\\".repeat(5_000))),
            status: TaskStatus::Open,
            priority: Priority::Normal,
            due_at: Some(at.into()),
            tags: (0..10).map(|i| format!("{i}{}", "_".repeat(31))).collect(),
            created_at: at.into(),
            updated_at: at.into(),
            completed_at: Some(at.into()),
            version: i32::MIN,
        };
        let actual = widest.to_json().unwrap().to_string().chars().count();
        assert!(
            actual <= widest.json_chars_upper_bound(),
            "{actual} > bound"
        );
        let bare = TaskSummary {
            title: "t".into(),
            notes_preview: None,
            tags: vec![],
            ..widest
        };
        let actual = bare.to_json().unwrap().to_string().chars().count();
        assert!(actual <= bare.json_chars_upper_bound(), "{actual} > bound");
    }

    fn sample_task() -> Task {
        let at = Timestamp::now();
        Task {
            id: Uuid::new_v4(),
            number: crate::tasks::domain::TaskNumber::new(3).unwrap(),
            title: "Title \"quoted\"".into(),
            notes: Some("notes\nmore".into()),
            status: TaskStatus::Done,
            priority: Priority::High,
            due_at: None,
            tags: vec!["a".into(), "b".into()],
            created_at: at,
            updated_at: at,
            completed_at: Some(at),
            version: 2,
        }
    }

    /// Responses are written with serde (`web::Json`) but documented by
    /// poem-openapi; both must produce the same JSON.
    #[test]
    fn serde_writes_what_the_schema_describes() {
        fn same<T: ToJSON + Serialize>(value: &T) {
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                value.to_json().unwrap()
            );
        }
        let task = sample_task();
        same(&TaskView::from(task.clone()));
        same(&TaskSummary::from(task.clone()));
        same(&TaskPage {
            tasks: vec![task.clone().into()],
            next_cursor: None,
        });
        same(&TaskPage {
            tasks: vec![],
            next_cursor: Some("c1.x".into()),
        });
        let window = AgendaWindow::at(chrono_tz::Europe::Paris, chrono::Utc::now());
        let dated = Task {
            due_at: Some(Timestamp::now()),
            ..task
        };
        let section = AgendaSection::new(
            &window,
            Due {
                tasks: vec![dated],
                total: 4,
            },
        );
        same(&AgendaView {
            timezone: "Europe/Paris".into(),
            now: window.now.into(),
            today: window.today.to_string(),
            overdue: section.clone(),
            due_today: section.clone(),
            upcoming: section,
            reminders: vec![ReminderView {
                id: Uuid::new_v4(),
                task_number: 3,
                remind_at: Timestamp::now().into(),
                before_due: Some("PT1H".into()),
                status: crate::reminders::domain::ReminderStatus::Pending,
                late: false,
                created_at: Timestamp::now().into(),
                fired_at: None,
                cancelled_at: Some(Timestamp::now().into()),
            }],
        });
    }

    #[test]
    fn previews_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(notes_preview("a\n  b\tc"), "a b c");
        let long = "word ".repeat(100);
        let preview = notes_preview(&long);
        assert!(preview.ends_with('…'));
        assert!(preview.chars().count() <= NOTES_PREVIEW_CHARS);
    }
}
