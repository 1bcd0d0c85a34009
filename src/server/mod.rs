//! Route assembly, the middleware stack and the HTTP server.
//!
//! Request path: request id and one log line (outermost) -> every error
//! rendered as problem+json -> the OpenAPI operations, the documents and the
//! docs page.

mod errors;
mod methods;

use std::{sync::Arc, time::Duration, time::Instant};

use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, RouteMethod, Server,
    http::{HeaderName, HeaderValue, Method, header},
    listener::{Acceptor, TcpAcceptor},
    web::Html,
};
use tracing::Instrument;

use crate::{
    auth::{Authenticator, resource::MCP_PATH},
    config::PublicUrl,
    mcp::{self, McpServer},
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

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Tools(#[from] CatalogError),
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
) -> Result<impl Endpoint<Output = Response> + use<>, BuildError> {
    let documents = Documents::build(operations::detached(public_url), public_url)?;
    let full = Arc::new(Documents::render(&documents.full));
    let gpt = Arc::new(Documents::render(&documents.gpt));
    let catalog = Arc::new(Catalog::from_documents(&documents)?);
    let openai_tools = Arc::new(Documents::render(&tools::openai::chat_completions_tools(
        &catalog,
    )));
    let tool_operations = Route::new()
        .nest("/", spec::service(tool_apis))
        .around(|ep, req| async move { Ok(errors::render(ep.call(req).await, || None)) });
    let mcp_server = mcp::endpoint(McpServer::new(catalog, tool_operations, public_url));
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
    let own: Vec<(&'static str, Handlers)> = vec![
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

    let mut methods = MethodTable::default();
    methods.add_document(&documents.full);
    let mut routes = Route::new().nest("/", service);
    for (path, handlers) in own.into_iter().chain(oauth::routes(&oauth)) {
        methods.add(path, handlers.iter().map(|(method, _)| method.clone()));
        let mut route = RouteMethod::new();
        for (method, handler) in handlers {
            route = route.method(method, handler);
        }
        routes = routes.at(path, route);
    }
    let methods = Arc::new(methods);

    Ok(routes
        .data(authenticator)
        .data(oauth)
        .around(move |ep, req| {
            let methods = methods.clone();
            async move {
                let uri = req.uri().clone();
                let result = ep.call(req).await;
                Ok(errors::render(result, || methods.allow(uri.path())))
            }
        })
        .around(log_and_tag_request))
}

/// Gives each request an id (the caller's `X-Request-Id` when it is sane),
/// echoes it, and logs one line when the response is ready. The query string
/// is not logged: it holds the user's search text.
async fn log_and_tag_request<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
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
    let _entered = span.enter();
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
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
