//! Errand as an OAuth 2.0 authorization server (RFC 6749): accounts and
//! sign-in pages, registered clients, the authorize/consent flow, the token,
//! revocation and metadata endpoints.

pub mod accounts;
pub mod authorize;
pub mod clients;
pub mod entity;
pub mod grants;
pub mod pages;
pub mod secrets;
pub mod token_endpoint;

use poem::{Route, get, post};
use sea_orm::DatabaseConnection;

use crate::{auth::Authenticator, config::PublicUrl};

/// What the OAuth endpoints need, shared through request data.
#[derive(Debug, Clone)]
pub struct OAuthState {
    pub db: DatabaseConnection,
    pub authenticator: Authenticator,
    pub public_url: PublicUrl,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// Take the client address for sign-in throttling from the last
    /// `X-Forwarded-For` entry (set when behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// Adds the authorization server's routes.
pub fn routes(route: Route) -> Route {
    route
        .at("/oauth/authorize", get(authorize::authorize))
        .at("/oauth/sign-in", post(authorize::sign_in))
        .at(
            "/oauth/sign-up",
            get(authorize::sign_up_page).post(authorize::sign_up),
        )
        .at("/oauth/consent", post(authorize::consent))
        .at("/oauth/token", post(token_endpoint::token))
        .at("/oauth/revoke", post(token_endpoint::revoke))
        .at(
            "/.well-known/oauth-authorization-server",
            get(token_endpoint::metadata),
        )
        .at("/.well-known/jwks.json", get(token_endpoint::jwks))
}
