//! Errand: a GPT Actions backend for tasks and reminders.
//!
//! The binary in `main.rs` is a thin CLI over this library; the integration
//! tests and benchmarks start the same [`App`].

pub mod auth;
pub mod config;
pub mod db;
pub mod health;
pub mod oauth;
pub mod operations;
pub mod patch;
pub mod problem;
pub mod secrets;
pub mod server;
pub mod site;
pub mod spec;
pub mod tasks;
pub mod telemetry;
pub mod text;
pub mod timestamp;
pub mod urls;
pub mod users;
pub mod web;

use std::time::Duration;

use poem::{Endpoint, Response};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::task::JoinSet;

use crate::{
    auth::{
        Authenticator, KeyError, KeyRing, TokenService,
        oidc::{OidcError, OidcVerifier},
        revocation,
    },
    config::{AuthSettings, DatabaseSettings, PublicUrl},
    db::DbSetupError,
    oauth::OAuthState,
    spec::SpecError,
};

/// Process-wide set-up, done once when a process starts (by `main`, and by
/// the test harness): selects rustls' ring crypto provider for outbound
/// HTTPS. reqwest is built without a bundled provider because ring is
/// already in the build through sqlx, and one crypto library is enough.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How often running servers look for signing keys rotated by another
/// process (a token signed with an unknown key triggers a look at once).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// A started Errand: database migrated, signing keys loaded.
#[derive(Debug, Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub authenticator: Authenticator,
    pub public_url: PublicUrl,
    pub settings: AuthSettings,
    csrf_key: [u8; 32],
}

/// The background work a serving process runs beside the API; stopped when
/// dropped.
#[derive(Debug)]
pub struct Background {
    _tasks: JoinSet<()>,
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
    #[error("could not load or store the sign-in pages' CSRF key")]
    CsrfKey(#[source] DbErr),
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
        let csrf_key = oauth::authorize::session::load_csrf_key(&db)
            .await
            .map_err(StartError::CsrfKey)?;
        Ok(Self {
            db,
            authenticator,
            public_url,
            settings: settings.clone(),
            csrf_key,
        })
    }

    /// Starts what a serving process keeps doing beside the API: hearing
    /// about revocations made elsewhere (until it does, every token is
    /// checked against the database) and picking up rotated signing keys.
    pub fn spawn_background(&self) -> Background {
        let mut tasks = JoinSet::new();
        tasks.spawn(revocation::watch(
            self.db.clone(),
            self.authenticator.live_cache().clone(),
        ));
        let authenticator = self.authenticator.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(KEY_RELOAD_INTERVAL);
            every.tick().await;
            loop {
                every.tick().await;
                authenticator.reload_keys(true).await;
            }
        });
        Background { _tasks: tasks }
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
            csrf_key: self.csrf_key,
        }
    }

    /// The HTTP application.
    pub fn endpoint(&self) -> Result<impl Endpoint<Output = Response> + use<>, StartError> {
        Ok(server::endpoint(
            operations::apis(&self.db, &self.public_url),
            &self.public_url,
            self.authenticator.clone(),
            self.oauth_state(),
        )?)
    }
}
