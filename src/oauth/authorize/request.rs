//! The authorization request (RFC 6749 §4.1.1, PKCE per RFC 7636): what the
//! client sent, checked against what the client registered.
//!
//! Until the client and redirect URI are known to be registered together,
//! nothing redirects: errors are shown as a page, so Errand can never be used
//! to bounce a browser to an attacker's URL. After that, errors go back to
//! the client's redirect URI with `error` and the client's `state`, but only
//! for clients the operator registered: a client that registered itself
//! (dynamically, or by a metadata document) chose its redirect URI freely,
//! so its errors are shown as a page too (RFC 9700 §4.11.2), and the browser
//! only goes there after the person has seen the consent page.

use poem::{
    Response,
    http::{StatusCode, header},
};
use serde::Deserialize;

use crate::{
    auth::{Resource, ScopeSet},
    oauth::{
        OAuthState,
        client_metadata::{self, MetadataError},
        clients::{self, Client, ClientError, GrantType},
        pages,
    },
};

/// The authorization request, as sent by the client (query) or carried back
/// by the consent form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// RFC 8707: which of Errand's resources the token is for.
    pub resource: Option<String>,
}

impl AuthorizeParams {
    /// The parameters as (name, value) pairs, for hidden form fields.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("resource", &self.resource),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }

    /// The request again as a query string.
    pub fn query(&self) -> String {
        query_string(&self.pairs())
    }
}

fn query_string(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub resource: Resource,
    /// This server's issuer identifier, returned with every response.
    pub issuer: String,
    /// The request named its `redirect_uri` (rather than relying on the
    /// only one registered), so the token request must name it again
    /// (RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
}

impl Authorization {
    /// Sends the browser back to the client with `params`, the client's
    /// `state` and `iss` (RFC 9207: the client can tell which server
    /// answered, which defeats mix-up attacks and lets a client such as
    /// ChatGPT use one callback URL for every server).
    pub fn redirect_back(&self, params: &[(&str, &str)]) -> Response {
        let mut params = params.to_vec();
        if let Some(state) = self.state.as_deref() {
            params.push(("state", state));
        }
        params.push(("iss", &self.issuer));
        redirect_to(&self.redirect_uri, &params)
    }
}

pub enum Rejection {
    /// Shown as a page; never redirected.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// Sent back to the (verified) redirect URI.
    Redirect(Response),
}

impl Rejection {
    pub fn into_response(self) -> Response {
        match self {
            Self::Page {
                status,
                title,
                message,
            } => pages::error_page(status, title, &message),
            Self::Redirect(response) => response,
        }
    }
}

/// A redirect to `uri` with `params` added to its query.
pub fn redirect_to(uri: &str, params: &[(&str, &str)]) -> Response {
    let separator = if uri.contains('?') { '&' } else { '?' };
    Response::builder()
        .status(StatusCode::FOUND)
        .header(
            header::LOCATION,
            format!("{uri}{separator}{}", query_string(params)),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// Checks an authorization request against the registered client.
/// `requester` is the caller's address (client metadata lookups are rationed
/// by it).
pub async fn validate(
    state: &OAuthState,
    params: &AuthorizeParams,
    requester: &str,
) -> Result<Authorization, Rejection> {
    let page = |status, title, message: &str| Rejection::Page {
        status,
        title,
        message: message.to_owned(),
    };
    let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Missing client",
            "The request does not say which app is asking (client_id is missing).",
        ));
    };
    let found = if client_metadata::is_document_url(client_id) {
        match state
            .client_documents
            .resolve(&state.db, client_id, requester)
            .await
        {
            Ok(client) => Ok(Some(client)),
            Err(MetadataError::Client(ClientError::Database(err))) => Err(err),
            Err(err) => {
                return Err(page(
                    StatusCode::BAD_REQUEST,
                    "App not recognised",
                    &format!(
                        "The app identifies itself by the document at {client_id}, but {err}. \
                         Errand will not continue with an app it cannot identify."
                    ),
                ));
            }
        }
    } else {
        clients::find(&state.db, client_id).await
    };
    let client = match found {
        Ok(Some(client)) => client,
        Ok(None) => {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "Unknown app",
                "The app asking for access is not registered with this Errand.",
            ));
        }
        Err(err) => {
            tracing::error!(error = %err, "loading a client");
            return Err(page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Errand could not handle the request. Try again later.",
            ));
        }
    };
    let redirect_uri = match params.redirect_uri.as_deref() {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|registered| clients::redirect_matches(registered, uri)) =>
        {
            uri.to_owned()
        }
        Some(_) => {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "Unregistered redirect",
                "The app asked to return to an address that is not registered for it, so Errand will not send you there.",
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "Missing redirect",
                "The request does not say where to return to (redirect_uri is missing).",
            ));
        }
    };
    let mut auth = Authorization {
        client,
        redirect_uri,
        scopes: ScopeSet::default(),
        state: params.state.clone(),
        code_challenge: None,
        resource: Resource::Api,
        issuer: state.public_url.as_str().to_owned(),
        redirect_uri_sent: params.redirect_uri.is_some(),
    };
    let fail = |auth: &Authorization, error, description: &str| {
        if auth.client.origin == clients::Origin::Operator {
            return Rejection::Redirect(
                auth.redirect_back(&[("error", error), ("error_description", description)]),
            );
        }
        // A self-registered client's redirect URI is whatever it asked
        // for: an error is no reason to send the browser there unseen.
        Rejection::Page {
            status: StatusCode::BAD_REQUEST,
            title: "The app's request cannot be accepted",
            message: format!(
                "{} sent a sign-in request Errand cannot accept ({error}: {description}). \
                 Errand will not send you to {} without your say; go back to the app and \
                 try connecting again.",
                auth.client.name,
                crate::urls::host_of(&auth.redirect_uri).unwrap_or_else(|| "the app".to_owned())
            ),
        }
    };
    if params.response_type.as_deref() != Some("code") {
        return Err(fail(
            &auth,
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !auth.client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            &auth,
            "unauthorized_client",
            "this client is not registered for the authorization code flow",
        ));
    }
    auth.resource = match params.resource.as_deref() {
        None => Resource::Api,
        Some(raw) => match Resource::requested(raw, &state.public_url) {
            Ok(resource) => resource,
            Err(why) => return Err(fail(&auth, "invalid_target", &why)),
        },
    };
    auth.scopes = match params
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        // By default what the client is registered for, as far as the
        // resource takes it (MCP tokens never carry `webhooks:manage`).
        None => auth
            .client
            .scopes
            .iter()
            .filter(|s| auth.resource.scopes().contains(s))
            .collect(),
        Some(raw) => match ScopeSet::parse(raw) {
            Ok(scopes) if !scopes.iter().all(|s| auth.client.scopes.contains(s)) => {
                return Err(fail(
                    &auth,
                    "invalid_scope",
                    "the requested scope exceeds what this client is registered for",
                ));
            }
            Ok(scopes) if !scopes.iter().all(|s| auth.resource.scopes().contains(&s)) => {
                return Err(fail(
                    &auth,
                    "invalid_scope",
                    &format!(
                        "{} takes only the scopes {}",
                        auth.resource.describe(),
                        ScopeSet::from_iter(auth.resource.scopes().iter().copied())
                    ),
                ));
            }
            Ok(scopes) => scopes,
            Err(err) => return Err(fail(&auth, "invalid_scope", &err.to_string())),
        },
    };
    auth.code_challenge = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (None, _) if auth.client.public => {
            return Err(fail(
                &auth,
                "invalid_request",
                "public clients must use PKCE (code_challenge with S256)",
            ));
        }
        (None, _) => None,
        (Some(challenge), Some("S256")) if is_pkce_value(challenge) => Some(challenge.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(fail(
                &auth,
                "invalid_request",
                "code_challenge must be 43-128 characters of A-Z a-z 0-9 - . _ ~",
            ));
        }
        (Some(_), _) => {
            return Err(fail(
                &auth,
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    };
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenges_have_the_rfc_7636_shape() {
        assert!(is_pkce_value("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}!", "a".repeat(43))));
    }

    #[test]
    fn redirects_add_to_an_existing_query() {
        let response = redirect_to("https://app.example.com/cb?x=1", &[("code", "a b&c")]);
        assert_eq!(
            response.headers()[header::LOCATION],
            "https://app.example.com/cb?x=1&code=a+b%26c"
        );
    }
}
