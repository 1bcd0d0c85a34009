//! Shared state for running many replicas: rate-limit buckets and the
//! responses kept for `Idempotency-Key`.
//!
//! * `rate_limits`: one row per bucket (`user:<id>`, `client:<id>`), in
//!   GCRA form: `tat_us` is the bucket's theoretical arrival time, so one
//!   upsert both refills and spends it. The rate travels with each request
//!   (`interval_us`, `period_us`), so a changed setting applies at once.
//!   Times are epoch microseconds from the replicas' clocks (a million a
//!   second still has a whole interval).
//! * `idempotency_keys`: the first request under a key (per caller) and,
//!   once it finished, its response (status, headers, the body sealed at
//!   rest: it may hold a webhook's signing secret). `status` is NULL while
//!   the first request runs. Rows expire after 24 hours.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    TatUs,
    Allowed,
    SeenUs,
    IntervalUs,
    PeriodUs,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Owner,
    Key,
    Fingerprint,
    Status,
    Headers,
    Body,
    CreatedMs,
    ExpiresMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(text(RateLimits::Key).primary_key())
                    .col(big_integer(RateLimits::TatUs))
                    .col(boolean(RateLimits::Allowed))
                    .col(big_integer(RateLimits::SeenUs))
                    .col(big_integer(RateLimits::IntervalUs))
                    .col(big_integer(RateLimits::PeriodUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::Owner))
                    .col(text(IdempotencyKeys::Key))
                    .col(text(IdempotencyKeys::Fingerprint))
                    .col(small_integer_null(IdempotencyKeys::Status))
                    .col(text_null(IdempotencyKeys::Headers))
                    .col(text_null(IdempotencyKeys::Body))
                    .col(big_integer(IdempotencyKeys::CreatedMs))
                    .col(big_integer(IdempotencyKeys::ExpiresMs))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Owner)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_expires")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await
    }
}
