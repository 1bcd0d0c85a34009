//! The one error type that leaves the service: RFC 9457 `application/problem+json`.
//!
//! Every failure, whether raised by a slice or by the framework (bad JSON, a missing
//! token, an unknown route), is rendered here. `detail` is written for the caller,
//! often a language model, and says how to fix the call; internal causes are kept as
//! `source` for the log and never reach the body.

use std::fmt;

use poem::{
    IntoResponse, Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};

use crate::text::shorten_to;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The kinds of failure callers can tell apart. Each has a stable `type` URI
/// (`/problems/<slug>`) that is documented at that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    InvalidRequest,
    MalformedJson,
    Unauthorized,
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Conflict,
    Internal,
    Unavailable,
    UriTooLong,
    HeadersTooLarge,
    RateLimited,
    IdempotencyKeyReused,
    RequestInProgress,
    TimedOut,
}

/// What a problem kind is: its `type` slug, status, title and the
/// explanation its page gives.
struct Facts {
    slug: &'static str,
    status: StatusCode,
    title: &'static str,
    explanation: &'static str,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 17] = [
        Self::InvalidRequest,
        Self::MalformedJson,
        Self::Unauthorized,
        Self::InsufficientScope,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Conflict,
        Self::Internal,
        Self::Unavailable,
        Self::UriTooLong,
        Self::HeadersTooLarge,
        Self::RateLimited,
        Self::IdempotencyKeyReused,
        Self::RequestInProgress,
        Self::TimedOut,
    ];

    /// Everything about a kind, in one place: adding a kind is one variant
    /// and one arm here (and its place in `ALL`).
    fn facts(self) -> Facts {
        match self {
            Self::InvalidRequest => Facts {
                slug: "invalid-request",
                status: StatusCode::BAD_REQUEST,
                title: "The request has an invalid value",
                explanation: "A parameter or body field has a value outside what the operation accepts. \
                     `errors` lists each field with what would be accepted; correct those fields \
                     and repeat the call.",
            },
            Self::MalformedJson => Facts {
                slug: "malformed-json",
                status: StatusCode::BAD_REQUEST,
                title: "The request body is not valid JSON",
                explanation: "The body could not be parsed as JSON. Send one JSON object with \
                     `Content-Type: application/json`; `detail` gives the position of the error.",
            },
            Self::Unauthorized => Facts {
                slug: "unauthorized",
                status: StatusCode::UNAUTHORIZED,
                title: "A valid access token is required",
                explanation: "The request carried no access token, or one that is expired, malformed or \
                     not issued by this server. Obtain a new token and send it as \
                     `Authorization: Bearer <token>`.",
            },
            Self::InsufficientScope => Facts {
                slug: "insufficient-scope",
                status: StatusCode::FORBIDDEN,
                title: "The access token lacks a required scope",
                explanation: "The access token is valid but was not granted the scope this operation \
                     needs. Request a token with the scope named in `detail`.",
            },
            Self::NotFound => Facts {
                slug: "not-found",
                status: StatusCode::NOT_FOUND,
                title: "Not found",
                explanation: "The addressed resource does not exist or belongs to someone else. List the \
                     resources you can see to find the right identifier.",
            },
            Self::MethodNotAllowed => Facts {
                slug: "method-not-allowed",
                status: StatusCode::METHOD_NOT_ALLOWED,
                title: "Method not allowed",
                explanation: "The path exists but does not support this HTTP method. See /openapi.json \
                     for the operations.",
            },
            Self::PayloadTooLarge => Facts {
                slug: "payload-too-large",
                status: StatusCode::PAYLOAD_TOO_LARGE,
                title: "The request body is too large",
                explanation: "The request body is larger than the server accepts.",
            },
            Self::UnsupportedMediaType => Facts {
                slug: "unsupported-media-type",
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                title: "Unsupported content type",
                explanation: "The body was sent with a content type this operation does not accept. \
                     Send JSON with `Content-Type: application/json`.",
            },
            Self::Conflict => Facts {
                slug: "conflict",
                status: StatusCode::CONFLICT,
                title: "The request conflicts with the current state",
                explanation: "The change cannot be applied to the resource in its current state. Fetch \
                     it again and retry.",
            },
            Self::Internal => Facts {
                slug: "internal-error",
                status: StatusCode::INTERNAL_SERVER_ERROR,
                title: "Internal error",
                explanation: "The server failed to handle the request. Nothing about the cause is \
                     disclosed; retrying later may succeed.",
            },
            Self::Unavailable => Facts {
                slug: "unavailable",
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "Service unavailable",
                explanation: "A dependency of the server is unreachable. Retry later.",
            },
            Self::UriTooLong => Facts {
                slug: "uri-too-long",
                status: StatusCode::URI_TOO_LONG,
                title: "The request URL is too long",
                explanation: "The URL (path and query) is longer than the server accepts. Shorten the \
                     query, for example a search text.",
            },
            Self::HeadersTooLarge => Facts {
                slug: "headers-too-large",
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                title: "The request headers are too large",
                explanation: "The request's headers together are larger than the server accepts. Send \
                     fewer or shorter headers.",
            },
            Self::RateLimited => Facts {
                slug: "rate-limited",
                status: StatusCode::TOO_MANY_REQUESTS,
                title: "Too many requests",
                explanation: "The caller sent more requests than its rate limit allows. Wait the number \
                     of seconds in `Retry-After` before the next request; the `RateLimit` and \
                     `RateLimit-Policy` headers say how much of the limit is left.",
            },
            Self::IdempotencyKeyReused => Facts {
                slug: "idempotency-key-reused",
                status: StatusCode::UNPROCESSABLE_ENTITY,
                title: "The idempotency key was used for a different request",
                explanation: "An earlier request used the same `Idempotency-Key` with a different method, \
                     path or body. Use a new key for a new request; repeat a request only with \
                     exactly its first body.",
            },
            Self::RequestInProgress => Facts {
                slug: "request-in-progress",
                status: StatusCode::CONFLICT,
                title: "A request with this idempotency key is in progress",
                explanation: "The first request with this `Idempotency-Key` is still being handled. Retry \
                     after `Retry-After` seconds to receive its result.",
            },
            Self::TimedOut => Facts {
                slug: "timed-out",
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "The request took too long",
                explanation: "The server did not finish the request in time and abandoned it; nothing it \
                     had not committed was kept. Retry later, with the same `Idempotency-Key` if \
                     you sent one.",
            },
        }
    }

    pub fn slug(self) -> &'static str {
        self.facts().slug
    }

    pub fn status(self) -> StatusCode {
        self.facts().status
    }

    pub fn title(self) -> &'static str {
        self.facts().title
    }

    /// What the problem type means and what a caller does about it; served at
    /// the `type` URI.
    pub fn explanation(self) -> &'static str {
        self.facts().explanation
    }

    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug())
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.slug() == slug)
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(rename = "ProblemField")]
pub struct FieldIssue {
    /// Where the bad value is: a body field path such as `tags[2]`, or a parameter name.
    pub field: String,
    /// What is wrong with the value and what would be accepted instead.
    pub detail: String,
}

/// The most field issues one problem lists: a body with thousands of bad
/// fields gets an answer of bounded size, not one that grows with it.
pub const MAX_LISTED_ISSUES: usize = 20;
/// The longest field path quoted back (a caller's own key name can be huge).
const MAX_FIELD_CHARS: usize = 100;
/// The longest `detail` of one field issue (it may quote the value sent).
const MAX_ISSUE_DETAIL_CHARS: usize = 500;
/// The longest `detail` of a problem.
const MAX_DETAIL_CHARS: usize = 2_000;

impl FieldIssue {
    /// An issue with its field path and detail cut to a bounded length: both
    /// may quote what the caller sent.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: shorten_to(&field.into(), MAX_FIELD_CHARS),
            detail: shorten_to(&detail.into(), MAX_ISSUE_DETAIL_CHARS),
        }
    }
}

/// The RFC 9457 body.
#[derive(Debug, Clone, Object)]
#[oai(rename = "Problem")]
pub struct ProblemBody {
    /// A URI reference naming the kind of problem; dereference it for an explanation.
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request and how to fix the call.
    pub detail: String,
    /// For invalid requests: every field that was rejected. Absent for
    /// other problems.
    #[oai(default, skip_serializing_if_is_empty)]
    pub errors: Vec<FieldIssue>,
}

type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How long a caller is asked to wait when a dependency cannot answer: long
/// enough for a database failover or restart to be under way, short enough
/// that a person does not notice a retried request.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Whether `err`, or an error that caused it, is the database being unable
/// to answer right now (`db::is_unavailable`).
fn database_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(db) = err.downcast_ref::<sea_orm::DbErr>() {
            return crate::db::is_unavailable(db);
        }
        next = err.source();
    }
    false
}

/// A failure on its way to the caller.
#[derive(Debug)]
pub struct Problem {
    kind: ProblemKind,
    detail: String,
    errors: Vec<FieldIssue>,
    /// Headers the answer carries: `WWW-Authenticate`, `Allow`,
    /// `Retry-After`, the rate limit's.
    headers: Vec<(header::HeaderName, String)>,
    source: Option<BoxedSource>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: shorten_to(&detail.into(), MAX_DETAIL_CHARS),
            errors: Vec::new(),
            headers: Vec::new(),
            source: None,
        }
    }

    /// An invalid request naming each rejected field (the first
    /// [`MAX_LISTED_ISSUES`] of them). The top-level `detail` repeats the
    /// first issue so that a caller reading only `detail` can fix it.
    pub fn invalid(mut errors: Vec<FieldIssue>) -> Self {
        let total = errors.len();
        errors.truncate(MAX_LISTED_ISSUES);
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let detail = match errors.as_slice() {
            [] => "The request is invalid.".to_owned(),
            [only] => format!("{}: {}", only.field, only.detail),
            [first, rest @ ..] if total > errors.len() => format!(
                "{}: {} ({} more invalid field{}; the first {} are listed in `errors`, fix \
                 them and send again to see the rest)",
                first.field,
                first.detail,
                total - 1,
                plural(total - 1),
                errors.len()
            ),
            [first, rest @ ..] => format!(
                "{}: {} ({} more invalid field{} listed in `errors`)",
                first.field,
                first.detail,
                rest.len(),
                plural(rest.len())
            ),
        };
        Self {
            errors,
            ..Self::new(ProblemKind::InvalidRequest, detail)
        }
    }

    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::invalid(vec![FieldIssue::new(field, detail)])
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::NotFound, detail)
    }

    /// 401 with an RFC 6750 challenge. `error` is `None` when no token was sent.
    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Self {
        let detail = detail.into();
        let challenge = if invalid_token {
            format!(
                "Bearer realm=\"errand\", error=\"invalid_token\", error_description=\"{}\"",
                quote_safe(&detail)
            )
        } else {
            "Bearer realm=\"errand\"".to_owned()
        };
        Self {
            headers: vec![(header::WWW_AUTHENTICATE, challenge)],
            ..Self::new(ProblemKind::Unauthorized, detail)
        }
    }

    /// Adds auth-params to the `WWW-Authenticate` challenge (the MCP endpoint
    /// adds `resource_metadata` and `scope`, RFC 9728 §5.1).
    pub fn challenge_params(mut self, params: &str) -> Self {
        if let Some((_, challenge)) = self
            .headers
            .iter_mut()
            .find(|(name, _)| *name == header::WWW_AUTHENTICATE)
        {
            challenge.push_str(", ");
            challenge.push_str(params);
        }
        self
    }

    /// 403 for a token without the scope an operation needs.
    pub fn insufficient_scope(scope: &str) -> Self {
        Self {
            headers: vec![(
                header::WWW_AUTHENTICATE,
                format!("Bearer realm=\"errand\", error=\"insufficient_scope\", scope=\"{scope}\""),
            )],
            ..Self::new(
                ProblemKind::InsufficientScope,
                format!(
                    "This operation needs the `{scope}` scope, which the access token was not \
                     granted. Sign in again and approve `{scope}`, or mint a token with it."
                ),
            )
        }
    }

    pub fn method_not_allowed(allow: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            headers: allow
                .map(|allow| (header::ALLOW, allow))
                .into_iter()
                .collect(),
            ..Self::new(ProblemKind::MethodNotAllowed, detail)
        }
    }

    /// A failure the caller cannot fix. The cause is logged, never shown.
    /// A database that cannot answer right now is not such a failure: that
    /// is a 503 the caller retries (see `unavailable`), wherever it is met.
    pub fn internal(source: impl Into<BoxedSource>) -> Self {
        let source = source.into();
        if database_unavailable(source.as_ref()) {
            return Self::unavailable(
                format!(
                    "The database could not answer in time. Retry in {RETRY_AFTER_SECONDS} \
                     seconds; a change is safe to retry with the same Idempotency-Key."
                ),
                source,
            );
        }
        Self {
            source: Some(source),
            ..Self::new(
                ProblemKind::Internal,
                "The server could not complete the request. It has been logged; retry later.",
            )
        }
    }

    /// A dependency cannot answer now; `Retry-After` says when to try again.
    pub fn unavailable(detail: impl Into<String>, source: impl Into<BoxedSource>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(ProblemKind::Unavailable, detail)
        }
        .with_header(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())
    }

    /// Adds a response header (such as `Retry-After`).
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: self.kind.type_uri(),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

/// Header values cannot carry quotes or control characters unescaped.
fn quote_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect()
}

impl ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.kind.status()
    }

    fn as_response(&self) -> Response {
        let body = self
            .body()
            .to_json()
            .map(|json| json.to_string())
            .unwrap_or_default();
        let mut response = Response::builder()
            .status(self.kind.status())
            .content_type(PROBLEM_CONTENT_TYPE)
            .body(body);
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name.clone(), value);
            }
        }
        response
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

/// Documents every operation's failure as a `default` problem+json response.
impl ApiResponse for Problem {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The call failed; the body says why and how to fix it.",
                status: None,
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: PROBLEM_CONTENT_TYPE,
                    schema: ProblemBody::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        ProblemBody::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_and_found_by_its_own_slug() {
        // `ALL` in declaration order: a kind left out or listed twice shows
        // as a gap in the discriminants.
        for (index, kind) in ProblemKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind:?}");
            assert_eq!(ProblemKind::from_slug(kind.slug()), Some(kind));
            assert_eq!(kind.type_uri(), format!("/problems/{}", kind.slug()));
            assert!(!kind.title().is_empty() && !kind.explanation().is_empty());
        }
        assert_eq!(ProblemKind::from_slug("no-such-kind"), None);
        assert_eq!(ProblemKind::Internal.slug(), "internal-error");
        assert_eq!(
            ProblemKind::IdempotencyKeyReused.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
