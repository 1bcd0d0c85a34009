//! Reminders: a moment at which Errand tells the user about one of their
//! tasks, fired exactly once by the [`scheduler`] as a `reminder.due` event.
//!
//! `store` and `views` know nothing of tasks, so that `tasks` can cancel and
//! move reminders inside its own transactions; `api` (which finds the task a
//! reminder is for) and the scheduler sit above both.

pub mod api;
mod entity;
pub mod events;
pub mod offset;
pub mod scheduler;
pub mod store;
pub mod views;

pub use api::RemindersApi;
