//! MCP Events subscriptions, kept beside webhook subscriptions: both are an
//! HTTPS endpoint, a Standard Webhooks secret and the events it wants, and
//! both are delivered by the same intake and dispatcher.
//!
//! * `webhooks.kind`: `webhook` (an integrator's, from createWebhook; every
//!   row before this migration) or `mcp` (an MCP client's, from
//!   `events/subscribe`).
//! * `webhooks.subscription_key`: an MCP subscription's identity, derived
//!   from its user, callback, event and filter (subscribing again with the
//!   same four refreshes it); unique.
//! * `webhooks.event_filter`: the subscription's arguments (task number,
//!   tag) as canonical JSON.
//! * `webhooks.expires_at`: when an MCP subscription lapses unless
//!   refreshed; `webhooks.verified_at`: when its callback last answered the
//!   verification challenge; `webhooks.grant_id`: the grant whose token
//!   subscribed (revoking it stops deliveries).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Kind,
    SubscriptionKey,
    EventFilter,
    ExpiresAt,
    VerifiedAt,
    GrantId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            string(Webhooks::Kind).default("webhook").to_owned(),
            text_null(Webhooks::SubscriptionKey).to_owned(),
            text_null(Webhooks::EventFilter).to_owned(),
            timestamp_with_time_zone_null(Webhooks::ExpiresAt).to_owned(),
            timestamp_with_time_zone_null(Webhooks::VerifiedAt).to_owned(),
            uuid_null(Webhooks::GrantId).to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Webhooks::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ux_webhooks_subscription_key")
                    .table(Webhooks::Table)
                    .col(Webhooks::SubscriptionKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ux_webhooks_subscription_key")
                    .table(Webhooks::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Webhooks::Kind,
            Webhooks::SubscriptionKey,
            Webhooks::EventFilter,
            Webhooks::ExpiresAt,
            Webhooks::VerifiedAt,
            Webhooks::GrantId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Webhooks::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
