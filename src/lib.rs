//! Errand: a GPT Actions backend for tasks and reminders.
//!
//! The binary in `main.rs` is a thin CLI over this library; the integration
//! tests and benchmarks start the same [`App`].

pub mod auth;
pub mod config;
pub mod db;
pub mod health;
pub mod patch;
pub mod problem;
pub mod server;
pub mod spec;
pub mod tasks;
pub mod telemetry;
pub mod timestamp;
pub mod users;
pub mod web;

use std::path::Path;

use poem::{Endpoint, Response};
use sea_orm::DatabaseConnection;

use crate::{
    auth::{KeyError, KeyRing, TokenService},
    config::{DatabaseSettings, PublicUrl},
    db::DbSetupError,
    spec::SpecError,
};

/// A started Errand: database migrated, signing keys loaded.
#[derive(Debug, Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub tokens: TokenService,
    pub public_url: PublicUrl,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Spec(#[from] SpecError),
}

impl App {
    /// Connects, applies pending migrations and loads the signing keys.
    pub async fn start(
        database: &DatabaseSettings,
        public_url: PublicUrl,
        signing_key_file: Option<&Path>,
    ) -> Result<Self, StartError> {
        let db = db::connect_and_migrate(database).await?;
        let keys = KeyRing::load(&db, signing_key_file).await?;
        let tokens = TokenService::new(keys, &public_url);
        Ok(Self {
            db,
            tokens,
            public_url,
        })
    }

    /// The HTTP application.
    pub fn endpoint(&self) -> Result<impl Endpoint<Output = Response> + use<>, StartError> {
        Ok(server::endpoint(&self.db, &self.tokens, &self.public_url)?)
    }
}
