//! Route assembly, the middleware stack and the HTTP server.
//!
//! Request path: request id and one log line (outermost) -> every error
//! rendered as problem+json -> the OpenAPI operations, the documents and the
//! docs page.

use std::{sync::Arc, time::Duration, time::Instant};

use askama::Template;

use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler,
    http::{HeaderName, HeaderValue, StatusCode, header},
    listener::{Acceptor, TcpAcceptor},
    web::{Html, Path},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use tracing::Instrument;

use crate::{
    auth::Authenticator,
    config::PublicUrl,
    oauth::{self, OAuthState},
    operations::{self, Apis},
    problem::{PROBLEM_CONTENT_TYPE, Problem, ProblemKind},
    site,
    spec::{self, Documents, SpecError},
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application: the operations, the documents describing
/// them, and the authorization server's endpoints.
pub fn endpoint(
    apis: Apis,
    public_url: &PublicUrl,
    authenticator: Authenticator,
    oauth: OAuthState,
) -> Result<impl Endpoint<Output = Response> + use<>, SpecError> {
    let documents = Documents::build(operations::detached(public_url), public_url)?;
    let full = Arc::new(Documents::render(&documents.full));
    let gpt = Arc::new(Documents::render(&documents.gpt));
    let service = spec::service(apis);
    // poem-openapi's Swagger UI embeds its own 3.0 rendering of the spec;
    // show the finished 3.1 document instead, the one clients actually get.
    let docs_html = service
        .swagger_ui_html()
        .replacen(&service.spec(), &full, 1);

    let json_document = |body: Arc<String>| {
        move || {
            let body = body.clone();
            async move {
                Response::builder()
                    .content_type("application/json")
                    .body(body.as_str().to_owned())
            }
        }
    };

    let routes = Route::new()
        .nest("/", service)
        .at(
            site::FULL_DOCUMENT_PATH,
            get(poem::endpoint::make(move |_| json_document(full.clone())())),
        )
        .at(
            site::GPT_DOCUMENT_PATH,
            get(poem::endpoint::make(move |_| json_document(gpt.clone())())),
        )
        .at(
            site::DOCS_PATH,
            get(poem::endpoint::make_sync(move |_| Html(docs_html.clone()))),
        )
        .at("/problems/:slug", get(problem_type));
    let routes = oauth::routes(routes, &oauth);

    Ok(routes
        .data(authenticator)
        .data(oauth)
        .around(|ep, req| async move { Ok(render_errors(ep.call(req).await)) })
        .around(log_and_tag_request))
}

/// The page a problem's `type` URI points at.
#[derive(Template)]
#[template(path = "problem_type.html")]
struct ProblemTypePage {
    title: &'static str,
    status: u16,
    explanation: &'static str,
}

#[handler]
fn problem_type(Path(slug): Path<String>) -> Result<Html<String>, Problem> {
    let kind = ProblemKind::from_slug(&slug)
        .ok_or_else(|| Problem::not_found(format!("There is no problem type `{slug}`.")))?;
    let page = ProblemTypePage {
        title: kind.title(),
        status: kind.status().as_u16(),
        explanation: kind.explanation(),
    };
    page.render().map(Html).map_err(Problem::internal)
}

/// Renders any error as problem+json, translating the framework's own errors
/// into problems that say how to fix the call.
fn render_errors(result: poem::Result<Response>) -> Response {
    let err = match result {
        Ok(response) => return response,
        Err(err) => err,
    };
    if let Some(problem) = err.downcast_ref::<Problem>() {
        if problem.kind().status().is_server_error() {
            tracing::error!(error = %error_chain(problem), "request failed");
        }
        return poem::error::ResponseError::as_response(problem);
    }
    let problem = translate(&err);
    if problem.kind().status().is_server_error() {
        tracing::error!(error = %err, "request failed");
    }
    problem.into_response()
}

/// poem-openapi prefixes parse errors with `failed to parse "Type": `; the
/// rest is our own types' message, which is what the caller needs.
fn own_message(reason: &str) -> &str {
    match reason.strip_prefix("failed to parse \"") {
        Some(rest) => rest
            .split_once("\": ")
            .map_or(reason, |(_, message)| message),
        None => reason,
    }
}

fn translate(err: &poem::Error) -> Problem {
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return Problem::invalid_field(e.name, own_message(&e.reason));
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        return Problem::invalid_field(e.name, own_message(&e.reason));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return Problem::new(
            ProblemKind::MalformedJson,
            format!("The body could not be read: {}", e.reason),
        );
    }
    if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        return Problem::new(
            ProblemKind::UnsupportedMediaType,
            format!("{e}. Send JSON with `Content-Type: application/json`."),
        );
    }
    if err.is::<AuthorizationError>() {
        return Problem::unauthorized(
            "This operation needs an access token. Send it as `Authorization: Bearer <token>`.",
            false,
        );
    }
    match err.status() {
        StatusCode::NOT_FOUND => Problem::not_found(
            "There is no such endpoint. The operations are listed at /openapi.json.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => Problem::method_not_allowed(
            None,
            "This path does not support that HTTP method. The operations are listed at /openapi.json.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            ProblemKind::PayloadTooLarge,
            "The request body is too large.",
        ),
        status if status.is_server_error() => Problem::internal(err.to_string()),
        status => Problem::new(
            status_kind(status),
            format!("The request was rejected: {err}."),
        ),
    }
}

fn status_kind(status: StatusCode) -> ProblemKind {
    match status {
        StatusCode::UNAUTHORIZED => ProblemKind::Unauthorized,
        StatusCode::FORBIDDEN => ProblemKind::InsufficientScope,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemKind::UnsupportedMediaType,
        StatusCode::CONFLICT => ProblemKind::Conflict,
        _ => ProblemKind::InvalidRequest,
    }
}

/// The error and its causes on one line, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_prefixes_are_removed() {
        assert_eq!(
            own_message("failed to parse \"PageLimit\": must be 1"),
            "must be 1"
        );
        assert_eq!(own_message("something else"), "something else");
    }
}
