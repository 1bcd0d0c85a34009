//! The contract: the OpenAPI documents generated from the poem-openapi
//! operations, finished for the ChatGPT importer (OpenAPI 3.1.0, servers,
//! `x-openai-isConsequential`), plus the GPT lint that keeps them importable.

pub mod enum_names;
pub mod finish;
pub mod lint;
pub mod policy;

use std::path::Path;

use poem_openapi::OpenApiService;
use serde_json::Value;

use crate::{
    config::PublicUrl,
    operations::{self, Apis},
    site::TITLE,
};

pub const FULL_DOCUMENT_FILE: &str = "openapi/errand.json";
pub const GPT_DOCUMENT_FILE: &str = "openapi/gpt-actions.json";
/// The public URL the committed documents are generated with, so that they do
/// not depend on where the generating machine listens.
pub const COMMITTED_PUBLIC_URL: &str = "https://errand.example.com";

pub const DESCRIPTION: &str = "Tasks and reminders for a signed-in user: create, list, update, \
complete and delete tasks, set reminders that fire at a time or before a task is due, and see \
what is due by day in the user's time zone.";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("poem-openapi produced a document that is not JSON")]
    Json(#[from] serde_json::Error),
    #[error("operation `{0}` has no entry in spec::policy::OPERATIONS")]
    UnknownOperation(String),
    #[error("spec::policy::OPERATIONS lists `{0}`, which no endpoint implements")]
    StalePolicy(String),
    #[error("enum member `{value}` would be named `{name}`, like another member")]
    EnumNameClash { value: String, name: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Both finished documents.
#[derive(Debug, Clone)]
pub struct Documents {
    /// Every operation, for integrators and operators.
    pub full: Value,
    /// What a GPT builder imports.
    pub gpt: Value,
}

impl Documents {
    pub fn build(apis: Apis, public_url: &PublicUrl) -> Result<Self, SpecError> {
        let raw = service(apis).spec();
        let full = finish::finish(serde_json::from_str(&raw)?, public_url)?;
        let gpt = finish::gpt_subset(&full);
        Ok(Self { full, gpt })
    }

    /// The documents as committed under `openapi/`.
    pub fn committed() -> Result<Self, SpecError> {
        let url = PublicUrl::parse(COMMITTED_PUBLIC_URL)?;
        Self::build(operations::detached(&url), &url)
    }

    pub fn render(document: &Value) -> String {
        let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Rewrites the committed documents under `root`.
    pub fn write(&self, root: &Path) -> Result<(), SpecError> {
        for (file, document) in [
            (FULL_DOCUMENT_FILE, &self.full),
            (GPT_DOCUMENT_FILE, &self.gpt),
        ] {
            let path = root.join(file);
            let write = || -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, Self::render(document))
            };
            write().map_err(|source| SpecError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

/// The poem-openapi service for all operations.
pub fn service(apis: Apis) -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis, TITLE, env!("CARGO_PKG_VERSION")).description(DESCRIPTION)
}
