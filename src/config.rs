//! Every setting, from a flag or an `ERRAND_*` environment variable, with an
//! embedded default so that `errand serve` needs nothing installed.

use std::{net::SocketAddr, path::PathBuf};

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
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

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
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub signing_key_file: Option<PathBuf>,
    pub oidc: Option<OidcSettings>,
    pub trust_forwarded_for: bool,
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
}

impl KafkaArgs {
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self
                .kafka_brokers
                .clone()
                .filter(|brokers| !brokers.trim().is_empty()),
            topic: self.kafka_topic.clone(),
        }
    }
}

/// The Kafka cluster and topic events go to.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers; `None` for the embedded cluster.
    pub brokers: Option<String>,
    pub topic: String,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            topic: DEFAULT_EVENTS_TOPIC.to_owned(),
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

    /// 32 bytes of base64 that seal webhook signing secrets at rest.
    /// Without it a key is generated once and kept in the database.
    #[arg(long, env = "ERRAND_WEBHOOK_SECRET_KEY", hide_env_values = true)]
    pub webhook_secret_key: Option<String>,

    /// The Kafka consumer group of the webhook intake.
    #[arg(long, env = "ERRAND_WEBHOOK_GROUP", default_value = DEFAULT_WEBHOOK_GROUP)]
    pub webhook_group: String,
}

impl WebhookArgs {
    pub fn settings(&self) -> WebhookSettings {
        WebhookSettings {
            allow_http: self.webhook_allow_http,
            allow_private: self.webhook_allow_private,
            secret_key: self.webhook_secret_key.clone().filter(|k| !k.is_empty()),
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
    pub secret_key: Option<String>,
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
            secret_key: None,
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("ERRAND_PUBLIC_URL `{value}` is not usable: {why}")]
    PublicUrl { value: String, why: String },
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
    fn public_url_rejects_relative_and_non_http() {
        assert!(PublicUrl::parse("errand.example.com").is_err());
        assert!(PublicUrl::parse("ftp://errand.example.com").is_err());
        assert!(PublicUrl::parse("https://errand.example.com/?a=b").is_err());
    }
}
