//! Every setting, from a flag or an `ERRAND_*` environment variable, with an
//! embedded default so that `errand serve` needs nothing installed.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use url::Url;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://errand.db?mode=rwc";

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `postgres://user:pass@host/db` or `sqlite://path/file.db`.
    /// Falls back to `DATABASE_URL`, then to a SQLite file `errand.db` in the
    /// working directory (created if missing).
    #[arg(long, env = "ERRAND_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Largest number of pooled PostgreSQL connections (SQLite always uses one).
    #[arg(long, env = "ERRAND_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// The longest one PostgreSQL statement may run before the server
    /// cancels it (`statement_timeout`). SQLite has no such limit; its
    /// writers wait at most 10 s for the lock.
    #[arg(long, env = "ERRAND_DATABASE_STATEMENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub database_statement_timeout: std::time::Duration,

    /// Apply pending migrations when `serve` starts. `false` where a
    /// migration job applies them (`errand migrate`): `serve` then refuses
    /// to start on a database that is behind.
    #[arg(long, env = "ERRAND_MIGRATE_ON_START", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,
}

impl DatabaseArgs {
    pub fn settings(&self) -> DatabaseSettings {
        let url = self
            .database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        DatabaseSettings {
            url,
            max_connections: self.database_max_connections.max(1),
            statement_timeout: Some(self.database_statement_timeout)
                .filter(|timeout| !timeout.is_zero()),
            migrate_on_start: self.migrate_on_start,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL's `statement_timeout` for every pooled connection.
    pub statement_timeout: Option<std::time::Duration>,
    /// Whether `serve` applies pending migrations (else it checks none are).
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    /// A database at `url` with the defaults `serve` uses.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            migrate_on_start: true,
        }
    }
}

pub const DEFAULT_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How the service is reached, which also decides who it says it is: the public
/// URL is the token issuer and the `servers` entry of the OpenAPI documents, so
/// `serve` and `token` read the same settings.
#[derive(Debug, Clone, Args)]
pub struct AddressArgs {
    /// Address and port to listen on.
    #[arg(long, env = "ERRAND_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// The URL clients use to reach this service, without a trailing slash
    /// (default: `http://` + the listen address).
    #[arg(long, env = "ERRAND_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl AddressArgs {
    pub fn public_url(&self) -> Result<PublicUrl, ConfigError> {
        match &self.public_url {
            Some(raw) => PublicUrl::parse(raw),
            None => PublicUrl::parse(&format!("http://{}", self.listen)),
        }
    }
}

/// Where access tokens are signed from.
#[derive(Debug, Clone, Args)]
pub struct SigningArgs {
    /// PEM file with an Ed25519 private key (PKCS#8) to sign access tokens with.
    /// Without it a key is generated once and kept in the database.
    #[arg(long, env = "ERRAND_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub sealing: SealingArgs,
}

/// What seals secrets at rest.
#[derive(Debug, Clone, Args)]
pub struct SealingArgs {
    /// 32 bytes of base64 that seal the secrets Errand keeps in its
    /// database and must use again: token-signing keys, webhook signing
    /// secrets, kept idempotent responses, queued mail. Without it a key is
    /// generated once and kept in the database. (Named for its first use.)
    #[arg(long, env = "ERRAND_WEBHOOK_SECRET_KEY", hide_env_values = true)]
    pub webhook_secret_key: Option<String>,
}

impl SealingArgs {
    /// The sealing key, if one is configured (an empty value is none).
    pub fn sealing_key(&self) -> Option<String> {
        self.webhook_secret_key.clone().filter(|k| !k.is_empty())
    }
}

/// Accepting access tokens from an external OpenID Connect provider.
#[derive(Debug, Clone, Args)]
pub struct OidcArgs {
    /// Issuer URL of an identity provider whose JWTs are accepted too
    /// (its discovery document is at ISSUER/.well-known/openid-configuration).
    #[arg(long, env = "ERRAND_OIDC_ISSUER", requires = "oidc_audience")]
    pub oidc_issuer: Option<String>,

    /// The audience (`aud`) those tokens must carry.
    #[arg(long, env = "ERRAND_OIDC_AUDIENCE", requires = "oidc_issuer")]
    pub oidc_audience: Option<String>,
}

/// An external identity provider whose tokens are accepted.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub audience: String,
    /// An unknown `kid` refetches the provider's keys at most this often.
    pub min_refetch_interval: std::time::Duration,
}

impl OidcSettings {
    pub fn new(issuer: String, audience: String) -> Self {
        Self {
            issuer,
            audience,
            min_refetch_interval: std::time::Duration::from_secs(30),
        }
    }
}

/// Who is allowed in, and how tokens are made and checked.
#[derive(Clone, Default)]
pub struct AuthSettings {
    pub signing_key_file: Option<PathBuf>,
    /// `ERRAND_WEBHOOK_SECRET_KEY`: seals secrets at rest (see `sealing`).
    pub sealing_key: Option<String>,
    pub oidc: Option<OidcSettings>,
    /// How many trusted proxies append to `X-Forwarded-For` in front of
    /// Errand (0: take the peer address).
    pub trusted_proxy_hops: u8,
}

/// By hand: the sealing key is a secret and never printed.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("signing_key_file", &self.signing_key_file)
            .field(
                "sealing_key",
                &self.sealing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("oidc", &self.oidc)
            .field("trusted_proxy_hops", &self.trusted_proxy_hops)
            .finish()
    }
}

/// The default topic events are published to.
pub const DEFAULT_EVENTS_TOPIC: &str = "errand.events";

/// Where events go.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated (`host:9092,host2:9092`).
    /// Without them `serve` starts an embedded in-memory cluster.
    #[arg(long, env = "ERRAND_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// The topic events are published to (created if missing).
    #[arg(long, env = "ERRAND_KAFKA_TOPIC", default_value = DEFAULT_EVENTS_TOPIC)]
    pub kafka_topic: String,

    /// How to reach the brokers: `plaintext`, `ssl`, `sasl_plaintext` or
    /// `sasl_ssl` (managed clusters such as Azure Event Hubs or Confluent
    /// Cloud: `sasl_ssl`).
    #[arg(long, env = "ERRAND_KAFKA_SECURITY_PROTOCOL", value_enum, default_value_t = KafkaSecurityProtocol::Plaintext)]
    pub kafka_security_protocol: KafkaSecurityProtocol,

    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[arg(long, env = "ERRAND_KAFKA_SASL_MECHANISM", default_value = "PLAIN", value_parser = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])]
    pub kafka_sasl_mechanism: String,

    /// SASL user name (Azure Event Hubs: `$ConnectionString`).
    #[arg(long, env = "ERRAND_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,

    /// SASL password (Azure Event Hubs: the namespace's connection string).
    #[arg(long, env = "ERRAND_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,

    /// A PEM file of CA certificates to verify the brokers with, when they
    /// are not signed by a CA the system trusts.
    #[arg(long, env = "ERRAND_KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<PathBuf>,
}

/// How the Kafka clients connect (librdkafka's `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KafkaSecurityProtocol {
    Plaintext,
    Ssl,
    #[value(name = "sasl_plaintext", alias = "SASL_PLAINTEXT")]
    SaslPlaintext,
    #[value(name = "sasl_ssl", alias = "SASL_SSL")]
    SaslSsl,
}

impl KafkaSecurityProtocol {
    fn property(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl KafkaArgs {
    pub fn settings(&self) -> Result<KafkaSettings, ConfigError> {
        let protocol = self.kafka_security_protocol;
        let mut security = Vec::new();
        if protocol != KafkaSecurityProtocol::Plaintext {
            security.push((
                "security.protocol".to_owned(),
                protocol.property().to_owned(),
            ));
        }
        if protocol.uses_sasl() {
            let (Some(username), Some(password)) =
                (&self.kafka_sasl_username, &self.kafka_sasl_password)
            else {
                return Err(ConfigError::Kafka(
                    "ERRAND_KAFKA_SECURITY_PROTOCOL uses SASL: set ERRAND_KAFKA_SASL_USERNAME and ERRAND_KAFKA_SASL_PASSWORD",
                ));
            };
            security.extend([
                (
                    "sasl.mechanism".to_owned(),
                    self.kafka_sasl_mechanism.clone(),
                ),
                ("sasl.username".to_owned(), username.clone()),
                ("sasl.password".to_owned(), password.clone()),
            ]);
        } else if self.kafka_sasl_username.is_some() || self.kafka_sasl_password.is_some() {
            return Err(ConfigError::Kafka(
                "SASL credentials are set but ERRAND_KAFKA_SECURITY_PROTOCOL is not sasl_ssl or sasl_plaintext",
            ));
        }
        if let Some(ca) = &self.kafka_ssl_ca_location {
            security.push(("ssl.ca.location".to_owned(), ca.display().to_string()));
        }
        let brokers = self
            .kafka_brokers
            .clone()
            .filter(|brokers| !brokers.trim().is_empty());
        if brokers.is_none() && !security.is_empty() {
            return Err(ConfigError::Kafka(
                "Kafka security settings need ERRAND_KAFKA_BROKERS (the embedded cluster takes none)",
            ));
        }
        Ok(KafkaSettings {
            brokers,
            topic: self.kafka_topic.clone(),
            security,
        })
    }
}

/// The Kafka cluster and topic events go to.
#[derive(Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers; `None` for the embedded cluster.
    pub brokers: Option<String>,
    pub topic: String,
    /// librdkafka properties for TLS and SASL, given to every client.
    pub security: Vec<(String, String)>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SASL password stays out of logs and panics.
        let security: Vec<(&str, &str)> = self
            .security
            .iter()
            .map(|(key, value)| {
                let shown = if key == "sasl.password" {
                    "<redacted>"
                } else {
                    value
                };
                (key.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("security", &security)
            .finish()
    }
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            topic: DEFAULT_EVENTS_TOPIC.to_owned(),
            security: Vec::new(),
        }
    }
}

/// The consumer group webhook intake reads events in.
pub const DEFAULT_WEBHOOK_GROUP: &str = "errand-webhooks";

/// Webhook delivery.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Allow webhook URLs with http:// (only https:// otherwise). For local
    /// development only.
    #[arg(long, env = "ERRAND_WEBHOOK_ALLOW_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_http: bool,

    /// Allow webhook URLs that resolve to loopback, private or link-local
    /// addresses (cloud metadata addresses are refused regardless). For
    /// local development and tests only.
    #[arg(long, env = "ERRAND_WEBHOOK_ALLOW_PRIVATE", value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: bool,

    /// The Kafka consumer group of the webhook intake.
    #[arg(long, env = "ERRAND_WEBHOOK_GROUP", default_value = DEFAULT_WEBHOOK_GROUP)]
    pub webhook_group: String,
}

impl WebhookArgs {
    pub fn settings(&self) -> WebhookSettings {
        WebhookSettings {
            allow_http: self.webhook_allow_http,
            allow_private: self.webhook_allow_private,
            group: self.webhook_group.clone(),
            ..WebhookSettings::default()
        }
    }
}

/// How webhooks are checked and delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allow_http: bool,
    pub allow_private: bool,
    pub group: String,
    /// How long one delivery attempt may take.
    pub timeout: std::time::Duration,
    /// The waits before each retry; the delivery fails after the last.
    pub retry_schedule: Vec<std::time::Duration>,
    /// A subscription whose deliveries all failed for this long is disabled.
    pub disable_after: std::time::Duration,
}

impl Default for WebhookSettings {
    /// The Standard Webhooks schedule: retries after 5 s, 5 min, 30 min,
    /// 2 h, 5 h, 10 h and 10 h (about 28 hours in all); disabled after
    /// five days of failures.
    fn default() -> Self {
        use std::time::Duration;
        Self {
            allow_http: false,
            allow_private: false,
            group: DEFAULT_WEBHOOK_GROUP.to_owned(),
            timeout: Duration::from_secs(10),
            retry_schedule: [5, 300, 1800, 7200, 18000, 36000, 36000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            disable_after: Duration::from_secs(5 * 24 * 60 * 60),
        }
    }
}

/// The MCP door.
#[derive(Debug, Clone, Default)]
pub struct McpSettings {
    /// The dedicated origin hosts serve the inline views from
    /// (`_meta.ui.domain`, ChatGPT's `openai/widgetDomain`), when the
    /// operator has one; unset, hosts choose.
    pub widget_domain: Option<String>,
    /// The token OpenAI's plugin submission asks to find at
    /// `/.well-known/openai-apps-challenge`.
    pub openai_apps_challenge: Option<String>,
}

/// Where mail goes.
#[derive(Debug, Clone, Args)]
pub struct MailArgs {
    /// The SMTP server mail is sent through, as a URL:
    /// `smtps://user:password@smtp.example.com` (TLS on connect, port 465),
    /// `smtp://user:password@smtp.example.com:587?tls=required` (STARTTLS).
    /// Without it, each message is written as an `.eml` file to
    /// ERRAND_MAIL_DIR and its links are logged.
    #[arg(long, env = "ERRAND_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Who mail is from: a name and an address of the operator's domain.
    #[arg(long, env = "ERRAND_MAIL_FROM", default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,

    /// The folder mail is written to when no SMTP server is set.
    #[arg(long, env = "ERRAND_MAIL_DIR", default_value = DEFAULT_MAIL_DIR)]
    pub mail_dir: PathBuf,
}

pub const DEFAULT_MAIL_FROM: &str = "Errand <errand@localhost>";
pub const DEFAULT_MAIL_DIR: &str = "errand-mail";

impl MailArgs {
    pub fn settings(&self) -> MailSettings {
        MailSettings {
            smtp_url: self.smtp_url.clone().filter(|url| !url.is_empty()),
            from: self.mail_from.clone(),
            folder: self.mail_dir.clone(),
            ..MailSettings::default()
        }
    }
}

/// How mail is sent.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: String,
    pub folder: PathBuf,
    /// The waits before each retry; a message is given up after the last.
    pub retry_schedule: Vec<std::time::Duration>,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("folder", &self.folder)
            .finish()
    }
}

impl Default for MailSettings {
    /// Retries after 1 minute, 5 minutes, 30 minutes, 2 hours and 6 hours.
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: DEFAULT_MAIL_FROM.to_owned(),
            folder: PathBuf::from(DEFAULT_MAIL_DIR),
            retry_schedule: [60, 300, 1800, 7200, 21600]
                .into_iter()
                .map(std::time::Duration::from_secs)
                .collect(),
        }
    }
}

/// What a serving process does, so that the API and the workers scale
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Role {
    /// The HTTP API only.
    Api,
    /// The outbox relay, reminder scheduler and webhook intake and
    /// dispatcher only; HTTP answers health checks and metrics.
    Worker,
    /// Both.
    #[default]
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Self::Api | Self::All)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

/// A request rate: so many requests per period, as a token bucket holding
/// that many (so a quiet caller may spend them in a burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub per: std::time::Duration,
}

impl Rate {
    /// `120/min`, `10/s`, `5000/h` (also `sec`, `second`, `m`, `minute`,
    /// `hour`); `off` or `0` is no limit (`None`).
    pub fn parse(name: &'static str, raw: &str) -> Result<Option<Self>, ConfigError> {
        let invalid = || ConfigError::Rate {
            name,
            value: raw.to_owned(),
        };
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("off") || raw == "0" {
            return Ok(None);
        }
        let (count, unit) = raw.split_once('/').ok_or_else(invalid)?;
        let requests: u32 = count.trim().parse().map_err(|_| invalid())?;
        let seconds = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(invalid()),
        };
        if requests == 0 {
            return Ok(None);
        }
        Ok(Some(Self {
            requests,
            per: std::time::Duration::from_secs(seconds),
        }))
    }
}

/// How much traffic one caller may send.
#[derive(Debug, Clone, Args)]
pub struct RateLimitArgs {
    /// Requests one user may make (all their clients together), e.g.
    /// `120/min`; `off` (the default, for development and benchmarks) for
    /// no limit. The deployment manifests set it.
    #[arg(long, env = "ERRAND_RATE_LIMIT_USER", default_value = "off")]
    pub rate_limit_user: String,

    /// Requests one OAuth client may make (all its users together), e.g.
    /// `1200/min`; `off` (the default) for no limit.
    #[arg(long, env = "ERRAND_RATE_LIMIT_CLIENT", default_value = "off")]
    pub rate_limit_client: String,
}

impl RateLimitArgs {
    pub fn settings(&self) -> Result<RateLimitSettings, ConfigError> {
        Ok(RateLimitSettings {
            per_user: Rate::parse("ERRAND_RATE_LIMIT_USER", &self.rate_limit_user)?,
            per_client: Rate::parse("ERRAND_RATE_LIMIT_CLIENT", &self.rate_limit_client)?,
        })
    }
}

/// The rate limits of authenticated callers; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitSettings {
    pub per_user: Option<Rate>,
    pub per_client: Option<Rate>,
}

/// The default request timeout: well under the 45 s after which ChatGPT
/// gives up on an action.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How the HTTP server treats each request.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A request still running after this long is abandoned with a 503.
    pub request_timeout: std::time::Duration,
    pub rate_limits: RateLimitSettings,
    /// Whether `/metrics` is served with the API (not when it has a
    /// listener of its own).
    pub metrics_on_main: bool,
}

impl Default for HttpSettings {
    /// What tests and embedders get: no rate limits unless they ask.
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            rate_limits: RateLimitSettings::default(),
            metrics_on_main: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging, shared by every command.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// `text` for people, `json` for log collectors.
    #[arg(long, env = "ERRAND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `errand=debug,sqlx=warn` (default: `info`
    /// for `serve` and `migrate`, `warn` for the other commands).
    #[arg(long, env = "ERRAND_LOG", global = true)]
    pub log: Option<String>,
}

/// The public base URL, normalised: absolute http(s), no trailing slash, no query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| ConfigError::PublicUrl {
            value: raw.to_owned(),
            why: why.to_owned(),
        };
        let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host().is_none() {
            return Err(invalid("a host is required"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment"));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An absolute URL for a path on this service.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `errand serve`: everything a serving process is told.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub address: AddressArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub signing: SigningArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub mail: MailArgs,
    /// What this process does: `api` (the HTTP API), `worker` (outbox
    /// relay, reminder scheduler, webhook intake and dispatcher; HTTP
    /// answers only health checks and metrics) or `all` (both).
    #[arg(long, env = "ERRAND_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
    /// A request still running after this long is abandoned with a 503
    /// (ChatGPT gives up on an action after 45 s).
    #[arg(long, env = "ERRAND_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Serve Prometheus metrics at /metrics on this address instead of on
    /// the main listener (e.g. `0.0.0.0:9090`, kept off the public gateway).
    #[arg(long, env = "ERRAND_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// After SIGTERM, how long readiness reports 503 while requests are
    /// still accepted, so load balancers stop sending new ones before the
    /// listener closes (5s on Kubernetes).
    #[arg(long, env = "ERRAND_DRAIN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub drain_delay: Duration,
    /// The dedicated origin MCP hosts serve Errand's inline views from
    /// (`_meta.ui.domain`, ChatGPT's `openai/widgetDomain`), e.g.
    /// https://errand.example.com; unset, each host chooses.
    #[arg(long, env = "ERRAND_MCP_WIDGET_DOMAIN")]
    pub mcp_widget_domain: Option<String>,
    /// The domain-verification token OpenAI's plugin submission shows,
    /// served as plain text at /.well-known/openai-apps-challenge.
    #[arg(long, env = "ERRAND_OPENAI_APPS_CHALLENGE", hide_env_values = true)]
    pub openai_apps_challenge: Option<String>,
    /// How many reverse proxies in front of Errand append to
    /// X-Forwarded-For (a gateway alone: 1; a CDN or Front Door before the
    /// gateway: 2). The client address for sign-in and sign-up rationing is
    /// the entry that many hops from the right. 0: the peer address.
    #[arg(long, env = "ERRAND_TRUSTED_PROXY_HOPS", value_parser = clap::value_parser!(u8).range(0..=10))]
    pub trusted_proxy_hops: Option<u8>,
    /// Older switch for one trusted proxy (the same as
    /// ERRAND_TRUSTED_PROXY_HOPS=1 when that is not set).
    #[arg(long, env = "ERRAND_TRUST_FORWARDED_FOR", value_parser = clap::builder::BoolishValueParser::new())]
    pub trust_forwarded_for: bool,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "ERRAND_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

impl ServeArgs {
    /// The settings, checked: a bad value is refused before anything starts.
    pub fn settings(&self) -> Result<ServeSettings, ConfigError> {
        Ok(ServeSettings {
            public_url: self.address.public_url()?,
            listen: self.address.listen,
            metrics_listen: self.metrics_listen,
            database: self.database.settings(),
            auth: AuthSettings {
                signing_key_file: self.signing.signing_key_file.clone(),
                sealing_key: self.signing.sealing.sealing_key(),
                oidc: self
                    .oidc
                    .oidc_issuer
                    .clone()
                    .zip(self.oidc.oidc_audience.clone())
                    .map(|(issuer, audience)| OidcSettings::new(issuer, audience)),
                trusted_proxy_hops: self
                    .trusted_proxy_hops
                    .unwrap_or(u8::from(self.trust_forwarded_for)),
            },
            kafka: self.kafka.settings()?,
            webhooks: self.webhooks.settings(),
            mail: self.mail.settings(),
            mcp: McpSettings {
                widget_domain: self.mcp_widget_domain.clone().filter(|d| !d.is_empty()),
                openai_apps_challenge: self
                    .openai_apps_challenge
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            },
            http: HttpSettings {
                request_timeout: self.request_timeout,
                rate_limits: self.rate_limits.settings()?,
                metrics_on_main: self.metrics_listen.is_none(),
            },
            role: self.role,
            drain_delay: self.drain_delay,
            shutdown_grace: self.shutdown_grace,
        })
    }
}

/// What `errand serve` runs with (see [`ServeArgs`] for each).
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub public_url: PublicUrl,
    pub listen: std::net::SocketAddr,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub kafka: KafkaSettings,
    pub webhooks: WebhookSettings,
    pub mail: MailSettings,
    pub mcp: McpSettings,
    pub http: HttpSettings,
    pub role: Role,
    pub drain_delay: Duration,
    pub shutdown_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("ERRAND_PUBLIC_URL `{value}` is not usable: {why}")]
    PublicUrl { value: String, why: String },
    #[error("{0}")]
    Kafka(&'static str),
    #[error("{name} `{value}` is not a rate such as 120/min, 10/s or 5000/h, or `off`")]
    Rate { name: &'static str, value: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_normalised_without_trailing_slash() {
        let url = PublicUrl::parse("https://errand.example.com/").unwrap();
        assert_eq!(url.as_str(), "https://errand.example.com");
        assert_eq!(url.join("/v1/me"), "https://errand.example.com/v1/me");
    }

    #[test]
    fn rates_parse_from_what_operators_write() {
        let rate = Rate::parse("X", "120/min").unwrap().unwrap();
        assert_eq!((rate.requests, rate.per.as_secs()), (120, 60));
        let rate = Rate::parse("X", " 10 / s ").unwrap().unwrap();
        assert_eq!((rate.requests, rate.per.as_secs()), (10, 1));
        assert_eq!(
            Rate::parse("X", "5000/hour")
                .unwrap()
                .unwrap()
                .per
                .as_secs(),
            3600
        );
        assert_eq!(Rate::parse("X", "off").unwrap(), None);
        assert_eq!(Rate::parse("X", "0").unwrap(), None);
        for bad in ["", "120", "120/day", "-1/s", "many/min", "1.5/s"] {
            let err = Rate::parse("ERRAND_RATE_LIMIT_USER", bad).unwrap_err();
            assert!(
                err.to_string().contains("ERRAND_RATE_LIMIT_USER"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn kafka_security_needs_credentials_and_brokers() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            kafka: KafkaArgs,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("errand").chain(args.iter().copied()))
                .unwrap()
                .kafka
                .settings()
        };
        let settings = parse(&[
            "--kafka-brokers=ns.example.net:9093",
            "--kafka-security-protocol=sasl_ssl",
            "--kafka-sasl-username=$ConnectionString",
            "--kafka-sasl-password=Endpoint=sb://secret",
        ])
        .unwrap();
        assert!(
            settings
                .security
                .contains(&("security.protocol".into(), "sasl_ssl".into()))
        );
        assert!(
            settings
                .security
                .contains(&("sasl.mechanism".into(), "PLAIN".into()))
        );
        assert!(!format!("{settings:?}").contains("sb://secret"));
        assert!(
            parse(&[
                "--kafka-brokers=b:9093",
                "--kafka-security-protocol=SASL_SSL"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "--kafka-brokers=b:9093",
                "--kafka-sasl-username=u",
                "--kafka-sasl-password=p"
            ])
            .is_err()
        );
        assert!(parse(&["--kafka-security-protocol=ssl"]).is_err());
        assert!(parse(&[]).unwrap().security.is_empty());
    }

    #[test]
    fn public_url_rejects_relative_and_non_http() {
        assert!(PublicUrl::parse("errand.example.com").is_err());
        assert!(PublicUrl::parse("ftp://errand.example.com").is_err());
        assert!(PublicUrl::parse("https://errand.example.com/?a=b").is_err());
    }
}
