//! The janitor: sweeps rows that have served their purpose (expired
//! authorization codes, used refresh tokens, old sign-in sessions and
//! throttle windows, old consumer records, settled webhook deliveries,
//! refilled rate-limit buckets, idempotency keys past their 24 hours, sent
//! mail after a week, expired email links).
//! Every sweep is a plain `DELETE … WHERE <expired>`, so running it in
//! several processes at once is harmless.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{DatabaseConnection, DbErr};

use super::{Stop, Woken};
use crate::{events, idempotency, mail, oauth, rate_limit, users, webhooks};

/// How often the janitor sweeps.
pub const PERIOD: Duration = Duration::from_secs(10 * 60);

/// One sweep of everything; returns how many rows went.
pub async fn sweep_once(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let now = Utc::now();
    let sign_in = oauth::sweep::sweep(db, now).await?;
    let consumed = events::consumed::sweep(db, now).await?;
    let deliveries = webhooks::store::sweep(db, now)
        .await
        .map_err(|err| DbErr::Custom(err.to_string()))?;
    let buckets = rate_limit::sweep(db, now.timestamp_micros()).await?;
    let keys = idempotency::sweep(db).await?;
    let mail = mail::outbox::sweep(db, now).await?;
    let links = users::tokens::sweep(db).await?;
    let lapsed = webhooks::mcp::sweep(db, now).await?;
    let total = sign_in.total() + consumed + deliveries + buckets + keys + mail + links + lapsed;
    if total > 0 {
        tracing::info!(
            codes = sign_in.codes,
            refresh_tokens = sign_in.refresh_tokens,
            sessions = sign_in.sessions,
            throttles = sign_in.throttles,
            unused_clients = sign_in.clients,
            consumer_records = consumed,
            webhook_deliveries = deliveries,
            rate_limit_buckets = buckets,
            idempotency_keys = keys,
            mail,
            email_links = links,
            mcp_subscriptions = lapsed,
            "janitor: swept expired rows"
        );
    }
    Ok(total)
}

/// The janitor job: a sweep at start and every [`PERIOD`].
pub async fn run(db: DatabaseConnection, mut stop: Stop) {
    loop {
        if let Err(err) = sweep_once(&db).await {
            tracing::warn!(error = %err, "janitor: sweep failed; trying again later");
        }
        if stop.pause(PERIOD, std::future::pending()).await == Woken::Stopping {
            return;
        }
    }
}
