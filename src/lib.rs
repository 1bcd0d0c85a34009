//! Errand: a GPT Actions backend for tasks and reminders.
//!
//! The binary in `main.rs` is a thin CLI over this library; the integration
//! tests and benchmarks start the same [`App`].

pub mod auth;
pub mod config;
pub mod db;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod jobs;
pub mod mail;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod operations;
pub mod outbound;
pub mod patch;
pub mod plugin;
pub mod problem;
pub mod rate_limit;
pub mod reminders;
pub mod sealing;
pub mod secrets;
pub mod server;
pub mod serving;
pub mod site;
pub mod spec;
pub mod tasks;
pub mod telemetry;
pub mod text;
pub mod timestamp;
pub mod tools;
pub mod urls;
pub mod users;
pub mod web;
pub mod webhooks;

use std::{sync::Arc, time::Duration};

use poem::{Endpoint, Response};
use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    auth::{
        Authenticator, KeyError, KeyRing, TokenService,
        oidc::{OidcError, OidcVerifier},
        revocation,
    },
    config::{
        AuthSettings, DatabaseSettings, HttpSettings, KafkaSettings, MailSettings, McpSettings,
        PublicUrl, WebhookSettings,
    },
    db::DbSetupError,
    events::{Broker, Source, kafka::BrokerError, relay::Relay},
    health::Draining,
    idempotency::Idempotency,
    jobs::{Jobs, Woken},
    metrics::Metrics,
    oauth::{OAuthState, client_metadata::ClientDocuments},
    outbound::GuardPolicy,
    sealing::{SealError, Sealer},
    spec::SpecError,
    webhooks::dispatch::Dispatcher,
};

/// Process-wide set-up, done once when a process starts (by `main`, and by
/// the test harness): selects rustls' ring crypto provider for outbound
/// HTTPS. reqwest is built without a bundled provider because ring is
/// already in the build through sqlx, and one crypto library is enough.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How often running servers look for signing keys rotated by another
/// process (a token signed with an unknown key triggers a look at once).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// A started Errand: database migrated, signing keys loaded.
#[derive(Debug, Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub authenticator: Authenticator,
    pub public_url: PublicUrl,
    pub settings: AuthSettings,
    /// How webhook URLs are checked and deliveries made; strict unless the
    /// operator loosened it (set before starting the endpoint and jobs).
    pub webhooks: WebhookSettings,
    /// Request timeout, rate limits, where metrics are served (set before
    /// building the endpoint).
    pub http: HttpSettings,
    /// Where mail goes (set before starting the background work).
    pub mail: MailSettings,
    /// The MCP door's settings (set before building the endpoint).
    pub mcp: McpSettings,
    /// This app's metrics, recorded by the server and the jobs.
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM: readiness fails while requests drain.
    pub draining: Draining,
    /// Seals the secrets kept in the database (loaded at start, so that no
    /// later use waits for a connection).
    sealer: Sealer,
    csrf_key: [u8; 32],
}

/// The background work a serving process runs beside the API, and the
/// Kafka cluster it publishes to; aborted when dropped, or stopped cleanly
/// by [`Background::shutdown`].
#[derive(Debug)]
pub struct Background {
    jobs: Option<Jobs>,
    // After `jobs`: an embedded cluster outlives the clients using it.
    broker: Broker,
}

impl Background {
    /// The cluster events go to.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Lets every job finish its step (the relay publishes what it holds),
    /// waiting up to `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(jobs) = self.jobs.take() {
            jobs.shutdown(grace).await;
        }
    }
}

/// What the background work needs besides the database.
#[derive(Debug, Clone)]
pub struct BackgroundSettings {
    pub kafka: KafkaSettings,
    /// Whether this process runs the workers (the outbox relay, and the
    /// reminder scheduler and webhook dispatcher). `false` for a process
    /// that only serves the API while others do that work.
    pub workers: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Build(#[from] server::BuildError),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error("could not load or store the sign-in pages' CSRF key")]
    CsrfKey(#[source] DbErr),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Sealing(#[from] SealError),
    #[error("could not build the webhook HTTP client")]
    WebhookClient(#[source] reqwest::Error),
    #[error("could not build the HTTP client for client metadata documents")]
    OutboundClient(#[source] reqwest::Error),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
}

impl App {
    /// Connects, applies pending migrations and loads the signing keys.
    pub async fn start(
        database: &DatabaseSettings,
        public_url: PublicUrl,
        settings: &AuthSettings,
    ) -> Result<Self, StartError> {
        let db = db::connect_for_serving(database).await?;
        let sealer = Sealer::new(db.clone(), settings.sealing_key.clone());
        // Now, once: inside an idempotent request on SQLite, the request's
        // transaction holds the one connection a first load would wait for.
        sealer.key().await?;
        let keys = KeyRing::load(&db, settings.signing_key_file.as_deref(), &sealer).await?;
        let tokens = TokenService::new(keys, &public_url);
        let external = settings.oidc.as_ref().map(OidcVerifier::new).transpose()?;
        let authenticator = Authenticator::new(
            tokens,
            db.clone(),
            external,
            settings.signing_key_file.clone(),
            sealer.clone(),
        );
        let csrf_key = oauth::authorize::session::load_csrf_key(&db)
            .await
            .map_err(StartError::CsrfKey)?;
        Ok(Self {
            db,
            authenticator,
            public_url,
            settings: settings.clone(),
            webhooks: WebhookSettings::default(),
            http: HttpSettings::default(),
            mail: MailSettings::default(),
            mcp: McpSettings::default(),
            metrics: Arc::new(Metrics::new()),
            draining: Draining::default(),
            sealer,
            csrf_key,
        })
    }

    /// Starts what a serving process keeps doing beside the API: hearing
    /// about revocations made elsewhere (until it does, every token is
    /// checked against the database), picking up rotated signing keys,
    /// publishing the outbox to Kafka (starting an embedded cluster when
    /// none is configured), and sweeping expired rows.
    pub async fn start_background(
        &self,
        settings: &BackgroundSettings,
    ) -> Result<Background, StartError> {
        let broker = Broker::start(&settings.kafka).await?;
        let mut jobs = Jobs::new();
        let (db, cache) = (self.db.clone(), self.authenticator.live_cache().clone());
        jobs.spawn("revocation watcher", |mut stop| async move {
            tokio::select! {
                () = revocation::watch(db, cache) => {}
                () = stop.requested() => {}
            }
        });
        let authenticator = self.authenticator.clone();
        jobs.spawn("signing key reload", |mut stop| async move {
            while stop
                .pause(KEY_RELOAD_INTERVAL, std::future::pending())
                .await
                != Woken::Stopping
            {
                authenticator.reload_keys(true).await;
            }
        });
        let db = self.db.clone();
        jobs.spawn("outbox announcer", |stop| events::relay::announce(db, stop));
        if settings.workers {
            let relay = Relay::new(self.db.clone(), &broker, self.metrics.clone())?;
            jobs.spawn("outbox relay", |stop| events::relay::run(relay, stop));
            let (db, source) = (self.db.clone(), Source::new(&self.public_url));
            let metrics = self.metrics.clone();
            jobs.spawn("reminder scheduler", |stop| {
                reminders::scheduler::run(db, source, metrics, stop)
            });
            let key = self.sealer.key().await?;
            let dispatcher = Dispatcher::new(
                self.db.clone(),
                key.clone(),
                self.webhooks.clone(),
                self.metrics.clone(),
            )
            .map_err(StartError::WebhookClient)?;
            jobs.spawn("webhook dispatcher", |stop| {
                webhooks::dispatch::run(dispatcher, stop)
            });
            let mailer = mail::sender::Mailer::new(
                self.db.clone(),
                key.clone(),
                &self.mail,
                self.metrics.clone(),
            )?;
            jobs.spawn("mail sender", |stop| mail::sender::run(mailer, stop));
            let consumer = broker.consumer(&self.webhooks.group)?;
            let (db, topic) = (self.db.clone(), broker.topic().to_owned());
            jobs.spawn("webhook intake", |stop| {
                webhooks::intake::run(db, consumer, topic, stop)
            });
        }
        let db = self.db.clone();
        jobs.spawn("janitor", |stop| jobs::janitor::run(db, stop));
        Ok(Background {
            jobs: Some(jobs),
            broker,
        })
    }

    /// What seals secrets at rest, with this app's configured key.
    pub fn sealer(&self) -> Sealer {
        self.sealer.clone()
    }

    /// Issues and checks this deployment's access tokens.
    pub fn tokens(&self) -> &TokenService {
        self.authenticator.tokens()
    }

    pub fn oauth_state(&self) -> Result<OAuthState, StartError> {
        // Anyone may name a client metadata document, so it is fetched under
        // the strict rules: public https addresses only. Only a development
        // Errand (its own URL on loopback, as the draft allows) follows the
        // webhook switches, so that a document can be served beside it.
        let on_loopback =
            url::Url::parse(self.public_url.as_str()).is_ok_and(|url| urls::is_loopback_host(&url));
        let policy = if on_loopback {
            GuardPolicy::from(&self.webhooks)
        } else {
            GuardPolicy::default()
        };
        let documents = ClientDocuments::new(policy).map_err(StartError::OutboundClient)?;
        Ok(OAuthState {
            db: self.db.clone(),
            authenticator: self.authenticator.clone(),
            public_url: self.public_url.clone(),
            secure_cookies: self.public_url.as_str().starts_with("https://"),
            trusted_proxy_hops: self.settings.trusted_proxy_hops,
            csrf_key: self.csrf_key,
            client_documents: Arc::new(documents),
            sealer: self.sealer(),
        })
    }

    /// The HTTP application.
    pub fn endpoint(&self) -> Result<impl Endpoint<Output = Response> + use<>, StartError> {
        let apis = || {
            operations::apis(
                &self.db,
                &self.public_url,
                &self.webhooks,
                &self.sealer,
                &self.draining,
            )
        };
        let serving = server::Serving {
            http: self.http.clone(),
            metrics: self.metrics.clone(),
            callers: server::Callers::new(
                self.authenticator.clone(),
                Arc::new(rate_limit::Limiter::new(
                    self.db.clone(),
                    self.http.rate_limits,
                )),
                Idempotency::new(self.db.clone(), self.sealer()),
                self.metrics.clone(),
            ),
            db: self.db.clone(),
            mcp_events: webhooks::mcp::McpEvents::new(
                self.db.clone(),
                self.sealer(),
                &self.webhooks,
            )
            .map_err(StartError::WebhookClient)?,
            mcp: self.mcp.clone(),
        };
        Ok(server::endpoint(
            apis(),
            apis(),
            &self.public_url,
            self.authenticator.clone(),
            self.oauth_state()?,
            serving,
        )?)
    }

    /// What a worker-only process serves: health checks, and the metrics
    /// unless they have a listener of their own.
    pub fn worker_endpoint(&self) -> impl Endpoint<Output = Response> + use<> {
        server::worker_endpoint(
            self.db.clone(),
            self.draining.clone(),
            self.http.metrics_on_main.then(|| self.metrics.clone()),
        )
    }

    /// The metrics alone, for a listener of their own.
    pub fn metrics_endpoint(&self) -> impl Endpoint<Output = Response> + use<> {
        server::metrics_endpoint(self.metrics.clone(), self.db.clone())
    }
}
