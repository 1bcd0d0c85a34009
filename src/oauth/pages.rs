//! The sign-in, sign-up, consent and error pages: askama templates under
//! `templates/oauth/`, checked at compile time and HTML-escaped by default,
//! with no external assets, readable on a phone, labelled for screen readers.
//! Every page is sent with [`page_response`]'s security headers.

use askama::Template;
use poem::{
    Response,
    http::{HeaderValue, StatusCode, header},
};

use super::accounts::MIN_PASSWORD_CHARS;
use crate::auth::Scope;

/// What a sign-in or sign-up form posts besides the credentials.
pub struct FormContext<'a> {
    pub csrf: &'a str,
    /// Where to continue after signing in: the authorization request.
    pub return_to: &'a str,
    /// The app asking, shown so the person knows why they are signing in.
    pub client_name: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "oauth/sign_in.html")]
pub struct SignIn<'a> {
    pub form: FormContext<'a>,
    /// The email to show again after a failed attempt.
    pub email: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "oauth/sign_up.html")]
pub struct SignUp<'a> {
    pub form: FormContext<'a>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub min_password_chars: usize,
}

impl<'a> SignUp<'a> {
    pub fn new(form: FormContext<'a>, email: &'a str, error: Option<&'a str>) -> Self {
        Self {
            form,
            email,
            error,
            min_password_chars: MIN_PASSWORD_CHARS,
        }
    }
}

/// Asks the signed-in person to allow the app; the form carries the
/// authorization request back.
#[derive(Template)]
#[template(path = "oauth/consent.html")]
pub struct Consent<'a> {
    pub csrf: &'a str,
    pub client_name: &'a str,
    /// Where the browser goes back to with the code: a name is the client's
    /// to choose, this host is where access really goes.
    pub redirect_host: &'a str,
    /// For a client identified by a metadata document, the document's host.
    pub document_host: Option<&'a str>,
    /// The document is on one host and the redirect goes to another.
    pub hosts_differ: bool,
    /// The client registered itself (dynamic registration or a metadata
    /// document): nobody running this Errand has vetted it.
    pub unvetted: bool,
    /// What the token will reach.
    pub resource: &'a str,
    pub scopes: &'a [Scope],
    pub email: &'a str,
    /// (name, value) pairs of the authorization request.
    pub request: &'a [(&'a str, &'a str)],
    /// The authorization request, to come back to after signing out.
    pub return_to: &'a str,
}

/// After a sign-up: the same page whether or not the address had an
/// account (the message in the inbox tells which).
#[derive(Template)]
#[template(path = "oauth/check_inbox.html")]
pub struct CheckInbox<'a> {
    pub email: &'a str,
    /// The authorization request, to sign in to.
    pub return_to: &'a str,
}

/// What an email verification link opens: a button, so that a mail
/// scanner following the link does not use it up.
#[derive(Template)]
#[template(path = "oauth/verify_email.html")]
pub struct VerifyEmail<'a> {
    pub action: &'a str,
    pub token: &'a str,
}

/// A page that says how something went.
#[derive(Template)]
#[template(path = "oauth/notice.html")]
pub struct Notice<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// A dead end: shown instead of redirecting when the request cannot be
/// trusted (unknown client, unregistered redirect URI, forged form).
#[derive(Template)]
#[template(path = "oauth/error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// A rendered page with the headers every sign-in page carries: never
/// cached, never framed, no referrer, nothing loaded from elsewhere.
pub fn page_response(status: StatusCode, page: &impl Template) -> Response {
    let (status, html) = match page.render() {
        Ok(html) => (status, html),
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Errand</title><p>Errand could not show this page. Try again later.</p>"
                    .to_owned(),
            )
        }
    };
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

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page_response(status, &ErrorPage { title, message })
}

pub fn notice(status: StatusCode, title: &str, message: &str) -> Response {
    page_response(status, &Notice { title, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        let page = ErrorPage {
            title: "Oops",
            message: "<script>alert(1)</script> & \"quotes\"",
        }
        .render()
        .unwrap();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&#60;script&#62;"), "{page}");
    }

    #[test]
    fn inputs_have_labels_and_errors_are_announced() {
        let page = SignIn {
            form: FormContext {
                csrf: "c",
                return_to: "/oauth/authorize?x=1&y=\"2\"",
                client_name: Some("GPT <b>"),
            },
            email: "",
            error: Some("The email or password is incorrect."),
        }
        .render()
        .unwrap();
        for id in ["email", "password"] {
            assert!(page.contains(&format!("<label for=\"{id}\">")), "{page}");
            assert!(page.contains(&format!("id=\"{id}\"")), "{page}");
        }
        assert!(page.contains("role=\"alert\""));
        assert!(page.contains("aria-describedby=\"form-error\""));
        assert!(page.contains("name=\"viewport\""));
        assert!(page.contains("GPT &#60;b&#62;"), "{page}");
        // The sign-up link carries the authorization request, percent-encoded.
        assert!(
            page.contains("/oauth/sign-up?return_to=%2Foauth%2Fauthorize%3Fx%3D1%26y%3D%222%22"),
            "{page}"
        );
    }
}
