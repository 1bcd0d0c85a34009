//! What one request may be: its URL, headers and body sizes, and how long
//! it may take. Checked before anything else runs, so an oversized or slow
//! request costs little and gets a problem that says which limit it broke.
//!
//! The gateway manifests under `deploy/` repeat these numbers, so a request
//! the gateway lets through is one Errand accepts.

use std::time::Duration;

use poem::{Body, Endpoint, IntoResponse, Request, Response, http::header};

use crate::{
    problem::{Problem, ProblemKind},
    web::json_body::BODY_LIMIT,
};

/// The longest path and query accepted.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The largest body accepted anywhere (what the JSON operations read).
pub const MAX_BODY_BYTES: usize = BODY_LIMIT;

/// The sizes, checked without reading the body unless it is chunked.
async fn check_sizes(req: &mut Request) -> Result<(), Problem> {
    let url = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path().len(), |p| p.as_str().len());
    if url > MAX_URL_BYTES {
        return Err(Problem::new(
            ProblemKind::UriTooLong,
            format!("The URL is {url} bytes; at most {MAX_URL_BYTES} are accepted."),
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Err(Problem::new(
            ProblemKind::HeadersTooLarge,
            format!("The headers take {headers} bytes; at most {MAX_HEADER_BYTES} are accepted."),
        ));
    }
    let too_large = || {
        Problem::new(
            ProblemKind::PayloadTooLarge,
            format!(
                "The body is larger than {MAX_BODY_BYTES} bytes (64 KiB). Send a smaller body; \
                 long notes belong in several tasks."
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => return Err(too_large()),
        Some(_) => {}
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => {
            // A chunked body announces no length: read it here, up to the
            // limit, so no endpoint has to.
            let body = req
                .take_body()
                .into_bytes_limit(MAX_BODY_BYTES)
                .await
                .map_err(|_| too_large())?;
            req.set_body(Body::from_bytes(body));
        }
        None => {}
    }
    Ok(())
}

/// Refuses what is too large and abandons what takes longer than `timeout`
/// (its work is dropped: an open transaction rolls back; what committed
/// stays, and an `Idempotency-Key` retry gets its result).
pub async fn enforce<E: Endpoint>(
    ep: &E,
    mut req: Request,
    timeout: Duration,
) -> poem::Result<Response> {
    // The clock includes reading a chunked body: a body that trickles in
    // must not hold the request open past the timeout either.
    let handled = async {
        if let Err(problem) = check_sizes(&mut req).await {
            return Ok(problem.into_response());
        }
        ep.call(req).await.map(IntoResponse::into_response)
    };
    match tokio::time::timeout(timeout, handled).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(timeout = ?timeout, "request timed out");
            Ok(Problem::new(
                ProblemKind::TimedOut,
                format!(
                    "The request did not finish within {} seconds and was abandoned. Retry in \
                     a moment.",
                    timeout.as_secs()
                ),
            )
            .with_header(header::RETRY_AFTER, "1")
            .into_response())
        }
    }
}
