//! MCP Events: a client subscribes a callback through `/mcp`, Errand checks
//! that the callback answers its challenge, and events (a due reminder
//! first) arrive there signed as Standard Webhooks, filtered, once, for the
//! subscriber's own tasks only, until it unsubscribes or the subscription
//! lapses.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use errand::auth::Resource;
use hmac::{Hmac, Mac};
use poem::{
    EndpointExt, Route, handler,
    http::HeaderMap,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::{Data, Json},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{Replica, TestApp, TestUser};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A 2026-07-28 request to `/mcp`, headers and `_meta` as the revision asks.
async fn mcp(app: &TestApp, token: &str, method: &str, params: Value) -> (StatusCode, Value) {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

fn subscription(url: &str, arguments: Value) -> Value {
    json!({
        "name": "reminder.due",
        "arguments": arguments,
        "delivery": {"mode": "webhook", "url": url, "secret": SECRET},
    })
}

/// Sets a reminder a second from now on a new task; returns its number.
async fn task_reminded_soon(app: &TestApp, user: &TestUser, title: &str, tags: &[&str]) -> i64 {
    let task = app
        .new_task(
            user,
            json!({"title": title, "tags": tags, "due_at": "2099-03-01T09:00:00Z"}),
        )
        .await;
    let number = task["number"].as_i64().unwrap();
    let at = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(1200))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let response = app
        .request(
            Method::POST,
            &format!("/v1/tasks/{number}/reminders"),
            Some(&user.token),
            Some(&json!({"remind_at": at})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    number
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A callback on a loopback port: echoes challenges (unless told not to),
/// answers deliveries with the planned status (202 when none is planned).
#[derive(Default)]
struct Log {
    received: Mutex<Vec<Received>>,
    plan: Mutex<VecDeque<u16>>,
    refuse_challenges: Mutex<bool>,
}

struct Callback {
    url: String,
    log: Arc<Log>,
}

#[handler]
async fn answer_callback(
    headers: &HeaderMap,
    body: String,
    log: Data<&Arc<Log>>,
) -> poem::Response {
    log.received.lock().unwrap().push(Received {
        headers: headers.clone(),
        body: body.clone(),
    });
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if value["type"] == "verification" {
        if *log.refuse_challenges.lock().unwrap() {
            return poem::Response::builder()
                .status(poem::http::StatusCode::OK)
                .body("ok");
        }
        return poem::IntoResponse::into_response(Json(json!({"challenge": value["challenge"]})));
    }
    let status = log.plan.lock().unwrap().pop_front().unwrap_or(202);
    poem::Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap())
        .finish()
}

impl Callback {
    async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let log = Arc::new(Log::default());
        let app = Route::new()
            .at("/events", post(answer_callback))
            .data(log.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Self {
            url: format!("http://127.0.0.1:{port}/events"),
            log,
        }
    }

    fn deliveries(&self) -> Vec<Received> {
        self.log
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.body.contains("\"verification\""))
            .cloned()
            .collect()
    }

    async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let started = Instant::now();
        while self.deliveries().len() < count && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.deliveries()
    }
}

/// Standard Webhooks verification written from the specification.
fn signed(received: &Received) -> bool {
    let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
    let key = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            header("webhook-id"),
            header("webhook-timestamp"),
            received.body
        )
        .as_bytes(),
    );
    header("webhook-signature") == format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn events_are_listed_with_the_reminder_first() {
    let app = TestApp::spawn().await;
    let user = app
        .user_for("alice@example.com", "tasks:read", Resource::Mcp)
        .await;
    let (status, listed) = mcp(&app, &user.token, "events/list", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let events = listed["result"]["events"].as_array().unwrap();
    assert_eq!(events[0]["name"], "reminder.due");
    assert_eq!(events[0]["delivery"], json!(["webhook"]));
    assert!(events[0]["inputSchema"]["properties"]["task_number"].is_object());
    let (_, discovered) = mcp(&app, &user.token, "server/discover", json!({})).await;
    assert_eq!(discovered["result"]["capabilities"]["events"], json!({}));
    assert!(
        discovered["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/events"]
            .is_object()
    );
}

#[tokio::test]
async fn subscriptions_are_verified_filtered_refreshed_and_ended() {
    let app = TestApp::spawn().await;
    let alice = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let alice_api = app.user("alice@example.com").await;
    let callback = Callback::start().await;

    // A callback that does not answer the challenge is not subscribed.
    *callback.log.refuse_challenges.lock().unwrap() = true;
    let (status, refused) = mcp(
        &app,
        &alice.token,
        "events/subscribe",
        subscription(&callback.url, json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], json!(-32015));
    assert_eq!(refused["error"]["data"]["reason"], "challenge_failed");
    *callback.log.refuse_challenges.lock().unwrap() = false;

    // Bad requests say what to send.
    for (params, code) in [
        (
            json!({"name": "reminder.nope", "delivery": {"mode": "webhook", "url": callback.url, "secret": SECRET}}),
            -32011,
        ),
        (
            json!({"name": "reminder.due", "delivery": {"mode": "poll"}}),
            -32014,
        ),
        (
            json!({"name": "reminder.due", "delivery": {"mode": "webhook", "url": callback.url, "secret": "whsec_short"}}),
            -32602,
        ),
        (
            json!({"name": "reminder.due", "arguments": {"project": 1}, "delivery": {"mode": "webhook", "url": callback.url, "secret": SECRET}}),
            -32602,
        ),
    ] {
        let (_, answer) = mcp(&app, &alice.token, "events/subscribe", params.clone()).await;
        assert_eq!(answer["error"]["code"], json!(code), "{params}: {answer}");
    }

    let wanted = app
        .new_task(&alice_api, json!({"title": "Placeholder"}))
        .await["number"]
        .as_i64()
        .unwrap()
        + 1;
    let (status, subscribed) = mcp(
        &app,
        &alice.token,
        "events/subscribe",
        subscription(&callback.url, json!({"task_number": wanted})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{subscribed}");
    let id = subscribed["result"]["id"].as_str().unwrap().to_owned();
    assert_eq!(subscribed["result"]["resultType"], "complete");
    let first_expiry = subscribed["result"]["refreshBefore"]
        .as_str()
        .unwrap()
        .to_owned();

    // Someone else's subscription to the same callback sees nothing of Alice's.
    let bob = app
        .user_for("bob@example.com", "tasks:read", Resource::Mcp)
        .await;
    let (status, _) = mcp(
        &app,
        &bob.token,
        "events/subscribe",
        subscription(&callback.url, json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The filtered task's reminder arrives; the other one does not.
    let number = task_reminded_soon(&app, &alice_api, "Renew passport", &["admin"]).await;
    assert_eq!(number, wanted);
    task_reminded_soon(&app, &alice_api, "Water the plants", &[]).await;
    callback.wait_for(1, Duration::from_secs(15)).await;
    // Both reminders have fired by now; only one was wanted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deliveries = callback.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert!(signed(delivery));
    assert_eq!(delivery.headers["x-mcp-subscription-id"], id.as_str());
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["name"], "reminder.due");
    assert_eq!(
        delivery.headers["webhook-id"],
        body["eventId"].as_str().unwrap()
    );
    assert_eq!(body["data"]["task_number"], json!(wanted));
    assert!(
        body["data"]["message"]
            .as_str()
            .unwrap()
            .contains("Renew passport"),
        "{body}"
    );

    // Subscribing again with the same four parts refreshes the same one.
    let (_, refreshed) = mcp(&app, &alice.token, "events/subscribe", {
        let mut params = subscription(&callback.url, json!({"task_number": wanted}));
        params["ttlMs"] = json!(3 * 24 * 60 * 60 * 1000);
        params
    })
    .await;
    assert_eq!(refreshed["result"]["id"], id.as_str());
    assert!(refreshed["result"]["refreshBefore"].as_str().unwrap() > first_expiry.as_str());

    // Unsubscribed: nothing more arrives; unsubscribing again is fine.
    let unsubscribe = json!({"name": "reminder.due", "arguments": {"task_number": wanted},
                             "delivery": {"mode": "webhook", "url": callback.url}});
    for _ in 0..2 {
        let (status, answer) = mcp(
            &app,
            &alice.token,
            "events/unsubscribe",
            unsubscribe.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["result"]["resultType"], "complete");
    }
    let response = app
        .request(
            Method::POST,
            &format!("/v1/tasks/{wanted}/reminders"),
            Some(&alice_api.token),
            Some(&json!({"remind_at": (chrono::Utc::now() + chrono::TimeDelta::seconds(1)).to_rfc3339()})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(callback.deliveries().len(), 1);

    // A token that cannot read tasks cannot subscribe to them.
    let writer = app
        .user_for("carol@example.com", "tasks:write", Resource::Mcp)
        .await;
    let response = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&writer.token)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "events/subscribe")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "events/subscribe", "params": {
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_callback_that_answers_gone_is_not_asked_again() {
    let app = TestApp::spawn().await;
    let alice = app
        .user_for("alice@example.com", "tasks:read", Resource::Mcp)
        .await;
    let alice_api = app.user("alice@example.com").await;
    let callback = Callback::start().await;
    callback.log.plan.lock().unwrap().extend([410]);
    let (status, _) = mcp(
        &app,
        &alice.token,
        "events/subscribe",
        subscription(&callback.url, json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    task_reminded_soon(&app, &alice_api, "One", &[]).await;
    callback.wait_for(1, Duration::from_secs(15)).await;
    task_reminded_soon(&app, &alice_api, "Two", &[]).await;
    // The test's retry schedule is a second: a retry would have come.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(callback.deliveries().len(), 1, "410 stops the subscription");
}

/// What the Python receiver printed: one JSON value per request.
struct PythonReceiver {
    child: std::process::Child,
    url: String,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PythonReceiver {
    fn start() -> Self {
        use std::io::BufRead;
        let python = std::env::var("ERRAND_TEST_MCP_PYTHON")
            .expect("ERRAND_TEST_MCP_PYTHON names a Python with `standardwebhooks`");
        let script = format!("{}/tests/mcp/event_receiver.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = std::process::Command::new(python)
            .args([script.as_str(), SECRET])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("LISTENING ")
            .expect("the receiver's port")
            .to_owned();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/events"),
            lines,
        }
    }

    fn deliveries(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == "delivery")
            .cloned()
            .collect()
    }
}

/// The end to end: subscribe through `/mcp`, let a reminder come
/// due, and the delivery arrives within 5 s, once, verified by the
/// `standardwebhooks` package, with two Errand processes running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(mcp_sdk_tests),
    ignore = "needs a Python with standardwebhooks: set ERRAND_TEST_MCP_PYTHON (see the README)"
)]
async fn a_due_reminder_reaches_the_subscribed_callback_once_with_two_processes() {
    let app = TestApp::spawn().await;
    let _replica = Replica::start_with(
        &app,
        &[
            ("ERRAND_WEBHOOK_ALLOW_HTTP", "1"),
            ("ERRAND_WEBHOOK_ALLOW_PRIVATE", "1"),
        ],
    )
    .await;
    let alice = app
        .user_for("alice@example.com", "tasks:read tasks:write", Resource::Mcp)
        .await;
    let alice_api = app.user("alice@example.com").await;
    let receiver = PythonReceiver::start();
    let (status, subscribed) = mcp(
        &app,
        &alice.token,
        "events/subscribe",
        subscription(&receiver.url, json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{subscribed}");
    let verification = receiver.lines.lock().unwrap().first().cloned().unwrap();
    assert_eq!(verification["kind"], "verification");
    assert_eq!(verification["verified"], json!(true));

    task_reminded_soon(&app, &alice_api, "Renew passport", &[]).await;
    let due = chrono::Utc::now() + chrono::TimeDelta::milliseconds(1200);
    let started = Instant::now();
    while receiver.deliveries().is_empty() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let arrived = chrono::Utc::now();
    assert!(!receiver.deliveries().is_empty(), "nothing arrived");
    assert!(
        (arrived - due).num_milliseconds() < 5_000,
        "arrived {} ms after it was due",
        (arrived - due).num_milliseconds()
    );
    // Both processes run a scheduler, an intake and a dispatcher: still once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert_eq!(delivery["verified"], json!(true));
    assert_eq!(
        delivery["headers"]["x-mcp-subscription-id"],
        subscribed["result"]["id"]
    );
    assert_eq!(delivery["body"]["name"], "reminder.due");
    assert!(
        delivery["body"]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("Renew passport")
    );
}
