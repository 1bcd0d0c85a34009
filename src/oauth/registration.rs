//! Dynamic Client Registration (RFC 7591) at `POST /oauth/register`, for MCP
//! clients that do not yet identify themselves with a metadata document.
//!
//! Anyone may register, so what a registration can get is narrow: a public
//! client (no secret; PKCE is then required), the authorization code grant,
//! the scopes a user can grant, redirect URIs that are https or loopback.
//! The consent page says such a client was not registered by the operator.
//! Registrations are counted per caller address and refused past a limit, so
//! a flood cannot fill the clients table.

use chrono::Utc;
use poem::{
    Body, Request, Response, handler,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    OAuthState,
    authorize::session::{address_bucket, client_address},
    clients::{self, ClientError, NewClient},
    ration,
};

pub const REGISTRATION_PATH: &str = "/oauth/register";
/// Registrations allowed per caller address in `ration::WINDOW`.
pub const MAX_REGISTRATIONS_PER_ADDRESS: i32 = 10;
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The client metadata Errand reads (RFC 7591 §2); others are ignored.
#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(json!({ "error": error, "error_description": description }).to_string())
}

fn invalid(description: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// Why a registration is refused: the RFC 7591 error code and its description.
type Refusal = (&'static str, String);

/// The registration a caller asked for, or why it cannot have it.
fn accepted(metadata: Metadata) -> Result<NewClient, Refusal> {
    let invalid = |why: String| ("invalid_client_metadata", why);
    let bad_redirect = |why: String| ("invalid_redirect_uri", why);
    match metadata.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method `{other}` is not offered; register a public client \
                 (`none`) and use PKCE"
            )));
        }
    }
    if let Some(types) = &metadata.grant_types
        && let Some(other) = types
            .iter()
            .find(|t| !matches!(t.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(invalid(format!(
            "grant type `{other}` is not offered; use authorization_code (with refresh_token)"
        )));
    }
    if let Some(types) = &metadata.response_types
        && types.iter().any(|t| t != "code")
    {
        return Err(invalid("only the `code` response type is offered".into()));
    }
    if metadata.redirect_uris.is_empty() {
        return Err(bad_redirect(
            "redirect_uris is required: at least one https (or loopback http) URL".into(),
        ));
    }
    if metadata.redirect_uris.len() > 10 {
        return Err(bad_redirect(
            "at most 10 redirect_uris may be registered".into(),
        ));
    }
    for uri in &metadata.redirect_uris {
        if let Err(err) = clients::check_redirect_uri(uri) {
            return Err(bad_redirect(err.to_string()));
        }
    }
    let name = metadata
        .client_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Unnamed app".to_owned());
    Ok(NewClient::public_app(name, metadata.redirect_uris))
}

async fn register_inner(req: &Request, body: Body, state: &OAuthState) -> Response {
    let now = Utc::now();
    let key = format!("register:{}", address_bucket(&client_address(req, state)));
    // Every attempt counts, valid or not.
    match ration::take_one(&state.db, &key, MAX_REGISTRATIONS_PER_ADDRESS, now).await {
        Ok(Some(minutes)) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                &format!(
                    "too many registrations from this address; try again in {minutes} minutes"
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&(minutes * 60).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        Ok(None) => {}
        Err(err) => return server_error(err),
    }
    if !req.content_type().is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
    }) {
        return invalid("send the client metadata as application/json");
    }
    let bytes = match body.into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return invalid("the request body is too large or unreadable"),
    };
    let metadata: Metadata = match serde_json::from_slice(&bytes) {
        Ok(metadata) => metadata,
        Err(err) => return invalid(&format!("the body is not the expected JSON object: {err}")),
    };
    let new = match accepted(metadata) {
        Ok(new) => new,
        Err((code, why)) => return error(StatusCode::BAD_REQUEST, code, &why),
    };
    match clients::register_dynamic(&state.db, new).await {
        Ok(client) => Response::builder()
            .status(StatusCode::CREATED)
            .content_type("application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(
                json!({
                    "client_id": client.id,
                    "client_id_issued_at": client.created_at.timestamp(),
                    "client_name": client.name,
                    "redirect_uris": client.redirect_uris,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "none",
                    "scope": client.scopes.to_string(),
                })
                .to_string(),
            ),
        Err(ClientError::Invalid(why)) => invalid(&why),
        Err(err) => server_error(err),
    }
}

fn server_error(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "client registration failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the registration could not be stored; retry later",
    )
}

#[handler]
pub async fn register(req: &Request, body: Body, Data(state): Data<&OAuthState>) -> Response {
    register_inner(req, body, state).await
}
