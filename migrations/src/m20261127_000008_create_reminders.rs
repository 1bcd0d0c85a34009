//! Reminders: a time at which Errand tells the user about one of their tasks.
//!
//! `remind_at` is when it fires. A reminder set relative to the task's due
//! time keeps the offset in `before_due_seconds`; moving the task's due time
//! recomputes `remind_at` in the same transaction. `status` moves once from
//! `pending` to `fired` or `cancelled`; the scheduler claims due rows with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, so each fires exactly once.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Reminders {
    Table,
    Id,
    UserId,
    TaskId,
    TaskNumber,
    RemindAt,
    BeforeDueSeconds,
    Status,
    Late,
    CreatedAt,
    FiredAt,
    CancelledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Reminders::Table)
                    .col(uuid(Reminders::Id).primary_key())
                    .col(uuid(Reminders::UserId))
                    .col(uuid(Reminders::TaskId))
                    // The task's number never changes; kept here so that a
                    // reminder (and its events) can name it without a join.
                    .col(big_integer(Reminders::TaskNumber))
                    .col(timestamp_with_time_zone(Reminders::RemindAt))
                    .col(big_integer_null(Reminders::BeforeDueSeconds))
                    .col(string_len(Reminders::Status, 9))
                    .col(boolean(Reminders::Late).default(false))
                    .col(timestamp_with_time_zone(Reminders::CreatedAt))
                    .col(timestamp_with_time_zone_null(Reminders::FiredAt))
                    .col(timestamp_with_time_zone_null(Reminders::CancelledAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reminders_user")
                            .from(Reminders::Table, Reminders::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reminders_task")
                            .from(Reminders::Table, Reminders::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The scheduler: pending reminders in time order.
        manager
            .create_index(
                Index::create()
                    .name("ix_reminders_status_remind_at")
                    .table(Reminders::Table)
                    .col(Reminders::Status)
                    .col(Reminders::RemindAt)
                    .to_owned(),
            )
            .await?;
        // listReminders for a task, and the user's upcoming reminders.
        manager
            .create_index(
                Index::create()
                    .name("ix_reminders_task")
                    .table(Reminders::Table)
                    .col(Reminders::TaskId)
                    .col(Reminders::RemindAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_reminders_user_status_remind_at")
                    .table(Reminders::Table)
                    .col(Reminders::UserId)
                    .col(Reminders::Status)
                    .col(Reminders::RemindAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Reminders::Table).to_owned())
            .await
    }
}
