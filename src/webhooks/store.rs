//! Webhook subscriptions and deliveries. Nothing here knows HTTP.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    domain::{Delivery, DeliveryStatus, Webhook},
    entity::{delivery, webhook},
    signature::SigningSecret,
};
use crate::{
    events::EventType,
    sealing::{SealError, SealingKey},
    timestamp::Timestamp,
};

/// A subscription's signing secret sealed at rest, bound to its id.
pub(super) fn seal_secret(key: &SealingKey, id: Uuid, secret: &SigningSecret) -> Result<String> {
    Ok(key.seal_bytes(id.as_bytes(), secret.as_bytes())?)
}

fn open_secret(key: &SealingKey, id: Uuid, sealed: &str) -> Result<SigningSecret> {
    let plain = key.open_bytes(id.as_bytes(), sealed)?;
    SigningSecret::from_bytes(plain).ok_or(StoreError::Seal(SealError::Unopenable))
}

/// Most subscriptions one user may have.
pub const MAX_WEBHOOKS_PER_USER: u64 = 10;
/// What a row of `webhooks` is: an integrator's subscription, or an MCP
/// client's (`webhooks::mcp`). Both are delivered the same way.
pub(super) const KIND_WEBHOOK: &str = "webhook";
pub(super) const KIND_MCP: &str = "mcp";
/// The largest delivery an MCP Events receiver takes (ChatGPT: 256 KiB).
const MAX_MCP_DELIVERY_BYTES: usize = 256 * 1024;
/// Most deliveries listed by one call.
pub const DELIVERY_LIST_LIMIT: u64 = 100;
/// A failure this long after the previous one starts a new failing streak.
const STREAK_GAP: TimeDelta = TimeDelta::hours(24);
/// Settled deliveries are kept this long for listDeliveries, then swept.
pub const DELIVERY_RETENTION: TimeDelta = TimeDelta::days(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("no randomness available for a signing secret")]
    Random,
    #[error("the user already has {MAX_WEBHOOKS_PER_USER} webhooks")]
    TooMany,
    #[error("stored delivery {id} makes no sense: {why}")]
    Corrupt { id: Uuid, why: String },
}

type Result<T> = std::result::Result<T, StoreError>;

fn decode_delivery(row: &delivery::Model) -> Result<Delivery> {
    Delivery::try_from(row).map_err(|why| StoreError::Corrupt { id: row.id, why })
}

/// Creates a subscription with a fresh signing secret, returned this once;
/// [`StoreError::TooMany`] if the user has [`MAX_WEBHOOKS_PER_USER`]
/// already. Concurrent creates of one user are counted one at a time.
pub async fn create(
    db: &DatabaseConnection,
    key: &SealingKey,
    user_id: Uuid,
    url: &str,
    event_types: &[EventType],
    description: Option<String>,
) -> Result<(Webhook, SigningSecret)> {
    let id = Uuid::now_v7();
    let secret = SigningSecret::generate().map_err(|_| StoreError::Random)?;
    let row = webhook::Model {
        id,
        user_id,
        url: url.to_owned(),
        event_types: event_types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        description,
        secret_sealed: seal_secret(key, id, &secret)?,
        created_at: Utc::now(),
        failing_since: None,
        last_failure_at: None,
        disabled_at: None,
        disabled_reason: None,
        kind: KIND_WEBHOOK.to_owned(),
        subscription_key: None,
        event_filter: None,
        expires_at: None,
        verified_at: None,
        grant_id: None,
    };
    let txn = crate::db::begin_write(db).await?;
    crate::db::serialize_on(&txn, &format!("webhooks-of:{user_id}")).await?;
    let existing = webhook::Entity::find()
        .filter(webhook::Column::UserId.eq(user_id))
        .filter(webhook::Column::Kind.eq(KIND_WEBHOOK))
        .count(&txn)
        .await?;
    if existing >= MAX_WEBHOOKS_PER_USER {
        return Err(StoreError::TooMany);
    }
    webhook::Entity::insert(webhook::ActiveModel::from(row.clone()))
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok((Webhook::from(&row), secret))
}

pub async fn list(db: &DatabaseConnection, user_id: Uuid) -> Result<Vec<Webhook>> {
    Ok(webhook::Entity::find()
        .filter(webhook::Column::UserId.eq(user_id))
        .filter(webhook::Column::Kind.eq(KIND_WEBHOOK))
        .order_by_asc(webhook::Column::CreatedAt)
        .all(db)
        .await?
        .iter()
        .map(Webhook::from)
        .collect())
}

/// Deletes a subscription and its deliveries; `false` if the user has none
/// with that id.
pub async fn delete(db: &DatabaseConnection, user_id: Uuid, id: Uuid) -> Result<bool> {
    let result = webhook::Entity::delete_many()
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::UserId.eq(user_id))
        .filter(webhook::Column::Kind.eq(KIND_WEBHOOK))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

async fn owned(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<webhook::Model>> {
    Ok(webhook::Entity::find_by_id(id)
        .filter(webhook::Column::UserId.eq(user_id))
        .filter(webhook::Column::Kind.eq(KIND_WEBHOOK))
        .one(db)
        .await?)
}

/// A subscription's deliveries, newest first; `None` if the user has no
/// subscription with that id.
pub async fn deliveries(
    db: &DatabaseConnection,
    user_id: Uuid,
    webhook_id: Uuid,
) -> Result<Option<Vec<Delivery>>> {
    if owned(db, user_id, webhook_id).await?.is_none() {
        return Ok(None);
    }
    let rows = delivery::Entity::find()
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .order_by_desc(delivery::Column::CreatedAt)
        .order_by_desc(delivery::Column::Id)
        .limit(DELIVERY_LIST_LIMIT)
        .all(db)
        .await?;
    Ok(Some(
        rows.iter().map(decode_delivery).collect::<Result<_>>()?,
    ))
}

/// Queues a delivery for another attempt now, whatever its state, and
/// re-enables its subscription. `None` if the user has no such delivery.
pub async fn redeliver(
    db: &DatabaseConnection,
    user_id: Uuid,
    webhook_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<Delivery>> {
    let txn = crate::db::begin_write(db).await?;
    let Some(hook) = owned(&txn, user_id, webhook_id).await? else {
        return Ok(None);
    };
    let Some(row) = delivery::Entity::find_by_id(delivery_id)
        .filter(delivery::Column::WebhookId.eq(webhook_id))
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    if hook.disabled_at.is_some() {
        let mut active = webhook::ActiveModel::from(hook);
        active.disabled_at = Set(None);
        active.disabled_reason = Set(None);
        active.failing_since = Set(None);
        active.update(&txn).await?;
    }
    let now = Utc::now();
    if row.leased_until.is_some_and(|until| until > now) {
        // An attempt is in progress: it is not doubled.
        txn.commit().await?;
        return Ok(Some(decode_delivery(&row)?));
    }
    let mut active = delivery::ActiveModel::from(row);
    active.status = Set(DeliveryStatus::Pending.as_str().to_owned());
    active.next_attempt_at = Set(Some(now));
    let row = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Some(decode_delivery(&row)?))
}

/// An event read from Kafka, as the intake needs it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub id: Uuid,
    pub kind: EventType,
    pub user_id: Uuid,
    pub time: DateTime<Utc>,
    pub payload: String,
}

/// Queues `event` for each of its user's active subscriptions that want it
/// and existed when it happened, in the caller's transaction: a webhook gets
/// the CloudEvent, an MCP Events subscription (whose filter it matches) the
/// event as MCP Events delivers it. A subscription gets an event once,
/// however often it is queued.
pub async fn enqueue(conn: &impl ConnectionTrait, event: &IncomingEvent) -> Result<usize> {
    let hooks = webhook::Entity::find()
        .filter(webhook::Column::UserId.eq(event.user_id))
        .filter(webhook::Column::DisabledAt.is_null())
        .filter(webhook::Column::CreatedAt.lte(event.time))
        .all(conn)
        .await?;
    let now = Utc::now();
    // Rendered once, for every MCP subscription that takes it.
    let occurrence = super::mcp::Occurrence::of(event);
    let mut rows = Vec::new();
    for hook in &hooks {
        let payload = if hook.kind == KIND_MCP {
            let Some(occurrence) = occurrence.as_ref() else {
                continue;
            };
            let live = hook.expires_at.is_none_or(|at| at > now);
            if !live || !occurrence.wanted_by(hook) {
                continue;
            }
            if occurrence.body.len() > MAX_MCP_DELIVERY_BYTES {
                tracing::warn!(event = %event.id, "an MCP event is larger than 256 KiB; not delivered");
                continue;
            }
            occurrence.body.clone()
        } else {
            let wanted = hook.event_types.is_empty()
                || hook
                    .event_types
                    .split_whitespace()
                    .any(|t| t == event.kind.as_str());
            if !wanted {
                continue;
            }
            event.payload.clone()
        };
        rows.push(delivery::ActiveModel::from(delivery::Model {
            id: Uuid::now_v7(),
            webhook_id: hook.id,
            user_id: event.user_id,
            event_id: event.id,
            event_type: event.kind.as_str().to_owned(),
            payload,
            status: DeliveryStatus::Pending.as_str().to_owned(),
            attempts: 0,
            next_attempt_at: Some(now),
            last_attempt_at: None,
            leased_until: None,
            last_status_code: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        }));
    }
    let queued = rows.len();
    if !rows.is_empty() {
        delivery::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([delivery::Column::WebhookId, delivery::Column::EventId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(queued)
}

/// A delivery claimed for an attempt, with what it is sent with.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: delivery::Model,
    pub url: String,
    pub secret: SigningSecret,
    /// For an MCP Events subscription, its id (`X-MCP-Subscription-Id`).
    pub mcp_subscription: Option<String>,
}

/// Claims up to `limit` deliveries due at `now` by leasing them until
/// `now + lease` (counting the attempt): another dispatcher skips them, and
/// if this process dies mid-attempt the lease runs out and one retries.
pub async fn claim_due(
    db: &DatabaseConnection,
    key: &SealingKey,
    now: DateTime<Utc>,
    lease: TimeDelta,
    limit: u64,
) -> Result<Vec<Claimed>> {
    let txn = crate::db::begin_write(db).await?;
    let due = delivery::Entity::find()
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .filter(delivery::Column::NextAttemptAt.lte(now))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(limit);
    let rows = crate::db::claim(due, db.get_database_backend())
        .all(&txn)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(hook) = webhook::Entity::find_by_id(row.webhook_id)
            .one(&txn)
            .await?
        else {
            continue;
        };
        let mut active = delivery::ActiveModel::from(row);
        active.attempts = Set(active.attempts.as_ref() + 1);
        active.next_attempt_at = Set(Some(now + lease));
        active.last_attempt_at = Set(Some(now));
        let row = active.update(&txn).await?;
        let stopped = if hook.disabled_at.is_some() {
            // Disabled meanwhile: the delivery waits for a redeliver.
            Some("the webhook is disabled")
        } else if hook.kind == KIND_MCP && !super::mcp::still_live(&txn, &hook, now).await? {
            Some("the MCP subscription expired or its access was revoked")
        } else {
            None
        };
        if let Some(why) = stopped {
            let mut active = delivery::ActiveModel::from(row);
            active.status = Set(DeliveryStatus::Failed.as_str().to_owned());
            active.next_attempt_at = Set(None);
            active.last_error = Set(Some(why.to_owned()));
            active.update(&txn).await?;
            continue;
        }
        let secret = open_secret(key, hook.id, &hook.secret_sealed)?;
        claimed.push(Claimed {
            delivery: row,
            url: hook.url,
            secret,
            mcp_subscription: hook.subscription_key.filter(|_| hook.kind == KIND_MCP),
        });
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Records a successful attempt; the subscription is no longer failing.
pub async fn delivered(db: &DatabaseConnection, claimed: &Claimed, status: u16) -> Result<()> {
    let txn = db.begin().await?;
    let mut active = delivery::ActiveModel::from(claimed.delivery.clone());
    active.status = Set(DeliveryStatus::Delivered.as_str().to_owned());
    active.delivered_at = Set(Some(Utc::now()));
    active.next_attempt_at = Set(None);
    active.leased_until = Set(None);
    active.last_status_code = Set(Some(i32::from(status)));
    active.last_error = Set(None);
    active.update(&txn).await?;
    webhook::Entity::update_many()
        .col_expr(
            webhook::Column::FailingSince,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            webhook::Column::LastFailureAt,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(webhook::Column::Id.eq(claimed.delivery.webhook_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// A failed attempt: retried at `retry_at`, or given up when `None`. A
/// subscription failing for longer than `disable_after` is disabled.
pub async fn failed(
    db: &DatabaseConnection,
    claimed: &Claimed,
    status: Option<u16>,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    disable_after: TimeDelta,
) -> Result<()> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let mut active = delivery::ActiveModel::from(claimed.delivery.clone());
    active.status = Set(match retry_at {
        Some(_) => DeliveryStatus::Pending,
        None => DeliveryStatus::Failed,
    }
    .as_str()
    .to_owned());
    active.next_attempt_at = Set(retry_at);
    active.leased_until = Set(None);
    active.last_status_code = Set(status.map(i32::from));
    active.last_error = Set(Some(error.chars().take(500).collect()));
    active.update(&txn).await?;
    if let Some(hook) = webhook::Entity::find_by_id(claimed.delivery.webhook_id)
        .one(&txn)
        .await?
    {
        // A streak with a quiet day in it (no events, or deliveries given
        // up) starts again: only failing all along disables.
        let continuing = hook
            .last_failure_at
            .is_some_and(|last| now - last < STREAK_GAP);
        let since = match hook.failing_since {
            Some(since) if continuing => since,
            _ => now,
        };
        let mut active = webhook::ActiveModel::from(hook.clone());
        active.failing_since = Set(Some(since));
        active.last_failure_at = Set(Some(now));
        if hook.disabled_at.is_none() && now - since >= disable_after {
            active.disabled_at = Set(Some(now));
            active.disabled_reason = Set(Some(format!(
                "every delivery since {} failed (last: {}); fix the endpoint, then redeliver a delivery to enable it again",
                Timestamp::from_utc(since),
                error.chars().take(200).collect::<String>()
            )));
        }
        active.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// When the soonest pending delivery is due, if any.
pub async fn next_due_at(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .one(db)
        .await?
        .and_then(|row| row.next_attempt_at))
}

/// Forgets settled deliveries older than [`DELIVERY_RETENTION`].
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(delivery::Entity::delete_many()
        .filter(delivery::Column::Status.ne(DeliveryStatus::Pending.as_str()))
        .filter(delivery::Column::CreatedAt.lt(now - DELIVERY_RETENTION))
        .exec(db)
        .await?
        .rows_affected)
}
