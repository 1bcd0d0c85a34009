//! Probes for operators: `/healthz` says the process is up, `/readyz` that it
//! can reach the database. Not part of the GPT Actions document.

use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use crate::{
    db,
    problem::Problem,
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

fn ok() -> HealthResponse {
    HealthResponse::Ok(Json(HealthView {
        status: "ok".to_owned(),
    }))
}

#[OpenApi]
impl HealthApi {
    /// Liveness
    ///
    /// Answers 200 while the process runs.
    #[oai(
        path = "/healthz",
        method = "get",
        operation_id = "getHealth",
        tag = "ApiTag::Health"
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
        tag = "ApiTag::Health"
    )]
    async fn readyz(&self) -> Result<HealthResponse, Problem> {
        db::ping(&self.db)
            .await
            .map_err(|err| Problem::unavailable("The database is unreachable.", err))?;
        Ok(ok())
    }
}
