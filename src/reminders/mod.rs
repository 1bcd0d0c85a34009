//! Reminders: a moment at which Errand tells the user about one of their
//! tasks, fired exactly once by the [`scheduler`] as a `reminder.due` event.
//!
//! `domain`, `store` and `views` know nothing of tasks, so that `tasks` can
//! cancel and move reminders inside its own transactions; `workflows`
//! (which lock the task a reminder is for), the scheduler and `api` (which
//! only maps the workflows' outcomes) sit above them.

pub mod api;
pub mod domain;
mod entity;
pub mod events;
pub mod offset;
pub mod scheduler;
pub mod store;
pub mod views;
pub mod workflows;

pub use api::RemindersApi;
