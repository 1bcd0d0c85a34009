//! `GET /oauth/authorize` and the pages behind it: sign-in, sign-up and
//! consent (RFC 6749 §4.1, PKCE per RFC 7636).
//!
//! Until the client and redirect URI are known to be registered together,
//! nothing redirects: errors are shown as a page, so Errand can never be used
//! to bounce a browser to an attacker's URL. After that, errors go back to
//! the client's redirect URI with `error` and the client's `state`.
//! Forms carry a CSRF token that must equal the one in the browser's
//! `errand_csrf` cookie (double submit).

use poem::{
    Request, Response, handler,
    http::{HeaderValue, StatusCode, header},
    web::{Data, Form, Query},
};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{
    OAuthState, accounts,
    accounts::AccountError,
    clients::{self, Client, GrantType},
    grants, pages, secrets,
};
use crate::{
    auth::{Scope, ScopeSet},
    users,
};

const SESSION_COOKIE: &str = "errand_session";
const CSRF_COOKIE: &str = "errand_csrf";
const AUTHORIZE_PATH: &str = "/oauth/authorize";

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
}

impl AuthorizeParams {
    /// The parameters as (name, value) pairs, for hidden form fields.
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }

    fn query(&self) -> String {
        self.pairs()
            .iter()
            .map(|(name, value)| format!("{name}={}", pages::url_encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A checked authorization request.
#[derive(Debug, Clone)]
struct Authorization {
    client: Client,
    redirect_uri: String,
    scopes: ScopeSet,
    state: Option<String>,
    code_challenge: Option<String>,
}

enum Rejection {
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
    fn into_response(self) -> Response {
        match self {
            Self::Page {
                status,
                title,
                message,
            } => error_page(status, title, &message),
            Self::Redirect(response) => response,
        }
    }
}

fn page_response(status: StatusCode, html: String) -> Response {
    let mut response = Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(html);
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page_response(status, pages::error(title, message))
}

/// A redirect to `uri` with `params` added to its query.
fn redirect_to(uri: &str, params: &[(&str, &str)]) -> Response {
    let query: String = params
        .iter()
        .map(|(name, value)| format!("{name}={}", pages::url_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let separator = if uri.contains('?') { '&' } else { '?' };
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, format!("{uri}{separator}{query}"))
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Rejection {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    Rejection::Redirect(redirect_to(redirect_uri, &params))
}

fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

async fn validate(
    state: &OAuthState,
    params: &AuthorizeParams,
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
    let client = match clients::find(&state.db, client_id).await {
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
                .any(|registered| registered == uri) =>
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
    let state_param = params.state.as_deref();
    let fail =
        |error, description: &str| redirect_error(&redirect_uri, state_param, error, description);
    if params.response_type.as_deref() != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client is not registered for the authorization code flow",
        ));
    }
    let scopes = match params
        .scope
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => client.scopes.clone(),
        Some(raw) => match ScopeSet::parse(raw) {
            Ok(scopes) if scopes.iter().all(|s| client.scopes.contains(s)) => scopes,
            Ok(_) => {
                return Err(fail(
                    "invalid_scope",
                    "the requested scope exceeds what this client is registered for",
                ));
            }
            Err(err) => return Err(fail("invalid_scope", &err.to_string())),
        },
    };
    let code_challenge = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (None, _) if client.public => {
            return Err(fail(
                "invalid_request",
                "public clients must use PKCE (code_challenge with S256)",
            ));
        }
        (None, _) => None,
        (Some(challenge), Some("S256")) if is_pkce_value(challenge) => Some(challenge.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge must be 43-128 characters of A-Z a-z 0-9 - . _ ~",
            ));
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    };
    Ok(Authorization {
        client,
        redirect_uri,
        scopes,
        state: params.state.clone(),
        code_challenge,
    })
}

fn cookie_value<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(response: &mut Response, state: &OAuthState, name: &str, value: &str, max_age: u64) {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The browser's CSRF token, or a new one (then set as a cookie on the page).
fn csrf_token(req: &Request) -> (String, bool) {
    match cookie_value(req, CSRF_COOKIE).filter(|v| v.len() == 43) {
        Some(existing) => (existing.to_owned(), false),
        None => (secrets::random_token().unwrap_or_default(), true),
    }
}

fn form_page(
    req: &Request,
    state: &OAuthState,
    status: StatusCode,
    render: impl FnOnce(&str) -> String,
) -> Response {
    let (csrf, fresh) = csrf_token(req);
    let mut response = page_response(status, render(&csrf));
    if fresh {
        set_cookie(&mut response, state, CSRF_COOKIE, &csrf, 24 * 60 * 60);
    }
    response
}

fn csrf_ok(req: &Request, submitted: &str) -> bool {
    cookie_value(req, CSRF_COOKIE).is_some_and(|cookie| {
        !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes()))
    })
}

fn forged() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Request not accepted",
        "This form was not submitted from Errand's own page (its security token is missing or wrong). Go back to the app and start again.",
    )
}

async fn signed_in_user(req: &Request, state: &OAuthState) -> Option<Uuid> {
    let cookie = cookie_value(req, SESSION_COOKIE)?;
    accounts::session_user(&state.db, cookie)
        .await
        .ok()
        .flatten()
}

/// `return_to` must be an authorization request on this server; anything
/// else would make the sign-in form an open redirect.
fn safe_return_to(raw: &str) -> Option<&str> {
    raw.strip_prefix(AUTHORIZE_PATH)
        .filter(|rest| rest.is_empty() || rest.starts_with('?'))
        .map(|_| raw)
}

/// The name of the app an authorization request comes from, for the pages.
async fn client_name_in(state: &OAuthState, return_to: &str) -> Option<String> {
    let query = return_to.split_once('?')?.1;
    let client_id = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "client_id")
        .map(|(_, value)| value.into_owned())?;
    clients::find(&state.db, &client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.name)
}

fn internal_error(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "authorization flow failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Errand could not handle the request. Try again later.",
    )
}

/// Issues a code for an approved authorization and sends the browser back.
async fn approve(state: &OAuthState, auth: &Authorization, user_id: Uuid) -> Response {
    let code = grants::issue_code(
        &state.db,
        grants::CodeRequest {
            client_id: &auth.client.id,
            user_id,
            redirect_uri: &auth.redirect_uri,
            scopes: &auth.scopes,
            code_challenge: auth.code_challenge.as_deref(),
        },
    )
    .await;
    match code {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(s) = auth.state.as_deref() {
                params.push(("state", s));
            }
            redirect_to(&auth.redirect_uri, &params)
        }
        Err(err) => internal_error(err),
    }
}

async fn consent_page(
    req: &Request,
    state: &OAuthState,
    auth: &Authorization,
    params: &AuthorizeParams,
    user_id: Uuid,
) -> Response {
    let email = match users::store::find_by_id(&state.db, user_id).await {
        Ok(Some(user)) => user.email,
        Ok(None) => {
            return error_page(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your account no longer exists.",
            );
        }
        Err(err) => return internal_error(err),
    };
    let scopes: Vec<Scope> = auth.scopes.iter().collect();
    let pairs = params.pairs();
    form_page(req, state, StatusCode::OK, |csrf| {
        pages::consent(&pages::ConsentContext {
            csrf,
            client_name: &auth.client.name,
            scopes: &scopes,
            email: &email,
            request: &pairs,
        })
    })
}

#[handler]
pub async fn authorize(
    req: &Request,
    Query(params): Query<AuthorizeParams>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let auth = match validate(state, &params).await {
        Ok(auth) => auth,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(user_id) = signed_in_user(req, state).await else {
        let return_to = format!("{AUTHORIZE_PATH}?{}", params.query());
        return form_page(req, state, StatusCode::OK, |csrf| {
            pages::sign_in(
                &pages::FormContext {
                    csrf,
                    return_to: &return_to,
                    client_name: Some(&auth.client.name),
                },
                "",
                None,
            )
        });
    };
    match grants::has_consent(&state.db, user_id, &auth.client.id, &auth.scopes).await {
        Ok(true) => approve(state, &auth, user_id).await,
        Ok(false) => consent_page(req, state, &auth, &params, user_id).await,
        Err(err) => internal_error(err),
    }
}

#[derive(Debug, Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
}

/// The caller's IP address, for throttling.
fn client_address(req: &Request, state: &OAuthState) -> String {
    if state.trust_forwarded_for
        && let Some(last) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return last.to_owned();
    }
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// After signing in or up: a session cookie and back to the authorization.
fn signed_in(state: &OAuthState, session: &str, return_to: &str) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, return_to)
        .header(header::CACHE_CONTROL, "no-store")
        .finish();
    set_cookie(
        &mut response,
        state,
        SESSION_COOKIE,
        session,
        accounts::SESSION_LIFETIME.as_secs(),
    );
    response
}

fn account_error_status(err: &AccountError) -> StatusCode {
    match err {
        AccountError::BadCredentials => StatusCode::UNAUTHORIZED,
        AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        AccountError::InvalidInput(_) | AccountError::NotCreated => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn account_error_message(err: &AccountError) -> String {
    match err {
        AccountError::Secret(_) | AccountError::Database(_) => {
            tracing::error!(error = %err, "sign-in failed");
            "Errand could not handle the request. Try again later.".to_owned()
        }
        other => other.to_string(),
    }
}

/// A sign-in or sign-up form whose `return_to` is not an authorization request.
fn nowhere_to_return() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Nowhere to return to",
        "Start from the app you want to connect.",
    )
}

/// The `return_to` of a credentials form that came from Errand's own page,
/// or the page to show instead.
fn accepted_form<'f>(req: &Request, form: &'f CredentialsForm) -> Result<&'f str, Box<Response>> {
    if !csrf_ok(req, &form.csrf) {
        return Err(Box::new(forged()));
    }
    safe_return_to(&form.return_to).ok_or_else(|| Box::new(nowhere_to_return()))
}

type RenderForm = fn(&pages::FormContext<'_>, &str, Option<&str>) -> String;

/// After a sign-in or sign-up attempt: a session and back to the
/// authorization, or the same form again with what went wrong.
async fn conclude(
    req: &Request,
    state: &OAuthState,
    outcome: Result<Uuid, AccountError>,
    form: &CredentialsForm,
    return_to: &str,
    render: RenderForm,
) -> Response {
    let err = match outcome {
        Ok(user_id) => {
            return match accounts::start_session(&state.db, user_id).await {
                Ok(session) => signed_in(state, &session, return_to),
                Err(err) => internal_error(err),
            };
        }
        Err(err) => err,
    };
    let name = client_name_in(state, return_to).await;
    let message = account_error_message(&err);
    let mut response = form_page(req, state, account_error_status(&err), |csrf| {
        render(
            &pages::FormContext {
                csrf,
                return_to,
                client_name: name.as_deref(),
            },
            &form.email,
            Some(&message),
        )
    });
    if let AccountError::Throttled { minutes } = err
        && let Ok(value) = HeaderValue::from_str(&(minutes * 60).to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[handler]
pub async fn sign_in(
    req: &Request,
    Form(form): Form<CredentialsForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let return_to = match accepted_form(req, &form) {
        Ok(return_to) => return_to,
        Err(page) => return *page,
    };
    let address = client_address(req, state);
    let outcome = accounts::sign_in(&state.db, &form.email, &form.password, &address).await;
    conclude(req, state, outcome, &form, return_to, pages::sign_in).await
}

#[derive(Debug, Deserialize)]
pub struct SignUpQuery {
    #[serde(default)]
    return_to: String,
}

#[handler]
pub async fn sign_up_page(
    req: &Request,
    Query(query): Query<SignUpQuery>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let Some(return_to) = safe_return_to(&query.return_to) else {
        return nowhere_to_return();
    };
    let name = client_name_in(state, return_to).await;
    form_page(req, state, StatusCode::OK, |csrf| {
        pages::sign_up(
            &pages::FormContext {
                csrf,
                return_to,
                client_name: name.as_deref(),
            },
            "",
            None,
        )
    })
}

#[handler]
pub async fn sign_up(
    req: &Request,
    Form(form): Form<CredentialsForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let return_to = match accepted_form(req, &form) {
        Ok(return_to) => return_to,
        Err(page) => return *page,
    };
    let outcome = accounts::sign_up(&state.db, &form.email, &form.password).await;
    conclude(req, state, outcome, &form, return_to, pages::sign_up).await
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    request: AuthorizeParams,
}

#[handler]
pub async fn consent(
    req: &Request,
    Form(form): Form<ConsentForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    if !csrf_ok(req, &form.csrf) {
        return forged();
    }
    let auth = match validate(state, &form.request).await {
        Ok(auth) => auth,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(user_id) = signed_in_user(req, state).await else {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your sign-in has expired. Go back to the app and connect again.",
        );
    };
    if form.decision != "allow" {
        let mut params = vec![
            ("error", "access_denied"),
            ("error_description", "the user denied access"),
        ];
        if let Some(s) = auth.state.as_deref() {
            params.push(("state", s));
        }
        return redirect_to(&auth.redirect_uri, &params);
    }
    if let Err(err) =
        grants::remember_consent(&state.db, user_id, &auth.client.id, &auth.scopes).await
    {
        return internal_error(err);
    }
    approve(state, &auth, user_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_must_be_an_authorization_request() {
        assert!(safe_return_to("/oauth/authorize?client_id=x").is_some());
        assert!(safe_return_to("https://evil.example.com/oauth/authorize?x").is_none());
        assert!(safe_return_to("//evil.example.com").is_none());
        assert!(safe_return_to("/oauth/authorizer").is_none());
    }

    #[test]
    fn pkce_challenges_have_the_rfc_7636_shape() {
        assert!(is_pkce_value("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}!", "a".repeat(43))));
    }
}
