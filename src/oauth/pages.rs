//! The sign-in, sign-up, consent and error pages: server-rendered HTML with
//! no external assets, readable on a phone, labelled for screen readers.

use crate::auth::Scope;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;background:#f6f8fa}\
main{max-width:26rem;margin:2rem auto;padding:1.5rem;background:#fff;border:1px solid #d0d7de;border-radius:12px}\
h1{font-size:1.4rem;margin:0 0 1rem}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
input[type=email],input[type=password]{width:100%;padding:.7rem;font-size:1rem;border:1px solid #8c959f;border-radius:8px}\
button{width:100%;margin-top:1.25rem;padding:.75rem;font-size:1rem;font-weight:600;border:0;border-radius:8px;background:#1f6feb;color:#fff;cursor:pointer}\
button.secondary{background:#eaeef2;color:#1f2328}\
button:focus,input:focus,a:focus{outline:3px solid #fb8500;outline-offset:2px}\
.error{padding:.75rem;border-radius:8px;background:#ffebe9;border:1px solid #ff8182}\
.hint{color:#57606a;font-size:.9rem}\
ul{padding-left:1.2rem}\
@media (max-width:30rem){main{margin:0;border:0;border-radius:0;min-height:100vh}}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Errand</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        title = escape(title),
    )
}

fn error_box(message: Option<&str>) -> String {
    message
        .map(|m| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default()
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// What a sign-in or sign-up form posts besides the credentials.
pub struct FormContext<'a> {
    pub csrf: &'a str,
    /// Where to continue after signing in: the authorization request.
    pub return_to: &'a str,
    /// The app asking, shown so the person knows why they are signing in.
    pub client_name: Option<&'a str>,
}

fn described_by(error: Option<&str>) -> &'static str {
    if error.is_some() {
        " aria-describedby=\"form-error\""
    } else {
        ""
    }
}

pub fn sign_in(ctx: &FormContext<'_>, email: &str, error: Option<&str>) -> String {
    let intro = ctx
        .client_name
        .map(|name| {
            format!(
                "<p>Sign in to connect <strong>{}</strong> to your tasks.</p>",
                escape(name)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to Errand</h1>{intro}{error}\
         <form method=\"post\" action=\"/oauth/sign-in\" novalidate>\
         {csrf}{return_to}\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\"{described}>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{described}>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">New to Errand? <a href=\"/oauth/sign-up?return_to={return_to_q}\">Create an account</a></p>",
        error = error_box(error),
        csrf = hidden("csrf", ctx.csrf),
        return_to = hidden("return_to", ctx.return_to),
        email = escape(email),
        described = described_by(error),
        return_to_q = escape(&url_encode(ctx.return_to)),
    );
    layout("Sign in", &body)
}

pub fn sign_up(ctx: &FormContext<'_>, email: &str, error: Option<&str>) -> String {
    let body = format!(
        "<h1>Create your Errand account</h1>{error}\
         <form method=\"post\" action=\"/oauth/sign-up\" novalidate>\
         {csrf}{return_to}\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required value=\"{email}\"{described}>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required \
          minlength=\"10\" aria-describedby=\"password-hint\">\
         <p class=\"hint\" id=\"password-hint\">At least 10 characters.</p>\
         <button type=\"submit\">Create account</button></form>\
         <p class=\"hint\">Already have an account? <a href=\"{back}\">Sign in</a></p>",
        error = error_box(error),
        csrf = hidden("csrf", ctx.csrf),
        return_to = hidden("return_to", ctx.return_to),
        email = escape(email),
        described = described_by(error),
        back = escape(ctx.return_to),
    );
    layout("Create account", &body)
}

/// The parameters of the authorization request the consent form carries back.
pub struct ConsentContext<'a> {
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub scopes: &'a [Scope],
    pub email: &'a str,
    /// (name, value) pairs of the authorization request.
    pub request: &'a [(&'a str, &'a str)],
}

pub fn consent(ctx: &ConsentContext<'_>) -> String {
    let scopes: String = ctx
        .scopes
        .iter()
        .map(|scope| format!("<li>{}</li>", escape(scope.description())))
        .collect();
    let carried: String = ctx
        .request
        .iter()
        .map(|(name, value)| hidden(name, value))
        .collect();
    let body = format!(
        "<h1>Allow {client} to use your Errand account?</h1>\
         <p>Signed in as <strong>{email}</strong>.</p>\
         <p id=\"scopes-label\"><strong>{client}</strong> will be able to:</p>\
         <ul aria-labelledby=\"scopes-label\">{scopes}</ul>\
         <form method=\"post\" action=\"/oauth/consent\">{csrf}{carried}\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\
         </form>\
         <p class=\"hint\">You can sign out of {client} at any time; it then loses access.</p>",
        client = escape(ctx.client_name),
        email = escape(ctx.email),
        csrf = hidden("csrf", ctx.csrf),
    );
    layout("Allow access", &body)
}

/// A dead end: shown instead of redirecting when the request cannot be
/// trusted (unknown client, unregistered redirect URI, forged form).
pub fn error(title: &str, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p class=\"hint\">Return to the app you came from and try connecting again.</p>",
        escape(title),
        escape(message)
    );
    layout(title, &body)
}

/// Percent-encodes a value for a query string.
pub fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        let page = error("Oops", "<script>alert(1)</script>");
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn inputs_have_labels() {
        let page = sign_in(
            &FormContext {
                csrf: "c",
                return_to: "/oauth/authorize?x=1",
                client_name: Some("GPT"),
            },
            "",
            Some("The email or password is incorrect."),
        );
        for id in ["email", "password"] {
            assert!(page.contains(&format!("<label for=\"{id}\">")));
            assert!(page.contains(&format!("id=\"{id}\"")));
        }
        assert!(page.contains("role=\"alert\""));
        assert!(page.contains("name=\"viewport\""));
    }
}
