//! Commit to Kafka: reads the events topic for `--seconds` and reports, for
//! every event, the time from its `time` attribute (stamped in the
//! transaction that wrote it, just before the commit) to its arrival here.
//! That is commit-to-acknowledgement plus the consumer's own fetch delay, so
//! an upper bound on what the relay adds. Prints count, p50, p99 and max.
//!
//! cargo run --release --example event_latency -- --brokers 127.0.0.1:9092 \
//!     --topic errand.events --seconds 30

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::{
    ClientConfig, Message,
    consumer::{Consumer, StreamConsumer},
};

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut brokers = "127.0.0.1:9092".to_owned();
    let mut topic = "errand.events".to_owned();
    let mut seconds = 30u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--brokers" => brokers = value,
            "--topic" => topic = value,
            "--seconds" => seconds = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set(
            "group.id",
            format!("errand-bench-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[&topic])?;
    eprintln!("listening on {topic} for {seconds} s");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut lags_ms = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(deadline.into(), consumer.recv()).await {
        let Ok(message) = message else { continue };
        let arrived = Utc::now();
        let Some(payload) = message.payload() else {
            continue;
        };
        let doc: serde_json::Value = serde_json::from_slice(payload)?;
        let Some(time) = doc["time"].as_str() else {
            continue;
        };
        let written: DateTime<Utc> = DateTime::parse_from_rfc3339(time)?.with_timezone(&Utc);
        lags_ms.push((arrived - written).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
    }
    if lags_ms.is_empty() {
        println!("no events arrived");
        return Ok(());
    }
    lags_ms.sort_by(f64::total_cmp);
    let at = |q: f64| lags_ms[((lags_ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "events: {}  p50: {:.1} ms  p99: {:.1} ms  max: {:.1} ms",
        lags_ms.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
