//! Publishes the outbox to Kafka, oldest first, and deletes what the cluster
//! acknowledged. At least once: a crash between the acknowledgement and the
//! delete publishes those events again, with the same ids.
//!
//! On PostgreSQL a relay first locks the outbox shards it will publish
//! (`FOR UPDATE SKIP LOCKED`): relays in several processes share the work,
//! and one key's events (which share a shard) are only ever published by
//! one of them, in order. SQLite serves one process; it reads the oldest
//! rows directly.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicI16, Ordering},
    },
    time::Duration,
};

use errand_migrations::OUTBOX_SHARDS;

use rdkafka::{
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query},
};

use super::{
    Broker,
    entity::{outbox, outbox_shard},
    kafka::{self, BrokerError},
    outbox as written_events,
};
use crate::{
    db::Wakeups,
    jobs::{Backoff, Stop, Woken},
    metrics::Metrics,
};

/// Most events one round publishes.
pub const BATCH: u64 = 1000;
/// Most shards one round locks, so that a second process finds work too.
const SHARDS_PER_ROUND: u64 = 8;
/// How long to let librdkafka send before queueing more when its queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox query failed")]
    Database(#[from] DbErr),
    #[error("{failed} of {attempted} events were not acknowledged by Kafka: {first}")]
    NotAcknowledged {
        failed: usize,
        attempted: usize,
        first: String,
    },
}

pub struct Relay {
    db: DatabaseConnection,
    /// Which shard a round looks at first, advanced every round: a relay
    /// under steady load must not keep serving the low shards first.
    first_shard: AtomicI16,
    producer: FutureProducer,
    topic: String,
    /// How to reach a real cluster, on which the relay makes sure of the
    /// topic before publishing (the embedded one has it).
    real_cluster: Option<rdkafka::ClientConfig>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("topic", &self.topic).finish()
    }
}

/// The rows of one round.
struct Claimed {
    rows: Vec<outbox::Model>,
}

impl Relay {
    pub fn new(
        db: DatabaseConnection,
        broker: &Broker,
        metrics: Arc<Metrics>,
    ) -> Result<Self, BrokerError> {
        Ok(Self {
            db,
            first_shard: AtomicI16::new(0),
            producer: broker.producer()?,
            topic: broker.topic().to_owned(),
            real_cluster: (!broker.is_embedded()).then(|| broker.config()),
            metrics,
        })
    }

    /// Publishes until the outbox is empty (or a round fails). Returns how
    /// many events were published.
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut published = 0;
        loop {
            let round = self.round().await?;
            if round == 0 {
                return Ok(published);
            }
            published += round;
        }
    }

    /// One round: claim, publish, delete what was acknowledged.
    async fn round(&self) -> Result<usize, RelayError> {
        match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let txn = self.db.begin().await?;
                let first = self.first_shard.fetch_add(1, Ordering::Relaxed);
                let shards = claim_shards(&txn, first.rem_euclid(OUTBOX_SHARDS)).await?;
                if shards.is_empty() {
                    txn.commit().await?;
                    return Ok(0);
                }
                let claimed = Claimed {
                    rows: outbox::Entity::find()
                        .filter(outbox::Column::Shard.is_in(shards))
                        .order_by_asc(outbox::Column::Seq)
                        .limit(BATCH)
                        .all(&txn)
                        .await?,
                };
                // The shard locks are held until the delete commits, so no
                // other relay publishes these keys meanwhile.
                let outcome = self.publish(&txn, claimed).await;
                txn.commit().await?;
                outcome
            }
            _ => {
                let claimed = Claimed {
                    rows: outbox::Entity::find()
                        .order_by_asc(outbox::Column::Seq)
                        .limit(BATCH)
                        .all(&self.db)
                        .await?,
                };
                self.publish(&self.db, claimed).await
            }
        }
    }

    /// Sends every row, waits for the acknowledgements and deletes the rows
    /// acknowledged. A row whose key already failed in this round is kept
    /// even if acknowledged, so the key's events are retried in order.
    async fn publish(
        &self,
        conn: &impl ConnectionTrait,
        claimed: Claimed,
    ) -> Result<usize, RelayError> {
        let rows = claimed.rows;
        if rows.is_empty() {
            return Ok(0);
        }
        // Everything is queued first (librdkafka batches it), then the
        // acknowledgements are collected in order.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let headers = OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some("application/cloudevents+json; charset=UTF-8"),
            });
            let mut record = FutureRecord::to(&self.topic)
                .key(&row.message_key)
                .payload(&row.payload)
                .headers(headers);
            let queued = loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => break Ok(delivery),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                    }
                    Err((err, _)) => break Err(err.to_string()),
                }
            };
            pending.push(queued);
        }
        let mut results = Vec::with_capacity(pending.len());
        for queued in pending {
            results.push(match queued {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((err, _))) => Err(err.to_string()),
                    Err(_canceled) => Err("the producer was shut down".to_owned()),
                },
                Err(err) => Err(err),
            });
        }

        let mut failed_keys: HashSet<&str> = HashSet::new();
        let mut acknowledged = Vec::with_capacity(rows.len());
        let mut first_failure = None;
        // Every acknowledgement has arrived by now.
        let acknowledged_at = chrono::Utc::now();
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(_) if !failed_keys.contains(row.message_key.as_str()) => {
                    let age = (acknowledged_at - row.created_at)
                        .to_std()
                        .unwrap_or_default();
                    self.metrics.published(age);
                    acknowledged.push(row.seq)
                }
                Ok(_) => {}
                Err(err) => {
                    failed_keys.insert(&row.message_key);
                    first_failure.get_or_insert(err);
                }
            }
        }
        let published = acknowledged.len();
        for chunk in acknowledged.chunks(500) {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Seq.is_in(chunk.iter().copied()))
                .exec(conn)
                .await?;
        }
        match first_failure {
            None => Ok(published),
            Some(first) => Err(RelayError::NotAcknowledged {
                failed: rows.len() - published,
                attempted: rows.len(),
                first,
            }),
        }
    }

    /// Waits up to `timeout` for messages still in librdkafka's queue.
    pub fn flush(&self, timeout: Duration) {
        if let Err(err) = self.producer.flush(timeout) {
            tracing::warn!(error = %err, "relay: could not flush the Kafka producer");
        }
    }
}

/// Locks up to [`SHARDS_PER_ROUND`] shards that have events and that no
/// other relay holds (`FOR UPDATE SKIP LOCKED`), looking from shard `first`
/// round to the last and on from 0.
async fn claim_shards(txn: &impl ConnectionTrait, first: i16) -> Result<Vec<i16>, DbErr> {
    let has_events = Query::select()
        .expr(Expr::val(1))
        .from(outbox::Entity)
        .and_where(
            Expr::col((outbox::Entity, outbox::Column::Shard))
                .equals((outbox_shard::Entity, outbox_shard::Column::Shard)),
        )
        .to_owned();
    let shards = outbox_shard::Entity::find()
        .filter(Expr::exists(has_events))
        .order_by(
            Expr::col(outbox_shard::Column::Shard)
                .add(OUTBOX_SHARDS - first)
                .modulo(OUTBOX_SHARDS),
            sea_orm::Order::Asc,
        )
        .limit(SHARDS_PER_ROUND)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(txn)
        .await?;
    Ok(shards.into_iter().map(|row| row.shard).collect())
}

/// How many events wait in the outbox, and the age of the oldest in
/// seconds: for readiness reports, metrics and the tests.
pub async fn backlog(db: &DatabaseConnection) -> Result<(u64, Option<i64>), DbErr> {
    use sea_orm::PaginatorTrait;
    let count = outbox::Entity::find().count(db).await?;
    let oldest = outbox::Entity::find()
        .order_by_asc(outbox::Column::Seq)
        .one(db)
        .await?
        .map(|row| (chrono::Utc::now() - row.created_at).num_seconds());
    Ok((count, oldest))
}

/// How often a relay looks at the outbox when nothing woke it: the fallback
/// for a lost notification, and how SQLite relays see other processes' rows.
const POLL: Duration = Duration::from_secs(1);

/// How long a woken relay waits for more commits before publishing.
const GATHER: Duration = Duration::from_millis(2);

/// The relay job: publishes whenever events are committed (in this process,
/// or announced by another through [`announce`]), on a period, and with backoff while the
/// cluster is unreachable. Actions keep succeeding meanwhile: their events
/// wait in the outbox.
pub async fn run(relay: Relay, mut stop: Stop) {
    let mut wakeups = Wakeups::new(&relay.db, "errand outbox relay", CHANNEL);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    if let Some(cluster) = &relay.real_cluster {
        while let Err(err) = kafka::ensure_topic_on(cluster.clone(), &relay.topic).await {
            let delay = backoff.failed();
            tracing::warn!(error = %err, topic = %relay.topic, retry_in = ?delay, "relay: cannot make sure the events topic exists");
            if stop.pause(delay, std::future::pending()).await == Woken::Stopping {
                return;
            }
        }
        backoff.succeeded();
    }
    loop {
        // Registered before draining, so a commit during the drain is not
        // missed.
        let written = written_events::written();
        tokio::pin!(written);
        written.as_mut().enable();
        let woken = match relay.drain().await {
            Ok(published) => {
                if published > 0 {
                    tracing::debug!(published, "relay: events published");
                }
                backoff.succeeded();
                stop.pause(POLL, async {
                    tokio::select! {
                        () = &mut written => {}
                        () = wakeups.next() => {}
                    }
                })
                .await
            }
            Err(err) => {
                let delay = backoff.failed();
                tracing::warn!(error = %err, retry_in = ?delay, "relay: publishing failed; the events stay in the outbox");
                stop.pause(delay, std::future::pending()).await
            }
        };
        match woken {
            Woken::Stopping => break,
            // Let the commits of a busy moment gather: one round for many
            // events costs the database and the broker far less than a
            // round each.
            Woken::Signalled => tokio::time::sleep(GATHER).await,
            Woken::Period => {}
        }
    }
    relay.flush(Duration::from_secs(5));
}

/// The channel processes announce outbox writes on.
pub const CHANNEL: &str = "errand_outbox";

/// Writes are announced at most this often per process: one NOTIFY covers
/// every commit since the last.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(5);

/// Tells the relays of other processes (on PostgreSQL) that this one wrote
/// events: `NOTIFY errand_outbox` after commits, outside any transaction
/// and coalesced. A NOTIFY inside the writing transaction would take
/// PostgreSQL's global notification lock at every commit, serialising the
/// actions themselves. Runs in every process that serves the API, workers or
/// not; a missed announcement only costs the relays' polling interval.
pub async fn announce(db: DatabaseConnection, mut stop: Stop) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let notify = sea_orm::Statement::from_string(DbBackend::Postgres, format!("NOTIFY {CHANNEL}"));
    let mut next = Box::pin(written_events::written());
    next.as_mut().enable();
    loop {
        if stop.pause(Duration::from_secs(3600), next.as_mut()).await == Woken::Stopping {
            return;
        }
        tokio::time::sleep(ANNOUNCE_EVERY).await;
        // Listening again before announcing: a commit from here on gets an
        // announcement of its own.
        next = Box::pin(written_events::written());
        next.as_mut().enable();
        if let Err(err) = db.execute_raw(notify.clone()).await {
            tracing::debug!(error = %err, "could not announce outbox writes; relays will poll");
        }
    }
}
