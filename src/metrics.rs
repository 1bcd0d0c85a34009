//! What an operator's Prometheus scrapes at `/metrics`: requests by
//! operation and status with their latency, the outbox, webhook deliveries,
//! reminders, rate limits and the database pool.
//!
//! One [`Metrics`] per [`crate::App`] (not a process-wide registry), so that
//! several apps in one process, as in the tests, count apart. Counters and
//! histograms are recorded where things happen; the outbox backlog and the
//! pool are read from their sources when scraped (`health::metrics_endpoint`
//! serves them).

use std::time::Duration;

use poem::http::StatusCode;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::{Registry, Unit},
};
use sea_orm::DatabaseConnection;

/// The content type of the OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which way a request came in: straight over HTTP, or as an MCP tool call
/// run in-process (its `/mcp` request is counted under `http` too).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Door {
    Http,
    Mcp,
}

impl Door {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Mcp => "mcp",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    door: &'static str,
    /// The operationId, or the route of an endpoint outside the OpenAPI
    /// document (`/oauth/token`); `unmatched` for unknown paths.
    operation: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    door: &'static str,
    operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailLabels {
    /// What the message is for (`verify-email`, …).
    purpose: String,
    /// `sent`, `retrying` or `failed`.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s: fast reads, slow writes and the 30 s timeout.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

fn lag_histogram() -> Histogram {
    // 10 ms to about 20 minutes: on time, late after a restart.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.01, 3.0, 12,
    ))
}

/// Every metric Errand exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<LatencyLabels>,
    rate_limited: Family<LimitLabels, Counter>,
    idempotent_replays: Counter,
    published: Counter,
    publish_latency: Histogram,
    outbox_backlog: Gauge,
    outbox_oldest: Gauge,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    webhooks_given_up: Counter,
    reminders_fired: Counter,
    reminder_lag: Histogram,
    mail: Family<MailLabels, Counter>,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("errand");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests handled, by door (http, or mcp for tool calls), operation and status",
            requests.clone(),
        );
        let latency: HistogramFamily<LatencyLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response, by door and operation",
            Unit::Seconds,
            latency.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused with 429, by the limit (user or client) that refused them",
            rate_limited.clone(),
        );
        let idempotent_replays = Counter::default();
        registry.register(
            "idempotent_replays",
            "Responses replayed for a repeated Idempotency-Key",
            idempotent_replays.clone(),
        );
        let published = Counter::default();
        registry.register(
            "outbox_published_events",
            "Events this process published to Kafka",
            published.clone(),
        );
        let publish_latency = latency_histogram();
        registry.register_with_unit(
            "outbox_publish_latency",
            "Time from an event's commit to Kafka's acknowledgement",
            Unit::Seconds,
            publish_latency.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog_events",
            "Events committed but not yet published",
            outbox_backlog.clone(),
        );
        let outbox_oldest = Gauge::default();
        registry.register_with_unit(
            "outbox_oldest_event_age",
            "Age of the oldest unpublished event (0 when none wait)",
            Unit::Seconds,
            outbox_oldest.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by outcome: delivered, rejected (non-2xx), unreachable",
            webhook_attempts.clone(),
        );
        let webhooks_given_up = Counter::default();
        registry.register(
            "webhook_deliveries_given_up",
            "Webhook deliveries that failed their last retry",
            webhooks_given_up.clone(),
        );
        let reminders_fired = Counter::default();
        registry.register(
            "reminders_fired",
            "Reminders this process fired",
            reminders_fired.clone(),
        );
        let reminder_lag = lag_histogram();
        registry.register_with_unit(
            "reminder_lag",
            "How long after its time a reminder fired",
            Unit::Seconds,
            reminder_lag.clone(),
        );
        let mail = Family::<MailLabels, Counter>::default();
        registry.register(
            "mail_attempts",
            "Attempts to send mail, by purpose and outcome (sent, retrying, failed)",
            mail.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections in the pool, by state (in_use, idle)",
            pool.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "The pool's largest size",
            pool_max.clone(),
        );
        registry.register(
            "build",
            "The running version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Self {
            registry,
            requests,
            latency,
            rate_limited,
            idempotent_replays,
            published,
            publish_latency,
            outbox_backlog,
            outbox_oldest,
            webhook_attempts,
            webhooks_given_up,
            reminders_fired,
            reminder_lag,
            mail,
            pool,
            pool_max,
        }
    }

    pub fn request(&self, door: Door, operation: &str, status: StatusCode, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                door: door.as_str(),
                operation: operation.to_owned(),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                door: door.as_str(),
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A 429; `limit` is `user` or `client`.
    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    pub fn idempotent_replay(&self) {
        self.idempotent_replays.inc();
    }

    /// An event Kafka acknowledged, `age` after its commit.
    pub fn published(&self, age: Duration) {
        self.published.inc();
        self.publish_latency.observe(age.as_secs_f64());
    }

    /// One webhook attempt: `delivered`, `rejected` or `unreachable`;
    /// `given_up` when it was the delivery's last.
    pub fn webhook_attempt(&self, outcome: &'static str, given_up: bool) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        if given_up {
            self.webhooks_given_up.inc();
        }
    }

    /// One attempt to send a message.
    pub fn mail_sent(&self, purpose: &str, outcome: &'static str) {
        self.mail
            .get_or_create(&MailLabels {
                purpose: purpose.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn reminder_fired(&self, lag: Duration) {
        self.reminders_fired.inc();
        self.reminder_lag.observe(lag.as_secs_f64());
    }

    /// The exposition, with the outbox backlog (`None` when it could not
    /// be read: the gauges keep their last values) and the pool as of now.
    pub fn render(
        &self,
        outbox: Option<(u64, Option<i64>)>,
        db: &DatabaseConnection,
    ) -> Result<String, std::fmt::Error> {
        if let Some((count, oldest)) = outbox {
            self.outbox_backlog
                .set(i64::try_from(count).unwrap_or(i64::MAX));
            self.outbox_oldest.set(oldest.unwrap_or(0).max(0));
        }
        let pool = crate::db::pool_state(db);
        self.pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(pool.open.saturating_sub(pool.idle)));
        self.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exposed_by_door_operation_and_status() {
        let metrics = Metrics::new();
        metrics.request(
            Door::Mcp,
            "createTask",
            StatusCode::CREATED,
            Duration::from_millis(3),
        );
        metrics.rate_limited("user");
        metrics.webhook_attempt("rejected", true);
        let mut text = String::new();
        encode(&mut text, &metrics.registry).unwrap();
        assert!(
            text.contains(
                r#"errand_http_requests_total{door="mcp",operation="createTask",status="201"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"errand_http_request_duration_seconds_bucket{le="0.004",door="mcp",operation="createTask"} 1"#
        ) || text.contains(r#"errand_http_request_duration_seconds_count{door="mcp",operation="createTask"} 1"#), "{text}");
        assert!(text.contains(r#"errand_rate_limited_requests_total{limit="user"} 1"#));
        assert!(text.contains("errand_webhook_deliveries_given_up_total 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
