//! What webhook operations return.

use poem_openapi::Object;
use serde::Serialize;
use uuid::Uuid;

use crate::{string_enum, timestamp::UtcTimestamp};

string_enum! {
    /// Whether a subscription receives events.
    pub enum WebhookStatus as "WebhookStatus" {
        Active => "active",
        Disabled => "disabled",
    }
}

string_enum! {
    /// Where a delivery is: waiting for an attempt (or a retry), done, or given up.
    pub enum DeliveryStatus as "DeliveryStatus" {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
}

/// A webhook subscription.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(rename = "Webhook")]
pub struct WebhookView {
    pub id: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// The event types delivered; empty means every type.
    pub event_types: Vec<String>,
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
