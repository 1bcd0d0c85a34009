//! Helpers for driving the OAuth flow the way ChatGPT and a browser do.

#![allow(dead_code)]

use std::collections::HashMap;

use errand::{
    auth::ScopeSet,
    oauth::clients::{self, GrantType, NewClient},
};
use reqwest::{Response, StatusCode, redirect::Policy};
use serde_json::Value;

use crate::common::TestApp;

pub const GPT_CALLBACK: &str = "https://chatgpt.com/aip/g-test123/oauth/callback";

pub struct RegisteredClient {
    pub id: String,
    pub secret: Option<String>,
}

pub async fn register(
    app: &TestApp,
    name: &str,
    grants: &[GrantType],
    public: bool,
) -> RegisteredClient {
    register_with(
        app,
        name,
        grants,
        public,
        &[GPT_CALLBACK],
        "tasks:read tasks:write",
    )
    .await
}

pub async fn register_with(
    app: &TestApp,
    name: &str,
    grants: &[GrantType],
    public: bool,
    redirects: &[&str],
    scope: &str,
) -> RegisteredClient {
    let (client, secret) = clients::create(
        &app.app.db,
        NewClient {
            name: name.to_owned(),
            redirect_uris: if grants.contains(&GrantType::AuthorizationCode) {
                redirects.iter().map(|r| (*r).to_owned()).collect()
            } else {
                vec![]
            },
            scopes: ScopeSet::parse(scope).unwrap(),
            grant_types: grants.to_vec(),
            public,
        },
    )
    .await
    .unwrap();
    RegisteredClient {
        id: client.id,
        secret,
    }
}

/// A browser: keeps cookies, never follows redirects (tests look at them).
pub struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            self.app.url(path)
        }
    }

    fn remember(&mut self, response: &Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Response {
        let response = self
            .client
            .get(self.absolute(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.remember(&response);
        response
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let response = self
            .client
            .post(self.absolute(path))
            .header("cookie", self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.remember(&response);
        response
    }

    /// Signs up through the pages reached from an authorization URL; returns
    /// the page that follows (consent, normally).
    pub async fn sign_up_via(&mut self, authorize: &str, email: &str, password: &str) -> String {
        let sign_in = self.get(authorize).await;
        assert_eq!(sign_in.status(), StatusCode::OK);
        let page = sign_in.text().await.unwrap();
        let return_to = hidden(&page, "return_to");
        let form = self
            .get(&format!(
                "/oauth/sign-up?return_to={}",
                urlencode(&return_to)
            ))
            .await;
        let page = form.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        let response = self
            .post(
                "/oauth/sign-up",
                &[
                    ("email", email),
                    ("password", password),
                    ("csrf", &csrf),
                    ("return_to", &return_to),
                ],
            )
            .await;
        // The same answer whether or not the address had an account.
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        assert!(page.contains("Check your inbox"), "{page}");
        self.sign_in_with(&return_to, &csrf, email, password).await
    }

    /// Posts the sign-in form (its `csrf` from any sign-in or sign-up page
    /// of this browser) and follows the redirect; returns the page that
    /// follows (consent, normally).
    pub async fn sign_in_with(
        &mut self,
        return_to: &str,
        csrf: &str,
        email: &str,
        password: &str,
    ) -> String {
        let response = self
            .post(
                "/oauth/sign-in",
                &[
                    ("email", email),
                    ("password", password),
                    ("csrf", csrf),
                    ("return_to", return_to),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let next = location(&response);
        assert_eq!(next, return_to);
        self.get(&next).await.text().await.unwrap()
    }

    /// Submits the consent page's form with `decision`; returns the redirect.
    pub async fn decide(&mut self, consent_page: &str, decision: &str) -> Response {
        // The consent form is the page's first; the sign-out form follows.
        let form = consent_page.split("</form>").next().unwrap_or_default();
        let mut fields: Vec<(String, String)> = hidden_fields(form);
        fields.push(("decision".into(), decision.into()));
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post("/oauth/consent", &borrowed).await
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Decodes the character references an HTML escaper writes (named or
/// numeric), `&amp;` last so that an escaped reference stays literal.
fn unescape(value: &str) -> String {
    [
        ("&quot;", "\""),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&#60;", "<"),
        ("&gt;", ">"),
        ("&#62;", ">"),
    ]
    .iter()
    .fold(value.to_owned(), |text, (reference, plain)| {
        text.replace(reference, plain)
    })
    .replace("&#38;", "&")
    .replace("&amp;", "&")
}

/// Every hidden input of a page, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('"')?;
            let value = rest.split_once("value=\"")?.1.split_once('"')?.0;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

pub fn hidden(html: &str, name: &str) -> String {
    hidden_fields(html)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no hidden field {name} in:\n{html}"))
        .1
}

pub fn location(response: &Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The query parameters of a redirect.
pub fn redirect_params(response: &Response) -> HashMap<String, String> {
    let target = url::Url::parse(&location(response)).unwrap();
    target.query_pairs().into_owned().collect()
}

pub fn authorize_url(client_id: &str, scope: &str, state: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}",
        urlencode(client_id),
        urlencode(GPT_CALLBACK),
        urlencode(scope),
        urlencode(state)
    )
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
}

/// POSTs to the token (or revoke) endpoint as ChatGPT does.
pub async fn token_request(
    app: &TestApp,
    path: &str,
    client: &RegisteredClient,
    auth: ClientAuth,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    let mut request = app.client.post(app.url(path));
    match (auth, client.secret.as_deref()) {
        (ClientAuth::Basic, Some(secret)) => request = request.basic_auth(&client.id, Some(secret)),
        (_, secret) => {
            form.push(("client_id", &client.id));
            if let Some(secret) = secret {
                form.push(("client_secret", secret));
            }
        }
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    if status.is_success() || status.is_client_error() {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs the flow up to a code: sign up, consent, redirect.
pub async fn code_for(browser: &mut Browser<'_>, client: &RegisteredClient, email: &str) -> String {
    let consent = browser
        .sign_up_via(
            &authorize_url(&client.id, "tasks:read tasks:write", "xyz"),
            email,
            "a long password 1",
        )
        .await;
    let redirect = browser.decide(&consent, "allow").await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let params = redirect_params(&redirect);
    assert_eq!(params["state"], "xyz");
    params["code"].clone()
}

pub async fn exchange_code(
    app: &TestApp,
    client: &RegisteredClient,
    code: &str,
) -> (StatusCode, Value) {
    token_request(
        app,
        "/oauth/token",
        client,
        ClientAuth::Basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", GPT_CALLBACK),
        ],
    )
    .await
}
