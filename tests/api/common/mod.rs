//! `TestApp`: a real Errand on a loopback port with its own fresh database,
//! and one helper per endpoint.
//!
//! The database is a SQLite file in a temporary directory, or, when
//! `ERRAND_TEST_DATABASE_URL` names a PostgreSQL server, a new database
//! created on it for this test and dropped afterwards.

#![allow(dead_code)]

use std::time::Duration;

use errand::{
    App, Background, BackgroundSettings,
    auth::{Resource, ScopeSet, grants},
    config::{
        AuthSettings, DatabaseSettings, HttpSettings, KafkaSettings, PublicUrl, WebhookSettings,
    },
    users::{self, EmailAddress},
};
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ALL_SCOPES: &str = "tasks:read tasks:write";

enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    async fn create() -> (Self, String) {
        match std::env::var("ERRAND_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("errand_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .expect("connect to ERRAND_TEST_DATABASE_URL");
                sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("CREATE DATABASE {name}"),
                )
                .await
                .expect("create test database");
                admin.close().await.ok();
                let mut url =
                    url::Url::parse(&admin_url).expect("ERRAND_TEST_DATABASE_URL is a URL");
                url.set_path(&format!("/{name}"));
                (Self::Postgres { admin_url, name }, url.to_string())
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("errand.db").display()
                );
                (Self::Sqlite(dir), url)
            }
        }
    }
}

/// The test's database taken away from the app, until `restore`: on
/// PostgreSQL the database stops accepting connections and the app's are
/// ended (what a failover or a restart does to it); on SQLite another
/// connection holds the write lock, so the app's writes wait out their busy
/// timeout.
pub enum Outage {
    Postgres {
        admin: sea_orm::DatabaseConnection,
        name: String,
    },
    Sqlite(sea_orm::sqlx::SqliteConnection),
}

impl Outage {
    pub async fn restore(self) {
        use sea_orm::sqlx::Connection as _;
        match self {
            Self::Postgres { admin, name } => {
                sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"),
                )
                .await
                .expect("let the test database take connections again");
                admin.close().await.ok();
            }
            Self::Sqlite(lock) => {
                // Closing the connection ends its transaction and the lock.
                lock.close().await.expect("release the SQLite lock");
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any async context we could borrow; a short-lived
            // runtime on its own thread removes the database even when the test
            // panicked. It is waited for only briefly: while this thread blocks,
            // the test's runtime cannot run, and a connection it was opening
            // stays half-open, in authentication, which DROP DATABASE waits for
            // until the runtime ends and closes it.
            let (done, finished) = std::sync::mpsc::channel::<()>();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                                &admin,
                                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                            )
                            .await;
                        }
                    });
                }
                let _ = done.send(());
            });
            let _ = finished.recv_timeout(Duration::from_secs(2));
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`, also the public URL.
    pub address: String,
    pub database_url: String,
    pub app: App,
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pub background: Background,
    /// The Kafka cluster and topic of this test, as another process or a
    /// consumer reaches them.
    pub kafka: KafkaSettings,
    /// The folder this app's mail is written to.
    pub mail: tempfile::TempDir,
    // Last: dropped after the server has stopped.
    _database: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(AuthSettings::default()).await
    }

    pub async fn spawn_with(auth: AuthSettings) -> Self {
        Self::spawn_configured(auth, true, test_kafka(), test_webhooks()).await
    }

    /// An Errand with its own HTTP settings (rate limits, request timeout).
    pub async fn spawn_with_http(http: HttpSettings) -> Self {
        Self::spawn_full(
            AuthSettings::default(),
            true,
            test_kafka(),
            test_webhooks(),
            http,
        )
        .await
    }

    /// An Errand with its own webhook settings.
    pub async fn spawn_with_webhooks(webhooks: WebhookSettings) -> Self {
        Self::spawn_configured(AuthSettings::default(), true, test_kafka(), webhooks).await
    }

    /// An Errand whose configured broker does not exist (nothing listens
    /// on that loopback port); `kafka` still names the test's real cluster.
    pub async fn spawn_with_unreachable_kafka() -> Self {
        let real = test_kafka();
        let unreachable = KafkaSettings {
            brokers: Some("127.0.0.1:1".into()),
            topic: real.topic.clone(),
            ..KafkaSettings::default()
        };
        let mut app =
            Self::spawn_configured(AuthSettings::default(), true, unreachable, test_webhooks())
                .await;
        app.kafka = real;
        app
    }

    /// An Errand that serves the API but runs no workers (no relay,
    /// scheduler or dispatcher): for tests that run those elsewhere.
    pub async fn spawn_api_only() -> Self {
        Self::spawn_configured(
            AuthSettings::default(),
            false,
            test_kafka(),
            test_webhooks(),
        )
        .await
    }

    async fn spawn_configured(
        auth: AuthSettings,
        workers: bool,
        kafka: KafkaSettings,
        webhooks: WebhookSettings,
    ) -> Self {
        Self::spawn_full(auth, workers, kafka, webhooks, HttpSettings::default()).await
    }

    async fn spawn_full(
        auth: AuthSettings,
        workers: bool,
        kafka: KafkaSettings,
        webhooks: WebhookSettings,
        http: HttpSettings,
    ) -> Self {
        errand::install_crypto_provider();
        let (database, database_url) = TestDatabase::create().await;
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind a loopback port");
        let port = acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address")
            .port();
        let address = format!("http://127.0.0.1:{port}");
        let settings = DatabaseSettings {
            max_connections: 8,
            ..DatabaseSettings::new(database_url.clone())
        };
        let mut app = App::start(&settings, PublicUrl::parse(&address).unwrap(), &auth)
            .await
            .expect("start errand");
        app.webhooks = webhooks;
        app.http = http;
        let mail = tempfile::tempdir().expect("a mail folder");
        app.mail.folder = mail.path().to_owned();
        let endpoint = app.endpoint().expect("build endpoint");
        if let Some(brokers) = test_kafka_brokers() {
            // Before anyone subscribes: a consumer of a topic that does not
            // exist yet may not look for it again for minutes.
            errand::events::kafka::ensure_topic(&brokers, &kafka.topic)
                .await
                .expect("create the test's topic");
        }
        let background = app
            .start_background(&BackgroundSettings {
                kafka: kafka.clone(),
                workers,
            })
            .await
            .expect("start the background jobs");
        let kafka = KafkaSettings {
            brokers: Some(background.broker().bootstrap_servers().to_owned()),
            topic: kafka.topic,
            ..KafkaSettings::default()
        };
        // Wait for the revocation watcher: tests then see the steady state,
        // and no connection is left half-open (mid-handshake) when the test
        // ends and its runtime stops, which would hold up PostgreSQL's
        // DROP DATABASE for every other test until the server gives up.
        for _ in 0..300 {
            if app.authenticator.live_cache().is_trusted() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            app.authenticator.live_cache().is_trusted(),
            "the revocation watcher did not start"
        );
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            errand::server::serve(
                acceptor,
                endpoint,
                async {
                    let _ = signal.await;
                },
                Duration::from_secs(5),
            )
            .await
            .expect("server runs");
        });
        Self {
            address,
            database_url,
            app,
            client: Client::builder().no_proxy().build().expect("http client"),
            shutdown: Some(shutdown),
            server: Some(server),
            background,
            kafka,
            mail,
            _database: database,
        }
    }

    /// Takes the database away from the app (see `Outage`).
    pub async fn take_database_away(&self) -> Outage {
        use sea_orm::sqlx::{Connection as _, Executor as _};
        match &self._database {
            TestDatabase::Postgres { admin_url, name } => {
                let admin = sea_orm::Database::connect(admin_url)
                    .await
                    .expect("connect to ERRAND_TEST_DATABASE_URL");
                for statement in [
                    format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"),
                    format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    ),
                ] {
                    sea_orm::ConnectionTrait::execute_unprepared(&admin, &statement)
                        .await
                        .expect("take the test database away");
                }
                Outage::Postgres {
                    admin,
                    name: name.clone(),
                }
            }
            TestDatabase::Sqlite(_) => {
                let mut lock = sea_orm::sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("open the test database");
                lock.execute("BEGIN EXCLUSIVE")
                    .await
                    .expect("take SQLite's write lock");
                Outage::Sqlite(lock)
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A signed-in user with the given scopes.
    pub async fn user_with_scopes(&self, email: &str, scopes: &str) -> TestUser {
        self.user_for(email, scopes, Resource::Api).await
    }

    /// A signed-in user whose token is for `resource`.
    pub async fn user_for(&self, email: &str, scopes: &str, resource: Resource) -> TestUser {
        let email = EmailAddress::parse(email).unwrap();
        let user = users::store::find_or_create(&self.app.db, &email)
            .await
            .unwrap();
        let token = grants::developer_token(
            &self.app.db,
            self.app.tokens(),
            user.id,
            &ScopeSet::parse(scopes).unwrap(),
            Duration::from_secs(600),
            resource,
        )
        .await
        .unwrap();
        TestUser {
            id: user.id,
            email: email.as_str().to_owned(),
            token,
        }
    }

    /// An account that signs in with `password`, as the sign-up page makes
    /// it (without its verification mail).
    pub async fn account(&self, email: &str, password: &str) -> uuid::Uuid {
        let hash = errand::secrets::hash_password(password).expect("hash a password");
        users::store::create(
            &self.app.db,
            &EmailAddress::parse(email).unwrap(),
            Some(hash),
        )
        .await
        .expect("create an account")
        .expect("a new address")
        .id
    }

    /// The messages written to this app's mail folder so far, each as its
    /// raw bytes, oldest first.
    pub fn mailbox(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> =
            std::fs::read_dir(self.mail.path())
                .map(|dir| {
                    dir.filter_map(Result::ok)
                        .map(|entry| entry.path())
                        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
                        .collect()
                })
                .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .collect()
    }

    /// Waits (up to 10 s) until the mail folder holds `count` messages.
    pub async fn await_mail(&self, count: usize) -> Vec<Vec<u8>> {
        let started = std::time::Instant::now();
        loop {
            let mailbox = self.mailbox();
            if mailbox.len() >= count || started.elapsed() > Duration::from_secs(10) {
                return mailbox;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `/metrics` exposition, as Prometheus would scrape it.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn user(&self, email: &str) -> TestUser {
        self.user_with_scopes(email, ALL_SCOPES).await
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request
            .send()
            .await
            .expect("request reaches the test server")
    }

    pub async fn create_task(&self, user: &TestUser, body: Value) -> Response {
        self.request(Method::POST, "/v1/tasks", Some(&user.token), Some(&body))
            .await
    }

    /// Creates a task that must succeed and returns it.
    pub async fn new_task(&self, user: &TestUser, body: Value) -> Value {
        let response = self.create_task(user, body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn list_tasks(&self, user: &TestUser, query: &[(&str, &str)]) -> Response {
        self.client
            .get(self.url("/v1/tasks"))
            .query(query)
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request reaches the test server")
    }

    /// The tasks of one successful listing, and its next cursor.
    pub async fn list_page(
        &self,
        user: &TestUser,
        query: &[(&str, &str)],
    ) -> (Vec<Value>, Option<String>) {
        let response = self.list_tasks(user, query).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        let tasks = page["tasks"].as_array().unwrap().clone();
        let cursor = page["next_cursor"].as_str().map(str::to_owned);
        (tasks, cursor)
    }

    pub async fn get_task(&self, user: &TestUser, number: i64) -> Response {
        self.request(
            Method::GET,
            &format!("/v1/tasks/{number}"),
            Some(&user.token),
            None,
        )
        .await
    }

    pub async fn update_task(&self, user: &TestUser, number: i64, body: Value) -> Response {
        self.request(
            Method::PATCH,
            &format!("/v1/tasks/{number}"),
            Some(&user.token),
            Some(&body),
        )
        .await
    }

    pub async fn complete_task(&self, user: &TestUser, number: i64) -> Response {
        self.request(
            Method::POST,
            &format!("/v1/tasks/{number}/complete"),
            Some(&user.token),
            None,
        )
        .await
    }

    pub async fn reopen_task(&self, user: &TestUser, number: i64) -> Response {
        self.request(
            Method::POST,
            &format!("/v1/tasks/{number}/reopen"),
            Some(&user.token),
            None,
        )
        .await
    }

    pub async fn delete_task(&self, user: &TestUser, number: i64) -> Response {
        self.request(
            Method::DELETE,
            &format!("/v1/tasks/{number}"),
            Some(&user.token),
            None,
        )
        .await
    }

    pub async fn agenda(&self, user: &TestUser, tz: Option<&str>) -> Response {
        let mut request = self
            .client
            .get(self.url("/v1/agenda"))
            .bearer_auth(&user.token);
        if let Some(tz) = tz {
            request = request.query(&[("tz", tz)]);
        }
        request
            .send()
            .await
            .expect("request reaches the test server")
    }

    pub async fn me(&self, token: &str) -> Response {
        self.request(Method::GET, "/v1/me", Some(token), None).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A message as a mail client reads it (parsed by mail-parser, not by
/// looking at the text Errand wrote).
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: Option<String>,
    pub has_date: bool,
    /// Every header, name and raw value, as sent.
    pub headers: Vec<(String, String)>,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Self {
        let message = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("a message a mail client can read");
        let address = |addr: Option<&mail_parser::Address>| {
            addr.and_then(|a| a.first())
                .map(|a| match (&a.name, &a.address) {
                    (Some(name), Some(address)) => format!("{name} <{address}>"),
                    (None, Some(address)) => address.to_string(),
                    _ => String::new(),
                })
                .unwrap_or_default()
        };
        Self {
            from: address(message.from()),
            to: address(message.to()),
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            html: message
                .body_html(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            message_id: message.message_id().map(str::to_owned),
            has_date: message.date().is_some(),
            headers: message
                .headers_raw()
                .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
                .collect(),
        }
    }

    /// The first link in the plain-text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        self.text
            .split_whitespace()
            .find(|word| word.starts_with(prefix))
            .map(str::to_owned)
    }
}

/// The Kafka cluster of a test: the one `ERRAND_TEST_KAFKA_BROKERS` names,
/// with a topic of the test's own (tests run in parallel), or an embedded
/// one per test.
pub fn test_kafka() -> KafkaSettings {
    match test_kafka_brokers() {
        Some(brokers) => KafkaSettings {
            brokers: Some(brokers),
            topic: format!("errand.test.{}", uuid::Uuid::new_v4().simple()),
            ..KafkaSettings::default()
        },
        None => KafkaSettings::default(),
    }
}

/// Webhooks as the tests need them: receivers listen on loopback over
/// plain HTTP, attempts time out after 2 s and are retried after a second,
/// and on a shared cluster each test's intake has a consumer group of its
/// own.
pub fn test_webhooks() -> WebhookSettings {
    WebhookSettings {
        allow_http: true,
        allow_private: true,
        group: if on_real_kafka() {
            format!("errand-webhooks-{}", uuid::Uuid::new_v4().simple())
        } else {
            errand::config::DEFAULT_WEBHOOK_GROUP.to_owned()
        },
        timeout: Duration::from_secs(2),
        retry_schedule: vec![Duration::from_secs(1); 4],
        ..WebhookSettings::default()
    }
}

fn test_kafka_brokers() -> Option<String> {
    std::env::var("ERRAND_TEST_KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty())
}

pub fn on_real_kafka() -> bool {
    test_kafka_brokers().is_some()
}

pub struct TestUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub token: String,
}

/// Reads a problem response, checking it is problem+json with the given status.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], json!(status.as_u16()));
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

/// The `field` of every issue in a validation problem.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Another Errand process (`errand serve`, the real binary) on a
/// [`TestApp`]'s database and public URL: a second replica behind the same
/// address. Its log lines (JSON) are collected so a test can wait for one.
pub struct Replica {
    pub address: String,
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Replica {
    pub async fn start(app: &TestApp) -> Self {
        Self::start_with(app, &[]).await
    }

    /// A replica with extra environment variables. It publishes to the
    /// test's Kafka cluster and topic (an embedded cluster listens on
    /// loopback, so another process can use it too).
    pub async fn start_with(app: &TestApp, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_errand"))
            .env_clear()
            .env("ERRAND_DATABASE_URL", &app.database_url)
            .env("ERRAND_PUBLIC_URL", &app.address)
            .env("ERRAND_LISTEN", format!("127.0.0.1:{port}"))
            .env("ERRAND_LOG_FORMAT", "json")
            .env("ERRAND_LOG", "warn,errand::auth::revocation=debug")
            .env(
                "ERRAND_KAFKA_BROKERS",
                app.kafka.brokers.as_deref().unwrap_or_default(),
            )
            .env("ERRAND_KAFKA_TOPIC", &app.kafka.topic)
            .env("ERRAND_WEBHOOK_GROUP", &app.app.webhooks.group)
            // Like the in-process app: no rate limits unless a test sets them.
            .env("ERRAND_RATE_LIMIT_USER", "off")
            .env("ERRAND_RATE_LIMIT_CLIENT", "off")
            .envs(env.iter().copied())
            .arg("serve")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(value) = serde_json::from_str(&line) {
                    lines.lock().unwrap().push(value);
                }
            }
        });
        let replica = Self {
            address: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        // Generous: a debug build on a busy two-core machine can take a while.
        for _ in 0..300 {
            if let Ok(response) = app
                .client
                .get(format!("{}/readyz", replica.address))
                .send()
                .await
                && response.status() == StatusCode::OK
            {
                return replica;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replica never became ready");
    }

    /// Waits (at most 30 s) until the replica has logged `message` `times` times.
    pub async fn logged(&self, message: &str, times: usize) {
        for _ in 0..300 {
            let seen = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|line| line["message"] == message)
                .count();
            if seen >= times {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replica did not log {message:?} {times} times");
    }

    /// The status of `GET /v1/me` with `token` on this replica.
    pub async fn me(&self, app: &TestApp, token: &str) -> StatusCode {
        app.client
            .get(format!("{}/v1/me", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

impl Replica {
    /// Ends the process at once, as a crash or an out-of-memory kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop, as an orchestrator does (SIGTERM).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "could not signal the replica");
    }

    /// Waits (at most `limit`) for the process to exit; its status.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// The log lines so far.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the server at `address` starts refusing `token` (401 on
/// `GET /v1/me`) within `limit`, polling as a client would.
pub async fn refused_within(app: &TestApp, address: &str, token: &str, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let answer = app
            .client
            .get(format!("{address}/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        if answer == StatusCode::UNAUTHORIZED {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether the tests run on PostgreSQL (`ERRAND_TEST_DATABASE_URL`).
pub fn on_postgres() -> bool {
    std::env::var("ERRAND_TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty())
}

/// A Kafka consumer of the test's events topic, from its beginning.
pub struct EventReader {
    consumer: rdkafka::consumer::StreamConsumer,
}

/// One message read back: its key, the CloudEvent, and its content type.
#[derive(Debug, Clone)]
pub struct ReadEvent {
    pub key: String,
    pub event: Value,
    pub content_type: Option<String>,
}

impl EventReader {
    pub fn new(app: &TestApp) -> Self {
        use rdkafka::consumer::Consumer;
        let consumer: rdkafka::consumer::StreamConsumer = rdkafka::ClientConfig::new()
            .set(
                "bootstrap.servers",
                app.kafka.brokers.as_deref().unwrap_or_default(),
            )
            .set(
                "group.id",
                format!("errand-test-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a Kafka consumer");
        consumer
            .subscribe(&[&app.kafka.topic])
            .expect("subscribe to the events topic");
        Self { consumer }
    }

    /// Reads until `count` events have arrived, or `limit` has passed.
    pub async fn read(&self, count: usize, limit: Duration) -> Vec<ReadEvent> {
        use rdkafka::message::{Headers, Message};
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        while events.len() < count {
            let next = tokio::time::timeout_at(deadline, self.consumer.recv()).await;
            let Ok(message) = next else { break };
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    // Such as a partition not led yet: the consumer retries.
                    eprintln!("consumer: {err}");
                    continue;
                }
            };
            let content_type = message.headers().and_then(|headers| {
                headers
                    .iter()
                    .find(|h| h.key == "content-type")
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            });
            events.push(ReadEvent {
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                event: serde_json::from_slice(message.payload().unwrap_or_default())
                    .expect("a JSON CloudEvent"),
                content_type,
            });
        }
        events
    }

    /// Whatever else arrives within `wait`.
    pub async fn rest(&self, wait: Duration) -> Vec<ReadEvent> {
        self.read(usize::MAX, wait).await
    }
}
