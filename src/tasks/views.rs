//! What task operations return. Field doc comments become the schema text the
//! GPT reads.

use poem_openapi::Object;
use uuid::Uuid;

use super::{
    agenda::AgendaWindow,
    domain::{Priority, Task, TaskStatus},
};
use crate::timestamp::Timestamp;

/// Longest notes excerpt in listings, in characters. Full notes come from getTask.
pub const NOTES_PREVIEW_CHARS: usize = 120;

/// A task with all its fields.
#[derive(Debug, Clone, Object)]
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
    pub due_at: Option<Timestamp>,
    /// Tags in alphabetical order.
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the task was completed, or null while it is open.
    #[oai(nullable)]
    pub completed_at: Option<Timestamp>,
    /// Incremented on every change.
    pub version: i32,
}

impl From<Task> for TaskView {
    fn from(task: Task) -> Self {
        Self {
            id: task.id,
            number: task.number.get(),
            title: task.title,
            notes: task.notes,
            status: task.status,
            priority: task.priority,
            due_at: task.due_at,
            tags: task.tags,
            created_at: task.created_at,
            updated_at: task.updated_at,
            completed_at: task.completed_at,
            version: task.version,
        }
    }
}

/// A task in a listing: notes are shortened to a preview.
#[derive(Debug, Clone, Object)]
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
    pub due_at: Option<Timestamp>,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[oai(nullable)]
    pub completed_at: Option<Timestamp>,
    pub version: i32,
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
            due_at: task.due_at,
            tags: task.tags,
            created_at: task.created_at,
            updated_at: task.updated_at,
            completed_at: task.completed_at,
            version: task.version,
        }
    }
}

/// One page of tasks.
#[derive(Debug, Clone, Object)]
#[oai(rename = "TaskPage")]
pub struct TaskPage {
    pub tasks: Vec<TaskSummary>,
    /// Pass as `cursor` to get the next page; null when there are no more tasks.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A task on the agenda.
#[derive(Debug, Clone, Object)]
#[oai(rename = "AgendaTask")]
pub struct AgendaTask {
    /// The user's own number for this task; show it to the user.
    pub number: i64,
    pub title: String,
    pub priority: Priority,
    /// Due time in UTC.
    pub due_at: Timestamp,
    /// Due time in the requested time zone, with its offset. Use this when talking to the user.
    pub due_local: String,
    pub tags: Vec<String>,
}

/// Open tasks in one part of the agenda.
#[derive(Debug, Clone, Object)]
#[oai(rename = "AgendaSection")]
pub struct AgendaSection {
    /// How many open tasks fall in this part; may exceed the tasks listed.
    pub total: i64,
    /// The soonest of them, at most 25. Use listTasks with due_before/due_after for the rest.
    pub tasks: Vec<AgendaTask>,
}

impl AgendaSection {
    pub fn new(window: &AgendaWindow, tasks: Vec<Task>, total: u64) -> Self {
        let tasks = tasks
            .into_iter()
            .filter_map(|task| {
                let due_at = task.due_at?;
                Some(AgendaTask {
                    number: task.number.get(),
                    title: task.title,
                    priority: task.priority,
                    due_at,
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
#[derive(Debug, Clone, Object)]
#[oai(rename = "Agenda")]
pub struct AgendaView {
    /// The IANA time zone the days were computed in.
    pub timezone: String,
    /// The moment the agenda was computed, in UTC.
    pub now: Timestamp,
    /// Today's date in that time zone (YYYY-MM-DD).
    pub today: String,
    /// Open tasks whose due time has passed.
    pub overdue: AgendaSection,
    /// Open tasks due from now until the end of today.
    pub due_today: AgendaSection,
    /// Open tasks due in the 7 days after today.
    pub upcoming: AgendaSection,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(notes_preview("a\n  b\tc"), "a b c");
        let long = "word ".repeat(100);
        let preview = notes_preview(&long);
        assert!(preview.ends_with('…'));
        assert!(preview.chars().count() <= NOTES_PREVIEW_CHARS);
    }
}
