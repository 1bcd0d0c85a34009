use chrono::{Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, fields, problem};

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn numbers(section: &Value) -> Vec<i64> {
    section["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn agenda_splits_open_tasks_into_overdue_today_and_upcoming() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    // UTC keeps "today" predictable: compute its end from now.
    let now = Utc::now();
    let end_of_today = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let later_today = now + (end_of_today - now) / 2;

    app.new_task(
        &alice,
        json!({ "title": "overdue", "due_at": at(Duration::hours(-30)) }),
    )
    .await; // 1
    app.new_task(
        &alice,
        json!({ "title": "today", "due_at": later_today.to_rfc3339() }),
    )
    .await; // 2
    app.new_task(
        &alice,
        json!({ "title": "in 3 days", "due_at": at(Duration::days(3)) }),
    )
    .await; // 3
    app.new_task(
        &alice,
        json!({ "title": "in 10 days", "due_at": at(Duration::days(10)) }),
    )
    .await; // 4
    app.new_task(&alice, json!({ "title": "undated" })).await; // 5
    app.new_task(
        &alice,
        json!({ "title": "done overdue", "due_at": at(Duration::hours(-2)) }),
    )
    .await; // 6
    app.complete_task(&alice, 6).await;

    let response = app.agenda(&alice, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let agenda: Value = response.json().await.unwrap();
    assert_eq!(agenda["timezone"], "UTC");
    assert_eq!(agenda["today"], now.date_naive().to_string());
    assert_eq!(numbers(&agenda["overdue"]), [1]);
    assert_eq!(agenda["overdue"]["total"], 1);
    if later_today > Utc::now() {
        assert_eq!(numbers(&agenda["due_today"]), [2]);
    }
    assert_eq!(numbers(&agenda["upcoming"]), [3]);
}

#[tokio::test]
async fn agenda_days_follow_the_requested_time_zone() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    app.new_task(
        &alice,
        json!({ "title": "soon", "due_at": at(Duration::hours(2)) }),
    )
    .await;

    let agenda: Value = app
        .agenda(&alice, Some("Pacific/Kiritimati"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(agenda["timezone"], "Pacific/Kiritimati");
    let kiritimati_today = Utc::now()
        .with_timezone(&chrono_tz::Pacific::Kiritimati)
        .date_naive();
    assert_eq!(agenda["today"], kiritimati_today.to_string());
    let entry = agenda["due_today"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(agenda["upcoming"]["tasks"].as_array().unwrap())
        .next()
        .cloned()
        .unwrap();
    assert!(
        entry["due_local"].as_str().unwrap().ends_with("+14:00"),
        "{entry}"
    );
}

#[tokio::test]
async fn agenda_sections_are_capped_but_count_everything() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    for i in 0..30 {
        app.new_task(
            &alice,
            json!({ "title": format!("late {i}"), "due_at": at(Duration::hours(-1 - i)) }),
        )
        .await;
    }
    let agenda: Value = app.agenda(&alice, Some("UTC")).await.json().await.unwrap();
    assert_eq!(agenda["overdue"]["total"], 30);
    let listed = numbers(&agenda["overdue"]);
    assert_eq!(listed.len(), 25);
    // Most overdue first.
    assert_eq!(listed[0], 30);
}

#[tokio::test]
async fn an_unknown_time_zone_is_explained() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let body = problem(
        app.agenda(&alice, Some("Paris")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fields(&body), ["tz"]);
    assert!(body["detail"].as_str().unwrap().contains("IANA"));
    // A near miss is refused too (the document lists the exact names), with
    // the spelling to use.
    let body = problem(
        app.agenda(&alice, Some("europe/paris")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("did you mean `Europe/Paris`?"),
        "{body}"
    );
    let ok = app.agenda(&alice, Some("Europe/Paris")).await;
    assert_eq!(ok.status(), StatusCode::OK);
}
