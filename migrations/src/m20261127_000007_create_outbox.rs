//! The transactional outbox: every event an action causes is written here in
//! the same transaction as the change, and the relay publishes it to Kafka.
//!
//! * `seq` orders the rows: the relay publishes each shard's rows in `seq`
//!   order. Two changes to one task are serialised by the task's row lock, so
//!   their events' `seq` values follow their commit order.
//! * `shard` is a hash of the Kafka key (the task id) into
//!   [`SHARDS`] buckets. A relay locks the shards it publishes
//!   (`outbox_shards`, `FOR UPDATE SKIP LOCKED`), so several processes share
//!   the work while one key's events are only ever in one relay's hands.
//! * `id` (the event id) is not indexed: nothing looks rows up by it, and
//!   every index is paid for by every action.
//! * No trigger announces new rows: a NOTIFY in the writing transaction
//!   takes PostgreSQL's global notification lock at commit, which
//!   serialised every action's commit (half the create throughput). Each
//!   process announces its own writes instead, coalesced and outside any
//!   transaction (`events::relay::announce`).
//!
//! `consumed_events` records the events a Kafka consumer (the webhook intake)
//! has handled, so a message Kafka delivers twice is handled once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// How many shards the outbox is split into: the most relays that can
/// publish at once. Changing it needs a migration (rows keep their shard).
pub const SHARDS: i16 = 16;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    Id,
    Shard,
    MessageKey,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboxShards {
    Table,
    Shard,
}

#[derive(DeriveIden)]
enum ConsumedEvents {
    Table,
    Consumer,
    EventId,
    ConsumedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_integer(Outbox::Seq).auto_increment().primary_key())
                    .col(uuid(Outbox::Id))
                    .col(small_integer(Outbox::Shard))
                    .col(text(Outbox::MessageKey))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_shard_seq")
                    .table(Outbox::Table)
                    .col(Outbox::Shard)
                    .col(Outbox::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OutboxShards::Table)
                    .col(small_integer(OutboxShards::Shard).primary_key())
                    .to_owned(),
            )
            .await?;
        let mut shards = Query::insert()
            .into_table(OutboxShards::Table)
            .columns([OutboxShards::Shard])
            .to_owned();
        for shard in 0..SHARDS {
            shards.values_panic([shard.into()]);
        }
        manager.exec_stmt(shards).await?;

        manager
            .create_table(
                Table::create()
                    .table(ConsumedEvents::Table)
                    .col(string_len(ConsumedEvents::Consumer, 64))
                    .col(uuid(ConsumedEvents::EventId))
                    .col(timestamp_with_time_zone(ConsumedEvents::ConsumedAt))
                    .primary_key(
                        Index::create()
                            .col(ConsumedEvents::Consumer)
                            .col(ConsumedEvents::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        // The janitor forgets old records by age.
        manager
            .create_index(
                Index::create()
                    .name("ix_consumed_events_at")
                    .table(ConsumedEvents::Table)
                    .col(ConsumedEvents::ConsumedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ConsumedEvents::Table.into_iden(),
            OutboxShards::Table.into_iden(),
            Outbox::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
