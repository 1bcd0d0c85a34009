//! Errand as it is deployed: several processes on one database and one
//! Kafka cluster, requests spread across them. The test's own app is one
//! process; two `errand serve` children are the others. A child is killed
//! (SIGKILL) or stopped (SIGTERM) under load; rate limits and idempotency
//! are checked across the processes.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use errand::config::{HttpSettings, Rate, RateLimitSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{EventReader, Replica, TestApp, TestUser};

/// What a burst of `createTask` calls spread over several processes saw.
#[derive(Default)]
struct Load {
    /// Task ids the service answered 201 for: writes it acknowledged.
    acknowledged: Mutex<Vec<String>>,
    /// Calls per address that were sent and failed (not refused before
    /// sending): address, what happened.
    failed: Mutex<Vec<(String, String)>>,
    /// Calls whose connection was refused and went to the next process, as
    /// a load balancer retries an instance that is gone.
    rerouted: AtomicUsize,
}

/// Creates tasks from `workers` concurrent callers, round robin over
/// `addresses`, until `stop` is set. With `health_checked`, like a load
/// balancer, it polls each process's `/readyz` every 100 ms and sends
/// nothing to one that is not ready.
async fn run_load(
    addresses: Vec<String>,
    token: String,
    workers: usize,
    stop: Arc<AtomicBool>,
    health_checked: bool,
) -> Arc<Load> {
    let load = Arc::new(Load::default());
    let ready: Arc<Vec<AtomicBool>> =
        Arc::new(addresses.iter().map(|_| AtomicBool::new(true)).collect());
    if health_checked {
        let (addresses, ready, stop) = (addresses.clone(), ready.clone(), stop.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            while !stop.load(Ordering::Relaxed) {
                for (address, flag) in addresses.iter().zip(ready.iter()) {
                    let up = client
                        .get(format!("{address}/readyz"))
                        .timeout(Duration::from_millis(500))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == StatusCode::OK);
                    flag.store(up, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    // No kept-alive connections: each call opens its own, so a process that
    // stops listening is seen as refused, never as a reused socket closing.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (addresses, user, stop, load, client, ready) = (
            addresses.clone(),
            token.clone(),
            stop.clone(),
            load.clone(),
            client.clone(),
            ready.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut turn = worker;
            let mut made = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut tries = 0;
                loop {
                    // The next process the balancer considers ready.
                    let pick = (0..addresses.len())
                        .map(|offset| (turn + offset) % addresses.len())
                        .find(|index| ready[*index].load(Ordering::Relaxed))
                        .unwrap_or(turn % addresses.len());
                    let address = &addresses[pick];
                    turn = pick + 1;
                    let sent = client
                        .post(format!("{address}/v1/tasks"))
                        .bearer_auth(&user)
                        .json(&json!({ "title": format!("load {worker}-{made}") }))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == StatusCode::CREATED => {
                            let task: Value = response.json().await.unwrap();
                            load.acknowledged
                                .lock()
                                .unwrap()
                                .push(task["id"].as_str().unwrap().to_owned());
                        }
                        Ok(response) => load
                            .failed
                            .lock()
                            .unwrap()
                            .push((address.clone(), format!("status {}", response.status()))),
                        Err(err) if err.is_connect() && tries < addresses.len() => {
                            load.rerouted.fetch_add(1, Ordering::Relaxed);
                            tries += 1;
                            continue;
                        }
                        Err(err) => load
                            .failed
                            .lock()
                            .unwrap()
                            .push((address.clone(), err.to_string())),
                    }
                    break;
                }
                made += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    load
}

/// Every acknowledged task is there, read through `app`.
async fn assert_all_kept(app: &TestApp, user: &TestUser, acknowledged: &[String]) {
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("status", "all".to_owned()), ("limit", "100".to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let page: Value = app
            .client
            .get(app.url("/v1/tasks"))
            .bearer_auth(&user.token)
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for task in page["tasks"].as_array().unwrap() {
            seen.insert(task["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !seen.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged tasks lost: {lost:?}");
}

/// Every acknowledged task's `task.created` event reaches Kafka.
async fn assert_all_published(reader: &EventReader, acknowledged: &[String]) {
    let mut waiting: HashSet<&str> = acknowledged.iter().map(String::as_str).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        for event in reader.read(waiting.len(), Duration::from_secs(5)).await {
            if event.event["type"] == "task.created"
                && let Some(id) = event.event["data"]["task"]["id"].as_str()
            {
                waiting.remove(id);
            }
        }
    }
    assert!(
        waiting.is_empty(),
        "{} events never published: {waiting:?}",
        waiting.len()
    );
}

#[tokio::test]
async fn a_killed_process_loses_no_acknowledged_write_or_event_and_the_others_serve_on() {
    let app = TestApp::spawn().await;
    let reader = EventReader::new(&app);
    let mut doomed = Replica::start(&app).await;
    let survivor = Replica::start(&app).await;
    let user = app.user("under-load@example.com").await;
    let addresses = vec![
        app.address.clone(),
        doomed.address.clone(),
        survivor.address.clone(),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(run_load(
        addresses,
        user.token.clone(),
        6,
        stop.clone(),
        false,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    doomed.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let load = load.await.unwrap();

    let acknowledged = load.acknowledged.lock().unwrap().clone();
    let failed = load.failed.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 30,
        "too little load: {}",
        acknowledged.len()
    );
    // Only calls in flight at the killed process can fail; the others
    // answered every call, before and after.
    let elsewhere: Vec<_> = failed
        .iter()
        .filter(|(a, _)| *a != doomed.address)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the surviving processes failed calls: {elsewhere:?}"
    );
    assert!(
        load.rerouted.load(Ordering::Relaxed) > 0,
        "the kill was never noticed"
    );
    assert_all_kept(&app, &user, &acknowledged).await;
    assert_all_published(&reader, &acknowledged).await;
}

#[tokio::test]
async fn a_process_stopped_with_sigterm_under_load_fails_no_request() {
    let app = TestApp::spawn().await;
    let mut leaving = Replica::start_with(&app, &[("ERRAND_DRAIN_DELAY", "1s")]).await;
    let staying = Replica::start(&app).await;
    let user = app.user("rolling-update@example.com").await;
    let addresses = vec![
        app.address.clone(),
        leaving.address.clone(),
        staying.address.clone(),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(run_load(
        addresses,
        user.token.clone(),
        6,
        stop.clone(),
        true,
    ));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    leaving.terminate();
    // While draining, it says it is not ready and still answers.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut said_unready = false;
    for _ in 0..20 {
        if let Ok(response) = client
            .get(format!("{}/readyz", leaving.address))
            .send()
            .await
            && response.status() == StatusCode::SERVICE_UNAVAILABLE
        {
            said_unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let status = leaving.exited_within(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let load = load.await.unwrap();

    assert!(said_unready, "readiness did not turn 503 during the drain");
    assert_eq!(
        status.map(|s| s.success()),
        Some(true),
        "the process did not exit cleanly"
    );
    let failed = load.failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "requests failed during a graceful stop: {failed:?}"
    );
    let acknowledged = load.acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 30,
        "too little load: {}",
        acknowledged.len()
    );
    assert_all_kept(&app, &user, &acknowledged).await;
}

#[tokio::test]
async fn rate_limits_hold_across_processes() {
    let limit = Rate {
        requests: 10,
        per: Duration::from_secs(3600),
    };
    let app = TestApp::spawn_with_http(HttpSettings {
        rate_limits: RateLimitSettings {
            per_user: Some(limit),
            per_client: None,
        },
        ..HttpSettings::default()
    })
    .await;
    let env = [("ERRAND_RATE_LIMIT_USER", "10/hour")];
    let (b, c) = (
        Replica::start_with(&app, &env).await,
        Replica::start_with(&app, &env).await,
    );
    let user = app.user("everywhere@example.com").await;
    let addresses = [app.address.clone(), b.address.clone(), c.address.clone()];
    let mut statuses = Vec::new();
    for turn in 0..18 {
        let response = app
            .client
            .get(format!("{}/v1/me", addresses[turn % 3]))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    let allowed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((allowed, refused), (10, 8), "{statuses:?}");
}

#[tokio::test]
async fn concurrent_duplicates_across_processes_make_one_task() {
    let app = TestApp::spawn().await;
    let (b, c) = (Replica::start(&app).await, Replica::start(&app).await);
    let user = app.user("retrying-integrator@example.com").await;
    let addresses = [app.address.clone(), b.address.clone(), c.address.clone()];
    let calls = (0..15).map(|turn| {
        app.client
            .post(format!("{}/v1/tasks", addresses[turn % 3]))
            .bearer_auth(&user.token)
            .header("Idempotency-Key", "order-4411")
            .json(&json!({ "title": "Ship order 4411" }))
            .send()
    });
    let mut numbers = HashSet::new();
    for response in futures::future::join_all(calls).await {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        numbers.insert(response.json::<Value>().await.unwrap()["number"].clone());
    }
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    let page: Value = app
        .list_tasks(&user, &[("status", "all")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_process_killed_right_after_an_action_commits_leaves_a_replay_not_a_second_task() {
    let app = TestApp::spawn().await;
    let mut replica = Replica::start(&app).await;
    let user = app.user("killed-mid-answer@example.com").await;
    let create = |address: &str| {
        app.client
            .post(format!("{address}/v1/tasks"))
            .bearer_auth(&user.token)
            .header("Idempotency-Key", "electricity-2026-12")
            .json(&json!({ "title": "Pay the electricity bill" }))
            .send()
    };
    let call = tokio::spawn(create(&replica.address));
    // The moment the task is visible from another process the action has
    // committed: the replica dies there, with its answer maybe unsent.
    let mut visible = Vec::new();
    for _ in 0..3000 {
        let page: Value = app.list_tasks(&user, &[]).await.json().await.unwrap();
        visible = page["tasks"].as_array().unwrap().clone();
        if !visible.is_empty() {
            break;
        }
    }
    replica.kill();
    assert_eq!(visible.len(), 1, "the replica never created the task");
    // Answered or cut off: either is what a crash looks like to a client.
    let _ = call.await;

    // The client retries at once, on another process, with the same key: the
    // kept answer, not a claim to wait out nor a second run of the action.
    let retry = create(&app.address).await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed["id"], visible[0]["id"]);
    let page: Value = app
        .list_tasks(&user, &[("status", "all")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["tasks"].as_array().unwrap().len(), 1, "{page}");
}

#[tokio::test]
async fn api_and_worker_roles_split_the_work() {
    // The test's app serves the API only; a worker process relays its
    // events and serves nothing but health and metrics.
    let app = TestApp::spawn_api_only().await;
    let reader = EventReader::new(&app);
    let worker = Replica::start_with(&app, &[("ERRAND_ROLE", "worker")]).await;
    let user = app.user("split@example.com").await;
    let task = app
        .new_task(&user, json!({ "title": "Relayed by the worker" }))
        .await;
    let events = reader.read(1, Duration::from_secs(30)).await;
    assert_eq!(events.len(), 1, "the worker did not relay the event");
    assert_eq!(events[0].event["data"]["task"]["id"], task["id"]);

    let get = |path: &str| app.client.get(format!("{}{path}", worker.address)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("errand_outbox_published_events_total 1"),
        "{metrics}"
    );
    let api = app
        .client
        .get(format!("{}/v1/me", worker.address))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id_and_chatgpts_correlation_ids() {
    let app = TestApp::spawn().await;
    let replica = Replica::start_with(&app, &[("ERRAND_LOG", "info")]).await;
    let user = app.user("correlated@example.com").await;
    let response = app
        .client
        .get(format!("{}/v1/tasks/404", replica.address))
        .bearer_auth(&user.token)
        .header("x-request-id", "req-b52")
        .header("openai-conversation-id", "conv-91")
        .header("openai-gpt-id", "g-errand")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-b52");
    let mut request_line = None;
    for _ in 0..100 {
        request_line = replica
            .log_lines()
            .into_iter()
            .find(|line| line["message"] == "request" && line["span"]["request_id"] == "req-b52");
        if request_line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request_line = request_line.expect("the request's log line, with its id");
    assert_eq!(request_line["status"], 404);
    assert_eq!(request_line["span"]["openai_conversation_id"], "conv-91");
    assert_eq!(request_line["span"]["openai_gpt_id"], "g-errand");
}
