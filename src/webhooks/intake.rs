//! The webhook intake job: reads `errand.events` in the consumer group
//! `errand-webhooks` and queues a delivery per matching subscription. Each
//! event is recorded as consumed in the transaction that queues its
//! deliveries, before its offset is stored: a message Kafka hands over
//! again (after a crash or a rebalance) queues nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::{
    Message,
    consumer::{Consumer, StreamConsumer},
};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::{dispatch, store};
use crate::{
    events::{EventType, consumed},
    jobs::{Backoff, Stop},
};

/// The name consumed events are recorded under.
const CONSUMER: &str = "webhooks";

/// Reads what the intake needs from a CloudEvent; `None` for a message that
/// is not one of Errand's events (skipped, with a warning).
pub fn parse(payload: &[u8]) -> Option<store::IncomingEvent> {
    let doc: serde_json::Value = serde_json::from_slice(payload).ok()?;
    Some(store::IncomingEvent {
        id: Uuid::parse_str(doc["id"].as_str()?).ok()?,
        kind: EventType::parse(doc["type"].as_str()?)?,
        user_id: Uuid::parse_str(doc["data"]["user_id"].as_str()?).ok()?,
        time: DateTime::parse_from_rfc3339(doc["time"].as_str()?)
            .ok()?
            .with_timezone(&Utc),
        payload: String::from_utf8(payload.to_vec()).ok()?,
    })
}

/// Queues one event's deliveries, once.
async fn handle(db: &DatabaseConnection, event: &store::IncomingEvent) -> Result<usize, String> {
    let txn = db.begin().await.map_err(|e| e.to_string())?;
    if !consumed::first_time(&txn, CONSUMER, event.id)
        .await
        .map_err(|e| e.to_string())?
    {
        txn.rollback().await.map_err(|e| e.to_string())?;
        return Ok(0);
    }
    let queued = store::enqueue(&txn, event)
        .await
        .map_err(|e| e.to_string())?;
    txn.commit().await.map_err(|e| e.to_string())?;
    Ok(queued)
}

/// A consumer that is closed off the async runtime: closing leaves the
/// group and commits offsets, which blocks, for as long as the session
/// timeout when the cluster is already gone (a job aborted after its
/// embedded cluster stopped).
struct Owned(Option<StreamConsumer>);

impl Owned {
    /// Closes it, waiting: offsets are committed before the process exits.
    async fn close(mut self) {
        if let Some(consumer) = self.0.take() {
            let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            std::thread::spawn(move || drop(consumer));
        }
    }
}

/// The intake job.
pub async fn run(db: DatabaseConnection, consumer: StreamConsumer, topic: String, stop: Stop) {
    let owned = Owned(Some(consumer));
    if let Some(consumer) = &owned.0 {
        consume(&db, consumer, &topic, stop).await;
    }
    owned.close().await;
}

async fn consume(
    db: &DatabaseConnection,
    broker_consumer: &StreamConsumer,
    topic: &str,
    mut stop: Stop,
) {
    if let Err(err) = broker_consumer.subscribe(&[topic]) {
        tracing::error!(error = %err, topic, "webhook intake: cannot subscribe; webhooks will not be delivered");
        return;
    }
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        let message = tokio::select! {
            () = stop.requested() => return,
            message = broker_consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(error = %err, "webhook intake: consumer error");
                continue;
            }
        };
        let Some(event) = message.payload().and_then(parse) else {
            tracing::warn!(
                partition = message.partition(),
                offset = message.offset(),
                "webhook intake: skipped a message that is not an Errand event"
            );
            let _ = broker_consumer.store_offset_from_message(&message);
            continue;
        };
        // Retried until it is recorded: an event is never skipped because
        // the database was briefly unavailable.
        loop {
            match handle(db, &event).await {
                Ok(queued) => {
                    backoff.succeeded();
                    if queued > 0 {
                        dispatch::wake();
                    }
                    break;
                }
                Err(err) => {
                    let delay = backoff.failed();
                    tracing::warn!(error = %err, event = %event.id, retry_in = ?delay, "webhook intake: could not queue an event");
                    if stop.pause(delay, std::future::pending()).await
                        == crate::jobs::Woken::Stopping
                    {
                        return;
                    }
                }
            }
        }
        if let Err(err) = broker_consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %err, "webhook intake: could not store the offset");
        }
    }
}
