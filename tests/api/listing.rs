use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser, fields, problem};

fn numbers(tasks: &[Value]) -> Vec<i64> {
    tasks
        .iter()
        .map(|t| t["number"].as_i64().unwrap())
        .collect()
}

async fn seed(app: &TestApp, user: &TestUser) {
    for body in [
        json!({ "title": "Buy milk", "due_at": "2026-12-03T09:00:00Z", "tags": ["errands"] }),
        json!({ "title": "File taxes", "notes": "Receipts are in the BLUE folder", "due_at": "2026-12-01T09:00:00Z", "priority": "high" }),
        json!({ "title": "Read a book", "priority": "low" }),
        json!({ "title": "Post letters", "due_at": "2026-12-02T09:00:00Z", "tags": ["errands"], "priority": "high" }),
    ] {
        app.new_task(user, body).await;
    }
    app.complete_task(user, 1).await;
}

#[tokio::test]
async fn default_listing_is_open_tasks_by_due_date_with_undated_last() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    seed(&app, &alice).await;
    let (tasks, cursor) = app.list_page(&alice, &[]).await;
    assert_eq!(numbers(&tasks), [2, 4, 3]);
    assert_eq!(cursor, None);
}

#[tokio::test]
async fn status_filters() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    seed(&app, &alice).await;
    assert_eq!(
        numbers(&app.list_page(&alice, &[("status", "done")]).await.0),
        [1]
    );
    assert_eq!(
        numbers(&app.list_page(&alice, &[("status", "all")]).await.0),
        [2, 4, 1, 3]
    );
}

#[tokio::test]
async fn sort_orders() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    seed(&app, &alice).await;
    let all = ("status", "all");
    assert_eq!(
        numbers(&app.list_page(&alice, &[all, ("sort", "created")]).await.0),
        [4, 3, 2, 1]
    );
    assert_eq!(
        numbers(&app.list_page(&alice, &[all, ("sort", "priority")]).await.0),
        [2, 4, 1, 3]
    );
    assert_eq!(
        numbers(&app.list_page(&alice, &[all, ("sort", "due")]).await.0),
        [2, 4, 1, 3]
    );
}

#[tokio::test]
async fn tag_text_and_due_filters() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    seed(&app, &alice).await;
    let all = ("status", "all");
    assert_eq!(
        numbers(&app.list_page(&alice, &[all, ("tag", "Errands")]).await.0),
        [4, 1]
    );
    // Case-insensitive, in title or notes.
    assert_eq!(
        numbers(&app.list_page(&alice, &[all, ("q", "blue")]).await.0),
        [2]
    );
    assert_eq!(
        numbers(&app.list_page(&alice, &[all, ("q", "BOOK")]).await.0),
        [3]
    );
    // LIKE wildcards are literal.
    assert!(app.list_page(&alice, &[all, ("q", "%")]).await.0.is_empty());
    assert_eq!(
        numbers(
            &app.list_page(&alice, &[all, ("due_before", "2026-12-02T09:00:00Z")])
                .await
                .0
        ),
        [2]
    );
    assert_eq!(
        numbers(
            &app.list_page(&alice, &[all, ("due_after", "2026-12-02T10:00:00+01:00")])
                .await
                .0
        ),
        [4, 1]
    );
    assert_eq!(
        numbers(
            &app.list_page(
                &alice,
                &[
                    all,
                    ("due_after", "2026-12-02T00:00:00Z"),
                    ("due_before", "2026-12-03T00:00:00Z")
                ]
            )
            .await
            .0
        ),
        [4]
    );
}

#[tokio::test]
async fn list_items_carry_a_short_notes_preview() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let notes = format!("First line\n{}", "word ".repeat(400));
    app.new_task(&alice, json!({ "title": "t", "notes": notes }))
        .await;
    let (tasks, _) = app.list_page(&alice, &[]).await;
    let preview = tasks[0]["notes_preview"].as_str().unwrap();
    assert!(preview.starts_with("First line word"));
    assert!(preview.ends_with('…'));
    assert!(preview.chars().count() <= 120);
    assert!(
        tasks[0].get("notes").is_none(),
        "listings do not carry full notes"
    );
}

#[tokio::test]
async fn invalid_list_parameters_are_named() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for (name, value, hint) in [
        ("status", "closed", "open, done, all"),
        ("sort", "title", "due, created, priority"),
        ("limit", "0", "1 to 100"),
        ("limit", "101", "1 to 100"),
        ("limit", "ten", "1 to 100"),
        ("tag", "no spaces", "a-z"),
        ("due_before", "friday", "RFC 3339"),
        ("due_after", "2026-11-27", "add a time"),
        ("cursor", "garbage", "pass next_cursor exactly"),
    ] {
        let response = app.list_tasks(&alice, &[(name, value)]).await;
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(fields(&body), [name], "{name}={value}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(hint), "{name}={value}: {detail}");
    }
    let long = "q".repeat(201);
    let body = problem(
        app.list_tasks(&alice, &[("q", long.as_str())]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&body), ["q"]);
}

#[tokio::test]
async fn a_cursor_cannot_be_reused_with_other_filters() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for i in 0..3 {
        app.new_task(&alice, json!({ "title": format!("t{i}") }))
            .await;
    }
    let (_, cursor) = app.list_page(&alice, &[("limit", "1")]).await;
    let cursor = cursor.unwrap();
    let body = problem(
        app.list_tasks(
            &alice,
            &[("limit", "1"), ("sort", "created"), ("cursor", &cursor)],
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("other filters"));
}

/// Pages through every sort while another writer keeps adding tasks: each
/// task that existed at the start is seen exactly once.
#[tokio::test]
async fn paging_sees_every_task_once_while_tasks_are_added() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for i in 0..25 {
        let due = if i % 3 == 0 {
            Value::Null
        } else {
            json!(format!("2026-12-{:02}T09:00:00Z", 1 + i % 5))
        };
        let priority = ["low", "normal", "high"][i % 3];
        app.new_task(
            &alice,
            json!({ "title": format!("seed {i}"), "due_at": due, "priority": priority }),
        )
        .await;
    }
    let seeded: BTreeSet<i64> = (1..=25).collect();

    for sort in ["due", "created", "priority"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut query = vec![("limit", "4".to_owned()), ("sort", sort.to_owned())];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.clone()));
            }
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (tasks, next) = app.list_page(&alice, &query).await;
            assert!(tasks.len() <= 4);
            seen.extend(numbers(&tasks));
            pages += 1;
            // A concurrent writer adds tasks between pages, some sorting
            // before the cursor and some after it.
            app.new_task(
                &alice,
                json!({ "title": format!("added during {sort} page {pages}"), "due_at": "2026-12-03T09:00:00Z", "priority": "high" }),
            )
            .await;
            app.new_task(
                &alice,
                json!({ "title": format!("undated during {sort} page {pages}") }),
            )
            .await;
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages < 100, "paging does not end");
        }
        assert!(pages > 2, "{sort}: more than two pages");
        let unique: BTreeSet<i64> = seen.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{sort}: a task was shown twice: {seen:?}"
        );
        assert!(
            seeded.is_subset(&unique),
            "{sort}: a seeded task was skipped: {seen:?}"
        );
    }
}

/// The largest page (100 tasks with every field at its maximum, in the
/// characters that JSON escapes) stays under ChatGPT's 100,000 characters,
/// and paging still reaches every task.
#[tokio::test]
async fn a_full_page_of_maximal_tasks_stays_under_the_response_limit() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let title = "\"".repeat(200);
    let notes = "\\".repeat(5_000);
    let tags: Vec<String> = (0..10).map(|i| format!("{i}{}", "x".repeat(31))).collect();
    for _ in 0..110 {
        app.new_task(
            &alice,
            json!({ "title": title, "notes": notes, "due_at": "2026-12-01T09:00:00+01:00", "priority": "high", "tags": tags }),
        )
        .await;
    }
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut query = vec![("limit", "100".to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let response = app
            .list_tasks(
                &alice,
                &query
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect::<Vec<_>>(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        assert!(
            text.chars().count() < 100_000,
            "a page is {} characters",
            text.chars().count()
        );
        let page: Value = serde_json::from_str(&text).unwrap();
        seen += page["tasks"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 110);

    // The agenda's largest answer is bounded too.
    let text = app
        .agenda(&alice, Some("Europe/Paris"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.chars().count() < 100_000);
    // And so is one task with maximal notes.
    let text = app.get_task(&alice, 1).await.text().await.unwrap();
    assert!(text.chars().count() < 100_000);
}
