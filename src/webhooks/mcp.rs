//! MCP Events (the extension ChatGPT subscribes to since 2026-09-29): what
//! Errand offers (`events/list`), subscribing a callback to one event with a
//! filter (`events/subscribe`, with the callback verification challenge),
//! and unsubscribing. A subscription is a row of `webhooks` of kind `mcp`,
//! so the webhook intake queues its deliveries and the dispatcher sends
//! them, signed as Standard Webhooks, with the same retries and SSRF guard;
//! only the body (the event as MCP Events delivers it) and one header
//! (`X-MCP-Subscription-Id`) differ. A subscription belongs to the user of
//! the token that made it, sees only their events, lapses unless refreshed
//! and stops when that token's grant is revoked.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    entity::webhook,
    signature::{self, SigningSecret},
    store::{self, IncomingEvent, KIND_MCP},
};
use crate::{
    auth::{Principal, grants},
    config::WebhookSettings,
    events::EventType,
    outbound::{self, GuardPolicy},
    sealing::{SealError, Sealer},
    timestamp::Timestamp,
};

/// The events a client may subscribe to (those `events::EventType` gives a
/// chat description), the reminder first: it is what a person asked to be
/// told about.
fn offered() -> impl Iterator<Item = (EventType, &'static str)> {
    let mut offered: Vec<(EventType, &'static str)> = EventType::all()
        .filter_map(|kind| Some((kind, kind.chat_description()?)))
        .collect();
    offered.sort_by_key(|(kind, _)| *kind != EventType::ReminderDue);
    offered.into_iter()
}

/// How long a subscription lasts when the client does not say, and the
/// bounds of what it may ask for (a lifetime shorter than the minimum would
/// only make it refresh all the time).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
const MIN_LIFETIME: Duration = Duration::from_secs(60 * 60);
const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// A callback that answered the challenge is not asked again this soon.
const VERIFIED_FOR: TimeDelta = TimeDelta::hours(24);
/// Most subscriptions one user may hold.
const MAX_PER_USER: u64 = 100;
const TAG_MAX_CHARS: usize = 32;

/// Why a subscribe or unsubscribe is refused, with the JSON-RPC error codes
/// of the MCP Events draft ChatGPT implements.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{0}")]
    InvalidParams(String),
    #[error("There is no event `{0}`; events/list names the events.")]
    UnknownEvent(String),
    #[error("{0}")]
    Unsupported(&'static str, String),
    #[error(
        "You have {MAX_PER_USER} event subscriptions, the most allowed; unsubscribe one first."
    )]
    TooMany,
    #[error("The callback did not pass verification: {detail}")]
    Callback {
        reason: &'static str,
        detail: String,
    },
    #[error("the subscription could not be stored")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

impl EventsError {
    /// The JSON-RPC error code and data.
    pub fn code_and_data(&self) -> (i64, Option<Value>) {
        match self {
            Self::InvalidParams(_) => (-32602, None),
            Self::UnknownEvent(_) => (-32011, Some(json!({ "kind": "event" }))),
            Self::TooMany => (
                -32013,
                Some(json!({ "limit": "subscriptions", "max": MAX_PER_USER })),
            ),
            Self::Unsupported(feature, value) => {
                (-32014, Some(json!({ "feature": feature, "value": value })))
            }
            Self::Callback { reason, .. } => (-32015, Some(json!({ "reason": reason }))),
            Self::Database(_) | Self::Store(_) | Self::Seal(_) => (-32603, None),
        }
    }

    /// Whether the cause is Errand's, not the request's (logged; the
    /// client is told only that it failed).
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Store(_) | Self::Seal(_))
    }
}

fn event_named(name: &str) -> Option<EventType> {
    offered()
        .map(|(kind, _)| kind)
        .find(|kind| kind.as_str() == name)
}

fn filter_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "task_number": { "type": "integer", "minimum": 1,
                             "description": "Only events of the task with this number." },
            "tag": { "type": "string", "minLength": 1, "maxLength": TAG_MAX_CHARS,
                     "pattern": "^[A-Za-z0-9_-]+$",
                     "description": "Only events of tasks with this tag." },
        },
        "additionalProperties": false,
    })
}

fn payload_schema(kind: EventType) -> Value {
    let task = if kind == EventType::ReminderDue {
        json!({ "type": "object", "properties": {
            "number": { "type": "integer" }, "title": { "type": "string" },
            "due_at": { "type": ["string", "null"], "format": "date-time" },
            "tags": { "type": "array", "items": { "type": "string" } } } })
    } else {
        json!({ "type": "object", "description": "The task as getTask returns it." })
    };
    let mut properties = json!({
        "message": { "type": "string", "description": "What happened, in a sentence to tell the user." },
        "task_number": { "type": "integer" },
        "task": task,
    });
    if kind == EventType::ReminderDue {
        properties["reminder"] =
            json!({ "type": "object", "description": "The reminder as listReminders returns it." });
    }
    json!({ "type": "object", "properties": properties, "required": ["message", "task_number"] })
}

/// `events/list`.
pub fn definitions() -> Value {
    let events: Vec<Value> = offered()
        .map(|(kind, description)| {
            json!({
                "name": kind.as_str(),
                "description": description,
                "delivery": ["webhook"],
                "inputSchema": filter_schema(),
                "payloadSchema": payload_schema(kind),
            })
        })
        .collect();
    json!({ "events": events })
}

/// A subscription's arguments, checked, in one canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_number: Option<i64>,
}

impl Filter {
    fn parse(arguments: &Value) -> Result<Self, EventsError> {
        let invalid = |why: String| EventsError::InvalidParams(format!("arguments.{why}"));
        let arguments = match arguments {
            Value::Null => return Ok(Self::default()),
            Value::Object(arguments) => arguments,
            _ => {
                return Err(EventsError::InvalidParams(
                    "arguments must be an object (task_number, tag) or left out".to_owned(),
                ));
            }
        };
        let mut filter = Self::default();
        for (name, value) in arguments {
            match name.as_str() {
                "task_number" => {
                    filter.task_number =
                        Some(value.as_i64().filter(|n| *n >= 1).ok_or_else(|| {
                            invalid("task_number must be a task's number (1, 2, …)".to_owned())
                        })?);
                }
                "tag" => {
                    let tag = value.as_str().filter(|t| {
                        (1..=TAG_MAX_CHARS).contains(&t.len())
                            && t.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    });
                    filter.tag = Some(
                        tag.ok_or_else(|| {
                            invalid(format!(
                                "tag must be 1 to {TAG_MAX_CHARS} characters of a-z, 0-9, - and _"
                            ))
                        })?
                        .to_ascii_lowercase(),
                    );
                }
                other => {
                    return Err(invalid(format!(
                        "{} is not a filter; the filters are task_number and tag",
                        crate::text::shorten(other)
                    )));
                }
            }
        }
        Ok(filter)
    }

    fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A subscription's id: the same user, callback, event and filter is the
/// same subscription (subscribing again refreshes it).
fn subscription_key(user_id: Uuid, url: &str, name: &str, filter: &Filter) -> String {
    let mut hash = Sha256::new();
    for part in [user_id.to_string().as_str(), url, name, &filter.canonical()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sub_{}", &digest[..32])
}

/// An event as MCP Events delivers it, with what filters look at.
#[derive(Debug, Clone)]
pub struct Occurrence {
    kind: EventType,
    task_number: Option<i64>,
    tags: Vec<String>,
    /// The body: `{eventId, name, timestamp, data, cursor}`.
    pub body: String,
}

fn quoted(title: &str) -> String {
    format!("\u{201c}{title}\u{201d}")
}

impl Occurrence {
    /// `None` for an event MCP Events does not carry.
    pub fn of(event: &IncomingEvent) -> Option<Self> {
        event_named(event.kind.as_str())?;
        let cloud: Value = serde_json::from_str(&event.payload).ok()?;
        let data = &cloud["data"];
        let (task_number, title, tags) = if event.kind == EventType::ReminderDue {
            let task = &data["task"];
            (
                data["reminder"]["task_number"].as_i64(),
                task["title"].as_str().map(str::to_owned),
                task["tags"].clone(),
            )
        } else {
            let task = &data["task"];
            (
                task["number"].as_i64(),
                task["title"].as_str().map(str::to_owned),
                task["tags"].clone(),
            )
        };
        let number = task_number?;
        let named = title.as_deref().map_or_else(
            || format!("task #{number}"),
            |t| format!("task #{number} {}", quoted(t)),
        );
        let message = match event.kind {
            EventType::ReminderDue => {
                let due = data["task"]["due_at"]
                    .as_str()
                    .map(|due| format!(", due {due}"))
                    .unwrap_or_default();
                format!("Reminder: {named}{due}.")
            }
            EventType::TaskCreated => format!("New {named}."),
            EventType::TaskUpdated => format!("{} was changed.", capitalised(&named)),
            EventType::TaskCompleted => format!("{} is done.", capitalised(&named)),
            EventType::TaskReopened => format!("{} is open again.", capitalised(&named)),
            _ => format!("{} was deleted.", capitalised(&named)),
        };
        let mut payload =
            json!({ "message": message, "task_number": number, "task": data["task"] });
        if event.kind == EventType::ReminderDue {
            payload["reminder"] = data["reminder"].clone();
        }
        let body = json!({
            "eventId": event.id.to_string(),
            "name": event.kind.as_str(),
            "timestamp": Timestamp::from_utc(event.time).to_string(),
            "data": payload,
            "cursor": null,
        })
        .to_string();
        Some(Self {
            kind: event.kind,
            task_number: Some(number),
            tags: tags
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            body,
        })
    }

    /// Whether a subscription wants this event: its event, and its filter.
    pub(super) fn wanted_by(&self, hook: &webhook::Model) -> bool {
        if hook.event_types != self.kind.as_str() {
            return false;
        }
        let filter: Filter = hook
            .event_filter
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        filter
            .task_number
            .is_none_or(|n| Some(n) == self.task_number)
            && filter
                .tag
                .as_ref()
                .is_none_or(|tag| self.tags.contains(tag))
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Whether an MCP subscription still delivers: not lapsed, and the grant
/// its token was issued under not revoked.
pub(super) async fn still_live(
    conn: &impl ConnectionTrait,
    hook: &webhook::Model,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if hook.expires_at.is_some_and(|at| at <= now) {
        return Ok(false);
    }
    Ok(match hook.grant_id {
        Some(grant) => grants::find(conn, grant).await?.is_some_and(|g| !g.revoked),
        None => true,
    })
}

/// Stops an MCP subscription whose receiver answered that it is gone (410).
pub(super) async fn lapse(db: &DatabaseConnection, webhook_id: Uuid) -> Result<(), DbErr> {
    webhook::Entity::update_many()
        .col_expr(
            webhook::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(webhook::Column::Id.eq(webhook_id))
        .filter(webhook::Column::Kind.eq(KIND_MCP))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets MCP subscriptions that lapsed a day ago or more (with their
/// deliveries), for the janitor.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(webhook::Entity::delete_many()
        .filter(webhook::Column::Kind.eq(KIND_MCP))
        .filter(webhook::Column::ExpiresAt.lt(now - TimeDelta::days(1)))
        .exec(db)
        .await?
        .rows_affected)
}

/// Subscribing and unsubscribing, for the MCP endpoint.
#[derive(Clone)]
pub struct McpEvents {
    db: DatabaseConnection,
    sealer: Sealer,
    policy: GuardPolicy,
    http: reqwest::Client,
}

impl std::fmt::Debug for McpEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpEvents")
    }
}

/// The callback and secret of a subscribe request.
struct Delivery<'a> {
    url: &'a str,
    secret: SigningSecret,
}

fn delivery_of(
    params: &Value,
    with_secret: bool,
) -> Result<(&str, Option<SigningSecret>), EventsError> {
    let delivery = &params["delivery"];
    let mode = delivery["mode"].as_str().unwrap_or_default();
    if mode != "webhook" {
        return Err(EventsError::Unsupported(
            "delivery",
            if mode.is_empty() {
                "none".to_owned()
            } else {
                crate::text::shorten(mode)
            },
        ));
    }
    let url = delivery["url"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            EventsError::InvalidParams(
                "delivery.url is required: the https URL events are POSTed to".to_owned(),
            )
        })?;
    if !with_secret {
        return Ok((url, None));
    }
    let secret = delivery["secret"]
        .as_str()
        .ok_or_else(|| {
            EventsError::InvalidParams(
                "delivery.secret is required: whsec_ followed by 24 to 64 bytes in base64"
                    .to_owned(),
            )
        })
        .and_then(|raw| {
            SigningSecret::from_whsec(raw).map_err(|err| {
                EventsError::InvalidParams(format!("delivery.secret is not usable: {err}"))
            })
        })?;
    Ok((url, Some(secret)))
}

fn lifetime_of(params: &Value) -> Result<Duration, EventsError> {
    match params.get("ttlMs") {
        None => Ok(DEFAULT_LIFETIME),
        // No lifetime asked for: the longest Errand grants (it never
        // grants one without end).
        Some(Value::Null) => Ok(MAX_LIFETIME),
        Some(value) => value
            .as_u64()
            .map(|ms| Duration::from_millis(ms).clamp(MIN_LIFETIME, MAX_LIFETIME))
            .ok_or_else(|| {
                EventsError::InvalidParams("ttlMs must be a number of milliseconds".to_owned())
            }),
    }
}

impl McpEvents {
    pub fn new(
        db: DatabaseConnection,
        sealer: Sealer,
        settings: &WebhookSettings,
    ) -> Result<Self, reqwest::Error> {
        let policy = GuardPolicy::from(settings);
        Ok(Self {
            http: outbound::client(policy, settings.timeout)?,
            db,
            sealer,
            policy,
        })
    }

    /// `events/subscribe`: checks the request, verifies the callback (unless
    /// it answered for this user within a day), and stores or refreshes the
    /// subscription. The result says until when it lasts.
    pub async fn subscribe(
        &self,
        principal: &Principal,
        params: &Value,
    ) -> Result<Value, EventsError> {
        let name = params["name"].as_str().unwrap_or_default();
        if event_named(name).is_none() {
            return Err(EventsError::UnknownEvent(crate::text::shorten(name)));
        }
        let filter = Filter::parse(&params["arguments"])?;
        let (url, secret) = delivery_of(params, true)?;
        let url = outbound::check_url(&self.policy, url)
            .map_err(|err| {
                EventsError::InvalidParams(format!("delivery.url is not allowed: {err}"))
            })?
            .to_string();
        let delivery = Delivery {
            url: &url,
            secret: secret.ok_or_else(|| {
                EventsError::InvalidParams("delivery.secret is required".to_owned())
            })?,
        };
        let lifetime = lifetime_of(params)?;
        let key = subscription_key(principal.user_id, delivery.url, name, &filter);
        let now = Utc::now();
        let existing = webhook::Entity::find()
            .filter(webhook::Column::SubscriptionKey.eq(key.as_str()))
            .one(&self.db)
            .await?;
        let recently_verified = webhook::Entity::find()
            .filter(webhook::Column::UserId.eq(principal.user_id))
            .filter(webhook::Column::Kind.eq(KIND_MCP))
            .filter(webhook::Column::Url.eq(delivery.url))
            .filter(webhook::Column::VerifiedAt.gt(now - VERIFIED_FOR))
            .count(&self.db)
            .await?
            > 0;
        if existing.is_none() {
            let held = webhook::Entity::find()
                .filter(webhook::Column::UserId.eq(principal.user_id))
                .filter(webhook::Column::Kind.eq(KIND_MCP))
                .count(&self.db)
                .await?;
            if held >= MAX_PER_USER {
                return Err(EventsError::TooMany);
            }
        }
        // A callback that answered for this user within the day is not
        // challenged again (what ChatGPT's guide asks of servers).
        let verified_now = !recently_verified;
        if verified_now {
            self.verify(&key, &delivery).await?;
        }
        let expires_at = now + TimeDelta::from_std(lifetime).unwrap_or(TimeDelta::days(1));
        let key_to_seal = self.sealer.key().await?;
        match existing {
            Some(row) => {
                let id = row.id;
                let mut active = webhook::ActiveModel::from(row);
                active.secret_sealed = Set(store::seal_secret(key_to_seal, id, &delivery.secret)?);
                active.expires_at = Set(Some(expires_at));
                if verified_now {
                    active.verified_at = Set(Some(now));
                }
                active.grant_id = Set(principal.grant_id);
                active.disabled_at = Set(None);
                active.disabled_reason = Set(None);
                active.failing_since = Set(None);
                active.update(&self.db).await?;
            }
            None => {
                let id = Uuid::now_v7();
                let row = webhook::Model {
                    id,
                    user_id: principal.user_id,
                    url: delivery.url.to_owned(),
                    event_types: name.to_owned(),
                    description: None,
                    secret_sealed: store::seal_secret(key_to_seal, id, &delivery.secret)?,
                    created_at: now,
                    failing_since: None,
                    last_failure_at: None,
                    disabled_at: None,
                    disabled_reason: None,
                    kind: KIND_MCP.to_owned(),
                    subscription_key: Some(key.clone()),
                    event_filter: Some(filter.canonical()),
                    expires_at: Some(expires_at),
                    verified_at: Some(now),
                    grant_id: principal.grant_id,
                };
                webhook::Entity::insert(webhook::ActiveModel::from(row))
                    .exec_without_returning(&self.db)
                    .await?;
            }
        }
        tracing::info!(subscription = %key, event = name, "mcp events: subscribed");
        Ok(json!({
            "id": key,
            "refreshBefore": Timestamp::from_utc(expires_at).to_string(),
            "cursor": null,
            "truncated": false,
        }))
    }

    /// `events/unsubscribe`: idempotent; only the caller's own.
    pub async fn unsubscribe(
        &self,
        principal: &Principal,
        params: &Value,
    ) -> Result<Value, EventsError> {
        let name = params["name"].as_str().unwrap_or_default();
        let filter = Filter::parse(&params["arguments"])?;
        let (url, _) = delivery_of(params, false)?;
        let url = outbound::check_url(&self.policy, url)
            .map_or_else(|_| url.to_owned(), |u| u.to_string());
        let key = subscription_key(principal.user_id, &url, name, &filter);
        webhook::Entity::delete_many()
            .filter(webhook::Column::SubscriptionKey.eq(key))
            .filter(webhook::Column::UserId.eq(principal.user_id))
            .filter(webhook::Column::Kind.eq(KIND_MCP))
            .exec(&self.db)
            .await?;
        Ok(json!({}))
    }

    /// The callback verification: a signed challenge the receiver must echo.
    async fn verify(&self, key: &str, delivery: &Delivery<'_>) -> Result<(), EventsError> {
        let challenge = crate::secrets::random_token().map_err(|err| EventsError::Callback {
            reason: "challenge_failed",
            detail: err.to_string(),
        })?;
        let body = json!({ "type": "verification", "challenge": challenge }).to_string();
        let msg_id = format!("msg_verification_{}", Uuid::new_v4().simple());
        let timestamp = Utc::now().timestamp();
        let url = outbound::check_url(&self.policy, delivery.url).map_err(|err| {
            EventsError::InvalidParams(format!("delivery.url is not allowed: {err}"))
        })?;
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature::sign(&delivery.secret, &msg_id, timestamp, body.as_bytes()),
            )
            .header("x-mcp-subscription-id", key)
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(err) => {
                let reason = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connection_refused"
                } else {
                    "challenge_failed"
                };
                return Err(EventsError::Callback {
                    reason,
                    detail: err.to_string(),
                });
            }
        };
        let status = answer.status();
        if !status.is_success() {
            return Err(EventsError::Callback {
                reason: if status.is_server_error() {
                    "http_5xx"
                } else {
                    "http_4xx"
                },
                detail: format!("the callback answered {status}"),
            });
        }
        let echoed: Value = answer.json().await.unwrap_or(Value::Null);
        let matches = echoed["challenge"].as_str().is_some_and(|got| {
            subtle::ConstantTimeEq::ct_eq(got.as_bytes(), challenge.as_bytes()).into()
        });
        if !matches {
            return Err(EventsError::Callback {
                reason: "challenge_failed",
                detail: "the callback did not answer with {\"challenge\": …} echoing the challenge"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_and_canonical() {
        let filter = Filter::parse(&json!({"tag": "Errands", "task_number": 3})).unwrap();
        assert_eq!(filter.canonical(), r#"{"tag":"errands","task_number":3}"#);
        assert!(Filter::parse(&json!({"tag": "no spaces"})).is_err());
        assert!(Filter::parse(&json!({"task_number": 0})).is_err());
        assert!(Filter::parse(&json!({"project": "x"})).is_err());
        assert_eq!(Filter::parse(&Value::Null).unwrap(), Filter::default());
    }

    #[test]
    fn the_same_four_parts_are_the_same_subscription() {
        let user = Uuid::now_v7();
        let a = subscription_key(
            user,
            "https://x.example/cb",
            "reminder.due",
            &Filter::default(),
        );
        let b = subscription_key(
            user,
            "https://x.example/cb",
            "reminder.due",
            &Filter::default(),
        );
        let other = subscription_key(
            Uuid::now_v7(),
            "https://x.example/cb",
            "reminder.due",
            &Filter::default(),
        );
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert!(a.starts_with("sub_") && a.len() == 36);
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(lifetime_of(&json!({})).unwrap(), DEFAULT_LIFETIME);
        assert_eq!(lifetime_of(&json!({"ttlMs": 1000})).unwrap(), MIN_LIFETIME);
        assert_eq!(lifetime_of(&json!({"ttlMs": null})).unwrap(), MAX_LIFETIME);
        assert!(lifetime_of(&json!({"ttlMs": "soon"})).is_err());
    }

    #[test]
    fn a_due_reminder_is_told_as_a_sentence() {
        let event = IncomingEvent {
            id: Uuid::now_v7(),
            kind: EventType::ReminderDue,
            user_id: Uuid::now_v7(),
            time: Utc::now(),
            payload: json!({"data": {"reminder": {"task_number": 3},
                "task": {"number": 3, "title": "Renew passport", "due_at": "2026-12-05T09:00:00Z", "tags": ["admin"]}}})
            .to_string(),
        };
        let occurrence = Occurrence::of(&event).unwrap();
        let body: Value = serde_json::from_str(&occurrence.body).unwrap();
        assert_eq!(body["name"], "reminder.due");
        assert_eq!(
            body["data"]["message"],
            "Reminder: task #3 \u{201c}Renew passport\u{201d}, due 2026-12-05T09:00:00Z."
        );
        assert_eq!(occurrence.tags, ["admin"]);
    }
}
