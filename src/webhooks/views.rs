//! What webhook operations return.

use poem_openapi::{Object, registry::MetaSchema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::domain::{Delivery, Webhook};
pub use super::domain::{DeliveryStatus, WebhookStatus};
use crate::{
    events::EventType,
    openapi_via_serde,
    timestamp::{Timestamp, UtcTimestamp},
};

/// An event type's name as the webhook operations take and show it. The
/// schema lists every `events::EventType`; the name is checked by
/// createWebhook, which refuses any other with the list to choose from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTypeName(pub String);

impl EventTypeName {
    fn schema() -> MetaSchema {
        let mut schema = MetaSchema::new("string");
        schema.enum_items = EventType::all().map(|kind| kind.as_str().into()).collect();
        schema.example = Some(EventType::ReminderDue.as_str().into());
        schema
    }
}

impl From<EventType> for EventTypeName {
    fn from(kind: EventType) -> Self {
        Self(kind.as_str().to_owned())
    }
}

openapi_via_serde!(EventTypeName, "EventType", EventTypeName::schema());

/// A webhook subscription.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Webhook")]
pub struct WebhookView {
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// The event types delivered; empty means every type.
    pub event_types: Vec<EventTypeName>,
    #[oai(nullable)]
    pub description: Option<String>,
    pub status: WebhookStatus,
    /// Why the subscription was disabled, or null.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed, or null while deliveries succeed.
    #[oai(nullable)]
    pub failing_since: Option<UtcTimestamp>,
    pub created_at: UtcTimestamp,
}

/// A new subscription, with its signing secret: shown this once.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "CreatedWebhook")]
pub struct CreatedWebhookView {
    #[oai(flatten)]
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The Standard Webhooks signing secret (`whsec_` + base64). Store it now: it is never shown again.
    pub secret: String,
}

/// One event for one subscription, and how its delivery went.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "WebhookDelivery")]
pub struct DeliveryView {
    pub id: Uuid,
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due, or null.
    #[oai(nullable)]
    pub next_attempt_at: Option<UtcTimestamp>,
    #[oai(nullable)]
    pub last_attempt_at: Option<UtcTimestamp>,
    /// The HTTP status of the last attempt, or null if none was received.
    #[oai(nullable)]
    pub last_status_code: Option<i32>,
    /// What went wrong on the last attempt, or null.
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub created_at: UtcTimestamp,
    #[oai(nullable)]
    pub delivered_at: Option<UtcTimestamp>,
}

fn utc(at: chrono::DateTime<chrono::Utc>) -> UtcTimestamp {
    Timestamp::from_utc(at).into()
}

impl From<Webhook> for WebhookView {
    fn from(webhook: Webhook) -> Self {
        let Webhook {
            id,
            url,
            event_types,
            description,
            status,
            disabled_reason,
            failing_since,
            created_at,
        } = webhook;
        Self {
            id,
            url,
            event_types: event_types.into_iter().map(EventTypeName).collect(),
            description,
            status,
            disabled_reason,
            failing_since: failing_since.map(utc),
            created_at: utc(created_at),
        }
    }
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        let Delivery {
            id,
            event_id,
            event_type,
            status,
            attempts,
            next_attempt_at,
            last_attempt_at,
            last_status_code,
            last_error,
            created_at,
            delivered_at,
        } = delivery;
        Self {
            id,
            event_id,
            event_type,
            status,
            attempts,
            next_attempt_at: next_attempt_at.map(utc),
            last_attempt_at: last_attempt_at.map(utc),
            last_status_code,
            last_error,
            created_at: utc(created_at),
            delivered_at: delivered_at.map(utc),
        }
    }
}
