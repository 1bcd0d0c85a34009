//! Webhook operations, for integrators (full document only, scope
//! `webhooks:manage`).

use poem_openapi::{ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    store::{self, MAX_WEBHOOKS_PER_USER, StoreError},
    views::{CreatedWebhookView, DeliveryView, EventTypeName, WebhookView},
    workflows::{self, NewSubscription, SubscribeRefused},
};
use crate::{
    auth::{Authorized, Scope, WebhooksManage},
    config::WebhookSettings,
    events::EventType,
    outbound::GuardPolicy,
    problem::{Problem, ProblemKind},
    sealing::{Sealer, SealingKey},
    uuid_param,
    web::{ApiTag, BodyRules, Json, JsonBody, Path},
};

/// Longest description, in characters.
const DESCRIPTION_MAX_CHARS: usize = 200;

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::TooMany => Problem::new(
                ProblemKind::Conflict,
                format!(
                    "You already have {MAX_WEBHOOKS_PER_USER} webhooks, the most allowed. Delete \
                     one with deleteWebhook first."
                ),
            ),
            other => Problem::internal(other),
        }
    }
}

uuid_param! {
    /// A webhook subscription's id.
    pub struct WebhookId as "WebhookId", param "webhook_id", of "a webhook"
}

uuid_param! {
    /// A webhook delivery's id.
    pub struct DeliveryId as "DeliveryId", param "delivery_id", of "a webhook delivery"
}

pub struct WebhooksApi {
    pub db: DatabaseConnection,
    pub settings: WebhookSettings,
    /// Seals the secrets it hands out (its key loaded when the app started).
    pub sealer: Sealer,
}

impl WebhooksApi {
    fn policy(&self) -> GuardPolicy {
        GuardPolicy {
            allow_http: self.settings.allow_http,
            allow_private: self.settings.allow_private,
        }
    }

    async fn key(&self) -> Result<&SealingKey, Problem> {
        self.sealer.key().await.map_err(Problem::internal)
    }
}

/// A new subscription.
#[derive(Debug, Object, Deserialize)]
#[oai(rename = "NewWebhook")]
pub struct CreateWebhookBody {
    /// The https URL events are POSTed to. It must resolve to a public address.
    url: String,
    /// The event types to deliver; omit or [] for all.
    #[oai(nullable)]
    event_types: Option<Vec<EventTypeName>>,
    /// A note for yourself, at most 200 characters.
    #[oai(nullable)]
    description: Option<String>,
}

impl BodyRules for CreateWebhookBody {}

#[derive(ApiResponse)]
pub enum CreatedWebhook {
    /// Subscribed. The response carries the signing secret, shown this once.
    #[oai(status = 201)]
    Created(Json<CreatedWebhookView>),
}

#[derive(ApiResponse)]
pub enum DeletedWebhook {
    /// The subscription and its deliveries are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum Redelivery {
    /// Queued for another attempt now.
    #[oai(status = 202)]
    Queued(Json<DeliveryView>),
}

/// The user's webhook subscriptions.
#[derive(Debug, Object, serde::Serialize)]
#[oai(rename = "WebhookList")]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// A subscription's deliveries, newest first (at most 100).
#[derive(Debug, Object, serde::Serialize)]
#[oai(rename = "DeliveryList")]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

fn no_such_webhook() -> Problem {
    Problem::not_found("You have no webhook with that id. Call listWebhooks to find it.")
}

fn event_types(raw: Option<Vec<EventTypeName>>) -> Result<Vec<EventType>, Problem> {
    let mut types = Vec::new();
    for (i, EventTypeName(name)) in raw.unwrap_or_default().iter().enumerate() {
        let Some(kind) = EventType::parse(name) else {
            let known: Vec<&str> = EventType::all().map(EventType::as_str).collect();
            return Err(Problem::invalid_field(
                format!("event_types[{i}]"),
                format!(
                    "`{}` is not an event type; use one of {}",
                    crate::text::shorten(name),
                    known.join(", ")
                ),
            ));
        };
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

#[OpenApi(prefix_path = "/v1")]
impl WebhooksApi {
    /// Create a webhook
    ///
    /// Subscribes a URL to the user's events. Each event is POSTed as its CloudEvents JSON, signed per Standard Webhooks with the secret in the response (shown once).
    #[oai(
        path = "/webhooks",
        method = "post",
        operation_id = "createWebhook",
        tag = "ApiTag::Webhooks"
    )]
    async fn create_webhook(
        &self,
        #[oai(scope = "Scope::WebhooksManage")] auth: Authorized<WebhooksManage>,
        body: JsonBody<CreateWebhookBody>,
    ) -> Result<CreatedWebhook, Problem> {
        let body = body.0;
        let types = event_types(body.event_types)?;
        let description = body
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > DESCRIPTION_MAX_CHARS)
        {
            return Err(Problem::invalid_field(
                "description",
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
            ));
        }
        if let Some(Err(fault)) = description.as_deref().map(crate::text::judge_line) {
            return Err(Problem::invalid_field("description", fault.to_string()));
        }
        let key = self.key().await?;
        let new = NewSubscription {
            url: &body.url,
            event_types: types,
            description,
        };
        let (webhook, secret) =
            workflows::subscribe(&self.db, &self.policy(), key, auth.user_id, new)
                .await
                .map_err(|refused| match refused {
                    SubscribeRefused::Url(why) => Problem::invalid_field("url", why),
                    SubscribeRefused::Store(err) => err.into(),
                })?;
        Ok(CreatedWebhook::Created(Json(CreatedWebhookView {
            webhook: webhook.into(),
            secret: secret.to_whsec(),
        })))
    }

    /// List webhooks
    ///
    /// The user's webhook subscriptions, with whether each is active or was disabled after failing for days, and why.
    #[oai(
        path = "/webhooks",
        method = "get",
        operation_id = "listWebhooks",
        tag = "ApiTag::Webhooks"
    )]
    async fn list_webhooks(
        &self,
        #[oai(scope = "Scope::WebhooksManage")] auth: Authorized<WebhooksManage>,
    ) -> Result<Json<WebhookList>, Problem> {
        Ok(Json(WebhookList {
            webhooks: store::list(&self.db, auth.user_id)
                .await?
                .into_iter()
                .map(WebhookView::from)
                .collect(),
        }))
    }

    /// Delete a webhook
    ///
    /// Unsubscribes: no further deliveries are made, and the delivery history goes too.
    #[oai(
        path = "/webhooks/:webhook_id",
        method = "delete",
        operation_id = "deleteWebhook",
        tag = "ApiTag::Webhooks"
    )]
    async fn delete_webhook(
        &self,
        #[oai(scope = "Scope::WebhooksManage")] auth: Authorized<WebhooksManage>,
        /// The webhook's id.
        webhook_id: Path<WebhookId>,
    ) -> Result<DeletedWebhook, Problem> {
        if store::delete(&self.db, auth.user_id, webhook_id.0.0).await? {
            Ok(DeletedWebhook::Deleted)
        } else {
            Err(no_such_webhook())
        }
    }

    /// List deliveries
    ///
    /// The webhook's recent deliveries, newest first: status, attempts, the last response code or error, and when the next retry is due.
    #[oai(
        path = "/webhooks/:webhook_id/deliveries",
        method = "get",
        operation_id = "listDeliveries",
        tag = "ApiTag::Webhooks"
    )]
    async fn list_deliveries(
        &self,
        #[oai(scope = "Scope::WebhooksManage")] auth: Authorized<WebhooksManage>,
        /// The webhook's id.
        webhook_id: Path<WebhookId>,
    ) -> Result<Json<DeliveryList>, Problem> {
        let deliveries = store::deliveries(&self.db, auth.user_id, webhook_id.0.0)
            .await?
            .ok_or_else(no_such_webhook)?;
        Ok(Json(DeliveryList {
            deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
        }))
    }

    /// Redeliver
    ///
    /// Sends a delivery again now (same webhook-id, so receivers can tell it is the same event). A disabled webhook is enabled again.
    #[oai(
        path = "/webhooks/:webhook_id/deliveries/:delivery_id/redeliver",
        method = "post",
        operation_id = "redeliver",
        tag = "ApiTag::Webhooks"
    )]
    async fn redeliver(
        &self,
        #[oai(scope = "Scope::WebhooksManage")] auth: Authorized<WebhooksManage>,
        /// The webhook's id.
        webhook_id: Path<WebhookId>,
        /// The delivery's id, from listDeliveries.
        delivery_id: Path<DeliveryId>,
    ) -> Result<Redelivery, Problem> {
        let delivery = store::redeliver(&self.db, auth.user_id, webhook_id.0.0, delivery_id.0.0)
            .await?
            .ok_or_else(|| {
                Problem::not_found(
                    "You have no such delivery. Call listDeliveries for the webhook to find it.",
                )
            })?;
        super::dispatch::wake();
        Ok(Redelivery::Queued(Json(delivery.into())))
    }
}
