//! Every failure leaves as problem+json: the framework's own errors (bad
//! parameters, unknown routes, wrong methods, missing tokens) are translated
//! into problems that say how to fix the call; the problem-type pages.

use askama::Template;
use poem::{
    IntoResponse, Response, handler,
    http::StatusCode,
    web::{Html, Path},
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};

use crate::problem::{Problem, ProblemKind};

/// The page a problem's `type` URI points at.
#[derive(Template)]
#[template(path = "problem_type.html")]
struct ProblemTypePage {
    title: &'static str,
    status: u16,
    explanation: &'static str,
}

#[handler]
pub fn problem_type(Path(slug): Path<String>) -> Result<Html<String>, Problem> {
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
/// into problems that say how to fix the call. `allow` lists the methods of
/// the requested path, for a 405.
pub fn render(result: poem::Result<Response>, allow: impl FnOnce() -> Option<String>) -> Response {
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
    let problem = translate(&err, allow);
    if problem.kind().status().is_server_error() {
        tracing::error!(error = %err, "request failed");
    }
    problem.into_response()
}

/// poem-openapi wraps our types' parse messages, which are what the caller
/// needs, in its own type names: a `failed to parse "Type": ` prefix, and for
/// optional parameters an ` (occurred while parsing "optional_Type")` suffix.
fn own_message(reason: &str) -> &str {
    let mut message = match reason.strip_prefix("failed to parse \"") {
        Some(rest) => rest
            .split_once("\": ")
            .map_or(reason, |(_, message)| message),
        None => reason,
    };
    while let Some((inner, _)) = message
        .strip_suffix("\")")
        .and_then(|rest| rest.rsplit_once(" (occurred while parsing \""))
    {
        message = inner;
    }
    message
}

fn translate(err: &poem::Error, allow: impl FnOnce() -> Option<String>) -> Problem {
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
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = allow();
            let detail = match &allow {
                Some(methods) => format!(
                    "This path does not support that HTTP method; it supports {methods}. The \
                     operations are listed at /openapi.json."
                ),
                None => "This path does not support that HTTP method. The operations are \
                         listed at /openapi.json."
                    .to_owned(),
            };
            Problem::method_not_allowed(allow, detail)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_wrapping_is_removed() {
        assert_eq!(
            own_message("failed to parse \"PageLimit\": must be 1"),
            "must be 1"
        );
        assert_eq!(
            own_message(
                "failed to parse \"optional_PageLimit\": must be 1 (got `0`) \
                 (occurred while parsing \"optional_PageLimit\")"
            ),
            "must be 1 (got `0`)"
        );
        assert_eq!(own_message("something else"), "something else");
    }
}
