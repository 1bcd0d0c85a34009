//! One user never reaches another's tasks: every task operation on someone
//! else's task number answers 404, exactly as for a number that does not
//! exist, and changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, problem};

#[tokio::test]
async fn every_task_operation_is_confined_to_its_owner() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let original = app
        .new_task(&alice, json!({ "title": "Alice's secret", "notes": "private", "due_at": "2026-12-01T09:00:00Z", "tags": ["secret"] }))
        .await;

    // Mallory has no task 1 of her own, so every attempt is a plain 404.
    problem(app.get_task(&mallory, 1).await, StatusCode::NOT_FOUND).await;
    problem(
        app.update_task(&mallory, 1, json!({ "title": "pwned" }))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(app.complete_task(&mallory, 1).await, StatusCode::NOT_FOUND).await;
    problem(app.reopen_task(&mallory, 1).await, StatusCode::NOT_FOUND).await;
    problem(app.delete_task(&mallory, 1).await, StatusCode::NOT_FOUND).await;

    // Listings, search, tag filters and the agenda show her nothing of Alice's.
    for query in [
        vec![("status", "all")],
        vec![("q", "secret")],
        vec![("tag", "secret")],
    ] {
        let (tasks, _) = app.list_page(&mallory, &query).await;
        assert!(tasks.is_empty(), "{query:?}");
    }
    let agenda: Value = app.agenda(&mallory, None).await.json().await.unwrap();
    for section in ["overdue", "due_today", "upcoming"] {
        assert_eq!(agenda[section]["total"], 0);
    }

    // When Mallory has a task 1 of her own, the same calls touch only hers.
    app.new_task(&mallory, json!({ "title": "Mallory's" }))
        .await;
    let hers: Value = app
        .update_task(&mallory, 1, json!({ "title": "Mallory's edit" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hers["title"], "Mallory's edit");
    app.complete_task(&mallory, 1).await;
    assert_eq!(
        app.delete_task(&mallory, 1).await.status(),
        StatusCode::NO_CONTENT
    );

    let untouched: Value = app.get_task(&alice, 1).await.json().await.unwrap();
    assert_eq!(untouched, original);
}
