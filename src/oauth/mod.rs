//! Errand as an OAuth 2.0 authorization server (RFC 6749): accounts and
//! sign-in pages, registered clients, the authorize/consent flow, the token,
//! revocation and metadata endpoints. Builds on `auth` (grants, tokens,
//! scopes) and `users` (accounts).

pub mod accounts;
pub mod authorize;
pub mod clients;
pub mod consent;
pub mod entity;
pub mod flows;
pub mod pages;
pub mod token_endpoint;

use poem::{EndpointExt, Route, get, post};
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
    /// Seals the sign-in forms' CSRF tokens (see `authorize::session`).
    pub csrf_key: [u8; 32],
}

/// Adds the authorization server's routes.
pub fn routes(route: Route, state: &OAuthState) -> Route {
    // The pages with forms get the cookie jar and CSRF protection; the
    // token endpoints are called by clients, not browsers, and get neither.
    let csrf = || authorize::session::csrf_protection(state.csrf_key, state.secure_cookies);
    route
        .at("/oauth/authorize", get(authorize::authorize).with(csrf()))
        .at("/oauth/sign-in", post(authorize::sign_in).with(csrf()))
        .at(
            "/oauth/sign-up",
            get(authorize::sign_up_page)
                .post(authorize::sign_up)
                .with(csrf()),
        )
        .at("/oauth/consent", post(authorize::decide).with(csrf()))
        .at("/oauth/token", post(token_endpoint::token))
        .at("/oauth/revoke", post(token_endpoint::revoke))
        .at(
            "/.well-known/oauth-authorization-server",
            get(token_endpoint::metadata),
        )
        .at("/.well-known/jwks.json", get(token_endpoint::jwks))
}
