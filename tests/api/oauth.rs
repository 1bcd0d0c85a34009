//! Sign in with Errand: ChatGPT's whole OAuth flow as it performs it, and the
//! attacks the authorization server must refuse.

use errand::oauth::clients::GrantType;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    common::{TestApp, problem},
    oauth_common::*,
};

async fn me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let response = app.me(token).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn chatgpt_flow(auth: ClientAuth) {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "Errand GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);

    // ChatGPT sends the user to the authorization URL, with state, no PKCE.
    let authorize = authorize_url(&gpt.id, "tasks:read tasks:write", "opaque-state-1");
    let page = browser.get(&authorize).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in to Errand") && html.contains("Errand GPT"));

    // Sign up, then consent naming the client and the scopes in plain words.
    let consent = browser
        .sign_up_via(&authorize, "carol@example.com", "correct horse 42")
        .await;
    assert!(
        consent.contains("Allow Errand GPT to use your Errand account?"),
        "{consent}"
    );
    assert!(consent.contains("See your tasks and agenda"));
    assert!(consent.contains("Create, change, complete and delete your tasks"));
    let redirect = browser.decide(&consent, "allow").await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert!(location(&redirect).starts_with(GPT_CALLBACK));
    let params = redirect_params(&redirect);
    assert_eq!(params["state"], "opaque-state-1");

    // The token request, form-encoded, with the chosen client authentication.
    let (status, tokens) = token_request(
        &app,
        "/oauth/token",
        &gpt,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", GPT_CALLBACK),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "tasks:read tasks:write");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Actions work as the signed-in user.
    let (status, who) = me(&app, &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["email"], "carol@example.com");
    assert_eq!(who["client_id"], gpt.id.as_str());
    let created = app
        .request(
            Method::POST,
            "/v1/tasks",
            Some(&access),
            Some(&json!({ "title": "From ChatGPT" })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    // Refresh, then call again with the new access token.
    let (status, renewed) = token_request(
        &app,
        "/oauth/token",
        &gpt,
        auth,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_ne!(
        renewed["refresh_token"],
        refresh.as_str(),
        "refresh tokens rotate"
    );
    let access2 = renewed["access_token"].as_str().unwrap();
    let listed = app
        .request(Method::GET, "/v1/tasks", Some(access2), None)
        .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let page: Value = listed.json().await.unwrap();
    assert_eq!(page["tasks"][0]["title"], "From ChatGPT");

    // A second connection by the same user skips the consent page.
    let again = browser
        .get(&authorize_url(&gpt.id, "tasks:read", "second"))
        .await;
    assert_eq!(again.status(), StatusCode::FOUND, "consent is remembered");
    assert_eq!(redirect_params(&again)["state"], "second");
}

#[tokio::test]
async fn chatgpt_flow_with_client_secret_basic() {
    chatgpt_flow(ClientAuth::Basic).await;
}

#[tokio::test]
async fn chatgpt_flow_with_client_secret_post() {
    chatgpt_flow(ClientAuth::Post).await;
}

#[tokio::test]
async fn deny_returns_access_denied_with_state() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(
            &authorize_url(&gpt.id, "tasks:read", "s1"),
            "dan@example.com",
            "a long password 1",
        )
        .await;
    let redirect = browser.decide(&consent, "deny").await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let params = redirect_params(&redirect);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "s1");
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn a_redirect_uri_that_does_not_match_is_shown_an_error_and_never_redirected() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    for evil in [
        "https://evil.example.com/callback",
        "https://chatgpt.com/aip/g-test123/oauth/callback/extra",
        "https://chatgpt.com/aip/g-other/oauth/callback",
    ] {
        let url = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state=s",
            gpt.id,
            urlencode(evil)
        );
        let response = browser.get(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{evil}");
        assert!(response.headers().get("location").is_none());
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("not registered for it")
        );
    }
}

#[tokio::test]
async fn an_unknown_client_is_shown_an_error_and_never_redirected() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let response = browser
        .get(&authorize_url("errand-nope", "tasks:read", "s"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("not registered"));
}

#[tokio::test]
async fn bad_requests_from_a_known_client_go_back_with_an_error() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let base = format!(
        "/oauth/authorize?client_id={}&redirect_uri={}&state=st",
        gpt.id,
        urlencode(GPT_CALLBACK)
    );
    for (extra, error) in [
        ("&response_type=token", "unsupported_response_type"),
        ("&response_type=code&scope=admin", "invalid_scope"),
        (
            "&response_type=code&code_challenge=abc&code_challenge_method=plain",
            "invalid_request",
        ),
    ] {
        let response = browser.get(&format!("{base}{extra}")).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{extra}");
        let params = redirect_params(&response);
        assert_eq!(params["error"], error, "{extra}");
        assert_eq!(params["state"], "st");
    }
}

#[tokio::test]
async fn scope_escalation_is_refused_at_authorize_token_and_refresh() {
    let app = TestApp::spawn().await;
    let reader = register_with(
        &app,
        "Reader",
        &[GrantType::AuthorizationCode],
        false,
        &[GPT_CALLBACK],
        "tasks:read",
    )
    .await;
    let mut browser = Browser::new(&app);
    // At authorize: more than the client is registered for.
    let response = browser
        .get(&authorize_url(&reader.id, "tasks:read tasks:write", "s"))
        .await;
    assert_eq!(redirect_params(&response)["error"], "invalid_scope");

    // At the token endpoint: more than was granted.
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let consent = browser
        .sign_up_via(
            &authorize_url(&gpt.id, "tasks:read", "s"),
            "eve@example.com",
            "a long password 1",
        )
        .await;
    let code = redirect_params(&browser.decide(&consent, "allow").await)["code"].clone();
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &gpt,
        ClientAuth::Basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", GPT_CALLBACK),
            ("scope", "tasks:read tasks:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // The refused request did not use up the code.
    let (status, tokens) = exchange_code(&app, &gpt, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tokens["scope"], "tasks:read");

    // At refresh.
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &gpt,
        ClientAuth::Basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "tasks:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // And a token with only tasks:read cannot write.
    let response = app
        .request(
            Method::POST,
            "/v1/tasks",
            tokens["access_token"].as_str(),
            Some(&json!({ "title": "x" })),
        )
        .await;
    problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &gpt, "frank@example.com").await;
    let (status, first) = exchange_code(&app, &gpt, &code).await;
    assert_eq!(status, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(me(&app, access).await.0, StatusCode::OK);

    let (status, replay) = exchange_code(&app, &gpt, &code).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        replay["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    // Everything the first exchange issued is now revoked.
    let (status, body) = me(&app, access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("revoked"));
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &gpt,
        ClientAuth::Basic,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_code_cannot_be_redeemed_by_another_client() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let other = register(&app, "Other", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &gpt, "gina@example.com").await;
    let (status, body) = exchange_code(&app, &other, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("another client")
    );
    // The rightful client can still use it.
    assert_eq!(exchange_code(&app, &gpt, &code).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &gpt, "hal@example.com").await;
    // Eleven minutes pass.
    {
        use errand::oauth::entity::code;
        use sea_orm::{EntityTrait, sea_query::Expr};
        code::Entity::update_many()
            .col_expr(
                code::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
            )
            .exec(&app.app.db)
            .await
            .unwrap();
    }
    let (status, body) = exchange_code(&app, &gpt, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn a_mismatched_redirect_uri_at_the_token_endpoint_is_refused() {
    let app = TestApp::spawn().await;
    let gpt = register_with(
        &app,
        "GPT",
        &[GrantType::AuthorizationCode],
        false,
        &[
            GPT_CALLBACK,
            "https://chat.openai.com/aip/g-test123/oauth/callback",
        ],
        "tasks:read tasks:write",
    )
    .await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &gpt, "ivy@example.com").await;
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &gpt,
        ClientAuth::Basic,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            (
                "redirect_uri",
                "https://chat.openai.com/aip/g-test123/oauth/callback",
            ),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn pkce_is_required_for_public_clients_and_checked_for_all() {
    let app = TestApp::spawn().await;
    let mobile = register(&app, "Mobile", &[GrantType::AuthorizationCode], true).await;
    assert!(mobile.secret.is_none());
    let mut browser = Browser::new(&app);
    // Without a challenge a public client is turned away.
    let response = browser
        .get(&authorize_url(&mobile.id, "tasks:read", "s"))
        .await;
    assert_eq!(redirect_params(&response)["error"], "invalid_request");

    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let url = format!(
        "{}&code_challenge={challenge}&code_challenge_method=S256",
        authorize_url(&mobile.id, "tasks:read", "s")
    );
    let consent = browser
        .sign_up_via(&url, "jo@example.com", "a long password 1")
        .await;
    let code = redirect_params(&browser.decide(&consent, "allow").await)["code"].clone();

    let redeem = |verifier: Option<&'static str>| {
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", GPT_CALLBACK),
        ];
        if let Some(v) = verifier {
            fields.push(("code_verifier", v));
        }
        let (app, mobile) = (&app, &mobile);
        async move { token_request(app, "/oauth/token", mobile, ClientAuth::Post, &fields).await }
    };
    let (status, body) = redeem(None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = redeem(Some("wrong-verifier-wrong-verifier-wrong-verifier-00")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier does not match")
    );
    let (status, tokens) = redeem(Some(verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // A public client must not present a secret, and a confidential one must.
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let no_secret = RegisteredClient {
        id: gpt.id.clone(),
        secret: None,
    };
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &no_secret,
        ClientAuth::Post,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &gpt, "kim@example.com").await;
    let (_, first) = exchange_code(&app, &gpt, &code).await;
    let refresh = |token: String| {
        let (app, gpt) = (&app, &gpt);
        async move {
            token_request(
                app,
                "/oauth/token",
                gpt,
                ClientAuth::Basic,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let (status, second) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    // The old refresh token is presented again (stolen, or a client bug).
    let (status, body) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Every token of the family is dead, including the newest ones.
    let (status, _) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        me(&app, second["access_token"].as_str().unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(&app, first["access_token"].as_str().unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_consent_form_requires_its_csrf_token() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(
            &authorize_url(&gpt.id, "tasks:read", "s"),
            "lee@example.com",
            "a long password 1",
        )
        .await;
    let mut fields = hidden_fields(&consent);
    fields.retain(|(name, _)| name != "csrf");
    fields.push(("decision".into(), "allow".into()));
    let without: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = browser.post("/oauth/consent", &without).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("location").is_none());

    let mut forged = without.clone();
    forged.push(("csrf", "forged-forged-forged-forged-forged-forged-12"));
    let response = browser.post("/oauth/consent", &forged).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A cross-site page cannot read the cookie, so it has no token to send.
    let mut attacker = Browser::new(&app);
    attacker.cookies = browser.cookies.clone();
    attacker.cookies.remove("errand_csrf");
    let mut stolen = without.clone();
    stolen.push(("csrf", "anything"));
    assert_eq!(
        attacker.post("/oauth/consent", &stolen).await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn attempt(
    browser: &mut Browser<'_>,
    csrf: &str,
    return_to: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Option<String>, String) {
    let fields = [
        ("email", email),
        ("password", password),
        ("csrf", csrf),
        ("return_to", return_to),
    ];
    let response = browser.post("/oauth/sign-in", &fields).await;
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, response.text().await.unwrap())
}

#[tokio::test]
async fn sign_in_is_throttled_and_does_not_reveal_registered_emails() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let authorize = authorize_url(&gpt.id, "tasks:read", "s");
    browser
        .sign_up_via(&authorize, "mia@example.com", "the right password")
        .await;

    let mut fresh = Browser::new(&app);
    let page = fresh.get(&authorize).await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let return_to = hidden(&page, "return_to");
    let (csrf_ref, return_ref) = (csrf.as_str(), return_to.as_str());
    let (status, _, wrong_password) = attempt(
        &mut fresh,
        csrf_ref,
        return_ref,
        "mia@example.com",
        "wrong password",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, unknown_email) = attempt(
        &mut fresh,
        csrf_ref,
        return_ref,
        "nobody@example.com",
        "wrong password",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let message = "The email or password is incorrect.";
    assert!(wrong_password.contains(message) && unknown_email.contains(message));

    for _ in 0..4 {
        assert_eq!(
            attempt(
                &mut fresh,
                csrf_ref,
                return_ref,
                "mia@example.com",
                "still wrong"
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Five failures: now even the right password is refused for a while.
    let (status, retry, page) = attempt(
        &mut fresh,
        csrf_ref,
        return_ref,
        "mia@example.com",
        "the right password",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    assert!(page.contains("Too many failed sign-ins"));
    // The same limit applies to an unregistered email, so it reveals nothing.
    for _ in 0..4 {
        attempt(&mut fresh, csrf_ref, return_ref, "nobody@example.com", "x").await;
    }
    assert_eq!(
        attempt(&mut fresh, csrf_ref, return_ref, "nobody@example.com", "x")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Sign-up with a registered email does not say that it is registered.
    let form = fresh
        .get(&format!(
            "/oauth/sign-up?return_to={}",
            urlencode(&return_to)
        ))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&form, "csrf");
    let response = fresh
        .post(
            "/oauth/sign-up",
            &[
                ("email", "mia@example.com"),
                ("password", "another password"),
                ("csrf", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await;
    // The page a new address gets: the inbox says which it was.
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("Check your inbox") && !text.contains("already registered"));
}

#[tokio::test]
async fn sign_in_after_sign_up_works_and_return_to_cannot_leave_the_site() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let authorize = authorize_url(&gpt.id, "tasks:read", "s");
    Browser::new(&app)
        .sign_up_via(&authorize, "ned@example.com", "a long password 1")
        .await;
    let mut browser = Browser::new(&app);
    let page = browser.get(&authorize).await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let evil = browser
        .post(
            "/oauth/sign-in",
            &[
                ("email", "ned@example.com"),
                ("password", "a long password 1"),
                ("csrf", &csrf),
                ("return_to", "https://evil.example.com/"),
            ],
        )
        .await;
    assert_eq!(evil.status(), StatusCode::BAD_REQUEST);
    assert!(evil.headers().get("location").is_none());
    let ok = browser
        .post(
            "/oauth/sign-in",
            &[
                ("email", "ned@example.com"),
                ("password", "a long password 1"),
                ("csrf", &csrf),
                ("return_to", &hidden(&page, "return_to")),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let consent = browser.get(&location(&ok)).await.text().await.unwrap();
    assert!(consent.contains("Signed in as <strong>ned@example.com</strong>"));
}

#[tokio::test]
async fn client_credentials_tokens_act_as_the_clients_service_user() {
    let app = TestApp::spawn().await;
    let integration = register(&app, "Integration", &[GrantType::ClientCredentials], false).await;
    let (status, tokens) = token_request(
        &app,
        "/oauth/token",
        &integration,
        ClientAuth::Basic,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "tasks:write"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens.get("refresh_token").is_none());
    assert_eq!(tokens["scope"], "tasks:write");
    let access = tokens["access_token"].as_str().unwrap();
    let created = app
        .request(
            Method::POST,
            "/v1/tasks",
            Some(access),
            Some(&json!({ "title": "Synced" })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let (_, who) = me(&app, access).await;
    assert!(
        who["email"]
            .as_str()
            .unwrap()
            .ends_with("@clients.errand.invalid")
    );

    // More scope than the client has, and grants it may not use.
    let narrow = register_with(
        &app,
        "Narrow",
        &[GrantType::ClientCredentials],
        false,
        &[],
        "tasks:read",
    )
    .await;
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &narrow,
        ClientAuth::Post,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "tasks:write"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &narrow,
        ClientAuth::Post,
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &narrow,
        ClientAuth::Post,
        &[("grant_type", "password")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let wrong = RegisteredClient {
        id: gpt.id.clone(),
        secret: Some("wrong".into()),
    };
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&wrong.id, wrong.secret.as_deref())
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"errand\""
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = token_request(
        &app,
        "/oauth/token",
        &wrong,
        ClientAuth::Post,
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // JSON instead of a form is a malformed request.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .json(&json!({ "grant_type": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn revoking_a_token_ends_its_grant() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &gpt, "olga@example.com").await;
    let (_, tokens) = exchange_code(&app, &gpt, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    // Another client cannot revoke it.
    let other = register(&app, "Other", &[GrantType::AuthorizationCode], false).await;
    let (status, _) = token_request(
        &app,
        "/oauth/revoke",
        &other,
        ClientAuth::Basic,
        &[("token", access)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me(&app, access).await.0, StatusCode::OK);
    // Its own client can.
    let (status, _) = token_request(
        &app,
        "/oauth/revoke",
        &gpt,
        ClientAuth::Basic,
        &[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me(&app, access).await.0, StatusCode::UNAUTHORIZED);
    // Unknown tokens are fine (RFC 7009 §2.2).
    let (status, _) = token_request(
        &app,
        "/oauth/revoke",
        &gpt,
        ClientAuth::Basic,
        &[("token", "no-such-token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metadata_and_jwks_describe_the_server() {
    let app = TestApp::spawn().await;
    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(metadata["issuer"], app.address.as_str());
    assert_eq!(
        metadata["authorization_endpoint"],
        app.url("/oauth/authorize")
    );
    assert_eq!(metadata["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(metadata["revocation_endpoint"], app.url("/oauth/revoke"));
    assert_eq!(metadata["jwks_uri"], app.url("/.well-known/jwks.json"));
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_basic"))
    );

    let jwks = app.get_json("/.well-known/jwks.json").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(keys[0].get("d").is_none(), "no private key material");
    // Tokens name that key, and it verifies them.
    let user = app.user("pat@example.com").await;
    let header = jsonwebtoken::decode_header(&user.token).unwrap();
    assert_eq!(header.kid.as_deref(), keys[0]["kid"].as_str());
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[&app.address]);
    assert!(
        jsonwebtoken::decode::<Value>(
            &user.token,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &validation
        )
        .is_ok()
    );
}

#[tokio::test]
async fn sign_in_is_throttled_per_client_address_across_emails() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let page = browser
        .get(&authorize_url(&gpt.id, "tasks:read", "s"))
        .await
        .text()
        .await
        .unwrap();
    let (csrf, return_to) = (hidden(&page, "csrf"), hidden(&page, "return_to"));
    // Twenty failures, each for a different email: no account reaches its own limit.
    for i in 0..20 {
        let email = format!("guess{i}@example.com");
        let (status, _, _) = attempt(&mut browser, &csrf, &return_to, &email, "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (status, retry, _) = attempt(
        &mut browser,
        &csrf,
        &return_to,
        "fresh@example.com",
        "wrong",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
}
