use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(uuid(Tasks::Id).primary_key())
                    .col(uuid(Tasks::UserId))
                    .col(big_integer(Tasks::Number))
                    .col(text(Tasks::Title))
                    .col(text_null(Tasks::Notes))
                    .col(string_len(Tasks::Status, 8))
                    // 0 = low, 1 = normal, 2 = high: an integer so that sorting by
                    // priority is a plain ORDER BY on every backend.
                    .col(small_integer(Tasks::Priority))
                    .col(timestamp_with_time_zone_null(Tasks::DueAt))
                    // The task's tags, space-separated and sorted, read with the
                    // row. `task_tags` holds the same tags one per row, indexed
                    // for the tag filter; both are written in one transaction.
                    .col(text(Tasks::Tags).default(""))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Tasks::CompletedAt))
                    .col(integer(Tasks::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_user")
                            .from(Tasks::Table, Tasks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // `getTask` and friends address a task as (user, number); also the
        // guarantee that numbers are unique per user.
        manager
            .create_index(
                Index::create()
                    .name("ux_tasks_user_number")
                    .table(Tasks::Table)
                    .col(Tasks::UserId)
                    .col(Tasks::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // listTasks sorted by due date, the due_before/due_after filters and
        // every section of the agenda.
        manager
            .create_index(
                Index::create()
                    .name("ix_tasks_user_status_due")
                    .table(Tasks::Table)
                    .col(Tasks::UserId)
                    .col(Tasks::Status)
                    .col(Tasks::DueAt)
                    .col(Tasks::Number)
                    .to_owned(),
            )
            .await?;
        // listTasks sorted by priority.
        manager
            .create_index(
                Index::create()
                    .name("ix_tasks_user_status_priority")
                    .table(Tasks::Table)
                    .col(Tasks::UserId)
                    .col(Tasks::Status)
                    .col(Tasks::Priority)
                    .col(Tasks::DueAt)
                    .col(Tasks::Number)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskTags::Table)
                    .col(uuid(TaskTags::TaskId))
                    .col(uuid(TaskTags::UserId))
                    .col(string_len(TaskTags::Tag, 32))
                    .primary_key(Index::create().col(TaskTags::TaskId).col(TaskTags::Tag))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_tags_task")
                            .from(TaskTags::Table, TaskTags::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The `tag` filter: find one user's tasks carrying a tag.
        manager
            .create_index(
                Index::create()
                    .name("ix_task_tags_user_tag")
                    .table(TaskTags::Table)
                    .col(TaskTags::UserId)
                    .col(TaskTags::Tag)
                    .col(TaskTags::TaskId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TaskTags::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    UserId,
    Number,
    Title,
    Notes,
    Status,
    Priority,
    DueAt,
    Tags,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
    Version,
}

#[derive(DeriveIden)]
enum TaskTags {
    Table,
    TaskId,
    UserId,
    Tag,
}
