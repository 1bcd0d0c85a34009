//! Webhooks: events reach a subscriber's URL signed per Standard Webhooks,
//! verifiable by an implementation that is not Errand's; failures are
//! retried and, when they last, disable the subscription; loopback is out
//! of reach without the operator's allow setting; a message Kafka hands
//! over twice is delivered once.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use poem::{
    EndpointExt, Route, handler,
    http::{HeaderMap, StatusCode as PoemStatus},
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::Data,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{EventReader, TestApp, TestUser, problem, test_webhooks};

const SCOPES: &str = "tasks:read tasks:write webhooks:manage";
const WAIT: Duration = Duration::from_secs(30);

/// What the receiver does with the next request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    /// Answers 200 only after this long (longer than the delivery timeout).
    Slow(Duration),
}

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

#[derive(Default)]
struct Log {
    received: Mutex<Vec<Received>>,
    plan: Mutex<VecDeque<Reply>>,
}

/// A webhook receiver on a loopback port, answering as planned (200 once
/// the plan runs out).
struct Receiver {
    url: String,
    log: Arc<Log>,
}

#[handler]
async fn receive(headers: &HeaderMap, body: String, log: Data<&Arc<Log>>) -> PoemStatus {
    log.received.lock().unwrap().push(Received {
        headers: headers.clone(),
        body,
    });
    let reply = log.plan.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Status(code)) => PoemStatus::from_u16(code).unwrap(),
        Some(Reply::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            PoemStatus::OK
        }
        None => PoemStatus::OK,
    }
}

impl Receiver {
    async fn start(plan: &[Reply]) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let log = Arc::new(Log::default());
        log.plan.lock().unwrap().extend(plan.iter().copied());
        let app = Route::new().at("/hook", post(receive)).data(log.clone());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            log,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.log.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived (or `WAIT` passed).
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let started = std::time::Instant::now();
        while self.received().len() < count && started.elapsed() < WAIT {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.received()
    }
}

async fn create_webhook(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/v1/webhooks", Some(&user.token), Some(&body))
        .await
}

async fn get(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let response = app
        .request(Method::GET, path, Some(&user.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// Standard Webhooks verification written from the specification, not with
/// Errand's code: HMAC-SHA256 over `id.timestamp.body` with the secret's
/// base64-decoded bytes.
fn verify(secret: &str, received: &Received) -> bool {
    let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
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
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature")
        .split(' ')
        .any(|signature| signature == expected)
}

async fn deliveries(app: &TestApp, user: &TestUser, webhook: &Value) -> Vec<Value> {
    let path = format!(
        "/v1/webhooks/{}/deliveries",
        webhook["id"].as_str().unwrap()
    );
    get(app, user, &path).await["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

async fn settled_delivery(app: &TestApp, user: &TestUser, webhook: &Value) -> Value {
    let started = std::time::Instant::now();
    loop {
        let list = deliveries(app, user, webhook).await;
        if let Some(first) = list.first()
            && (first["status"] != "pending" || started.elapsed() > WAIT)
        {
            return first.clone();
        }
        assert!(started.elapsed() < WAIT, "no delivery appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_event_arrives_signed_and_verifies_independently() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(&[]).await;
    let user = app.user_with_scopes("hooks@example.com", SCOPES).await;

    let response = create_webhook(
        &app,
        &user,
        json!({"url": receiver.url, "description": "my integration"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let webhook: Value = response.json().await.unwrap();
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(webhook["status"], "active");

    let task = app.new_task(&user, json!({"title": "Ship it"})).await;
    let received = receiver.wait_for(1).await;
    assert_eq!(received.len(), 1, "delivered");
    let delivery = &received[0];
    assert!(verify(&secret, delivery), "the signature verifies");
    let event: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(event["type"], "task.created");
    assert_eq!(event["data"]["task"], task);
    assert_eq!(
        delivery.headers["webhook-id"].to_str().unwrap(),
        event["id"].as_str().unwrap(),
        "the webhook-id is the event id"
    );
    let timestamp: i64 = delivery.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert_eq!(
        delivery.headers["content-type"].to_str().unwrap(),
        "application/json"
    );

    let mut tampered = delivery.clone();
    tampered.body = tampered.body.replace("Ship it", "Ship it!");
    assert!(
        !verify(&secret, &tampered),
        "a changed body does not verify"
    );

    let record = settled_delivery(&app, &user, &webhook).await;
    assert_eq!(record["status"], "delivered");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["last_status_code"], 200);
    let listed = get(&app, &user, "/v1/webhooks").await;
    assert_eq!(listed["webhooks"][0]["description"], "my integration");
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "the secret is shown once"
    );
}

#[tokio::test]
async fn failures_and_timeouts_are_retried_until_delivered() {
    let app = TestApp::spawn().await;
    // A 500, then an answer slower than the 2 s timeout, then success.
    let receiver =
        Receiver::start(&[Reply::Status(500), Reply::Slow(Duration::from_secs(4))]).await;
    let user = app.user_with_scopes("retry@example.com", SCOPES).await;
    let webhook: Value = create_webhook(&app, &user, json!({"url": receiver.url}))
        .await
        .json()
        .await
        .unwrap();
    app.new_task(&user, json!({"title": "Flaky"})).await;

    let received = receiver.wait_for(3).await;
    assert_eq!(received.len(), 3);
    let ids: Vec<&str> = received
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one message, retried");
    let record = settled_delivery(&app, &user, &webhook).await;
    assert_eq!(record["status"], "delivered");
    assert_eq!(record["attempts"], 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 3, "nothing after success");
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_and_a_redeliver_enables_it() {
    let app = TestApp::spawn_with_webhooks(errand::config::WebhookSettings {
        disable_after: Duration::from_secs(2),
        retry_schedule: vec![Duration::from_secs(1); 10],
        ..test_webhooks()
    })
    .await;
    let receiver = Receiver::start(&[Reply::Status(503); 20]).await;
    let user = app.user_with_scopes("broken@example.com", SCOPES).await;
    let webhook: Value = create_webhook(&app, &user, json!({"url": receiver.url}))
        .await
        .json()
        .await
        .unwrap();
    app.new_task(&user, json!({"title": "Into the void"})).await;

    let started = std::time::Instant::now();
    let listed = loop {
        let listed = get(&app, &user, "/v1/webhooks").await["webhooks"][0].clone();
        if listed["status"] == "disabled" || started.elapsed() > WAIT {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(listed["status"], "disabled");
    assert!(
        listed["disabled_reason"].as_str().unwrap().contains("503"),
        "{listed}"
    );
    let record = settled_delivery(&app, &user, &webhook).await;
    assert_eq!(record["status"], "failed");
    let attempts = receiver.received().len();

    // The endpoint is mended; a redeliver sends it again and re-enables.
    receiver.log.plan.lock().unwrap().clear();
    let path = format!(
        "/v1/webhooks/{}/deliveries/{}/redeliver",
        webhook["id"].as_str().unwrap(),
        record["id"].as_str().unwrap()
    );
    let response = app
        .request(Method::POST, &path, Some(&user.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let received = receiver.wait_for(attempts + 1).await;
    assert_eq!(received.len(), attempts + 1);
    assert_eq!(
        received[attempts].headers["webhook-id"], received[0].headers["webhook-id"],
        "the same message"
    );
    let record = settled_delivery(&app, &user, &webhook).await;
    assert_eq!(record["status"], "delivered");
    let listed = get(&app, &user, "/v1/webhooks").await["webhooks"][0].clone();
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["failing_since"], Value::Null);
}

#[tokio::test]
async fn only_the_chosen_event_types_are_delivered() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(&[]).await;
    let user = app.user_with_scopes("filter@example.com", SCOPES).await;
    let response = create_webhook(
        &app,
        &user,
        json!({"url": receiver.url, "event_types": ["task.completed"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let task = app.new_task(&user, json!({"title": "Filtered"})).await;
    app.complete_task(&user, task["number"].as_i64().unwrap())
        .await;
    let received = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(received.len(), 1);
    assert_eq!(types, ["task.completed"]);
}

#[tokio::test]
async fn loopback_is_out_of_reach_without_the_allow_setting() {
    let app = TestApp::spawn_with_webhooks(errand::config::WebhookSettings {
        allow_private: false,
        ..test_webhooks()
    })
    .await;
    let receiver = Receiver::start(&[]).await;
    let user = app.user_with_scopes("ssrf@example.com", SCOPES).await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let response = create_webhook(&app, &user, json!({"url": url})).await;
        let refused = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(refused["errors"][0]["field"], "url", "{url}: {refused}");
    }

    // A subscription that got past the check (written straight to the
    // database) is refused again at delivery time.
    let key = errand::sealing::SealingKey::load(&app.app.db, None)
        .await
        .unwrap();
    let (webhook, _) =
        errand::webhooks::store::create(&app.app.db, &key, user.id, &receiver.url, &[], None)
            .await
            .unwrap();
    app.new_task(&user, json!({"title": "Aimed inward"})).await;
    let webhook = json!({"id": webhook.id});
    let started = std::time::Instant::now();
    let record = loop {
        let list = deliveries(&app, &user, &webhook).await;
        if let Some(first) = list.first()
            && first["attempts"].as_i64().unwrap_or(0) >= 1
            && first["last_error"].is_string()
        {
            break first.clone();
        }
        assert!(started.elapsed() < WAIT, "no attempt was recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        record["last_error"].as_str().unwrap().contains("loopback"),
        "{record}"
    );
    assert!(receiver.received().is_empty(), "nothing reached 127.0.0.1");
}

#[tokio::test]
async fn webhook_requests_are_checked_and_kept_to_their_owner() {
    let app = TestApp::spawn().await;
    let owner = app.user_with_scopes("hookowner@example.com", SCOPES).await;
    let other = app.user_with_scopes("hookother@example.com", SCOPES).await;
    let cases = [
        (json!({"url": "ftp://example.com/hook"}), "https"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "https://user:pw@example.com/hook"}),
            "credentials",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["task.exploded"]}),
            "task.created",
        ),
    ];
    for (body, hint) in cases {
        let response = create_webhook(&app, &owner, body.clone()).await;
        let refused = problem(response, StatusCode::BAD_REQUEST).await;
        assert!(refused.to_string().contains(hint), "{body}: {refused}");
    }
    let webhook: Value = create_webhook(&app, &owner, json!({"url": "http://127.0.0.1:9/hook"}))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    for (method, suffix) in [(Method::GET, "/deliveries"), (Method::DELETE, "")] {
        let response = app
            .request(method, &format!("{path}{suffix}"), Some(&other.token), None)
            .await;
        problem(response, StatusCode::NOT_FOUND).await;
    }
    assert_eq!(
        get(&app, &other, "/v1/webhooks").await["webhooks"],
        json!([])
    );
    let response = app
        .request(Method::DELETE, &path, Some(&owner.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&app, &owner, "/v1/webhooks").await["webhooks"],
        json!([])
    );
}

#[tokio::test]
async fn a_message_kafka_delivers_twice_reaches_the_endpoint_once() {
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let app = TestApp::spawn().await;
    let reader = EventReader::new(&app);
    let receiver = Receiver::start(&[]).await;
    let user = app.user_with_scopes("dupes@example.com", SCOPES).await;
    create_webhook(&app, &user, json!({"url": receiver.url})).await;
    app.new_task(&user, json!({"title": "Once"})).await;
    assert_eq!(receiver.wait_for(1).await.len(), 1);

    // The same message again, as Kafka would redeliver it.
    let original = reader.read(1, WAIT).await.remove(0);
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", app.kafka.brokers.as_deref().unwrap())
        .create()
        .unwrap();
    let payload = original.event.to_string();
    producer
        .send(
            FutureRecord::to(&app.kafka.topic)
                .key(&original.key)
                .payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        reader.read(1, WAIT).await.len(),
        1,
        "the copy is on the topic"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "delivered once");
}
