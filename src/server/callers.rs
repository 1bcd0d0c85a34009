//! What is decided per caller before an operation runs: the rate limits,
//! and `Idempotency-Key` replays. Both need to know who is calling, so the
//! bearer token is verified here once more (the signature check is cached
//! per token); a request without a usable token passes through untouched
//! and the operation answers its 401.

use std::sync::{Arc, OnceLock};

use poem::{Endpoint, IntoResponse, Request, Response};

use super::methods::MethodTable;
use crate::{
    auth::{
        Authenticator, Delegated, Principal, Resource, principal::bearer_token, resource::MCP_PATH,
    },
    idempotency::Idempotency,
    metrics::Metrics,
    problem::{Problem, ProblemKind},
    rate_limit,
};

/// What this layer needs.
#[derive(Clone)]
pub struct Callers {
    pub authenticator: Authenticator,
    pub limiter: Arc<rate_limit::Limiter>,
    pub idempotency: Idempotency,
    pub metrics: Arc<Metrics>,
    /// The operations' routes and scopes, filled in once every route is
    /// known (`server::endpoint`).
    pub(super) table: Arc<OnceLock<MethodTable>>,
}

impl Callers {
    pub fn new(
        authenticator: Authenticator,
        limiter: Arc<rate_limit::Limiter>,
        idempotency: Idempotency,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            authenticator,
            limiter,
            idempotency,
            metrics,
            table: Arc::default(),
        }
    }
}

/// Which door a path belongs to, for the paths this layer looks at.
fn door_of(path: &str) -> Option<Resource> {
    if path.starts_with("/v1/") {
        Some(Resource::Api)
    } else if path == MCP_PATH {
        Some(Resource::Mcp)
    } else {
        None
    }
}

impl Callers {
    async fn caller(&self, req: &Request) -> Option<Principal> {
        let resource = door_of(req.uri().path())?;
        let token = bearer_token(req).ok()?;
        self.authenticator
            .authenticate_for(token, resource)
            .await
            .ok()
    }

    pub async fn handle<E: Endpoint>(&self, ep: &E, req: Request) -> Response {
        // Without limits or a key there is nothing to decide: the hot path
        // does not verify the token twice.
        if !self.limiter.is_enabled() && !Idempotency::applies_to(&req) {
            return call(ep, req).await;
        }
        let Some(principal) = self.caller(&req).await else {
            return call(ep, req).await;
        };
        let verdict = if self.limiter.is_enabled() {
            match self.limiter.check(&principal).await {
                Ok(verdict) => verdict,
                Err(err) => {
                    // Failing open: an unreachable database fails the
                    // operation itself with a clearer answer.
                    tracing::warn!(error = %err, "rate limit: could not count the request");
                    None
                }
            }
        } else {
            None
        };
        if let Some(refused) = verdict.as_ref().and_then(rate_limit::Verdict::refused_by) {
            self.metrics.rate_limited(refused.bucket.name());
            let retry = verdict.as_ref().map_or(1, rate_limit::Verdict::retry_after);
            let mut problem = Problem::new(
                ProblemKind::RateLimited,
                format!(
                    "Too many requests for this {}: at most {} every {} seconds. Retry after {retry} seconds.",
                    refused.bucket.name(),
                    refused.rate.requests,
                    refused.rate.per.as_secs()
                ),
            )
            .with_header(poem::http::header::RETRY_AFTER, retry.to_string());
            for (name, value) in verdict.iter().flat_map(rate_limit::Verdict::headers) {
                if let Ok(value) = value.to_str() {
                    problem = problem.with_header(name, value);
                }
            }
            return problem.into_response();
        }
        let mut response = if Idempotency::applies_to(&req) {
            let required = self
                .table
                .get()
                .and_then(|table| table.required_scopes(req.method(), req.uri().path()))
                .unwrap_or_default()
                .to_vec();
            // The operation takes this caller as verified here: its own
            // extractor then checks the scope without another look at the
            // token (which, on SQLite, could wait for the connection the
            // request's transaction holds).
            let mut req = req;
            if door_of(req.uri().path()) == Some(Resource::Api) {
                req.extensions_mut().insert(Delegated(principal.clone()));
            }
            match self
                .idempotency
                .run(req, &principal, &required, |req| call(ep, req))
                .await
            {
                Ok(response) => response,
                Err(problem) => problem.into_response(),
            }
        } else {
            call(ep, req).await
        };
        if response
            .headers()
            .contains_key(crate::idempotency::REPLAYED)
        {
            self.metrics.idempotent_replay();
        }
        for (name, value) in verdict.iter().flat_map(rate_limit::Verdict::headers) {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

async fn call<E: Endpoint>(ep: &E, req: Request) -> Response {
    match ep.call(req).await {
        Ok(response) => response.into_response(),
        Err(err) => err.into_response(),
    }
}
