//! Reminders: set at a time or before the due time, following the due time,
//! fired once within seconds (late when Errand was down), cancelled with
//! their task, and every change an event.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::common::{EventReader, Replica, TestApp, TestUser, problem};

fn at(offset: chrono::TimeDelta) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

async fn create_reminder(app: &TestApp, user: &TestUser, number: i64, body: Value) -> Response {
    app.request(
        Method::POST,
        &format!("/v1/tasks/{number}/reminders"),
        Some(&user.token),
        Some(&body),
    )
    .await
}

async fn reminders(app: &TestApp, user: &TestUser, task: Option<i64>) -> Vec<Value> {
    let path = match task {
        Some(number) => format!("/v1/reminders?task={number}"),
        None => "/v1/reminders".to_owned(),
    };
    let response = app
        .request(Method::GET, &path, Some(&user.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["reminders"].as_array().unwrap().clone()
}

/// Waits (up to `limit`) until the task's reminders all left `pending`.
async fn settled(app: &TestApp, user: &TestUser, number: i64, limit: Duration) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let list = reminders(app, user, Some(number)).await;
        if list.iter().all(|r| r["status"] != "pending") || started.elapsed() > limit {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_reminder_fires_once_within_seconds_of_its_time_as_an_event() {
    let app = TestApp::spawn().await;
    let reader = EventReader::new(&app);
    let user = app.user("remind@example.com").await;
    let task = app.new_task(&user, json!({"title": "Call the bank"})).await;
    let number = task["number"].as_i64().unwrap();

    let response = create_reminder(
        &app,
        &user,
        number,
        json!({"remind_at": at(chrono::TimeDelta::seconds(2))}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "pending");
    assert_eq!(created["task_number"], number);
    assert_eq!(created["before_due"], Value::Null);

    let list = settled(&app, &user, number, Duration::from_secs(15)).await;
    assert_eq!(list.len(), 1);
    let fired = &list[0];
    assert_eq!(fired["status"], "fired");
    assert_eq!(fired["late"], false);
    let lag = time(&fired["fired_at"]) - time(&fired["remind_at"]);
    assert!(
        lag <= chrono::TimeDelta::seconds(5),
        "fired {lag} after its time"
    );

    let events = reader.read(3, Duration::from_secs(30)).await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["task.created", "reminder.scheduled", "reminder.due"]
    );
    let due = &events[2].event;
    assert_eq!(events[2].key, task["id"].as_str().unwrap(), "keyed by task");
    assert_eq!(due["data"]["reminder"]["id"], created["id"]);
    assert_eq!(due["data"]["reminder"]["status"], "fired");
    assert_eq!(due["data"]["user_id"], user.id.to_string());
    assert!(
        reader.rest(Duration::from_secs(2)).await.is_empty(),
        "fired once"
    );
    // Fired reminders leave the upcoming list.
    assert!(reminders(&app, &user, None).await.is_empty());
}

#[tokio::test]
async fn a_reminder_before_the_due_time_follows_it_and_goes_when_it_goes() {
    let app = TestApp::spawn().await;
    let user = app.user("relative@example.com").await;
    let due = Utc::now() + chrono::TimeDelta::hours(5);
    let task = app
        .new_task(
            &user,
            json!({"title": "Dentist", "due_at": due.to_rfc3339_opts(SecondsFormat::Secs, true)}),
        )
        .await;
    let number = task["number"].as_i64().unwrap();

    let created: Value = create_reminder(&app, &user, number, json!({"before_due": "pt90m"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["before_due"], "PT1H30M", "canonical form");
    assert_eq!(
        time(&created["remind_at"]),
        time(&task["due_at"]) - chrono::TimeDelta::minutes(90)
    );

    let later = due + chrono::TimeDelta::days(1);
    app.update_task(
        &user,
        number,
        json!({"due_at": later.to_rfc3339_opts(SecondsFormat::Secs, true)}),
    )
    .await;
    let moved = &reminders(&app, &user, Some(number)).await[0];
    assert_eq!(
        time(&moved["remind_at"]),
        time(&json!(later.to_rfc3339_opts(SecondsFormat::Secs, true)))
            - chrono::TimeDelta::minutes(90)
    );
    assert_eq!(moved["status"], "pending");

    app.update_task(&user, number, json!({"due_at": null}))
        .await;
    let gone = &reminders(&app, &user, Some(number)).await[0];
    assert_eq!(
        gone["status"], "cancelled",
        "nothing left to count back from"
    );
}

#[tokio::test]
async fn bad_reminders_are_refused_with_what_to_send_instead() {
    let app = TestApp::spawn().await;
    let user = app.user("badreminder@example.com").await;
    let undated = app.new_task(&user, json!({"title": "Someday"})).await;
    let number = undated["number"].as_i64().unwrap();

    let cases = [
        (json!({"before_due": "1h"}), "PT1H"),
        (json!({"before_due": "P1M"}), "month"),
        (
            json!({"remind_at": at(chrono::TimeDelta::hours(-2))}),
            "passed",
        ),
        (
            json!({"remind_at": at(chrono::TimeDelta::hours(1)), "before_due": "PT1H"}),
            "not both",
        ),
        (json!({}), "remind_at"),
        (json!({"remind_at": null, "before_due": null}), "remind_at"),
    ];
    for (body, hint) in cases {
        let response = create_reminder(&app, &user, number, body.clone()).await;
        let refused = problem(response, StatusCode::BAD_REQUEST).await;
        let text = refused.to_string();
        assert!(text.contains(hint), "{body}: {text}");
    }

    let response = create_reminder(&app, &user, number, json!({"before_due": "PT1H"})).await;
    let conflict = problem(response, StatusCode::CONFLICT).await;
    assert!(conflict["detail"].as_str().unwrap().contains("no due time"));

    let response = create_reminder(
        &app,
        &user,
        999,
        json!({"remind_at": at(chrono::TimeDelta::hours(1))}),
    )
    .await;
    problem(response, StatusCode::NOT_FOUND).await;

    app.complete_task(&user, number).await;
    let response = create_reminder(
        &app,
        &user,
        number,
        json!({"remind_at": at(chrono::TimeDelta::hours(1))}),
    )
    .await;
    let conflict = problem(response, StatusCode::CONFLICT).await;
    assert!(conflict["detail"].as_str().unwrap().contains("reopenTask"));
    assert!(
        reminders(&app, &user, Some(number)).await.is_empty(),
        "nothing was kept"
    );
}

#[tokio::test]
async fn cancelling_is_safe_to_repeat_and_limited_to_the_owner() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let other = app.user("other@example.com").await;
    let task = app.new_task(&owner, json!({"title": "Mine"})).await;
    let number = task["number"].as_i64().unwrap();
    let reminder: Value = create_reminder(
        &app,
        &owner,
        number,
        json!({"remind_at": at(chrono::TimeDelta::hours(3))}),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!("/v1/reminders/{}", reminder["id"].as_str().unwrap());

    let stolen = app
        .request(Method::DELETE, &path, Some(&other.token), None)
        .await;
    problem(stolen, StatusCode::NOT_FOUND).await;
    assert!(reminders(&app, &other, None).await.is_empty());
    assert_eq!(reminders(&app, &owner, None).await.len(), 1);

    for _ in 0..2 {
        let response = app
            .request(Method::DELETE, &path, Some(&owner.token), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "cancelled");
    }
    assert!(reminders(&app, &owner, None).await.is_empty());

    let bad = app
        .request(
            Method::DELETE,
            "/v1/reminders/not-an-id",
            Some(&owner.token),
            None,
        )
        .await;
    let refused = problem(bad, StatusCode::BAD_REQUEST).await;
    assert!(refused.to_string().contains("reminder_id"));
}

#[tokio::test]
async fn completing_or_deleting_a_task_cancels_its_reminders() {
    let app = TestApp::spawn().await;
    let reader = EventReader::new(&app);
    let user = app.user("cancelwithtask@example.com").await;
    let done = app.new_task(&user, json!({"title": "Finish"})).await;
    let gone = app.new_task(&user, json!({"title": "Drop"})).await;
    for task in [&done, &gone] {
        let number = task["number"].as_i64().unwrap();
        let response = create_reminder(
            &app,
            &user,
            number,
            json!({"remind_at": at(chrono::TimeDelta::hours(2))}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let agenda: Value = app.agenda(&user, Some("UTC")).await.json().await.unwrap();
    assert_eq!(
        agenda["reminders"].as_array().unwrap().len(),
        2,
        "on the agenda"
    );

    app.complete_task(&user, done["number"].as_i64().unwrap())
        .await;
    app.delete_task(&user, gone["number"].as_i64().unwrap())
        .await;
    let left = reminders(&app, &user, Some(done["number"].as_i64().unwrap())).await;
    assert_eq!(left[0]["status"], "cancelled");
    assert!(reminders(&app, &user, None).await.is_empty());

    let events = reader.read(8, Duration::from_secs(30)).await;
    let of = |task: &Value| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.key == task["id"].as_str().unwrap())
            .map(|e| e.event["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        of(&done),
        [
            "task.created",
            "reminder.scheduled",
            "task.completed",
            "reminder.cancelled"
        ]
    );
    assert_eq!(
        of(&gone),
        [
            "task.created",
            "reminder.scheduled",
            "reminder.cancelled",
            "task.deleted"
        ]
    );
}

#[tokio::test]
async fn a_reminder_due_while_errand_was_down_fires_at_start_marked_late() {
    // An Errand serving the API with no scheduler running anywhere.
    let app = TestApp::spawn_api_only().await;
    let user = app.user("late@example.com").await;
    let task = app.new_task(&user, json!({"title": "While away"})).await;
    let number = task["number"].as_i64().unwrap();
    create_reminder(
        &app,
        &user,
        number,
        json!({"remind_at": at(chrono::TimeDelta::seconds(1))}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        reminders(&app, &user, Some(number)).await[0]["status"],
        "pending"
    );

    let _worker = Replica::start(&app).await;
    let list = settled(&app, &user, number, Duration::from_secs(15)).await;
    assert_eq!(list[0]["status"], "fired");
    assert_eq!(list[0]["late"], true);
}

#[tokio::test]
async fn two_schedulers_fire_each_reminder_once() {
    let app = TestApp::spawn_api_only().await;
    let reader = EventReader::new(&app);
    let user = app.user("twice@example.com").await;
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..4 {
        let task = app
            .new_task(&user, json!({"title": format!("Task {i}")}))
            .await;
        let number = task["number"].as_i64().unwrap();
        for _ in 0..5 {
            let reminder: Value = create_reminder(
                &app,
                &user,
                number,
                json!({"remind_at": at(chrono::TimeDelta::seconds(3))}),
            )
            .await
            .json()
            .await
            .unwrap();
            ids.insert(reminder["id"].as_str().unwrap().to_owned());
        }
    }
    let (_a, _b) = tokio::join!(Replica::start(&app), Replica::start(&app));
    let expected = 4 + 20 + 20; // created, scheduled, due
    let mut events = reader.read(expected, Duration::from_secs(60)).await;
    events.extend(reader.rest(Duration::from_secs(3)).await);
    // A relay may publish an event twice (on SQLite two relays do not
    // share the outbox): the same event id. Firing twice would be two
    // reminder.due events, with different ids, for one reminder.
    let mut due_events = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e.event["type"] == "reminder.due") {
        due_events.insert(
            e.event["id"].as_str().unwrap().to_owned(),
            e.event["data"]["reminder"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(due_events.len(), 20, "one reminder.due per reminder");
    assert_eq!(
        due_events
            .into_values()
            .collect::<std::collections::BTreeSet<_>>(),
        ids,
        "each reminder fired exactly once"
    );
}
