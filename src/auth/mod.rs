//! Who is calling: access tokens (JWTs signed with Errand's own keys), the
//! scopes they carry, and the extractor that turns a request into a
//! [`Principal`] or a 401/403 problem.

pub mod authenticator;
pub mod keys;
pub mod oidc;
pub mod principal;
pub mod scope;
pub mod token;

pub use authenticator::Authenticator;
pub use keys::{KeyError, KeyRing};
pub use principal::{AnyScope, Authorized, Principal, TasksRead, TasksWrite};
pub use scope::{Scope, ScopeSet};
pub use token::{TokenError, TokenService};
