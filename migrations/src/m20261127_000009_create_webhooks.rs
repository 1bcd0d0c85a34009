//! Webhook subscriptions and their deliveries.
//!
//! A subscription's signing secret must be usable to sign, so it cannot be
//! hashed: it is stored sealed (AES-256-GCM) under a sealing key, which
//! comes from `ERRAND_WEBHOOK_SECRET_KEY` or, without it, is generated once
//! and kept in `webhook_sealing_keys`.
//! A delivery is one event for one subscription; it is written when the
//! intake reads the event from Kafka and updated by the dispatcher after
//! every attempt, so retries survive restarts. `(webhook_id, event_id)` is
//! unique: an event is delivered to a subscription once, however often Kafka
//! hands it over.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    UserId,
    Url,
    EventTypes,
    Description,
    SecretSealed,
    CreatedAt,
    FailingSince,
    LastFailureAt,
    DisabledAt,
    DisabledReason,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    UserId,
    EventId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastAttemptAt,
    LeasedUntil,
    LastStatusCode,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookSealingKeys {
    Table,
    Id,
    Key,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookSealingKeys::Table)
                    .col(string(WebhookSealingKeys::Id).primary_key())
                    .col(string(WebhookSealingKeys::Key))
                    .col(timestamp_with_time_zone(WebhookSealingKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(uuid(Webhooks::Id).primary_key())
                    .col(uuid(Webhooks::UserId))
                    .col(text(Webhooks::Url))
                    // Space-separated event types; empty means every type.
                    .col(text(Webhooks::EventTypes).default(""))
                    .col(text_null(Webhooks::Description))
                    .col(text(Webhooks::SecretSealed))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    // A failing streak: since when, and the latest failure (a
                    // streak with a day's quiet in it starts again).
                    .col(timestamp_with_time_zone_null(Webhooks::FailingSince))
                    .col(timestamp_with_time_zone_null(Webhooks::LastFailureAt))
                    .col(timestamp_with_time_zone_null(Webhooks::DisabledAt))
                    .col(text_null(Webhooks::DisabledReason))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhooks_user")
                            .from(Webhooks::Table, Webhooks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhooks_user")
                    .table(Webhooks::Table)
                    .col(Webhooks::UserId)
                    .col(Webhooks::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(uuid(WebhookDeliveries::Id).primary_key())
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(uuid(WebhookDeliveries::UserId))
                    .col(uuid(WebhookDeliveries::EventId))
                    .col(string_len(WebhookDeliveries::EventType, 32))
                    .col(text(WebhookDeliveries::Payload))
                    .col(string_len(WebhookDeliveries::Status, 9))
                    .col(integer(WebhookDeliveries::Attempts).default(0))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::NextAttemptAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::LastAttemptAt,
                    ))
                    // Set while a dispatcher is attempting it.
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::LeasedUntil,
                    ))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_webhook")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_webhook_deliveries_event")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The dispatcher: deliveries due for an attempt.
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        // listDeliveries, newest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_webhook_created")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookSealingKeys::Table).to_owned())
            .await
    }
}
