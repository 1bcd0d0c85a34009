//! Events: every task change reaches Kafka as a CloudEvent, in order per
//! task, through outages and crashes, published once by relays that share
//! the work.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use errand::events::{Event, EventType, Source, outbox, relay};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{EventReader, ReadEvent, Replica, TestApp, on_postgres};

const READ_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn one_tasks_actions_yield_exactly_its_events_in_order() {
    let app = TestApp::spawn().await;
    let reader = EventReader::new(&app);
    let user = app.user("events@example.com").await;

    let created = app
        .new_task(&user, json!({"title": "Renew passport", "tags": ["admin"]}))
        .await;
    let number = created["number"].as_i64().unwrap();
    let updated: Value = app
        .update_task(&user, number, json!({"priority": "high"}))
        .await
        .json()
        .await
        .unwrap();
    let completed: Value = app.complete_task(&user, number).await.json().await.unwrap();
    let reopened: Value = app.reopen_task(&user, number).await.json().await.unwrap();
    assert_eq!(app.delete_task(&user, number).await.status(), 204);

    let events = reader.read(5, READ_LIMIT).await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "task.created",
            "task.updated",
            "task.completed",
            "task.reopened",
            "task.deleted"
        ]
    );
    let task_id = created["id"].as_str().unwrap();
    for ReadEvent {
        key,
        event,
        content_type,
    } in &events
    {
        assert_eq!(key, task_id, "keyed by task id");
        assert_eq!(
            content_type.as_deref(),
            Some("application/cloudevents+json; charset=UTF-8")
        );
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["source"], app.address);
        assert_eq!(event["subject"], format!("tasks/{task_id}"));
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(event["data"]["user_id"], user.id.to_string());
        assert!(Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
        assert!(chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).is_ok());
    }
    // The data is the task exactly as the API showed it after each action.
    assert_eq!(events[0].event["data"]["task"], created);
    assert_eq!(events[1].event["data"]["task"], updated);
    assert_eq!(events[2].event["data"]["task"], completed);
    assert_eq!(events[3].event["data"]["task"], reopened);
    assert_eq!(
        events[4].event["data"]["task"], reopened,
        "the task as it was"
    );
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e.event["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "every event has its own id");

    assert!(
        reader.rest(Duration::from_secs(1)).await.is_empty(),
        "nothing else was published"
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_publishes_nothing() {
    let app = TestApp::spawn().await;
    let reader = EventReader::new(&app);
    let user = app.user("quiet@example.com").await;
    let created = app.new_task(&user, json!({"title": "Same"})).await;
    let number = created["number"].as_i64().unwrap();
    app.update_task(&user, number, json!({"title": "Same"}))
        .await;
    app.complete_task(&user, number).await;
    app.complete_task(&user, number).await;
    let events = reader.read(3, Duration::from_secs(5)).await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["task.created", "task.completed"]);
}

#[tokio::test]
async fn actions_succeed_while_kafka_is_down_and_every_event_arrives_afterwards() {
    let app = if on_real_kafka_only() {
        // A process can take a real cluster away only from itself: this
        // Errand is configured with a broker address nobody listens on.
        TestApp::spawn_with_unreachable_kafka().await
    } else {
        TestApp::spawn().await
    };
    let user = app.user("outage@example.com").await;
    app.background.broker().set_embedded_down(true);

    let mut numbers = Vec::new();
    for i in 0..5 {
        let response = app
            .create_task(&user, json!({"title": format!("During the outage {i}")}))
            .await;
        assert_eq!(response.status(), 201, "actions succeed without Kafka");
        let task: Value = response.json().await.unwrap();
        numbers.push(task["number"].as_i64().unwrap());
    }
    assert_eq!(app.complete_task(&user, numbers[0]).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (waiting, _) = relay::backlog(&app.app.db).await.unwrap();
    assert_eq!(waiting, 6, "the events wait in the outbox");

    // The cluster comes back (or, on a real cluster, a relay that can
    // reach it takes over the same database).
    app.background.broker().set_embedded_down(false);
    let _relay = if on_real_kafka_only() {
        Some(Replica::start(&app).await)
    } else {
        None
    };
    let reader = EventReader::new(&app);
    let events = reader.read(6, Duration::from_secs(60)).await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "task.created").count(), 5);
    assert_eq!(types.iter().filter(|t| **t == "task.completed").count(), 1);
    let first_key = &events
        .iter()
        .find(|e| e.event["type"] == "task.completed")
        .unwrap()
        .key;
    let per_key: Vec<&str> = events
        .iter()
        .filter(|e| &e.key == first_key)
        .map(|e| e.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(per_key, ["task.created", "task.completed"], "in order");
    wait_for_empty_outbox(&app).await;
}

fn on_real_kafka_only() -> bool {
    crate::common::on_real_kafka()
}

/// Writes `count` events over `keys` keys straight into the outbox, as
/// actions would have; returns their ids in order per key.
async fn prefill(app: &TestApp, count: usize, keys: usize) -> BTreeMap<String, Vec<String>> {
    let source = Source::new(&errand::config::PublicUrl::parse(&app.address).unwrap());
    let keys: Vec<Uuid> = (0..keys).map(|_| Uuid::now_v7()).collect();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut batch = Vec::new();
    for i in 0..count {
        let key = keys[i % keys.len()];
        let event = Event::new(
            &source,
            EventType::TaskUpdated,
            key,
            &format!("tasks/{key}"),
            &json!({"user_id": Uuid::nil(), "task": {"id": key, "n": i}}),
        )
        .unwrap();
        expected
            .entry(key.to_string())
            .or_default()
            .push(event.id.to_string());
        batch.push(event);
        if batch.len() == 400 {
            outbox::append_all(&app.app.db, &batch).await.unwrap();
            batch.clear();
        }
    }
    outbox::append_all(&app.app.db, &batch).await.unwrap();
    expected
}

async fn wait_for_empty_outbox(app: &TestApp) {
    for _ in 0..600 {
        if relay::backlog(&app.app.db).await.unwrap().0 == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox never drained");
}

/// Every expected event arrived, and each key's events first arrived in
/// the order they were written. Returns how many messages arrived.
async fn assert_all_arrived(
    reader: &EventReader,
    expected: &BTreeMap<String, Vec<String>>,
) -> usize {
    let total: usize = expected.values().map(Vec::len).sum();
    // Generous: on a busy two-core machine a debug consumer is slow.
    let mut events = reader.read(total, Duration::from_secs(240)).await;
    events.extend(reader.rest(Duration::from_secs(2)).await);
    let mut first_seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for e in &events {
        let id = e.event["id"].as_str().unwrap().to_owned();
        if seen.insert(id.clone()) {
            first_seen.entry(e.key.clone()).or_default().push(id);
        }
    }
    assert_eq!(seen.len(), total, "every event arrived");
    assert_eq!(&first_seen, expected, "each key's events in order");
    events.len()
}

#[tokio::test]
async fn a_relay_killed_while_publishing_loses_nothing() {
    let app = TestApp::spawn_api_only().await;
    let expected = prefill(&app, 10_000, 200).await;
    let reader = EventReader::new(&app);

    let mut first = Replica::start(&app).await;
    // Killed once it has published some of the events and not all.
    let mut left = 10_000;
    for _ in 0..2000 {
        left = relay::backlog(&app.app.db).await.unwrap().0;
        if left < 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    eprintln!("killed with {left} left");
    assert!(
        (1..10_000).contains(&left),
        "the relay was killed while publishing ({left} left)"
    );

    let _second = Replica::start(&app).await;
    wait_for_empty_outbox(&app).await;
    assert_all_arrived(&reader, &expected).await;
}

#[tokio::test]
async fn two_relays_on_one_postgresql_publish_each_event_once() {
    if !on_postgres() {
        eprintln!("skipped: SQLite serves one process; needs ERRAND_TEST_DATABASE_URL");
        return;
    }
    let app = TestApp::spawn_api_only().await;
    let expected = prefill(&app, 10_000, 200).await;
    let reader = EventReader::new(&app);
    let (_a, _b) = tokio::join!(Replica::start(&app), Replica::start(&app));
    wait_for_empty_outbox(&app).await;
    let arrived = assert_all_arrived(&reader, &expected).await;
    assert_eq!(arrived, 10_000, "no event was published twice");
}
