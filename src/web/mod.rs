//! HTTP glue shared by every slice: the JSON body extractor, schema helpers
//! for domain types, and the operation tags.

pub mod json;
pub mod json_body;
pub mod path;
pub mod schema;

pub use json::Json;
pub use json_body::{BODY_LIMIT, BodyRules, JsonBody};
pub use path::{Path, PathParamName};

/// Groups of operations in the documents.
#[derive(poem_openapi::Tags)]
pub enum ApiTag {
    /// The user's tasks.
    Tasks,
    /// What is due, by day in the user's time zone.
    Agenda,
    /// Reminders about the user's tasks.
    Reminders,
    /// Signed HTTP callbacks for integrators.
    Webhooks,
    /// The signed-in user.
    Account,
    /// The service itself: index, liveness and readiness, for operators.
    Service,
}
