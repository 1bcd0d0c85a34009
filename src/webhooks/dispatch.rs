//! The webhook dispatcher job: delivers queued events following the
//! Standard Webhooks specification (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`), retries failures on a schedule kept in the
//! database, and disables a subscription whose deliveries keep failing.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use chrono::{TimeDelta, Utc};
use sea_orm::DatabaseConnection;
use tokio::{sync::Notify, task::JoinSet};

use super::{
    signature,
    store::{self, Claimed},
};
use crate::{
    config::WebhookSettings,
    jobs::{self, Stop, jitter},
    metrics::Metrics,
    outbound::{self, GuardPolicy},
    sealing::SealingKey,
};

/// Rung when deliveries were queued in this process.
static QUEUED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Wakes this process's dispatcher; call it after the commit that queued
/// deliveries (inside a shared transaction, it waits for that commit).
pub fn wake() {
    crate::db::after_commit(|| QUEUED.notify_waiters());
}

/// Deliveries attempted at once.
const BATCH: u64 = 16;
/// The longest the dispatcher sleeps between looks for due deliveries.
const POLL: Duration = Duration::from_secs(1);

/// What one attempt came to.
#[derive(Debug)]
pub enum Outcome {
    Delivered(u16),
    /// The receiver answered, but not with 2xx.
    Rejected(u16),
    /// No answer: refused by the guard, unreachable, or too slow.
    Unreachable(String),
}

pub struct Dispatcher {
    db: DatabaseConnection,
    key: SealingKey,
    policy: GuardPolicy,
    client: reqwest::Client,
    settings: WebhookSettings,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(
        db: DatabaseConnection,
        key: SealingKey,
        settings: WebhookSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let policy = GuardPolicy {
            allow_http: settings.allow_http,
            allow_private: settings.allow_private,
        };
        Ok(Self {
            client: outbound::client(policy, settings.timeout)?,
            db,
            key,
            policy,
            settings,
            metrics,
        })
    }

    /// One attempt. The URL is checked again right before sending (an IP
    /// literal never reaches the guarded resolver), and a name is resolved
    /// through the guard by the client itself, so the address connected to
    /// is the address checked.
    pub async fn attempt(&self, claimed: &Claimed) -> Outcome {
        let url = match outbound::check_url(&self.policy, &claimed.url) {
            Ok(url) => url,
            Err(err) => return Outcome::Unreachable(err.to_string()),
        };
        let timestamp = Utc::now().timestamp();
        let msg_id = claimed.delivery.event_id.to_string();
        let body = claimed.delivery.payload.as_bytes();
        let mut request = self.client.post(url);
        if let Some(subscription) = &claimed.mcp_subscription {
            request = request.header("x-mcp-subscription-id", subscription);
        }
        let response = request
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature::sign(&claimed.secret, &msg_id, timestamp, body),
            )
            .body(claimed.delivery.payload.clone())
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => {
                Outcome::Delivered(response.status().as_u16())
            }
            Ok(response) => Outcome::Rejected(response.status().as_u16()),
            Err(err) => Outcome::Unreachable(describe(&err)),
        }
    }

    /// Attempts every due delivery once, side by side (one slow endpoint
    /// does not hold up the others); returns how many were attempted.
    pub async fn round(self: &Arc<Self>) -> Result<usize, store::StoreError> {
        let lease = TimeDelta::from_std(self.settings.timeout * 3).unwrap_or(TimeDelta::minutes(1));
        let claimed = store::claim_due(&self.db, &self.key, Utc::now(), lease, BATCH).await?;
        let count = claimed.len();
        let mut attempts = JoinSet::new();
        for claimed in claimed {
            let dispatcher = Arc::clone(self);
            attempts.spawn(async move {
                let outcome = dispatcher.attempt(&claimed).await;
                dispatcher.record(&claimed, &outcome).await
            });
        }
        while let Some(recorded) = attempts.join_next().await {
            if let Ok(Err(err)) = recorded {
                // The lease runs out and the delivery is attempted again.
                tracing::warn!(error = %err, "webhook dispatcher: could not record an attempt");
            }
        }
        Ok(count)
    }

    async fn record(&self, claimed: &Claimed, outcome: &Outcome) -> Result<(), store::StoreError> {
        let (status, error) = match outcome {
            Outcome::Delivered(status) => {
                self.metrics.webhook_attempt("delivered", false);
                tracing::debug!(delivery = %claimed.delivery.id, status, "webhook delivered");
                return store::delivered(&self.db, claimed, *status).await;
            }
            Outcome::Rejected(status) => (Some(*status), format!("the endpoint answered {status}")),
            Outcome::Unreachable(why) => (None, why.clone()),
        };
        // `attempts` counts this one: the first retry waits schedule[0].
        let done = usize::try_from(claimed.delivery.attempts).unwrap_or(usize::MAX);
        // An MCP Events receiver that answers 410 (gone) or 413 (too large)
        // is not asked again; after 410 the subscription stops.
        let final_refusal = claimed.mcp_subscription.is_some() && matches!(status, Some(410 | 413));
        if final_refusal && status == Some(410) {
            super::mcp::lapse(&self.db, claimed.delivery.webhook_id).await?;
        }
        let retry_at = self
            .settings
            .retry_schedule
            .get(done.saturating_sub(1))
            .filter(|_| !final_refusal)
            .map(|wait| Utc::now() + TimeDelta::from_std(jitter(*wait)).unwrap_or(TimeDelta::MAX));
        let outcome_label = match outcome {
            Outcome::Rejected(_) => "rejected",
            _ => "unreachable",
        };
        self.metrics
            .webhook_attempt(outcome_label, retry_at.is_none());
        tracing::info!(
            delivery = %claimed.delivery.id,
            attempt = claimed.delivery.attempts,
            error,
            retry_at = ?retry_at,
            "webhook delivery failed"
        );
        let disable_after =
            TimeDelta::from_std(self.settings.disable_after).unwrap_or(TimeDelta::days(5));
        store::failed(&self.db, claimed, status, &error, retry_at, disable_after).await
    }
}

/// The error's whole chain in one line (a guard refusal is a source
/// several levels down).
fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "the endpoint did not answer in time".to_owned()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl jobs::Rounds for Arc<Dispatcher> {
    type Error = store::StoreError;

    fn round(&self) -> impl Future<Output = Result<usize, Self::Error>> + Send {
        Dispatcher::round(self)
    }

    async fn next_due(&self) -> Option<chrono::DateTime<Utc>> {
        store::next_due_at(&self.db).await.ok().flatten()
    }
}

pub async fn run(dispatcher: Dispatcher, stop: Stop) {
    let dispatcher = Arc::new(dispatcher);
    jobs::in_rounds("webhook dispatcher", &dispatcher, stop, &QUEUED, POLL).await;
}
