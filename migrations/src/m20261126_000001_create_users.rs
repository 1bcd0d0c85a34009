use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    // Stored lowercased so that uniqueness is case-insensitive on
                    // every backend without collation tricks.
                    .col(string_uniq(Users::Email))
                    // The last task number handed out to this user. Incremented
                    // inside the create transaction, so numbers are gap-free and
                    // never reused, even after deletes.
                    .col(big_integer(Users::TaskCounter).default(0))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    TaskCounter,
    CreatedAt,
}
