//! Errand's schema history. One file per schema change; a file is never edited
//! once it has landed, because deployed databases have already run it. Changes
//! that must stay safe while the previous release is serving go in two steps
//! (expand, then contract) across releases.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_users;
mod m20261126_000002_create_signing_keys;
mod m20261126_000003_create_tasks;
mod m20261127_000004_create_oauth;
mod m20261127_000005_announce_revocations;
mod m20261127_000006_create_oauth_csrf_keys;
mod m20261127_000007_create_outbox;
mod m20261127_000008_create_reminders;
mod m20261127_000009_create_webhooks;
mod m20261130_000010_client_origins_and_resources;
mod m20261130_000011_rate_limits_and_idempotency;
mod m20261203_000012_codes_remember_the_redirect;
mod m20261203_000013_verified_email_and_mail;
mod m20261203_000014_mcp_event_subscriptions;

/// How many shards the outbox is split into (see the outbox migration).
pub use m20261127_000007_create_outbox::SHARDS as OUTBOX_SHARDS;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_users::Migration),
            Box::new(m20261126_000002_create_signing_keys::Migration),
            Box::new(m20261126_000003_create_tasks::Migration),
            Box::new(m20261127_000004_create_oauth::Migration),
            Box::new(m20261127_000005_announce_revocations::Migration),
            Box::new(m20261127_000006_create_oauth_csrf_keys::Migration),
            Box::new(m20261127_000007_create_outbox::Migration),
            Box::new(m20261127_000008_create_reminders::Migration),
            Box::new(m20261127_000009_create_webhooks::Migration),
            Box::new(m20261130_000010_client_origins_and_resources::Migration),
            Box::new(m20261130_000011_rate_limits_and_idempotency::Migration),
            Box::new(m20261203_000012_codes_remember_the_redirect::Migration),
            Box::new(m20261203_000013_verified_email_and_mail::Migration),
            Box::new(m20261203_000014_mcp_event_subscriptions::Migration),
        ]
    }
}
