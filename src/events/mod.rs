//! Events: what actions cause beyond their own rows.
//!
//! An action writes its events to the outbox ([`outbox::append`]) in the
//! transaction that makes the change; the [`relay`] publishes them to Kafka as
//! CloudEvents 1.0 JSON ([`envelope`]), keyed by task id so that one task's
//! events stay in order. With no broker configured, [`kafka`] starts an
//! embedded one.

pub mod consumed;
mod entity;
pub mod envelope;
pub mod kafka;
pub mod outbox;
pub mod relay;

pub use envelope::{Event, EventType, Source};
pub use kafka::{Broker, KafkaSettings};
