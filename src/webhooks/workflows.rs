//! What an integrator can do to subscriptions, with the rules in the slice
//! rather than in a handler: subscribing checks where the URL points (the
//! outbound guard's rules and, for a host name, every address it resolves
//! to), then creates the subscription under the per-user limit, which the
//! store counts under a lock on the user so concurrent creates stop at it.
//! Callers only map the outcome.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use url::Host;
use uuid::Uuid;

use super::{
    domain::Webhook,
    signature::SigningSecret,
    store::{self, StoreError},
};
use crate::{
    events::EventType,
    outbound::{self, GuardPolicy},
    sealing::SealingKey,
};

/// How long checking where a new webhook's host resolves may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A subscription as the caller asked for it, its event types and
/// description already read.
#[derive(Debug)]
pub struct NewSubscription<'a> {
    pub url: &'a str,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
}

/// Why a subscription was not made.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeRefused {
    /// The URL may not receive deliveries; the text says why, for the caller.
    #[error("{0}")]
    Url(String),
    /// The store refused it (the per-user limit) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Subscribes `user_id` to the events named, returning the subscription and
/// its signing secret (which is shown once and kept only sealed).
pub async fn subscribe(
    db: &DatabaseConnection,
    policy: &GuardPolicy,
    key: &SealingKey,
    user_id: Uuid,
    new: NewSubscription<'_>,
) -> Result<(Webhook, SigningSecret), SubscribeRefused> {
    let url = outbound::check_url(policy, new.url)
        .map_err(|err| SubscribeRefused::Url(err.to_string()))?;
    if let Some(Host::Domain(host)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        tokio::time::timeout(
            RESOLVE_TIMEOUT,
            outbound::resolve_checked(policy, host, port),
        )
        .await
        .map_err(|_| {
            SubscribeRefused::Url(format!(
                "looking up `{host}` took longer than {RESOLVE_TIMEOUT:?}; check the name"
            ))
        })?
        .map_err(|err| SubscribeRefused::Url(err.to_string()))?;
    }
    Ok(store::create(
        db,
        key,
        user_id,
        url.as_str(),
        &new.event_types,
        new.description,
    )
    .await?)
}
