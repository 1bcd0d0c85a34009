//! What an integrator's subscription and a delivery are, decoded once from
//! their rows: the store returns these, the API's views are built from them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::entity::{delivery, webhook};
use crate::string_enum;

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

/// An integrator's subscription (its signing secret stays sealed in the
/// store: it is shown once, on creation).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// The event type names delivered, as stored; empty means every type.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub status: WebhookStatus,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&webhook::Model> for Webhook {
    fn from(row: &webhook::Model) -> Self {
        Self {
            id: row.id,
            url: row.url.clone(),
            event_types: row
                .event_types
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            description: row.description.clone(),
            status: if row.disabled_at.is_some() {
                WebhookStatus::Disabled
            } else {
                WebhookStatus::Active
            },
            disabled_reason: row.disabled_reason.clone(),
            failing_since: row.failing_since,
            created_at: row.created_at,
        }
    }
}

/// One event for one subscription, and how its delivery went.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl TryFrom<&delivery::Model> for Delivery {
    /// What makes no sense in the stored row.
    type Error = String;

    fn try_from(row: &delivery::Model) -> Result<Self, String> {
        Ok(Self {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type.clone(),
            status: DeliveryStatus::parse_param(&row.status)?,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_attempt_at: row.last_attempt_at,
            last_status_code: row.last_status_code,
            last_error: row.last_error.clone(),
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_delivery(status: &str) -> delivery::Model {
        let at = Utc::now();
        delivery::Model {
            id: Uuid::now_v7(),
            webhook_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            event_id: Uuid::now_v7(),
            event_type: "task.created".to_owned(),
            payload: "{}".to_owned(),
            status: status.to_owned(),
            attempts: 1,
            next_attempt_at: None,
            last_attempt_at: Some(at),
            leased_until: None,
            last_status_code: Some(200),
            last_error: None,
            created_at: at,
            delivered_at: Some(at),
        }
    }

    #[test]
    fn a_delivery_row_decodes_and_an_unknown_status_is_refused() {
        let delivered = Delivery::try_from(&stored_delivery("delivered")).unwrap();
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        assert_eq!(delivered.last_status_code, Some(200));
        // Read as "pending" before, an unknown status would have been shown
        // as waiting for an attempt that never comes.
        assert!(Delivery::try_from(&stored_delivery("sent")).is_err());
    }
}
