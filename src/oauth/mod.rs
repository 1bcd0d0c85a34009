//! Errand as an OAuth 2.0 authorization server (RFC 6749): accounts and
//! sign-in pages, registered clients, the authorize/consent flow, the token,
//! revocation and metadata endpoints. Builds on `auth` (grants, tokens,
//! scopes) and `users` (accounts).

pub mod accounts;
pub mod authorize;
pub mod client_metadata;
pub mod clients;
pub mod consent;
pub mod entity;
pub mod flows;
pub mod letters;
pub mod pages;
pub mod ration;
pub mod registration;
pub mod resource_metadata;
pub mod sweep;
pub mod token_endpoint;

use std::sync::Arc;

use poem::{EndpointExt, endpoint::BoxEndpoint, http::Method};
use sea_orm::DatabaseConnection;

use crate::{
    auth::{
        Authenticator, Resource,
        principal::{AUTHORIZE_PATH, TOKEN_PATH},
    },
    config::PublicUrl,
    sealing::Sealer,
};
use client_metadata::ClientDocuments;

/// What the OAuth endpoints need, shared through request data.
#[derive(Debug, Clone)]
pub struct OAuthState {
    pub db: DatabaseConnection,
    pub authenticator: Authenticator,
    pub public_url: PublicUrl,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// How many trusted proxies append to `X-Forwarded-For`; the caller's
    /// address for rationing is the entry that many hops from the right.
    pub trusted_proxy_hops: u8,
    /// Seals the sign-in forms' CSRF tokens (see `authorize::session`).
    pub csrf_key: [u8; 32],
    /// Clients identified by metadata document URLs, fetched and cached.
    pub client_documents: Arc<ClientDocuments>,
    /// Seals the mail accounts queue (its links are secrets).
    pub sealer: Sealer,
}

/// The authorization server's endpoints: each path with a handler per
/// method (the server mounts them, and answers other methods with 405).
pub fn routes() -> Vec<(&'static str, Vec<(Method, BoxEndpoint<'static>)>)> {
    // The pages get the cookie jar (each form checks its own CSRF token,
    // see `authorize::session`); the token endpoints are called by
    // clients, not browsers, and get none.
    let page = |endpoint: BoxEndpoint<'static>| {
        endpoint
            .with(poem::middleware::CookieJarManager::new())
            .map_to_response()
            .boxed()
    };
    vec![
        (
            AUTHORIZE_PATH,
            vec![(Method::GET, page(authorize::authorize.boxed()))],
        ),
        (
            "/oauth/sign-in",
            vec![(Method::POST, page(authorize::sign_in.boxed()))],
        ),
        (
            "/oauth/sign-up",
            vec![
                (Method::GET, page(authorize::sign_up_page.boxed())),
                (Method::POST, page(authorize::sign_up.boxed())),
            ],
        ),
        (
            "/oauth/consent",
            vec![(Method::POST, page(authorize::decide.boxed()))],
        ),
        (
            authorize::SIGN_OUT_PATH,
            vec![(Method::POST, page(authorize::sign_out.boxed()))],
        ),
        (
            letters::VERIFY_EMAIL_PATH,
            vec![
                (Method::GET, page(authorize::verify_email_page.boxed())),
                (Method::POST, page(authorize::verify_email.boxed())),
            ],
        ),
        (
            TOKEN_PATH,
            vec![(Method::POST, token_endpoint::token.boxed())],
        ),
        (
            registration::REGISTRATION_PATH,
            vec![(Method::POST, registration::register.boxed())],
        ),
        (
            "/oauth/revoke",
            vec![(Method::POST, token_endpoint::revoke.boxed())],
        ),
        (
            "/.well-known/oauth-authorization-server",
            vec![(Method::GET, token_endpoint::metadata.boxed())],
        ),
        (
            Resource::Api.metadata_path(),
            vec![(Method::GET, resource_metadata::api.boxed())],
        ),
        (
            Resource::Mcp.metadata_path(),
            vec![(Method::GET, resource_metadata::mcp.boxed())],
        ),
        (
            "/.well-known/jwks.json",
            vec![(Method::GET, token_endpoint::jwks.boxed())],
        ),
    ]
}
