//! The service's own endpoints, for operators and for anyone landing on the
//! root: `/` links to the documents, `/healthz` says the process is up,
//! `/readyz` that it can reach the database. Not in the GPT Actions document.

use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use crate::{
    db,
    problem::Problem,
    site,
    web::{ApiTag, Json},
};

pub struct HealthApi {
    pub db: DatabaseConnection,
}

#[derive(Debug, Object, serde::Serialize)]
#[oai(rename = "Health")]
pub struct HealthView {
    /// `ok` when the check passed.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The check passed.
    #[oai(status = 200)]
    Ok(Json<HealthView>),
}

/// Where the documents are.
#[derive(Debug, Object, serde::Serialize)]
#[oai(rename = "ServiceIndex")]
pub struct IndexView {
    pub name: String,
    pub version: String,
    /// The full OpenAPI document.
    pub openapi: String,
    /// The OpenAPI document a GPT builder imports.
    pub gpt_actions_openapi: String,
    /// Interactive API documentation.
    pub docs: String,
}

fn ok() -> HealthResponse {
    HealthResponse::Ok(Json(HealthView {
        status: "ok".to_owned(),
    }))
}

#[OpenApi]
impl HealthApi {
    /// Service index
    ///
    /// Names the service and links to its OpenAPI documents and interactive docs.
    #[oai(
        path = "/",
        method = "get",
        operation_id = "getServiceIndex",
        tag = "ApiTag::Service"
    )]
    async fn index(&self) -> Json<IndexView> {
        Json(IndexView {
            name: site::TITLE.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            openapi: site::FULL_DOCUMENT_PATH.to_owned(),
            gpt_actions_openapi: site::GPT_DOCUMENT_PATH.to_owned(),
            docs: site::DOCS_PATH.to_owned(),
        })
    }

    /// Liveness
    ///
    /// Answers 200 while the process runs.
    #[oai(
        path = "/healthz",
        method = "get",
        operation_id = "getHealth",
        tag = "ApiTag::Service"
    )]
    async fn healthz(&self) -> HealthResponse {
        ok()
    }

    /// Readiness
    ///
    /// Answers 200 when the database is reachable, 503 otherwise.
    #[oai(
        path = "/readyz",
        method = "get",
        operation_id = "getReadiness",
        tag = "ApiTag::Service"
    )]
    async fn readyz(&self) -> Result<HealthResponse, Problem> {
        db::ping(&self.db)
            .await
            .map_err(|err| Problem::unavailable("The database is unreachable.", err))?;
        Ok(ok())
    }
}
