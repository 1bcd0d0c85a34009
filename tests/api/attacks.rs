//! The attacks that once got through (issue "Security: what an attacker
//! found"), tried again on every build, on SQLite and on PostgreSQL. Each
//! test performs the attack as an attacker would, over HTTP, and checks
//! that it is refused; bursts are sent in parallel for real.

use std::collections::HashMap;

use errand::config::AuthSettings;
use futures::future::join_all;
use reqwest::{Method, StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::{
    common::{Mail, TestApp, on_postgres, problem},
    oauth_common::{
        Browser, ClientAuth, GPT_CALLBACK, authorize_url, hidden, location, redirect_params,
        register, register_with, token_request, urlencode,
    },
};
use errand::oauth::clients::GrantType;

/// A browser's cookies and sign-in form token, to send many sign-ins at
/// once with: what an attacker scripting the form has.
struct Form {
    cookie: String,
    csrf: String,
    return_to: String,
}

async fn sign_in_form(app: &TestApp) -> Form {
    let gpt = register(app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(app);
    let page = browser
        .get(&authorize_url(&gpt.id, "tasks:read", "s"))
        .await
        .text()
        .await
        .unwrap();
    Form {
        cookie: browser
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; "),
        csrf: hidden(&page, "csrf"),
        return_to: hidden(&page, "return_to"),
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Posts `path`'s form `count` times at once (one connection each), the
/// `i`th with the fields `fields(i)`; the statuses, in order.
async fn burst(
    app: &TestApp,
    path: &str,
    count: usize,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
    fields: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<StatusCode> {
    let requests = (0..count).map(|i| {
        let client = no_redirects();
        let mut request = client.post(app.url(path)).form(&fields(i));
        for (name, value) in headers(i) {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status() }
    });
    let tasks: Vec<_> = requests.map(tokio::spawn).collect();
    join_all(tasks)
        .await
        .into_iter()
        .map(|status| status.unwrap())
        .collect()
}

fn count(statuses: &[StatusCode], wanted: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == wanted).count()
}

fn sign_in_fields(form: &Form, email: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("email", email.to_owned()),
        ("password", password.to_owned()),
        ("csrf", form.csrf.clone()),
        ("return_to", form.return_to.clone()),
    ]
}

/// 1. A hundred wrong passwords at once for one account: the check comes
/// after the count, so exactly as many as the limit allows are judged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_sign_ins_gets_no_more_guesses_than_the_limit() {
    let app = TestApp::spawn().await;
    app.account("victim@example.com", "the right password")
        .await;
    let form = sign_in_form(&app).await;
    let cookie = form.cookie.clone();
    let statuses = burst(
        &app,
        "/oauth/sign-in",
        100,
        |_| vec![("cookie", cookie.clone())],
        |_| sign_in_fields(&form, "victim@example.com", "a wrong password"),
    )
    .await;
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        5,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 95);

    // A burst with the right password somewhere among the wrong ones: at
    // most the limit's worth is judged at all (here none: the account is
    // still locked from the first burst), so it cannot be found by volume.
    let statuses = burst(
        &app,
        "/oauth/sign-in",
        40,
        |_| vec![("cookie", cookie.clone())],
        |i| {
            let password = if i == 17 {
                "the right password"
            } else {
                "a wrong one"
            };
            sign_in_fields(&form, "victim@example.com", password)
        },
    )
    .await;
    assert_eq!(count(&statuses, StatusCode::SEE_OTHER), 0, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 40);
}

/// 1. The per-address limit holds for a burst across many accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_across_accounts_from_one_address_is_held_to_its_limit() {
    let app = TestApp::spawn().await;
    let form = sign_in_form(&app).await;
    let cookie = form.cookie.clone();
    let statuses = burst(
        &app,
        "/oauth/sign-in",
        60,
        |_| vec![("cookie", cookie.clone())],
        |i| sign_in_fields(&form, &format!("person{i}@example.com"), "a wrong password"),
    )
    .await;
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        20,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 40);
}

/// 1. A success gives back only its own attempt: the owner signing in does
/// not hand an attacker a fresh set of guesses.
#[tokio::test]
async fn signing_in_does_not_reset_an_attackers_count() {
    let app = TestApp::spawn().await;
    app.account("owner@example.com", "the right password").await;
    let form = sign_in_form(&app).await;
    let client = no_redirects();
    let post = |password: &str| {
        client
            .post(app.url("/oauth/sign-in"))
            .header("cookie", &form.cookie)
            .form(&sign_in_fields(&form, "owner@example.com", password))
            .send()
    };
    for _ in 0..4 {
        assert_eq!(
            post("a guess").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        post("the right password").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    // Four failures still count: one more guess, then the lock.
    assert_eq!(
        post("a guess").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post("a guess").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Installs a trigger that makes keeping an idempotent response fail, as a
/// database that is briefly locked right after the action would.
async fn break_keeping_responses(app: &TestApp, broken: bool) {
    use sea_orm::ConnectionTrait;
    let db = &app.app.db;
    let statements: &[&str] = match (on_postgres(), broken) {
        (true, true) => &[
            "CREATE FUNCTION refuse_kept() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'injected: the database is locked'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_kept BEFORE UPDATE ON idempotency_keys \
             FOR EACH ROW EXECUTE FUNCTION refuse_kept()",
        ],
        (true, false) => &[
            "DROP TRIGGER refuse_kept ON idempotency_keys",
            "DROP FUNCTION refuse_kept()",
        ],
        (false, true) => &[
            "CREATE TRIGGER refuse_kept BEFORE UPDATE ON idempotency_keys \
             BEGIN SELECT RAISE(ABORT, 'injected: the database is locked'); END",
        ],
        (false, false) => &["DROP TRIGGER refuse_kept"],
    };
    for sql in statements {
        db.execute_unprepared(sql).await.unwrap();
    }
}

/// 2. The action and its kept response commit together: when keeping the
/// response fails, the action is undone too, and the retry acts once.
#[tokio::test]
async fn an_idempotency_key_never_acts_twice_when_keeping_its_answer_fails() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let create = || {
        app.client
            .post(app.url("/v1/tasks"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "renew-passport-1")
            .json(&json!({"title": "Renew passport"}))
            .send()
    };
    break_keeping_responses(&app, true).await;
    let failed = create().await.unwrap();
    assert_eq!(failed.headers()["retry-after"], "1");
    let refused = problem(failed, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{refused}"
    );
    let listed: Value = app.list_tasks(&user, &[]).await.json().await.unwrap();
    assert_eq!(
        listed["tasks"],
        json!([]),
        "the action was undone with its answer"
    );

    break_keeping_responses(&app, false).await;
    let first = create().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let again = create().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let listed: Value = app.list_tasks(&user, &[]).await.json().await.unwrap();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1, "{listed}");
}

/// 2. Every POST action takes a key: each runs inside the key's transaction
/// (on SQLite that transaction holds the only connection, so an action
/// reaching past it would hang) and replays.
#[tokio::test]
async fn every_post_action_runs_and_replays_under_a_key() {
    let app = TestApp::spawn().await;
    let user = app
        .user_with_scopes(
            "alice@example.com",
            "tasks:read tasks:write webhooks:manage",
        )
        .await;
    let task = app
        .new_task(
            &user,
            json!({"title": "Call the plumber", "due_at": "2099-01-02T09:00:00Z"}),
        )
        .await;
    let number = task["number"].as_i64().unwrap();
    let webhook: Value = app
        .request(
            Method::POST,
            "/v1/webhooks",
            Some(&user.token),
            Some(&json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let actions = [
        (
            "/v1/tasks".to_owned(),
            json!({"title": "Buy milk"}),
            StatusCode::CREATED,
        ),
        (
            format!("/v1/tasks/{number}/complete"),
            Value::Null,
            StatusCode::OK,
        ),
        (
            format!("/v1/tasks/{number}/reopen"),
            Value::Null,
            StatusCode::OK,
        ),
        (
            format!("/v1/tasks/{number}/reminders"),
            json!({"before_due": "PT1H"}),
            StatusCode::CREATED,
        ),
        (
            "/v1/webhooks".to_owned(),
            json!({"url": "http://127.0.0.1:9/other"}),
            StatusCode::CREATED,
        ),
        (
            format!(
                "/v1/webhooks/{}/deliveries/{}/redeliver",
                webhook["id"].as_str().unwrap(),
                uuid::Uuid::now_v7()
            ),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (i, (path, body, status)) in actions.iter().enumerate() {
        let send = || {
            let mut request = app
                .client
                .post(app.url(path))
                .bearer_auth(&user.token)
                .header("idempotency-key", format!("action-{i}"));
            if !body.is_null() {
                request = request.json(body);
            }
            request.send()
        };
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), send())
            .await
            .expect("the action answers")
            .unwrap();
        assert_eq!(first.status(), *status, "{path}");
        let again = send().await.unwrap();
        assert_eq!(again.status(), *status, "{path}");
        assert_eq!(again.headers()["idempotent-replayed"], "true", "{path}");
    }
}

/// 3. A replay is authorised like the original: a token without the
/// operation's scope does not get the first answer (a webhook's secret).
#[tokio::test]
async fn a_replay_needs_the_scope_the_operation_needs() {
    let app = TestApp::spawn().await;
    let manager = app
        .user_with_scopes("alice@example.com", "webhooks:manage")
        .await;
    let reader = app
        .user_with_scopes("alice@example.com", "tasks:read")
        .await;
    let send = |token: &str| {
        app.client
            .post(app.url("/v1/webhooks"))
            .bearer_auth(token)
            .header("idempotency-key", "hook-1")
            .json(&json!({"url": "http://127.0.0.1:9/hook"}))
            .send()
    };
    let created = send(&manager.token).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let replayed = send(&reader.token).await.unwrap();
    assert!(replayed.headers().get("idempotent-replayed").is_none());
    let refused = problem(replayed, StatusCode::FORBIDDEN).await;
    assert!(refused.get("secret").is_none());
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("webhooks:manage")
    );
    // The owner of the scope still gets the replay.
    let again = send(&manager.token).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
}

/// 4. A self-registered client's redirect URI is its own choice: a bad
/// request is shown on a page, never bounced there.
#[tokio::test]
async fn errand_is_not_an_open_redirector_for_self_registered_clients() {
    let app = TestApp::spawn().await;
    let registered: Value = app
        .client
        .post(app.url("/oauth/register"))
        .json(&json!({"client_name": "Totally Errand", "redirect_uris": ["https://evil.example/phish"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let mut browser = Browser::new(&app);
    for bad in [
        "response_type=token",
        "response_type=code&scope=admin",
        "response_type=code&code_challenge=short&code_challenge_method=S256",
        "response_type=code&resource=https://elsewhere.example.com/",
        "response_type=code",
    ] {
        let response = browser
            .get(&format!(
                "/oauth/authorize?{bad}&client_id={}&redirect_uri={}&state=x",
                urlencode(client_id),
                urlencode("https://evil.example/phish")
            ))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(response.headers().get("location").is_none(), "{bad}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("evil.example") && page.contains("without your say"),
            "{page}"
        );
    }
}

/// 5. RFC 6749 §4.1.3: a code from a request that named its redirect URI is
/// only redeemed with that URI named again.
#[tokio::test]
async fn the_token_request_must_name_the_redirect_uri_the_authorization_named() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(
            &authorize_url(&gpt.id, "tasks:read", "s"),
            "ada@example.com",
            "a long password 1",
        )
        .await;
    let redeem = |code: String, redirect: Option<&'static str>| {
        let mut fields = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
        ];
        if let Some(redirect) = redirect {
            fields.push(("redirect_uri", redirect.to_owned()));
        }
        let app = &app;
        let gpt = &gpt;
        async move {
            let borrowed: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(app, "/oauth/token", gpt, ClientAuth::Basic, &borrowed).await
        }
    };
    let code = redirect_params(&browser.decide(&consent, "allow").await)["code"].clone();
    let (status, body) = redeem(code, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri is required")
    );

    // Consent is remembered: the next authorization goes straight back.
    let again = browser
        .get(&authorize_url(&gpt.id, "tasks:read", "s"))
        .await;
    let code = redirect_params(&again)["code"].clone();
    assert_eq!(redeem(code, Some(GPT_CALLBACK)).await.0, StatusCode::OK);

    // Without a redirect_uri in the request (one is registered), none is needed.
    let bare = browser
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={}&scope=tasks:read&state=s",
            gpt.id
        ))
        .await;
    assert_eq!(location(&bare).split('?').next(), Some(GPT_CALLBACK));
    let code = redirect_params(&bare)["code"].clone();
    assert_eq!(redeem(code, None).await.0, StatusCode::OK);
}

/// Submits the sign-up form for `email`; the status and page.
async fn sign_up(browser: &mut Browser<'_>, authorize: &str, email: &str) -> (StatusCode, String) {
    let page = browser.get(authorize).await.text().await.unwrap();
    let return_to = hidden(&page, "return_to");
    let form = browser
        .get(&format!(
            "/oauth/sign-up?return_to={}",
            urlencode(&return_to)
        ))
        .await
        .text()
        .await
        .unwrap();
    let response = browser
        .post(
            "/oauth/sign-up",
            &[
                ("email", email),
                ("password", "another long password"),
                ("csrf", &hidden(&form, "csrf")),
                ("return_to", &return_to),
            ],
        )
        .await;
    (response.status(), response.text().await.unwrap())
}

/// 6. Sign-up does not say who has an account; the inbox does, to its owner.
#[tokio::test]
async fn sign_up_answers_the_same_for_taken_and_new_addresses() {
    let app = TestApp::spawn().await;
    app.account("taken@example.com", "the owner's password")
        .await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let authorize = authorize_url(&gpt.id, "tasks:read", "s");
    let mut browser = Browser::new(&app);
    let (taken_status, taken_page) = sign_up(&mut browser, &authorize, "taken@example.com").await;
    let (new_status, new_page) = sign_up(&mut browser, &authorize, "fresh@example.com").await;
    assert_eq!(taken_status, StatusCode::OK);
    assert_eq!(new_status, taken_status);
    assert_eq!(
        taken_page.replace("taken@example.com", "ADDRESS"),
        new_page.replace("fresh@example.com", "ADDRESS"),
        "the two answers differ in more than the address"
    );

    // The owner of the taken address is told; the new one gets a link.
    let mailbox = app.await_mail(2).await;
    let mails: HashMap<String, Mail> = mailbox
        .iter()
        .map(|raw| Mail::parse(raw))
        .map(|mail| (mail.to.clone(), mail))
        .collect();
    let told = &mails["taken@example.com"];
    assert!(
        told.subject.contains("tried to sign up"),
        "{}",
        told.subject
    );
    assert!(told.link("http").is_none());
    let welcome = &mails["fresh@example.com"];
    assert!(
        welcome
            .link(&app.url("/account/verify-email?token="))
            .is_some()
    );
    // Nothing changed for the owner: their password still works, the
    // stranger's does not.
    let owner = errand::users::store::find_by_email(
        &app.app.db,
        &errand::users::EmailAddress::parse("taken@example.com").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let hash = owner.password_hash.unwrap();
    assert!(errand::secrets::verify_password(
        "the owner's password",
        &hash
    ));
    assert!(!errand::secrets::verify_password(
        "another long password",
        &hash
    ));
}

/// 6. Sign-up is rationed like sign-in: per address and per email.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_up_probes_are_rationed() {
    let app = TestApp::spawn().await;
    let form = sign_in_form(&app).await;
    let cookie = form.cookie.clone();
    let fields = |email: String| {
        vec![
            ("email", email),
            ("password", "a long password 1".to_owned()),
            ("csrf", form.csrf.clone()),
            ("return_to", form.return_to.clone()),
        ]
    };
    let statuses = burst(
        &app,
        "/oauth/sign-up",
        25,
        |_| vec![("cookie", cookie.clone())],
        |i| fields(format!("probe{i}@example.com")),
    )
    .await;
    assert_eq!(count(&statuses, StatusCode::OK), 20, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 5);

    // One inbox is not flooded either, from however many addresses.
    let other = TestApp::spawn_with(AuthSettings {
        trusted_proxy_hops: 1,
        ..AuthSettings::default()
    })
    .await;
    let form = sign_in_form(&other).await;
    let cookie = form.cookie.clone();
    let statuses = burst(
        &other,
        "/oauth/sign-up",
        8,
        |i| {
            vec![
                ("cookie", cookie.clone()),
                ("x-forwarded-for", format!("198.51.100.{i}")),
            ]
        },
        |_| {
            vec![
                ("email", "target@example.com".to_owned()),
                ("password", "a long password 1".to_owned()),
                ("csrf", form.csrf.clone()),
                ("return_to", form.return_to.clone()),
            ]
        },
    )
    .await;
    assert_eq!(count(&statuses, StatusCode::OK), 5, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 3);
    assert_eq!(other.await_mail(5).await.len(), 5);
}

/// 7. The per-user webhook limit holds under concurrent creates.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_webhook_creates_stop_at_the_limit() {
    let app = TestApp::spawn().await;
    let user = app
        .user_with_scopes("alice@example.com", "webhooks:manage")
        .await;
    let creates = (0..40).map(|i| {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/v1/webhooks"),
            user.token.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"url": format!("http://127.0.0.1:9/hook{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    let statuses: Vec<StatusCode> = join_all(creates)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(count(&statuses, StatusCode::CREATED), 10, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 30);
    let listed: Value = app
        .request(Method::GET, "/v1/webhooks", Some(&user.token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 10);
}

/// 8. An error answer is bounded whatever the request: no list of every
/// bad key, no huge name quoted back.
#[tokio::test]
async fn error_answers_do_not_grow_with_the_request() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let mut many = serde_json::Map::new();
    for i in 0..7_000 {
        many.insert(format!("{i:04x}"), json!(1));
    }
    let body = serde_json::to_vec(&Value::Object(many)).unwrap();
    assert!(body.len() > 60_000 && body.len() < 64 * 1024);
    let response = app
        .client
        .post(app.url("/v1/tasks"))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.len() < 16 * 1024, "{} bytes", text.len());
    let refused: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(refused["errors"].as_array().unwrap().len(), 20);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("7000 more invalid fields"),
        "{refused}"
    );

    let mut with_long_key = serde_json::Map::new();
    with_long_key.insert("title".to_owned(), json!("t"));
    with_long_key.insert("k".repeat(60_000), json!(1));
    let response = app.create_task(&user, Value::Object(with_long_key)).await;
    let text = response.text().await.unwrap();
    assert!(text.len() < 4 * 1024, "{} bytes", text.len());
    let long_value = "v".repeat(60_000);
    let response = app
        .create_task(&user, json!({ "title": "t", "priority": long_value }))
        .await;
    let text = response.text().await.unwrap();
    assert!(text.len() < 4 * 1024, "{} bytes", text.len());
}

/// 9. Text that would show something else than it is: refused, saying why.
#[tokio::test]
async fn titles_that_lie_about_themselves_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    for (title, says) in [
        ("\u{200b}", "nothing visible"),
        ("\u{feff}\u{2060}", "nothing visible"),
        (" \u{200d}\u{3164} ", "nothing visible"),
        ("Pay \u{202e}0001$ to Bob", "RIGHT-TO-LEFT OVERRIDE"),
        ("invoice\u{2067}fdp.exe", "RIGHT-TO-LEFT ISOLATE"),
        ("Buy milk\u{2028}and eggs", "single line"),
        ("Buy milk\u{2029}", "single line"),
    ] {
        let refused = problem(
            app.create_task(&user, json!({ "title": title })).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "title", "{title:?}");
        let detail = refused["errors"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{title:?}: {detail}");
    }
    let task = app
        .new_task(&user, json!({ "title": "Renew passport" }))
        .await;
    let number = task["number"].as_i64().unwrap();
    let refused = problem(
        app.update_task(&user, number, json!({ "notes": "Meet at \u{202d}gate 12" }))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "notes");
    // What people write is still accepted: emoji with joiners, other
    // scripts with their marks.
    for title in ["👩\u{200d}💻 Fix the build", "שלום עולם", "Café ☕"] {
        let created = app.create_task(&user, json!({ "title": title })).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{title}");
    }
    // A client's name on the consent page must read as what it is, too.
    let registered = app
        .client
        .post(app.url("/oauth/register"))
        .json(&json!({"client_name": "Errand \u{202e}ppa laiciffo", "redirect_uris": ["https://app.example.com/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::BAD_REQUEST);
    let body: Value = registered.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("RIGHT-TO-LEFT OVERRIDE"),
        "{body}"
    );
}

/// 10. A consent form is bound to the session that shows it: a victim's
/// session with an attacker's own form token is refused.
#[tokio::test]
async fn a_consent_token_from_another_session_is_refused() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let authorize = authorize_url(&gpt.id, "tasks:read", "s");
    let mut attacker = Browser::new(&app);
    let attacker_consent = attacker
        .sign_up_via(&authorize, "mallory@example.com", "mallory's password")
        .await;
    let mut victim = Browser::new(&app);
    victim
        .sign_up_via(&authorize, "victim@example.com", "victim's password")
        .await;
    // The attacker plants every cookie of theirs but the session in the
    // victim's browser (as a sibling subdomain could without `__Host-`).
    for (name, value) in attacker.cookies.clone() {
        if !name.contains("session") {
            victim.cookies.insert(name, value);
        }
    }
    let forged = victim.decide(&attacker_consent, "allow").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("location").is_none());

    // Cookies cover the whole site from one host, HttpOnly, SameSite.
    let response = Browser::new(&app).get(&authorize).await;
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.starts_with("errand_browser="), "{set_cookie}");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
}

/// 10. There is a way to sign out, and it needs the session's own token.
#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let gpt = register(&app, "GPT", &[GrantType::AuthorizationCode], false).await;
    let authorize = authorize_url(&gpt.id, "tasks:read", "s");
    let mut browser = Browser::new(&app);
    let consent = browser
        .sign_up_via(&authorize, "sam@example.com", "sam's long password")
        .await;
    let sign_out = consent.split("/oauth/sign-out").nth(1).unwrap().to_owned();
    let csrf = hidden(&sign_out, "csrf");
    let return_to = hidden(&sign_out, "return_to");
    let forged = browser
        .post(
            "/oauth/sign-out",
            &[("csrf", "made-up"), ("return_to", &return_to)],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let out = browser
        .post(
            "/oauth/sign-out",
            &[("csrf", &csrf), ("return_to", &return_to)],
        )
        .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), return_to);
    let page = browser.get(&return_to).await.text().await.unwrap();
    assert!(page.contains("Sign in to Errand"), "{page}");
    // The old consent form no longer works either.
    assert_eq!(
        browser.decide(&consent, "allow").await.status(),
        StatusCode::FORBIDDEN
    );
}

/// 12. Behind two proxies, each caller is rationed as itself: one attacker
/// cannot lock out everyone behind the same CDN edge, nor escape by
/// writing addresses of their own in front.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behind_two_proxies_callers_are_rationed_one_by_one() {
    let app = TestApp::spawn_with(AuthSettings {
        trusted_proxy_hops: 2,
        ..AuthSettings::default()
    })
    .await;
    let form = sign_in_form(&app).await;
    let cookie = form.cookie.clone();
    let attacker = burst(
        &app,
        "/oauth/sign-in",
        30,
        |i| {
            vec![
                ("cookie", cookie.clone()),
                // Made-up entries in front, then what the CDN and the
                // gateway append: the attacker's address and the edge's.
                (
                    "x-forwarded-for",
                    format!("10.9.9.{i}, 203.0.113.66, 198.51.100.1"),
                ),
            ]
        },
        |i| sign_in_fields(&form, &format!("target{i}@example.com"), "a guess"),
    )
    .await;
    assert_eq!(
        count(&attacker, StatusCode::TOO_MANY_REQUESTS),
        10,
        "{attacker:?}"
    );
    let someone_else = no_redirects()
        .post(app.url("/oauth/sign-in"))
        .header("cookie", &form.cookie)
        .header("x-forwarded-for", "192.0.2.7, 198.51.100.1")
        .form(&sign_in_fields(
            &form,
            "someone@example.com",
            "their password",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(someone_else.status(), StatusCode::UNAUTHORIZED);
}

/// 13. A request id that could forge log fields is not taken.
#[tokio::test]
async fn a_request_id_that_could_forge_log_fields_is_replaced() {
    let app = TestApp::spawn().await;
    for forged in ["id\"=x;status=500", "a status=500", "x}y{"] {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", forged)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, forged);
        assert!(uuid::Uuid::parse_str(echoed).is_ok(), "{echoed}");
    }
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req_01HV3Z-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req_01HV3Z-7");
}

/// 4, again: an operator's client still gets its errors back, with `iss`.
#[tokio::test]
async fn an_operators_client_still_gets_its_errors_back() {
    let app = TestApp::spawn().await;
    let gpt = register_with(
        &app,
        "GPT",
        &[GrantType::AuthorizationCode],
        false,
        &[GPT_CALLBACK],
        "tasks:read",
    )
    .await;
    let response = Browser::new(&app)
        .get(&format!(
            "/oauth/authorize?response_type=token&client_id={}&redirect_uri={}&state=s",
            gpt.id,
            urlencode(GPT_CALLBACK)
        ))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = redirect_params(&response);
    assert_eq!(params["error"], "unsupported_response_type");
    assert_eq!(params["iss"], app.address);
}
