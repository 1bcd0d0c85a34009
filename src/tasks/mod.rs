//! Tasks: the user's to-dos, numbered per user, with due dates, priorities and tags.

pub mod agenda;
pub mod api;
pub mod domain;
pub mod entity;
pub mod events;
pub mod listing;
pub mod store;
pub mod views;

pub use api::TasksApi;
