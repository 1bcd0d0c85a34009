//! What keeps one caller or one request from hurting the rest: size limits,
//! the request timeout, rate limits, `Idempotency-Key`; and what operators
//! see: `/metrics`, the request id.

use std::time::Duration;

use errand::config::{HttpSettings, Rate, RateLimitSettings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser, problem};

/// An app where each user may make `requests` an hour.
async fn app_with_user_limit(requests: u32) -> TestApp {
    TestApp::spawn_with_http(HttpSettings {
        rate_limits: RateLimitSettings {
            per_user: Some(Rate {
                requests,
                per: Duration::from_secs(3600),
            }),
            per_client: None,
        },
        ..HttpSettings::default()
    })
    .await
}

async fn post_task(
    app: &TestApp,
    user: &TestUser,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/tasks"))
        .bearer_auth(&user.token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn task_count(app: &TestApp, user: &TestUser) -> usize {
    let page: Value = app.list_tasks(user, &[]).await.json().await.unwrap();
    page["tasks"].as_array().unwrap().len()
}

#[tokio::test]
async fn oversized_urls_headers_and_bodies_are_refused_with_the_limit_named() {
    let app = TestApp::spawn().await;
    let user = app.user("limits@example.com").await;

    let long_query = "q".repeat(errand::server::MAX_URL_BYTES);
    let response = app
        .client
        .get(app.url(&format!("/v1/tasks?search={long_query}")))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::URI_TOO_LONG).await;
    assert!(body["detail"].as_str().unwrap().contains("8192"), "{body}");

    let response = app
        .client
        .get(app.url("/v1/tasks"))
        .bearer_auth(&user.token)
        .header("x-padding", "p".repeat(errand::server::MAX_HEADER_BYTES))
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    assert_eq!(body["type"], "/problems/headers-too-large");

    // Declared too large, and streamed too large without a length: both
    // refused, and nothing was created.
    let big = json!({ "title": "big", "notes": "n".repeat(70 * 1024) });
    let response = post_task(&app, &user, None, &big).await;
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/v1/tasks"))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(task_count(&app, &user).await, 0);
}

#[tokio::test]
async fn a_request_that_outlasts_the_timeout_is_abandoned_with_retry_after() {
    let app = TestApp::spawn_with_http(HttpSettings {
        request_timeout: Duration::from_millis(500),
        ..HttpSettings::default()
    })
    .await;
    let user = app.user("slow@example.com").await;
    // A body that trickles in for two seconds keeps the operation waiting.
    let trickle = futures::stream::unfold(0, |sent| async move {
        if sent == 4 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let piece = if sent == 0 {
            "{\"title\": "
        } else if sent == 3 {
            "\"late\"}"
        } else {
            " "
        };
        Some((Ok::<_, std::io::Error>(piece.as_bytes().to_vec()), sent + 1))
    });
    let started = std::time::Instant::now();
    let response = app
        .client
        .post(app.url("/v1/tasks"))
        .bearer_auth(&user.token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(trickle))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..]),
        "{response:?}"
    );
    let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["type"], "/problems/timed-out");
    assert!(started.elapsed() < Duration::from_millis(1900));
    assert_eq!(task_count(&app, &user).await, 0);
}

#[tokio::test]
async fn each_user_has_a_bucket_and_the_429_says_when_to_come_back() {
    let app = app_with_user_limit(3).await;
    let busy = app.user("busy@example.com").await;
    let calm = app.user("calm@example.com").await;
    for left in [2, 1, 0] {
        let response = app.me(&busy.token).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"user\";q=3;w=3600"
        );
        let standing = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(
            standing.starts_with(&format!("\"user\";r={left};t=")),
            "{standing}"
        );
    }
    let response = app.me(&busy.token).await;
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One request fits again after an interval: 20 minutes at 3 an hour.
    assert!((1190..=1200).contains(&retry), "{retry}");
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/rate-limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 3 every 3600 seconds")
    );
    // A refused request spends nothing, and another user is untouched.
    assert_eq!(
        app.me(&busy.token).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(app.me(&calm.token).await.status(), StatusCode::OK);
    // Unauthenticated requests are not counted against anyone.
    assert_eq!(
        app.client
            .get(app.url("/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"errand_rate_limited_requests_total{limit="user"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_busy_callers_tokens_are_spent_ahead_and_the_limit_still_holds() {
    // 300 an hour: the process takes three tokens at a time from the
    // database and hands them out from memory.
    let app = app_with_user_limit(300).await;
    let user = app.user("busy-bee@example.com").await;
    let mut allowed = 0;
    let mut last_remaining = u64::MAX;
    for _ in 0..310 {
        let response = app.me(&user.token).await;
        if response.status() == StatusCode::OK {
            allowed += 1;
            let standing = response.headers()["ratelimit"].to_str().unwrap().to_owned();
            let remaining: u64 = standing
                .split(';')
                .find_map(|part| part.strip_prefix("r="))
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                remaining < last_remaining,
                "{standing} after {last_remaining}"
            );
            last_remaining = remaining;
        } else {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        }
    }
    assert_eq!(allowed, 300);
    assert_eq!(last_remaining, 0);
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user("retry@example.com").await;
    let body = json!({ "title": "Buy stamps" });
    let first = post_task(&app, &user, Some("3b8a7c1e-key"), &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers().get("location").cloned();
    let first: Value = first.json().await.unwrap();

    let again = post_task(&app, &user, Some("3b8a7c1e-key"), &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers().get("location").cloned(), location);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(task_count(&app, &user).await, 1);

    // The same key with another body is refused, and changes nothing.
    let other = post_task(
        &app,
        &user,
        Some("3b8a7c1e-key"),
        &json!({ "title": "Buy stickers" }),
    )
    .await;
    let refused = problem(other, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["type"], "/problems/idempotency-key-reused");
    assert_eq!(task_count(&app, &user).await, 1);

    // Keys belong to their caller: another user's same key is theirs.
    let peer = app.user("peer@example.com").await;
    let theirs = post_task(&app, &peer, Some("3b8a7c1e-key"), &body).await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(theirs.headers().get("idempotent-replayed").is_none());

    // A validation failure is kept too: the same bad body gets the same 400.
    let bad = json!({ "title": "" });
    let first_bad = post_task(&app, &user, Some("bad-1"), &bad).await;
    assert_eq!(first_bad.status(), StatusCode::BAD_REQUEST);
    let second_bad = post_task(&app, &user, Some("bad-1"), &bad).await;
    assert_eq!(second_bad.headers()["idempotent-replayed"], "true");

    // A key that is not one is a 400 naming the header.
    let response = post_task(&app, &user, Some("has spaces in it"), &body).await;
    let invalid = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(invalid["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(task_count(&app, &user).await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_get_the_first_result_and_one_task() {
    let app = TestApp::spawn().await;
    let user = app.user("double-click@example.com").await;
    let body = json!({ "title": "Pay the rent" });
    let requests = (0..12).map(|_| post_task(&app, &user, Some("rent-2026-12"), &body));
    let responses = futures::future::join_all(requests).await;
    let mut numbers = Vec::new();
    let mut replayed = 0;
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        replayed += usize::from(response.headers().contains_key("idempotent-replayed"));
        let task: Value = response.json().await.unwrap();
        numbers.push(task["number"].clone());
    }
    assert!(numbers.iter().all(|n| *n == numbers[0]), "{numbers:?}");
    assert_eq!(replayed, 11);
    assert_eq!(task_count(&app, &user).await, 1);
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_show_the_outbox_and_pool() {
    let app = TestApp::spawn().await;
    let user = app.user("metrics@example.com").await;
    app.new_task(&user, json!({ "title": "Counted" })).await;
    app.request(Method::GET, "/v1/tasks/999", Some(&user.token), None)
        .await;
    app.client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"errand_http_requests_total{door="http",operation="createTask",status="201"} 1"#,
        r#"errand_http_requests_total{door="http",operation="getTask",status="404"} 1"#,
        r#"errand_http_requests_total{door="http",operation="/.well-known/oauth-authorization-server",status="200"} 1"#,
        r#"errand_http_request_duration_seconds_count{door="http",operation="createTask"} 1"#,
        "# TYPE errand_outbox_backlog_events gauge",
        "# TYPE errand_outbox_publish_latency_seconds histogram",
        r#"errand_db_pool_connections{state="in_use"}"#,
        "errand_db_pool_max_connections",
        "# TYPE errand_reminder_lag_seconds histogram",
        "# TYPE errand_webhook_deliveries_given_up counter",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    // Unknown paths share one label, whatever they are.
    app.client
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    let text = app.metrics().await;
    assert!(
        text.contains(r#"operation="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("/no/such/thing"));
}

#[tokio::test]
async fn published_events_show_in_the_publish_latency() {
    let app = TestApp::spawn().await;
    let user = app.user("relay-metrics@example.com").await;
    app.new_task(&user, json!({ "title": "Relayed" })).await;
    let mut text = String::new();
    for _ in 0..100 {
        text = app.metrics().await;
        if text.contains("errand_outbox_published_events_total 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("errand_outbox_published_events_total 1"),
        "{text}"
    );
    assert!(
        text.contains("errand_outbox_publish_latency_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("errand_outbox_backlog_events 0"), "{text}");
}

#[tokio::test]
async fn the_request_id_is_taken_or_made_and_echoed() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-7f3a");
    // One that could forge log lines is replaced by a fresh id.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
}
