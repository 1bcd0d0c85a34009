//! `POST /oauth/token` (RFC 6749 §3.2, §4.1.3, §4.4, §6), `POST /oauth/revoke`
//! (RFC 7009), and the discovery documents (RFC 8414, JWKS).
//!
//! Requests are form-encoded; clients authenticate with HTTP Basic
//! (`client_secret_basic`) or with `client_id`/`client_secret` in the body
//! (`client_secret_post`), or, for public clients, with `client_id` alone.
//! Errors are the RFC 6749 §5.2 JSON object.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::{
    Body, Request, Response, handler,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};
use serde_json::{Value, json};

use super::{
    OAuthState,
    clients::{self, ClientAuthFailure, GrantType},
    flows::{self, GrantError, IssuedTokens},
};
use crate::auth::{
    Resource, Scope, ScopeSet,
    principal::{AUTHORIZE_PATH, TOKEN_PATH},
};

const MAX_FORM_BYTES: usize = 16 * 1024;

struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_client(description: &str, used_basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: used_basic,
            ..Self::new("invalid_client", description)
        }
    }

    fn server(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "token endpoint failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..Self::new(
                "server_error",
                "the server could not handle the request; retry later",
            )
        }
    }

    fn into_response(self) -> Response {
        let mut response = json_response(
            self.status,
            &json!({ "error": self.error, "error_description": self.description }),
        );
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"errand\""),
            );
        }
        response
    }
}

impl From<GrantError> for OAuthError {
    fn from(err: GrantError) -> Self {
        match err {
            GrantError::InvalidGrant(why) => Self::new("invalid_grant", why),
            GrantError::InvalidScope(why) => Self::new("invalid_scope", why),
            GrantError::InvalidTarget(why) => Self::new("invalid_target", why),
            other => Self::server(other),
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        // RFC 6749 §5.1: token responses must not be cached.
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::PRAGMA, "no-cache")
        .body(body.to_string())
}

/// The form body, refusing repeated parameters (RFC 6749 §3.2).
async fn read_form(req: &Request, body: Body) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = req.content_type().unwrap_or_default();
    if !content_type.split(';').next().is_some_and(|essence| {
        essence
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    }) {
        return Err(OAuthError::new(
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let bytes = body.into_bytes_limit(MAX_FORM_BYTES).await.map_err(|_| {
        OAuthError::new(
            "invalid_request",
            "the request body is too large or unreadable",
        )
    })?;
    let mut form = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(&bytes) {
        if form.insert(key.to_string(), value.to_string()).is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                format!("the parameter `{key}` is repeated"),
            ));
        }
    }
    Ok(form)
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Client credentials from the Basic header (id and secret are
/// form-urlencoded inside it, RFC 6749 §2.3.1) or the body.
fn client_credentials_of(
    req: &Request,
    form: &HashMap<String, String>,
) -> Result<(String, Option<String>, bool), OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim().to_owned());
    if let Some(encoded) = basic {
        if form.contains_key("client_secret") {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method: Basic or client_secret, not both",
            ));
        }
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| {
                text.split_once(':')
                    .map(|(id, secret)| (percent_decode(id), percent_decode(secret)))
            })
            .ok_or_else(|| {
                OAuthError::invalid_client("the Basic credentials are malformed", true)
            })?;
        if form.get("client_id").is_some_and(|id| *id != decoded.0) {
            return Err(OAuthError::new(
                "invalid_request",
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok((decoded.0, Some(decoded.1), true));
    }
    match form.get("client_id") {
        Some(id) => Ok((id.clone(), form.get("client_secret").cloned(), false)),
        None => Err(OAuthError::invalid_client(
            "authenticate the client with HTTP Basic or client_id and client_secret",
            false,
        )),
    }
}

async fn authenticated_client(
    state: &OAuthState,
    req: &Request,
    form: &HashMap<String, String>,
) -> Result<clients::Client, OAuthError> {
    let (id, secret, used_basic) = client_credentials_of(req, form)?;
    match clients::authenticate(&state.db, &id, secret.as_deref()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(failure)) => Err(OAuthError::invalid_client(
            match failure {
                ClientAuthFailure::UnknownOrWrongSecret => "client authentication failed",
                ClientAuthFailure::SecretRequired => {
                    "this client must authenticate with its secret"
                }
                ClientAuthFailure::PublicClientSentSecret => {
                    "this is a public client; send client_id without a secret"
                }
            },
            used_basic,
        )),
        Err(err) => Err(OAuthError::server(err)),
    }
}

fn requested_scopes(form: &HashMap<String, String>) -> Result<Option<ScopeSet>, OAuthError> {
    form.get("scope")
        .map(|raw| {
            ScopeSet::parse(raw).map_err(|err| OAuthError::new("invalid_scope", err.to_string()))
        })
        .transpose()
}

/// The RFC 8707 `resource` parameter, if sent: one of Errand's resources.
fn requested_resource(
    state: &OAuthState,
    form: &HashMap<String, String>,
) -> Result<Option<Resource>, OAuthError> {
    form.get("resource")
        .map(|raw| {
            Resource::requested(raw, &state.public_url)
                .map_err(|why| OAuthError::new("invalid_target", why))
        })
        .transpose()
}

fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", format!("`{name}` is required")))
}

fn issued(tokens: IssuedTokens) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "scope": tokens.scopes.to_string(),
    });
    if let Some(refresh) = tokens.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    json_response(StatusCode::OK, &body)
}

async fn exchange(req: &Request, body: Body, state: &OAuthState) -> Result<Response, OAuthError> {
    let form = read_form(req, body).await?;
    let client = authenticated_client(state, req, &form).await?;
    let grant_type = required(&form, "grant_type")?;
    let resource = requested_resource(state, &form)?;
    let auth = &state.authenticator;
    let result = match grant_type {
        "authorization_code" => {
            if !client.allows(GrantType::AuthorizationCode) {
                return Err(OAuthError::new(
                    "unauthorized_client",
                    "this client may not use authorization_code",
                ));
            }
            let requested = requested_scopes(&form)?;
            flows::redeem_code(
                &state.db,
                auth,
                flows::CodeRedemption {
                    code: required(&form, "code")?,
                    client_id: &client.id,
                    redirect_uri: form.get("redirect_uri").map(String::as_str),
                    code_verifier: form.get("code_verifier").map(String::as_str),
                    requested: requested.as_ref(),
                    resource,
                },
            )
            .await?
        }
        "refresh_token" => {
            if !client.allows(GrantType::AuthorizationCode) {
                return Err(OAuthError::new(
                    "unauthorized_client",
                    "this client has no refresh tokens",
                ));
            }
            let requested = requested_scopes(&form)?;
            flows::refresh(
                &state.db,
                auth,
                required(&form, "refresh_token")?,
                &client.id,
                requested.as_ref(),
                resource,
            )
            .await?
        }
        "client_credentials" => {
            let Some(service_user) = client
                .service_user_id
                .filter(|_| client.allows(GrantType::ClientCredentials))
            else {
                return Err(OAuthError::new(
                    "unauthorized_client",
                    "this client may not use client_credentials",
                ));
            };
            if resource.is_some_and(|r| r != Resource::Api) {
                return Err(OAuthError::new(
                    "invalid_target",
                    "client credentials tokens are for the HTTP API only",
                ));
            }
            let scopes = match requested_scopes(&form)? {
                Some(requested) if !requested.iter().all(|s| client.scopes.contains(s)) => {
                    return Err(OAuthError::new(
                        "invalid_scope",
                        format!(
                            "the requested scope exceeds this client's scopes ({})",
                            client.scopes
                        ),
                    ));
                }
                Some(requested) if !requested.is_empty() => requested,
                _ => client.scopes,
            };
            flows::client_credentials(&state.db, auth.tokens(), &client.id, service_user, &scopes)
                .await?
        }
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type `{other}` is not supported; use authorization_code, refresh_token or client_credentials"
                ),
            ));
        }
    };
    Ok(issued(result))
}

#[handler]
pub async fn token(req: &Request, body: Body, Data(state): Data<&OAuthState>) -> Response {
    exchange(req, body, state)
        .await
        .unwrap_or_else(OAuthError::into_response)
}

async fn revoke_inner(
    req: &Request,
    body: Body,
    state: &OAuthState,
) -> Result<Response, OAuthError> {
    let form = read_form(req, body).await?;
    let client = authenticated_client(state, req, &form).await?;
    let presented = required(&form, "token")?;
    flows::revoke_token(&state.db, &state.authenticator, &client.id, presented)
        .await
        .map_err(OAuthError::server)?;
    // RFC 7009 §2.2: 200 whether or not the token was known.
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CACHE_CONTROL, "no-store")
        .finish())
}

#[handler]
pub async fn revoke(req: &Request, body: Body, Data(state): Data<&OAuthState>) -> Response {
    revoke_inner(req, body, state)
        .await
        .unwrap_or_else(OAuthError::into_response)
}

/// RFC 8414 authorization server metadata.
#[handler]
pub fn metadata(Data(state): Data<&OAuthState>) -> Response {
    let url = |path: &str| state.public_url.join(path);
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": state.public_url.as_str(),
            "authorization_endpoint": url(AUTHORIZE_PATH),
            "token_endpoint": url(TOKEN_PATH),
            "revocation_endpoint": url("/oauth/revoke"),
            "registration_endpoint": url(super::registration::REGISTRATION_PATH),
            "jwks_uri": url("/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            // RFC 9207: every authorization response names its issuer.
            "authorization_response_iss_parameter_supported": true,
            // A client_id may be the URL of its metadata document.
            "client_id_metadata_document_supported": true,
            "scopes_supported": Scope::ALL.map(Scope::as_str),
        }),
    )
}

#[handler]
pub fn jwks(Data(state): Data<&OAuthState>) -> Response {
    let mut response = json_response(StatusCode::OK, &state.authenticator.tokens().keys().jwks());
    // Public keys may be cached briefly; rotation adds keys ahead of use.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response.headers_mut().remove(header::PRAGMA);
    response
}
