//! Relay throughput: how fast one relay drains a full outbox to a real
//! Kafka-protocol broker. Each round fills a fresh PostgreSQL database's
//! outbox with `--events` events over `--keys` task ids, then times
//! `Relay::drain` until the outbox is empty. Prints events/s per round and
//! the median.
//!
//! cargo run --release --example relay_throughput -- \
//!     --admin-url postgres://errand:errand@127.0.0.1:5432/postgres \
//!     --brokers 127.0.0.1:9092

use std::time::Instant;

use errand::{
    config::{DatabaseSettings, KafkaSettings, PublicUrl},
    db,
    events::{Broker, Event, EventType, Source, outbox, relay::Relay},
};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

type Failure = Box<dyn std::error::Error>;

struct Args {
    admin_url: String,
    brokers: String,
    events: usize,
    keys: usize,
    rounds: usize,
}

fn args() -> Result<Args, Failure> {
    let mut parsed = Args {
        admin_url: "postgres://errand:errand@127.0.0.1:5432/postgres".into(),
        brokers: "127.0.0.1:9092".into(),
        events: 100_000,
        keys: 5_000,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--admin-url" => parsed.admin_url = value,
            "--brokers" => parsed.brokers = value,
            "--events" => parsed.events = value.parse()?,
            "--keys" => parsed.keys = value.parse()?,
            "--rounds" => parsed.rounds = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    errand::install_crypto_provider();
    let args = args()?;
    let source = Source::new(&PublicUrl::parse("https://errand.example.com")?);
    let mut rates = Vec::new();
    for round in 1..=args.rounds {
        let name = format!("errand_bench_relay_{}", Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&args.admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut url = url::Url::parse(&args.admin_url)?;
        url.set_path(&format!("/{name}"));
        let database = db::connect_and_migrate(&DatabaseSettings {
            max_connections: 4,
            ..DatabaseSettings::new(url.to_string())
        })
        .await?;

        let keys: Vec<Uuid> = (0..args.keys).map(|_| Uuid::now_v7()).collect();
        let mut batch = Vec::with_capacity(1000);
        for i in 0..args.events {
            let key = keys[i % keys.len()];
            batch.push(Event::new(
                &source,
                EventType::TaskUpdated,
                key,
                &format!("tasks/{key}"),
                &serde_json::json!({"user_id": Uuid::nil(), "task": {"id": key, "title": "A task of ordinary length", "number": i}}),
            )?);
            if batch.len() == 1000 {
                outbox::append_all(&database, &batch).await?;
                batch.clear();
            }
        }
        outbox::append_all(&database, &batch).await?;

        let broker = Broker::start(&KafkaSettings {
            brokers: Some(args.brokers.clone()),
            topic: format!("errand.bench.{}", Uuid::new_v4().simple()),
            ..KafkaSettings::default()
        })
        .await?;
        broker.ensure_topic().await?;
        let relay = Relay::new(
            database.clone(),
            &broker,
            std::sync::Arc::new(errand::metrics::Metrics::new()),
        )?;
        let started = Instant::now();
        let published = relay.drain().await?;
        let seconds = started.elapsed().as_secs_f64();
        let rate = published as f64 / seconds;
        println!("round {round}: {published} events in {seconds:.2} s = {rate:.0} events/s");
        rates.push(rate);

        database.close().await?;
        // An autovacuum worker (not ours to end) may still be in the
        // database for a moment.
        for attempt in 1..=10 {
            match admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
            {
                Ok(_) => break,
                Err(err) if attempt == 10 => eprintln!("could not drop {name}: {err}"),
                Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
        }
    }
    rates.sort_by(f64::total_cmp);
    if let Some(median) = rates.get(rates.len() / 2) {
        println!("median: {median:.0} events/s");
    }
    Ok(())
}
