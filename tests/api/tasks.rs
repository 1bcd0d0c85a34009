use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, fields, problem};

#[tokio::test]
async fn create_returns_the_task_with_defaults_and_location() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;

    let response = app
        .create_task(&alice, json!({ "title": "  Renew passport " }))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = response.json().await.unwrap();

    assert_eq!(location, app.url("/v1/tasks/1"));
    assert_eq!(task["number"], 1);
    assert_eq!(task["title"], "Renew passport");
    assert_eq!(task["status"], "open");
    assert_eq!(task["priority"], "normal");
    assert_eq!(task["notes"], Value::Null);
    assert_eq!(task["due_at"], Value::Null);
    assert_eq!(task["completed_at"], Value::Null);
    assert_eq!(task["tags"], json!([]));
    assert_eq!(task["version"], 1);
    assert!(uuid::Uuid::parse_str(task["id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn create_keeps_every_field_normalised() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;

    let task = app
        .new_task(
            &alice,
            json!({
                "title": "Call the bank",
                "notes": "Ask about the fee.\nBring the letter.",
                "due_at": "2026-11-27T09:00:00+01:00",
                "priority": "high",
                "tags": ["Finance", "calls", "finance"]
            }),
        )
        .await;
    assert_eq!(task["notes"], "Ask about the fee.\nBring the letter.");
    assert_eq!(task["due_at"], "2026-11-27T08:00:00Z");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["tags"], json!(["calls", "finance"]));

    let fetched: Value = app.get_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(fetched, task);
}

#[tokio::test]
async fn create_accepts_null_for_optional_fields() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let task = app
        .new_task(
            &alice,
            json!({ "title": "t", "notes": null, "due_at": null, "priority": null, "tags": null }),
        )
        .await;
    assert_eq!(task["priority"], "normal");
    assert_eq!(task["due_at"], Value::Null);
}

#[tokio::test]
async fn numbers_count_up_per_user_and_are_never_reused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;

    for expected in 1..=3 {
        let task = app
            .new_task(&alice, json!({ "title": format!("a{expected}") }))
            .await;
        assert_eq!(task["number"], expected);
    }
    assert_eq!(
        app.new_task(&bob, json!({ "title": "b1" })).await["number"],
        1
    );

    assert_eq!(
        app.delete_task(&alice, 3).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.new_task(&alice, json!({ "title": "a4" })).await["number"],
        4
    );
}

#[tokio::test]
async fn concurrent_creates_by_one_user_get_consecutive_unique_numbers() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;

    let creates = (0..24).map(|i| app.create_task(&alice, json!({ "title": format!("task {i}") })));
    let responses = futures::future::join_all(creates).await;
    let mut numbers = BTreeSet::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        let task: Value = response.json().await.unwrap();
        assert!(
            numbers.insert(task["number"].as_i64().unwrap()),
            "duplicate number"
        );
    }
    assert_eq!(numbers, (1..=24).collect::<BTreeSet<i64>>());
}

#[tokio::test]
async fn get_unknown_task_is_a_404_that_says_what_to_do() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(app.get_task(&alice, 7).await, StatusCode::NOT_FOUND).await;
    assert_eq!(body["type"], "/problems/not-found");
    assert!(body["detail"].as_str().unwrap().contains("listTasks"));
}

#[tokio::test]
async fn update_changes_only_the_fields_sent_and_bumps_the_version() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(
        &alice,
        json!({ "title": "Old", "notes": "keep me", "due_at": "2026-12-01T10:00:00Z", "tags": ["a"] }),
    )
    .await;

    let response = app
        .update_task(&alice, 1, json!({ "title": "New", "priority": "low" }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let task: Value = response.json().await.unwrap();
    assert_eq!(task["title"], "New");
    assert_eq!(task["priority"], "low");
    assert_eq!(task["notes"], "keep me");
    assert_eq!(task["due_at"], "2026-12-01T10:00:00Z");
    assert_eq!(task["tags"], json!(["a"]));
    assert_eq!(task["version"], 2);

    let fetched: Value = app.get_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(fetched, task);
}

#[tokio::test]
async fn update_with_null_clears_due_at_notes_and_tags() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(
        &alice,
        json!({ "title": "t", "notes": "n", "due_at": "2026-12-01T10:00:00Z", "tags": ["a", "b"] }),
    )
    .await;

    let task: Value = app
        .update_task(
            &alice,
            1,
            json!({ "due_at": null, "notes": null, "tags": null }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["due_at"], Value::Null);
    assert_eq!(task["notes"], Value::Null);
    assert_eq!(task["tags"], json!([]));
    assert_eq!(task["title"], "t");
}

#[tokio::test]
async fn update_replaces_the_tag_list() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(&alice, json!({ "title": "t", "tags": ["a", "b"] }))
        .await;
    let task: Value = app
        .update_task(&alice, 1, json!({ "tags": ["C", "b"] }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["tags"], json!(["b", "c"]));
    let (listed, _) = app.list_page(&alice, &[("tag", "a")]).await;
    assert!(listed.is_empty(), "the old tag no longer matches");
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_version() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(&alice, json!({ "title": "Same" })).await;
    let task: Value = app
        .update_task(&alice, 1, json!({ "title": "Same" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(task["version"], 1);
}

#[tokio::test]
async fn update_refuses_an_empty_change_and_null_title_or_priority() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(&alice, json!({ "title": "t" })).await;

    let body = problem(
        app.update_task(&alice, 1, json!({})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("at least one of"));

    let body = problem(
        app.update_task(&alice, 1, json!({ "title": null, "priority": null }))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&body), ["title", "priority"]);

    let unchanged: Value = app.get_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(unchanged["title"], "t");
    assert_eq!(unchanged["version"], 1);
}

#[tokio::test]
async fn update_of_unknown_task_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    problem(
        app.update_task(&alice, 9, json!({ "title": "x" })).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn complete_and_reopen_are_idempotent() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(&alice, json!({ "title": "t" })).await;

    let done: Value = app.complete_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(done["status"], "done");
    assert!(done["completed_at"].is_string());
    assert_eq!(done["version"], 2);

    let again = app.complete_task(&alice, 1).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, done, "completing twice changes nothing");

    let open: Value = app.reopen_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(open["status"], "open");
    assert_eq!(open["completed_at"], Value::Null);
    assert_eq!(open["version"], 3);
    let open_again: Value = app.reopen_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(open_again, open);

    problem(app.complete_task(&alice, 2).await, StatusCode::NOT_FOUND).await;
    problem(app.reopen_task(&alice, 2).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn delete_removes_the_task_and_a_second_delete_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(&alice, json!({ "title": "t", "tags": ["x"] }))
        .await;

    let response = app.delete_task(&alice, 1).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    problem(app.get_task(&alice, 1).await, StatusCode::NOT_FOUND).await;
    problem(app.delete_task(&alice, 1).await, StatusCode::NOT_FOUND).await;
    let (listed, _) = app
        .list_page(&alice, &[("status", "all"), ("tag", "x")])
        .await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn every_validation_rule_of_create_is_enforced_and_named() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "title", "is required"),
        (json!({ "title": "" }), "title", "must not be blank"),
        (json!({ "title": "   " }), "title", "must not be blank"),
        (json!({ "title": "x".repeat(201) }), "title", "at most 200"),
        (json!({ "title": "two\nlines" }), "title", "single line"),
        (json!({ "title": 5 }), "title", "expected a string"),
        (
            json!({ "title": "t", "notes": "n".repeat(5001) }),
            "notes",
            "at most 5000",
        ),
        (
            json!({ "title": "t", "notes": "bad \u{0007} bell" }),
            "notes",
            "control characters",
        ),
        (
            json!({ "title": "t", "due_at": "tomorrow" }),
            "due_at",
            "RFC 3339",
        ),
        (
            json!({ "title": "t", "due_at": "2026-11-27" }),
            "due_at",
            "add a time",
        ),
        (
            json!({ "title": "t", "due_at": "2026-11-27T09:00:00" }),
            "due_at",
            "offset is missing",
        ),
        (
            json!({ "title": "t", "priority": "urgent" }),
            "priority",
            "low, normal, high",
        ),
        (
            json!({ "title": "t", "tags": "home" }),
            "tags",
            "expected a sequence",
        ),
        (
            json!({ "title": "t", "tags": ["ok", "not ok"] }),
            "tags[1]",
            "a-z, 0-9",
        ),
        (
            json!({ "title": "t", "tags": ["x".repeat(33)] }),
            "tags[0]",
            "1 to 32",
        ),
        (json!({ "title": "t", "tags": [""] }), "tags[0]", "1 to 32"),
        (
            json!({ "title": "t", "tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
            "tags",
            "at most 10",
        ),
        // Limits apply to what is sent, as the schema states them.
        (
            json!({ "title": "t", "tags": vec!["errands"; 11] }),
            "tags",
            "at most 10",
        ),
        (
            json!({ "title": "t", "tags": [" x "] }),
            "tags[0]",
            "a-z, 0-9",
        ),
        (
            json!({ "title": "t", "tags": ["\u{212a}"] }),
            "tags[0]",
            "a-z, 0-9",
        ),
        (
            json!({ "title": "\tIndented" }),
            "title",
            "without control characters",
        ),
        (
            json!({ "title": format!("{} ", "x".repeat(200)) }),
            "title",
            "got 201",
        ),
        (
            json!({ "title": "t", "notes": "bell \u{7}" }),
            "notes",
            "control characters",
        ),
        (
            json!({ "title": "t", "due_at": "2026-11-27 09:00:00Z" }),
            "due_at",
            "RFC 3339",
        ),
        (
            json!({ "title": "t", "due_at": "9999-12-31T23:00:00-05:00" }),
            "due_at",
            "between the years",
        ),
    ];
    for (body, field, hint) in cases {
        let response = app.create_task(&alice, body.clone()).await;
        let problem = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["type"], "/problems/invalid-request", "{body}");
        assert_eq!(fields(&problem), [field], "{body}: {problem}");
        let detail = problem["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(hint),
            "{body}: `{detail}` should mention `{hint}`"
        );
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }
    let (tasks, _) = app.list_page(&alice, &[("status", "all")]).await;
    assert!(tasks.is_empty(), "no invalid create stored anything");
}

#[tokio::test]
async fn title_limits_count_characters_not_bytes() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let task = app
        .new_task(&alice, json!({ "title": "é".repeat(200) }))
        .await;
    assert_eq!(task["title"].as_str().unwrap().chars().count(), 200);
}

#[tokio::test]
async fn path_numbers_must_be_positive_whole_numbers() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for bad in ["0", "-1", "abc", "1.5"] {
        let response = app
            .request(
                reqwest::Method::GET,
                &format!("/v1/tasks/{bad}"),
                Some(&alice.token),
                None,
            )
            .await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(fields(&body), ["number"], "{bad}");
        assert!(body["detail"].as_str().unwrap().contains("task number"));
    }
}
