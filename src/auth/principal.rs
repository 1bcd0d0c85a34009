//! The extractor every protected operation takes: `Authorized<S>` verifies the
//! bearer token and requires the scope `S` before the handler (or its body
//! parsing) runs. The `#[oai(scope = ...)]` attribute beside it only documents
//! the scope; a test checks that what is documented is what is enforced.

use std::marker::PhantomData;

use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, OAuthScopes,
    registry::{MetaOAuthFlow, MetaOAuthFlows, MetaSecurityScheme, Registry},
};
use uuid::Uuid;

use super::{AuthError, Authenticator, Resource, Scope, ScopeSet, TokenError};
use crate::problem::Problem;

/// The name of the one security scheme in the OpenAPI documents.
pub const SECURITY_SCHEME: &str = "oauth2";
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";

/// Who is calling, as proven by a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub scopes: ScopeSet,
    /// The OAuth client the token was issued to; `None` for tokens minted with
    /// `errand token`.
    pub client_id: Option<String>,
    /// The grant an Errand token was issued under; `None` for tokens from an
    /// external identity provider.
    pub grant_id: Option<Uuid>,
    /// Expiry as seconds since the Unix epoch.
    pub expires_at: i64,
    /// The resource the token was issued for; each door takes only its own.
    pub resource: Resource,
}

/// A caller the MCP endpoint has already authenticated, handed to the
/// operation it runs in-process (request extensions cannot be set from the
/// network). The operation then skips the bearer token, whose audience is
/// the MCP endpoint, and still checks the scope.
#[derive(Debug, Clone)]
pub struct Delegated(pub Principal);

/// A scope an operation requires, as a type so the requirement is checked at
/// extraction.
pub trait RequiredScope: Send {
    const SCOPE: Option<Scope>;
}

/// Reads: `tasks:read`.
pub struct TasksRead;
impl RequiredScope for TasksRead {
    const SCOPE: Option<Scope> = Some(Scope::TasksRead);
}

/// Writes: `tasks:write`.
pub struct TasksWrite;
impl RequiredScope for TasksWrite {
    const SCOPE: Option<Scope> = Some(Scope::TasksWrite);
}

/// Managing webhook subscriptions (integrators).
pub struct WebhooksManage;
impl RequiredScope for WebhooksManage {
    const SCOPE: Option<Scope> = Some(Scope::WebhooksManage);
}

/// Any valid token, whatever its scopes (`getMe`).
pub struct AnyScope;
impl RequiredScope for AnyScope {
    const SCOPE: Option<Scope> = None;
}

pub struct Authorized<S> {
    pub principal: Principal,
    _scope: PhantomData<S>,
}

impl<S> std::ops::Deref for Authorized<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// The OAuth 2.0 scheme as documented. The URLs are paths here; the spec
/// pipeline makes them absolute with the public URL.
fn security_scheme() -> MetaSecurityScheme {
    MetaSecurityScheme {
        ty: "oauth2",
        description: Some(
            "OAuth 2.0 authorization code flow. Errand is its own authorization server.",
        ),
        name: None,
        key_in: None,
        scheme: None,
        bearer_format: None,
        flows: Some(MetaOAuthFlows {
            implicit: None,
            password: None,
            client_credentials: None,
            authorization_code: Some(MetaOAuthFlow {
                authorization_url: Some(AUTHORIZE_PATH),
                token_url: Some(TOKEN_PATH),
                refresh_url: None,
                scopes: Scope::meta(),
            }),
        }),
        openid_connect_url: None,
    }
}

/// The token from `Authorization: Bearer <token>`, or the 401 that explains
/// what to send instead.
pub fn bearer_token(req: &Request) -> Result<&str, Problem> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(Problem::unauthorized(
            "This operation needs an access token. Send it as `Authorization: Bearer <token>`.",
            false,
        ));
    };
    let value = value.to_str().unwrap_or_default().trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Problem::unauthorized(
            "The Authorization header must use the Bearer scheme: `Authorization: Bearer <token>`.",
            true,
        )),
    }
}

/// How a refused token is explained to the caller.
impl From<AuthError> for Problem {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Token(TokenError::Signing) | AuthError::Database(_) => {
                Problem::internal(err)
            }
            AuthError::Token(err) => Problem::unauthorized(
                format!(
                    "{err} Obtain a new access token and send it as `Authorization: Bearer <token>`."
                ),
                true,
            ),
            AuthError::WrongResource {
                issued_for,
                expected,
                identifier,
            } => Problem::unauthorized(
                format!(
                    "The access token was issued for {}, not for {}. Request a token with \
                     resource={identifier}.",
                    issued_for.describe(),
                    expected.describe()
                ),
                true,
            ),
            AuthError::Revoked => Problem::unauthorized(
                "The access token has been revoked, or the account or app it was issued to no \
                 longer exists. Sign in again.",
                true,
            ),
            AuthError::External(err) => Problem::unauthorized(
                format!("{err} Obtain a new access token from the identity provider."),
                true,
            ),
            AuthError::ProviderUnreachable(err) => Problem::unavailable(
                "The identity provider could not be reached; retry shortly.",
                err,
            ),
        }
    }
}

impl<'a, S: RequiredScope> ApiExtractor<'a> for Authorized<S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(SECURITY_SCHEME, security_scheme());
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SECURITY_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // RFC 9728 §5.1: every challenge says where this resource's
        // metadata is, so a client can find how to get a token.
        let challenge = |problem: Problem| match req.data::<Authenticator>() {
            Some(authenticator) => problem.challenge_params(&format!(
                "resource_metadata=\"{}{}\"",
                authenticator.tokens().issuer(),
                Resource::Api.metadata_path()
            )),
            None => problem,
        };
        let principal = match req.extensions().get::<Delegated>() {
            Some(Delegated(principal)) => principal.clone(),
            None => {
                let authenticator = req.data::<Authenticator>().ok_or_else(|| {
                    Problem::internal("Authenticator missing from the request data")
                })?;
                authenticator
                    .authenticate_for(bearer_token(req).map_err(challenge)?, Resource::Api)
                    .await
                    .map_err(|err| challenge(Problem::from(err)))?
            }
        };
        if let Some(scope) = S::SCOPE
            && !principal.scopes.contains(scope)
        {
            return Err(challenge(Problem::insufficient_scope(scope.as_str())).into());
        }
        Ok(Self {
            principal,
            _scope: PhantomData,
        })
    }
}
