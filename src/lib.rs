//! Errand: a GPT Actions backend for tasks and reminders.
//!
//! The binary in `main.rs` is a thin CLI over this library; the integration
//! tests and benchmarks start the same [`App`].

pub mod auth;
pub mod config;
pub mod db;
pub mod health;
pub mod oauth;
pub mod patch;
pub mod problem;
pub mod server;
pub mod spec;
pub mod tasks;
pub mod telemetry;
pub mod timestamp;
pub mod users;
pub mod web;

use poem::{Endpoint, Response};
use sea_orm::DatabaseConnection;

use crate::{
    auth::{
        Authenticator, KeyError, KeyRing, TokenService,
        oidc::{OidcError, OidcVerifier},
    },
    config::{AuthSettings, DatabaseSettings, PublicUrl},
    db::DbSetupError,
    oauth::OAuthState,
    spec::SpecError,
};

/// Selects rustls' ring crypto provider for outbound HTTPS (reqwest is built
/// without a bundled one: ring is already in the build through sqlx, and one
/// crypto library is enough). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A started Errand: database migrated, signing keys loaded.
#[derive(Debug, Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub authenticator: Authenticator,
    pub public_url: PublicUrl,
    pub settings: AuthSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Oidc(#[from] OidcError),
}

impl App {
    /// Connects, applies pending migrations and loads the signing keys.
    pub async fn start(
        database: &DatabaseSettings,
        public_url: PublicUrl,
        settings: &AuthSettings,
    ) -> Result<Self, StartError> {
        let db = db::connect_and_migrate(database).await?;
        let keys = KeyRing::load(&db, settings.signing_key_file.as_deref()).await?;
        let tokens = TokenService::new(keys, &public_url);
        let external = settings.oidc.as_ref().map(OidcVerifier::new).transpose()?;
        let authenticator = Authenticator::new(
            tokens,
            db.clone(),
            external,
            settings.signing_key_file.clone(),
        );
        Ok(Self {
            db,
            authenticator,
            public_url,
            settings: settings.clone(),
        })
    }

    /// Issues and checks this deployment's access tokens.
    pub fn tokens(&self) -> &TokenService {
        self.authenticator.tokens()
    }

    pub fn oauth_state(&self) -> OAuthState {
        OAuthState {
            db: self.db.clone(),
            authenticator: self.authenticator.clone(),
            public_url: self.public_url.clone(),
            secure_cookies: self.public_url.as_str().starts_with("https://"),
            trust_forwarded_for: self.settings.trust_forwarded_for,
        }
    }

    /// The HTTP application.
    pub fn endpoint(&self) -> Result<impl Endpoint<Output = Response> + use<>, StartError> {
        Ok(server::endpoint(self)?)
    }
}
