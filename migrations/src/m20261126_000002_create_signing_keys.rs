use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    // The JWK thumbprint (RFC 7638) of the public key: stable, so
                    // every process derives the same `kid` for the same key.
                    .col(string(SigningKeys::Kid).primary_key())
                    .col(string(SigningKeys::Algorithm))
                    .col(text(SigningKeys::PrivateKeyPem))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    // Set when a newer key takes over signing; a retired key keeps
                    // verifying until the tokens it signed have expired.
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Algorithm,
    PrivateKeyPem,
    CreatedAt,
    RetiredAt,
}
