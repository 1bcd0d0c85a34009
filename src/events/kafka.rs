//! The Kafka cluster events go to: a configured one, or, with none
//! configured, rust-rdkafka's in-process `MockCluster`, so that `errand
//! serve` needs nothing installed.

use std::{sync::mpsc, thread::JoinHandle, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::StreamConsumer,
    error::{KafkaError, RDKafkaErrorCode},
    mocking::MockCluster,
    producer::FutureProducer,
};

pub use crate::config::KafkaSettings;

/// Partitions of a topic Errand creates. Keys (task ids) spread over them;
/// one task's events stay in one partition, in order.
pub const TOPIC_PARTITIONS: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("could not start the embedded Kafka cluster: {0}")]
    Embedded(String),
    #[error("Kafka client error")]
    Client(#[from] KafkaError),
}

/// A reachable cluster and the topic events go to. Dropping it stops an
/// embedded cluster.
#[derive(Debug)]
pub struct Broker {
    bootstrap: String,
    topic: String,
    /// TLS and SASL properties of a configured cluster.
    security: Vec<(String, String)>,
    embedded: Option<Embedded>,
}

impl Broker {
    /// Connects to the configured brokers and makes sure the topic exists,
    /// or starts an embedded cluster with the topic.
    pub async fn start(settings: &KafkaSettings) -> Result<Self, BrokerError> {
        match &settings.brokers {
            Some(brokers) => {
                // The topic is made sure of by the relay, in the background:
                // an unreachable cluster must not keep the API from serving.
                Ok(Self {
                    bootstrap: brokers.clone(),
                    topic: settings.topic.clone(),
                    security: settings.security.clone(),
                    embedded: None,
                })
            }
            None => {
                let (embedded, bootstrap) = Embedded::start(&settings.topic)?;
                tracing::info!(
                    bootstrap_servers = %bootstrap,
                    topic = %settings.topic,
                    "no ERRAND_KAFKA_BROKERS: started an embedded Kafka cluster (in memory; events are lost when the process stops)"
                );
                Ok(Self {
                    bootstrap,
                    topic: settings.topic.clone(),
                    security: Vec::new(),
                    embedded: Some(embedded),
                })
            }
        }
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Creates the topic unless it exists (the embedded cluster has it
    /// from the start).
    pub async fn ensure_topic(&self) -> Result<(), KafkaError> {
        if self.is_embedded() {
            return Ok(());
        }
        ensure_topic_on(self.config(), &self.topic).await
    }

    /// Settings every client shares: where the cluster is and how to
    /// reach it.
    pub fn config(&self) -> ClientConfig {
        connection(&self.bootstrap, &self.security)
    }

    /// The relay's producer: idempotent (no duplicates or reordering from
    /// its own retries), every in-sync replica acknowledges (`acks=all`).
    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        self.config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A millisecond of batching: more events per request under load
            // (the relay also gathers commits for 2 ms), at a latency well
            // inside the 100 ms budget.
            .set("linger.ms", "1")
            // How long one message may take, retries included, before the
            // relay hears of the failure and backs off (the outbox keeps it).
            .set("message.timeout.ms", "30000")
            .create()
    }

    /// A consumer in `group` that commits only the offsets the caller has
    /// stored, after handling each message.
    pub fn consumer(&self, group: &str) -> Result<StreamConsumer, KafkaError> {
        self.config()
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()
    }

    /// Takes the embedded cluster's broker down (`true`) or back up: how the
    /// tests show that actions go on succeeding through an outage. Does
    /// nothing for a real cluster.
    pub fn set_embedded_down(&self, down: bool) {
        if let Some(embedded) = &self.embedded {
            let _ = embedded
                .commands
                .send(if down { Command::Down } else { Command::Up });
        }
    }
}

fn connection(bootstrap: &str, security: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "errand");
    for (key, value) in security {
        config.set(key, value);
    }
    config
}

/// Creates `topic` on the plaintext cluster at `bootstrap` unless it
/// exists (for tests and tools; the relay uses its broker's settings).
pub async fn ensure_topic(bootstrap: &str, topic: &str) -> Result<(), KafkaError> {
    ensure_topic_on(connection(bootstrap, &[]), topic).await
}

/// Creates `topic` on the cluster `config` reaches unless it exists. A
/// real cluster's operators may have created it already, with their own
/// partitions and replication.
pub async fn ensure_topic_on(mut config: ClientConfig, topic: &str) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> =
        config.set("allow.auto.create.topics", "false").create()?;
    // Look first: some clusters (and the embedded one, reached from another
    // process) do not offer topic creation to clients at all.
    let admin = std::sync::Arc::new(admin);
    let lookup = admin.clone();
    let name = topic.to_owned();
    let exists = tokio::task::spawn_blocking(move || {
        lookup
            .inner()
            .fetch_metadata(Some(&name), ADMIN_TIMEOUT)
            .map(|metadata| {
                metadata
                    .topics()
                    .iter()
                    .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
            })
    })
    .await
    .map_err(|_| KafkaError::Canceled)??;
    if exists {
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    // Replication -1 is the cluster's default.replication.factor; a
    // broker too old for that is asked for one replica instead.
    for replication in [-1, 1] {
        let new = NewTopic::new(
            topic,
            TOPIC_PARTITIONS,
            TopicReplication::Fixed(replication),
        );
        let created =
            tokio::time::timeout(ADMIN_TIMEOUT * 2, admin.create_topics([&new], &options))
                .await
                .map_err(|_| KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut))??;
        match created.into_iter().next() {
            Some(Ok(_)) => {
                tracing::info!(topic, "created the events topic");
                return Ok(());
            }
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => return Ok(()),
            Some(Err((_, RDKafkaErrorCode::InvalidReplicationFactor))) if replication == -1 => {}
            Some(Err((_, code))) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

/// How long one look at, or change to, the cluster's topics may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Command {
    Down,
    Up,
}

/// The embedded cluster lives on a thread of its own: librdkafka's mock
/// cluster is not `Send`, so it cannot sit in the async runtime's tasks.
/// Dropping the command sender ends the thread, which drops the cluster.
#[derive(Debug)]
struct Embedded {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

/// The one broker of the embedded cluster.
const EMBEDDED_BROKER_ID: i32 = 1;

impl Embedded {
    fn start(topic: &str) -> Result<(Self, String), BrokerError> {
        let (commands, received) = mpsc::channel::<Command>();
        let (ready, started) = mpsc::channel::<Result<String, String>>();
        let topic = topic.to_owned();
        let thread = std::thread::Builder::new()
            .name("errand-embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(cluster) => cluster,
                    Err(err) => {
                        let _ = ready.send(Err(err.to_string()));
                        return;
                    }
                };
                if let Err(err) = cluster.create_topic(&topic, TOPIC_PARTITIONS, 1) {
                    let _ = ready.send(Err(err.to_string()));
                    return;
                }
                let _ = ready.send(Ok(cluster.bootstrap_servers()));
                while let Ok(command) = received.recv() {
                    let result = match command {
                        Command::Down => cluster.broker_down(EMBEDDED_BROKER_ID),
                        Command::Up => cluster.broker_up(EMBEDDED_BROKER_ID),
                    };
                    if let Err(err) = result {
                        tracing::warn!(error = %err, ?command, "embedded Kafka refused a command");
                    }
                }
            })
            .map_err(|e| BrokerError::Embedded(e.to_string()))?;
        let bootstrap = started
            .recv()
            .map_err(|_| BrokerError::Embedded("its thread ended".into()))?
            .map_err(BrokerError::Embedded)?;
        Ok((
            Self {
                commands,
                thread: Some(thread),
            },
            bootstrap,
        ))
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        let (closed, _) = mpsc::channel();
        self.commands = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
