//! People who own tasks: accounts (made by the sign-up page, `errand token`
//! or an external identity provider's first token), whether their address
//! is verified, and the single-use links sent to it (`tokens`).

pub mod api;
pub mod email;
pub mod entity;
pub mod store;
pub mod tokens;

pub use email::EmailAddress;
