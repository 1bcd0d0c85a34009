//! The service's own endpoints, for operators and for anyone landing on the
//! root: `/` links to the documents, `/healthz` says the process is up,
//! `/readyz` that it can reach the database and is not shutting down,
//! `/metrics` what Prometheus scrapes. Not in the GPT Actions document.

use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use crate::{
    db,
    metrics::Metrics,
    problem::{Problem, ProblemKind},
    site,
    web::{ApiTag, Json},
};

pub struct HealthApi {
    pub db: DatabaseConnection,
    pub draining: Draining,
}

/// Set when the process has been asked to stop: readiness then fails, so
/// load balancers send new requests elsewhere while in-flight ones finish.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `/metrics`: the exposition, with the outbox backlog read now.
pub fn metrics_endpoint(
    metrics: Arc<Metrics>,
    db: DatabaseConnection,
) -> impl poem::Endpoint<Output = poem::Response> {
    poem::endpoint::make(move |_| {
        let (metrics, db) = (metrics.clone(), db.clone());
        async move {
            let outbox = match crate::events::relay::backlog(&db).await {
                Ok(backlog) => Some(backlog),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics: cannot read the outbox backlog");
                    None
                }
            };
            match metrics.render(outbox, &db) {
                Ok(text) => poem::Response::builder()
                    .content_type(crate::metrics::CONTENT_TYPE)
                    .body(text),
                Err(_) => poem::Response::builder()
                    .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                    .finish(),
            }
        }
    })
}

/// Whether this process should be sent requests: not draining, and the
/// database answers.
pub async fn readiness(db: &DatabaseConnection, draining: &Draining) -> Result<(), Problem> {
    if draining.is_draining() {
        return Err(Problem::new(
            ProblemKind::Unavailable,
            "This instance is shutting down; send requests to another.",
        ));
    }
    // Its own short bound: a probe that waits for the pool's connect
    // timeout is a probe that times out instead of answering 503.
    match tokio::time::timeout(READINESS_TIMEOUT, db::ping(db)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Problem::unavailable("The database is unreachable.", err)),
        Err(elapsed) => Err(Problem::unavailable(
            format!(
                "The database did not answer within {} ms.",
                READINESS_TIMEOUT.as_millis()
            ),
            elapsed,
        )),
    }
}

/// How long readiness waits for the database: inside the probes' own
/// timeout (3 s in deploy/kubernetes), long enough that a busy pool under
/// load is not taken for a missing database.
pub const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// Answers 200 when the database is reachable, 503 when it is not or
    /// when the instance is shutting down.
    #[oai(
        path = "/readyz",
        method = "get",
        operation_id = "getReadiness",
        tag = "ApiTag::Service"
    )]
    async fn readyz(&self) -> Result<HealthResponse, Problem> {
        readiness(&self.db, &self.draining).await?;
        Ok(ok())
    }
}
