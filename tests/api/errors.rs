use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{TestApp, fields, on_postgres, problem};

async fn post_raw(
    app: &TestApp,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/tasks"))
        .bearer_auth(token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn malformed_json_says_where() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(
        post_raw(
            &app,
            &alice.token,
            Some("application/json"),
            r#"{"title": "x",}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["type"], "/problems/malformed-json");
    assert!(
        body["detail"].as_str().unwrap().contains("line 1 column"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_or_is_empty_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(
        post_raw(&app, &alice.token, Some("application/json"), "[1, 2]").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("must be a JSON object, not an array")
    );
    let body = problem(
        post_raw(&app, &alice.token, Some("application/json"), "").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("is empty"));
}

#[tokio::test]
async fn an_unknown_field_is_named_with_the_field_probably_meant() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(
        app.create_task(
            &alice,
            json!({ "title": "t", "dueAt": "2026-11-27T09:00:00Z", "colour": "red" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&body), ["colour", "dueAt"]);
    let due = body["errors"][1]["detail"].as_str().unwrap();
    assert!(due.contains("did you mean `due_at`?"), "{due}");
    let colour = body["errors"][0]["detail"].as_str().unwrap();
    assert!(
        colour.contains("Known fields: title, notes, due_at, priority, tags"),
        "{colour}"
    );
    assert!(!colour.contains("did you mean"));
    let body = problem(
        app.create_task(&alice, json!({ "titel": "t" })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("did you mean `title`?"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_json_types_are_named() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(&alice, json!({ "title": "t" })).await;
    let body = problem(
        app.update_task(&alice, 1, json!({ "due_at": 1700000000 }))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&body), ["due_at"]);
    assert!(body["detail"].as_str().unwrap().contains("RFC 3339"));
    let body = problem(
        app.create_task(&alice, json!({ "title": ["t"] })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&body), ["title"]);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let big = json!({ "title": "t", "notes": "x".repeat(70 * 1024) }).to_string();
    let body = problem(
        post_raw(&app, &alice.token, Some("application/json"), big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(body["type"], "/problems/payload-too-large");
    assert!(body["detail"].as_str().unwrap().contains("64 KiB"));

    // Without a Content-Length (chunked), the limit holds while reading.
    let chunks = futures::stream::iter((0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let response = post_raw(
        &app,
        &alice.token,
        Some("application/json"),
        reqwest::Body::wrap_stream(chunks),
    )
    .await;
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    let (tasks, _) = app.list_page(&alice, &[("status", "all")]).await;
    assert!(tasks.is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(
        post_raw(&app, &alice.token, Some("text/plain"), r#"{"title": "t"}"#).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json")
    );
    problem(
        post_raw(&app, &alice.token, None, r#"{"title": "t"}"#).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(
        app.request(Method::GET, "/v1/nothing", Some(&alice.token), None)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("/openapi.json"));
    problem(
        app.request(Method::PUT, "/v1/tasks", Some(&alice.token), None)
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}

/// RFC 9110: a 405 says which methods the path does support.
#[tokio::test]
async fn a_wrong_method_is_told_the_methods_the_path_allows() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for (method, path, allowed) in [
        ("PUT", "/v1/tasks", "GET, HEAD, POST"),
        ("TRACE", "/v1/me", "GET, HEAD"),
        ("POST", "/v1/tasks/12", "GET, HEAD, PATCH, DELETE"),
        ("OPTIONS", "/v1/tasks/12/complete", "POST"),
        ("PUT", "/oauth/token", "POST"),
        ("DELETE", "/oauth/sign-up", "GET, HEAD, POST"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("POST", "/problems/not-found", "GET, HEAD"),
    ] {
        let response = app
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                Some(&alice.token),
                None,
            )
            .await;
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allow.as_deref(), Some(allowed), "{method} {path}");
        let body = problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert!(body["detail"].as_str().unwrap().contains(allowed), "{body}");
    }
}

/// Parameter errors speak of the parameter, never of internal type names.
#[tokio::test]
async fn parameter_errors_do_not_leak_internal_names() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for (path, field) in [
        ("/v1/tasks?limit=0", "limit"),
        ("/v1/tasks?status=closed", "status"),
        ("/v1/tasks?due_before=tomorrow", "due_before"),
        ("/v1/agenda?tz=", "tz"),
    ] {
        let body = problem(
            app.request(Method::GET, path, Some(&alice.token), None)
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(fields(&body), [field], "{path}");
        let text = body.to_string();
        assert!(
            !text.contains("optional_") && !text.contains("occurred while parsing"),
            "{path}: {text}"
        );
    }
}

#[tokio::test]
async fn problem_types_are_documented_at_their_uri() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/problems/invalid-request"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("what would be accepted")
    );
    problem(
        app.client
            .get(app.url("/problems/nope"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn responses_carry_a_request_id_and_task_data_is_not_cached() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let response = app
        .client
        .get(app.url("/v1/tasks"))
        .bearer_auth(&alice.token)
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-123");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(generated.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    assert_eq!(app.get_json("/readyz").await["status"], "ok");
}

/// A database that cannot answer is a 503 the caller can retry, on the HTTP
/// door and as an MCP tool error; readiness says so without hanging; the app
/// recovers by itself and keeps exactly what it acknowledged.
#[tokio::test]
async fn a_database_that_cannot_answer_is_a_503_to_retry_and_nothing_acknowledged_is_lost() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let mcp_token = app
        .user_for(
            "alice@example.com",
            "tasks:read tasks:write",
            errand::auth::Resource::Mcp,
        )
        .await
        .token;
    let before = app.create_task(&alice, json!({"title": "Before"})).await;
    assert_eq!(before.status(), StatusCode::CREATED);

    let outage = app.take_database_away().await;
    let refused = app.create_task(&alice, json!({"title": "During"})).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "2");
    let body = problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("/problems/unavailable"),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Retry in 2 seconds"),
        "{body}"
    );
    let tool = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&mcp_token)
        .header("accept", "application/json")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "createTask", "arguments": {"title": "During, by MCP"}}}))
        .send()
        .await
        .unwrap();
    // The token's check needs the database too, so the endpoint itself may
    // answer 503; if the check got through, the tool's error says to retry.
    if tool.status() == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(tool.headers()["retry-after"], "2");
    } else {
        assert_eq!(tool.status(), StatusCode::OK);
        let result = &tool.json::<serde_json::Value>().await.unwrap()["result"];
        assert_eq!(result["isError"], true, "{result}");
        let text = result["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("Retry in 2 seconds"), "{text}");
    }
    if on_postgres() {
        // Readiness answers, and says no, within its own bound (SQLite's
        // reads go on under another writer's lock, so it stays ready).
        let ready = app
            .client
            .get(app.url("/readyz"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .expect("readiness answers while the database is away");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.headers()["retry-after"], "2");
    }

    outage.restore().await;
    // Without a restart: the pool makes new connections as they are asked for.
    let mut after = app.create_task(&alice, json!({"title": "After"})).await;
    for _ in 0..50 {
        if after.status() == StatusCode::CREATED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = app.create_task(&alice, json!({"title": "After"})).await;
    }
    assert_eq!(after.status(), StatusCode::CREATED);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let listed: serde_json::Value = app.list_tasks(&alice, &[]).await.json().await.unwrap();
    let titles: Vec<&str> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.contains(&"Before") && titles.contains(&"After"),
        "{titles:?}"
    );
}
