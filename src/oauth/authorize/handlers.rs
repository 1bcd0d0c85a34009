//! The handlers: `GET /oauth/authorize`, the sign-in and sign-up forms, and
//! the consent decision. Each checks what it was sent (`request`, `session`)
//! and then does one thing.

use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Form, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    request::{self, Authorization, AuthorizeParams},
    session::{self, Binding},
};
use crate::{
    auth::{Resource, Scope, principal::AUTHORIZE_PATH},
    oauth::{
        OAuthState, accounts,
        accounts::AccountError,
        clients, consent, flows,
        pages::{self, FormContext},
    },
    urls::host_of,
    users,
};

fn internal_error(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "authorization flow failed");
    pages::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Errand could not handle the request. Try again later.",
    )
}

/// Issues a code for an approved authorization and sends the browser back.
async fn approve(state: &OAuthState, auth: &Authorization, user_id: Uuid) -> Response {
    let code = flows::issue_code(
        &state.db,
        flows::CodeRequest {
            client_id: &auth.client.id,
            user_id,
            redirect_uri: &auth.redirect_uri,
            scopes: &auth.scopes,
            code_challenge: auth.code_challenge.as_deref(),
            resource: auth.resource,
            redirect_uri_sent: auth.redirect_uri_sent,
        },
    )
    .await;
    match code {
        Ok(code) => auth.redirect_back(&[("code", code.as_str())]),
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
            return pages::error_page(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your account no longer exists.",
            );
        }
        Err(err) => return internal_error(err),
    };
    let scopes: Vec<Scope> = auth.scopes.iter().collect();
    // Both URLs were checked before this page; the fallbacks never show.
    let redirect_host = host_of(&auth.redirect_uri).unwrap_or_else(|| auth.redirect_uri.clone());
    let document_host = (auth.client.origin == clients::Origin::MetadataDocument)
        .then(|| host_of(&auth.client.id).unwrap_or_else(|| auth.client.id.clone()));
    pages::page_response(
        StatusCode::OK,
        &pages::Consent {
            csrf: &session::csrf_token(req, state, Binding::Session),
            client_name: &auth.client.name,
            redirect_host: &redirect_host,
            document_host: document_host.as_deref(),
            hosts_differ: document_host
                .as_deref()
                .is_some_and(|host| host != redirect_host),
            unvetted: auth.client.origin != clients::Origin::Operator,
            resource: match auth.resource {
                Resource::Api => "Errand's API",
                Resource::Mcp => "Errand's MCP server (for AI assistants and agents)",
            },
            scopes: &scopes,
            email: &email,
            request: &params.pairs(),
            return_to: &format!("{AUTHORIZE_PATH}?{}", params.query()),
        },
    )
}

#[handler]
pub async fn authorize(
    req: &Request,
    Query(params): Query<AuthorizeParams>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let auth = match request::validate(state, &params, &session::client_address(req, state)).await {
        Ok(auth) => auth,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(user_id) = session::signed_in_user(req, state).await else {
        let return_to = format!("{AUTHORIZE_PATH}?{}", params.query());
        return pages::page_response(
            StatusCode::OK,
            &pages::SignIn {
                form: FormContext {
                    csrf: &session::csrf_token(req, state, Binding::Browser),
                    return_to: &return_to,
                    client_name: Some(&auth.client.name),
                },
                email: "",
                error: None,
            },
        );
    };
    match consent::covers(
        &state.db,
        user_id,
        &auth.client.id,
        &auth.scopes,
        auth.resource,
    )
    .await
    {
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

fn account_error_status(err: &AccountError) -> StatusCode {
    match err {
        AccountError::BadCredentials => StatusCode::UNAUTHORIZED,
        AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        AccountError::InvalidInput(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn account_error_message(err: &AccountError) -> String {
    match err {
        AccountError::BadCredentials
        | AccountError::Throttled { .. }
        | AccountError::InvalidInput(_) => err.to_string(),
        internal => {
            tracing::error!(error = %internal, "signing in or up failed");
            "Errand could not handle the request. Try again later.".to_owned()
        }
    }
}

/// A sign-in or sign-up form whose `return_to` is not an authorization request.
fn nowhere_to_return() -> Response {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "Nowhere to return to",
        "Start from the app you want to connect.",
    )
}

/// The `return_to` of a credentials form that came from Errand's own page,
/// or the page to show instead.
fn accepted_form<'f>(
    req: &Request,
    state: &OAuthState,
    form: &'f CredentialsForm,
) -> Result<&'f str, Box<Response>> {
    if !session::csrf_ok(req, state, Binding::Browser, &form.csrf) {
        return Err(Box::new(session::forged()));
    }
    session::safe_return_to(&form.return_to).ok_or_else(|| Box::new(nowhere_to_return()))
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

/// Which credentials form a submission came from, to show it again.
#[derive(Debug, Clone, Copy)]
enum CredentialsPage {
    SignIn,
    SignUp,
}

impl CredentialsPage {
    fn render(
        self,
        status: StatusCode,
        form: FormContext<'_>,
        email: &str,
        error: Option<&str>,
    ) -> Response {
        match self {
            Self::SignIn => pages::page_response(status, &pages::SignIn { form, email, error }),
            Self::SignUp => pages::page_response(status, &pages::SignUp::new(form, email, error)),
        }
    }
}

/// After a sign-in or sign-up attempt: a session and back to the
/// authorization, or the same form again with what went wrong.
async fn conclude(
    req: &Request,
    state: &OAuthState,
    outcome: Result<Uuid, AccountError>,
    form: &CredentialsForm,
    return_to: &str,
    page: CredentialsPage,
) -> Response {
    let err = match outcome {
        Ok(user_id) => {
            return match accounts::start_session(&state.db, user_id).await {
                Ok(id) => session::signed_in(req, state, &id, return_to),
                Err(err) => internal_error(err),
            };
        }
        Err(err) => err,
    };
    let name = client_name_in(state, return_to).await;
    let message = account_error_message(&err);
    let mut response = page.render(
        account_error_status(&err),
        FormContext {
            csrf: &session::csrf_token(req, state, Binding::Browser),
            return_to,
            client_name: name.as_deref(),
        },
        &form.email,
        Some(&message),
    );
    if let AccountError::Throttled { minutes } = err {
        session::retry_after(&mut response, minutes);
    }
    response
}

#[handler]
pub async fn sign_in(
    req: &Request,
    Form(form): Form<CredentialsForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let return_to = match accepted_form(req, state, &form) {
        Ok(return_to) => return_to,
        Err(page) => return *page,
    };
    let address = session::address_bucket(&session::client_address(req, state));
    let outcome = accounts::sign_in(&state.db, &form.email, &form.password, &address).await;
    conclude(
        req,
        state,
        outcome,
        &form,
        return_to,
        CredentialsPage::SignIn,
    )
    .await
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
    let Some(return_to) = session::safe_return_to(&query.return_to) else {
        return nowhere_to_return();
    };
    let name = client_name_in(state, return_to).await;
    CredentialsPage::SignUp.render(
        StatusCode::OK,
        FormContext {
            csrf: &session::csrf_token(req, state, Binding::Browser),
            return_to,
            client_name: name.as_deref(),
        },
        "",
        None,
    )
}

#[handler]
pub async fn sign_up(
    req: &Request,
    Form(form): Form<CredentialsForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    let return_to = match accepted_form(req, state, &form) {
        Ok(return_to) => return_to,
        Err(page) => return *page,
    };
    let address = session::address_bucket(&session::client_address(req, state));
    let sealing = match state.sealer.key().await {
        Ok(key) => key,
        Err(err) => return internal_error(err),
    };
    let mailing = accounts::Mailing {
        sealing,
        public_url: &state.public_url,
    };
    match accounts::sign_up(&state.db, &mailing, &form.email, &form.password, &address).await {
        Ok(email) => pages::page_response(
            StatusCode::OK,
            &pages::CheckInbox {
                email: email.as_str(),
                return_to,
            },
        ),
        Err(err) => {
            conclude(
                req,
                state,
                Err(err),
                &form,
                return_to,
                CredentialsPage::SignUp,
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VerifyEmailParams {
    #[serde(default)]
    token: String,
}

/// What an email verification link opens: a page with a button that
/// confirms (a GET must not use the link up: mail scanners follow links).
#[handler]
pub async fn verify_email_page(Query(params): Query<VerifyEmailParams>) -> Response {
    if params.token.is_empty() {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "Link incomplete",
            "This confirmation link is missing its code. Open the link from the email again, \
             whole.",
        );
    }
    pages::page_response(
        StatusCode::OK,
        &pages::VerifyEmail {
            action: crate::oauth::letters::VERIFY_EMAIL_PATH,
            token: &params.token,
        },
    )
}

/// Confirms an address with the link's code.
#[handler]
pub async fn verify_email(
    Form(params): Form<VerifyEmailParams>,
    Data(state): Data<&OAuthState>,
) -> Response {
    match accounts::verify_email(&state.db, &params.token).await {
        Ok(true) => pages::notice(
            StatusCode::OK,
            "Address confirmed",
            "Thank you: your email address is confirmed. You can close this page.",
        ),
        Ok(false) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "Link expired or used",
            "This confirmation link has expired or was used already. If your address is not \
             confirmed yet, sign up again with it to get a new link.",
        ),
        Err(err) => internal_error(err),
    }
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
pub async fn decide(
    req: &Request,
    Form(form): Form<ConsentForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    if !session::csrf_ok(req, state, Binding::Session, &form.csrf) {
        return session::forged();
    }
    let requester = session::client_address(req, state);
    let auth = match request::validate(state, &form.request, &requester).await {
        Ok(auth) => auth,
        Err(rejection) => return rejection.into_response(),
    };
    let Some(user_id) = session::signed_in_user(req, state).await else {
        return pages::error_page(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your sign-in has expired. Go back to the app and connect again.",
        );
    };
    if form.decision != "allow" {
        return auth.redirect_back(&[
            ("error", "access_denied"),
            ("error_description", "the user denied access"),
        ]);
    }
    if let Err(err) = consent::remember(
        &state.db,
        user_id,
        &auth.client.id,
        &auth.scopes,
        auth.resource,
    )
    .await
    {
        return internal_error(err);
    }
    approve(state, &auth, user_id).await
}

/// Where the sign-out form posts.
pub const SIGN_OUT_PATH: &str = "/oauth/sign-out";

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_to: String,
}

/// Signs this browser out, then back to the authorization request it came
/// from (which asks to sign in again), or to a page that says so.
#[handler]
pub async fn sign_out(
    req: &Request,
    Form(form): Form<SignOutForm>,
    Data(state): Data<&OAuthState>,
) -> Response {
    if !session::csrf_ok(req, state, Binding::Session, &form.csrf) {
        return session::forged();
    }
    if let Err(err) = session::sign_out(req, state).await {
        return internal_error(err);
    }
    match session::safe_return_to(&form.return_to) {
        Some(return_to) => session::see_other(return_to),
        None => pages::error_page(
            StatusCode::OK,
            "Signed out",
            "You are signed out of Errand on this browser.",
        ),
    }
}
