//! The resource-server side: who is calling. Access tokens (JWTs signed with
//! Errand's own keys) and the grants they are issued under, the scopes they
//! carry, the revocation check, an external identity provider's tokens, and
//! the extractor that turns a request into a [`Principal`] or a 401/403
//! problem. Imports nothing from `oauth`, which builds on it.

pub mod authenticator;
pub mod grants;
pub mod keys;
pub mod oidc;
pub mod principal;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod token;

pub use authenticator::{AuthError, Authenticator};
pub use keys::{KeyError, KeyRing};
pub use principal::{
    AnyScope, Authorized, Delegated, Principal, TasksRead, TasksWrite, WebhooksManage,
};
pub use resource::Resource;
pub use scope::{Scope, ScopeSet};
pub use token::{TokenError, TokenService};
