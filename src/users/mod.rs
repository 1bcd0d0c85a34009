//! People who own tasks. Accounts are created on first use by `errand token`
//! today; the sign-in pages of the OAuth server create them later.

pub mod api;
pub mod email;
pub mod entity;
pub mod store;

pub use email::EmailAddress;
