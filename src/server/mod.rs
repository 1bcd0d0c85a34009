//! Route assembly, the middleware stack and the HTTP server.
//!
//! Request path: request id, one log line and the request metrics
//! (outermost) -> size limits and the request timeout (`limits`) -> rate
//! limits and idempotency (`callers`) -> every error rendered as
//! problem+json -> the OpenAPI operations, the documents and the docs page.

mod callers;
mod errors;
mod limits;
mod methods;

use std::{sync::Arc, time::Duration, time::Instant};

pub use callers::Callers;
pub use limits::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URL_BYTES};

use poem::{
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Route, RouteMethod,
    Server,
    http::{HeaderName, HeaderValue, Method, header},
    listener::{Acceptor, TcpAcceptor},
    web::Html,
};
use tracing::Instrument;

use crate::{
    auth::{Authenticator, resource::MCP_PATH},
    config::{HttpSettings, PublicUrl},
    health::{self, Draining},
    mcp::{self, McpServer},
    metrics::{Door, Metrics},
    oauth::{self, OAuthState},
    operations::{self, Apis},
    problem::PROBLEM_CONTENT_TYPE,
    site,
    spec::{self, Documents, SpecError},
    tools::{self, Catalog, CatalogError},
};

pub use methods::Handlers;
use methods::MethodTable;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// ChatGPT's correlation headers: logged, never trusted as identity.
const CONVERSATION_ID: HeaderName = HeaderName::from_static("openai-conversation-id");
const GPT_ID: HeaderName = HeaderName::from_static("openai-gpt-id");

/// The path Prometheus scrapes.
pub const METRICS_PATH: &str = "/metrics";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Tools(#[from] CatalogError),
}

/// What the HTTP layer needs besides the operations.
#[derive(Clone)]
pub struct Serving {
    pub http: HttpSettings,
    pub metrics: Arc<Metrics>,
    pub callers: Callers,
    pub db: sea_orm::DatabaseConnection,
    /// MCP Events subscriptions, for the MCP endpoint.
    pub mcp_events: crate::webhooks::mcp::McpEvents,
    /// The MCP door's settings (views' origin, the OpenAI challenge).
    pub mcp: crate::config::McpSettings,
}

/// The whole HTTP application. The operations come twice, bound to the same
/// state: `apis` for the HTTP routes and `tool_apis` for the MCP server's
/// tool calls, which run the same operations in-process.
pub fn endpoint(
    apis: Apis,
    tool_apis: Apis,
    public_url: &PublicUrl,
    authenticator: Authenticator,
    oauth: OAuthState,
    serving: Serving,
) -> Result<impl Endpoint<Output = Response> + use<>, BuildError> {
    let documents = Documents::build(operations::detached(public_url), public_url)?;
    let mut methods = MethodTable::default();
    methods.add_document(&documents.full);
    let full = Arc::new(Documents::render(&documents.full));
    let gpt = Arc::new(Documents::render(&documents.gpt));
    let catalog = Arc::new(Catalog::from_documents(&documents)?);
    let openai_tools = Arc::new(Documents::render(&tools::openai::chat_completions_tools(
        &catalog,
    )));
    // Filled in below, once every route is known.
    let labels: Arc<std::sync::OnceLock<MethodTable>> = Arc::default();
    // The tool calls' operations: the service itself, without the router
    // the HTTP door needs, counted under the tool's name (its operationId).
    let tool_metrics = serving.metrics.clone();
    let tool_operations = spec::service(tool_apis)
        .into_endpoint()
        .around(move |ep, mut req| {
            let metrics = tool_metrics.clone();
            async move {
                let started = Instant::now();
                // Taken, not copied: nothing further in reads it.
                let tool = req
                    .extensions_mut()
                    .remove::<mcp::call::Calling>()
                    .map_or_else(|| "unmatched".to_owned(), |calling| calling.0);
                let response = errors::render(ep.call(req).await, || None);
                metrics.request(Door::Mcp, &tool, response.status(), started.elapsed());
                Ok(response)
            }
        });
    let mcp_server = mcp::endpoint(
        McpServer::new(catalog, tool_operations, public_url)
            .with_events(serving.mcp_events.clone())
            .with_widget_domain(serving.mcp.widget_domain.clone()),
    );
    let service = spec::service(apis);
    // poem-openapi's Swagger UI embeds its own 3.0 rendering of the spec;
    // show the finished 3.1 document instead, the one clients actually get.
    let docs_html = service
        .swagger_ui_html()
        .replacen(&service.spec(), &full, 1);

    let json_document = |body: Arc<String>| {
        poem::endpoint::make(move |_| {
            let body = body.clone();
            async move {
                Response::builder()
                    .content_type("application/json")
                    .body(body.as_str().to_owned())
            }
        })
        .boxed()
    };
    let mut own: Vec<(&'static str, Handlers)> = vec![
        (
            site::FULL_DOCUMENT_PATH,
            vec![(Method::GET, json_document(full))],
        ),
        (
            site::GPT_DOCUMENT_PATH,
            vec![(Method::GET, json_document(gpt))],
        ),
        (
            site::OPENAI_TOOLS_PATH,
            vec![(Method::GET, json_document(openai_tools))],
        ),
        (MCP_PATH, vec![(Method::POST, mcp_server.boxed())]),
        (
            site::DOCS_PATH,
            vec![(
                Method::GET,
                poem::endpoint::make_sync(move |_| Html(docs_html.clone()))
                    .map_to_response()
                    .boxed(),
            )],
        ),
        (
            "/problems/:slug",
            vec![(Method::GET, errors::problem_type.map_to_response().boxed())],
        ),
    ];

    own.extend(discovery_routes(
        public_url,
        serving.mcp.openai_apps_challenge.clone(),
    ));
    if serving.http.metrics_on_main {
        own.push((
            METRICS_PATH,
            vec![(
                Method::GET,
                health::metrics_endpoint(serving.metrics.clone(), serving.db.clone()).boxed(),
            )],
        ));
    }
    let mut routes = Route::new().nest("/", service);
    for (path, handlers) in own.into_iter().chain(oauth::routes()) {
        methods.add(path, handlers.iter().map(|(method, _)| method.clone()));
        let mut route = RouteMethod::new();
        for (method, handler) in handlers {
            route = route.method(method, handler);
        }
        routes = routes.at(path, route);
    }
    // The table is only read from here on; the tool calls and the callers
    // layer share it.
    let _ = labels.set(methods);
    let Serving {
        http,
        metrics,
        mut callers,
        ..
    } = serving;
    callers.table = labels.clone();
    let callers = Arc::new(callers);
    let (timeout, allow) = (http.request_timeout, labels.clone());

    Ok(routes
        .data(authenticator)
        .data(oauth)
        .around(move |ep, req| {
            let allow = allow.clone();
            async move {
                let uri = req.uri().clone();
                let result = ep.call(req).await;
                Ok(errors::render(result, || {
                    allow.get().and_then(|table| table.allow(uri.path()))
                }))
            }
        })
        .around(move |ep, req| {
            let callers = callers.clone();
            async move { Ok(callers.handle(&ep, req).await) }
        })
        .around(move |ep, req| async move { limits::enforce(&ep, req, timeout).await })
        .around(move |ep, req| {
            let counting = Counting {
                metrics: metrics.clone(),
                labels: labels.clone(),
            };
            async move { observe(ep, req, Some(counting)).await }
        }))
}

/// The MCP server card, the catalogs that point at it, and the OpenAI
/// domain-verification token.
fn discovery_routes(
    public_url: &PublicUrl,
    challenge: Option<String>,
) -> Vec<(&'static str, Handlers)> {
    use mcp::discovery;
    let document = |body: Arc<serde_json::Value>, content_type: &'static str| {
        let handler = move || {
            let body = body.clone();
            poem::endpoint::make_sync(move |req: Request| {
                let etag = req
                    .headers()
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok());
                discovery::public_document(req.method(), etag, content_type, &body)
            })
            .boxed()
        };
        vec![(Method::GET, handler()), (Method::OPTIONS, handler())]
    };
    let card = Arc::new(discovery::server_card(public_url));
    let ai = Arc::new(discovery::ai_catalog(public_url));
    let draft = Arc::new(discovery::mcp_catalog(public_url));
    let challenge = poem::endpoint::make_sync(move |_| match &challenge {
        Some(token) => Response::builder()
            .content_type("text/plain; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(token.clone()),
        None => crate::problem::Problem::not_found(
            "No OpenAI domain-verification token is configured (ERRAND_OPENAI_APPS_CHALLENGE).",
        )
        .into_response(),
    })
    .boxed();
    vec![
        (
            discovery::SERVER_CARD_PATH,
            document(card, "application/mcp-server-card+json"),
        ),
        (
            discovery::AI_CATALOG_PATH,
            document(ai, "application/ai-catalog+json"),
        ),
        (
            discovery::MCP_CATALOG_PATH,
            document(draft, "application/json"),
        ),
        (
            discovery::OPENAI_CHALLENGE_PATH,
            vec![(Method::GET, challenge)],
        ),
    ]
}

/// What a worker process serves: health checks for its orchestrator and,
/// unless they have a listener of their own, the metrics.
pub fn worker_endpoint(
    db: sea_orm::DatabaseConnection,
    draining: Draining,
    metrics: Option<Arc<Metrics>>,
) -> impl Endpoint<Output = Response> + use<> {
    let ready_db = db.clone();
    let mut routes = Route::new()
        .at(
            "/healthz",
            poem::get(poem::endpoint::make_sync(|_| {
                poem::web::Json(serde_json::json!({ "status": "ok" }))
            })),
        )
        .at(
            "/readyz",
            poem::get(poem::endpoint::make(move |_| {
                let (db, draining) = (ready_db.clone(), draining.clone());
                async move {
                    health::readiness(&db, &draining).await?;
                    Ok::<_, crate::problem::Problem>(poem::web::Json(
                        serde_json::json!({ "status": "ok" }),
                    ))
                }
            })),
        );
    if let Some(metrics) = metrics {
        routes = routes.at(
            METRICS_PATH,
            poem::get(health::metrics_endpoint(metrics, db)),
        );
    }
    routes
        .around(|ep, req| async move { Ok(errors::render(ep.call(req).await, || None)) })
        .around(|ep, req| async move { observe(ep, req, None).await })
}

/// The metrics alone, for their own listener.
pub fn metrics_endpoint(
    metrics: Arc<Metrics>,
    db: sea_orm::DatabaseConnection,
) -> impl Endpoint<Output = Response> + use<> {
    Route::new().at(
        METRICS_PATH,
        poem::get(health::metrics_endpoint(metrics, db)),
    )
}

/// Where requests are counted, and the table that names them.
struct Counting {
    metrics: Arc<Metrics>,
    labels: Arc<std::sync::OnceLock<MethodTable>>,
}

/// A header value fit for a log line: a plain token of at most 128
/// characters (letters, digits and `-._~:+/=`, what UUIDs, ULIDs and base64
/// ids are made of), or nothing. The text log writes span fields as they
/// are, so quotes, `;`, braces or spaces would let a caller forge fields.
fn loggable(req: &Request, name: &HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_plain_token(v))
        .map(str::to_owned)
}

fn is_plain_token(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:+/=".contains(c))
}

/// Gives each request an id (the caller's `X-Request-Id` when it is sane),
/// echoes it, runs the request in a span that carries it (so every log
/// line of the request has it), logs one line when the response is ready
/// and counts the request in `metrics` under its label. ChatGPT's
/// conversation and GPT ids go into the span for correlation only. The
/// query string is not logged: it holds the user's search text.
async fn observe<E: Endpoint>(
    ep: E,
    req: Request,
    counting: Option<Counting>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id =
        loggable(&req, &REQUEST_ID).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let conversation = loggable(&req, &CONVERSATION_ID);
    let gpt = loggable(&req, &GPT_ID);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %path,
        openai_conversation_id = conversation.as_deref(),
        openai_gpt_id = gpt.as_deref(),
    );
    let mut response = ep
        .call(req)
        .instrument(span.clone())
        .await
        .map_or_else(|err| err.into_response(), IntoResponse::into_response);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.starts_with("/v1/") {
        // Task data is personal; nothing between us and the caller keeps it.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let took = started.elapsed();
    if let Some(counting) = counting {
        let label = counting
            .labels
            .get()
            .map_or("unmatched", |table| table.label(&method, &path));
        counting
            .metrics
            .request(Door::Http, label, response.status(), took);
    }
    let _entered = span.enter();
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = took.as_secs_f64() * 1000.0,
        problem = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == PROBLEM_CONTENT_TYPE),
        "request"
    );
    Ok(response)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish
/// (for at most `grace`).
pub async fn serve(
    acceptor: TcpAcceptor,
    app: impl Endpoint<Output = Response> + 'static,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let addresses: Vec<String> = acceptor
        .local_addr()
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::info!(listen = %addresses.join(", "), "serving");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(grace))
        .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_tokens_are_taken_as_request_ids() {
        for ok in [
            "4bf92f3577b34da6",
            "req_01HV3Z",
            "a1b2-c3:d4/e5+f6==",
            "g-abc.123~x",
        ] {
            assert!(is_plain_token(ok), "{ok}");
        }
        for forged in ["id\"=x;status=500", "a b", "x}y", "", &"k".repeat(129), "é"] {
            assert!(!is_plain_token(forged), "{forged}");
        }
    }
}
