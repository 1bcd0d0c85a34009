//! Sign-in and OAuth 2.0: passwords, clients, consents, authorization codes,
//! grants (one per refresh-token family) and their refresh tokens, browser
//! sessions, sign-in throttling, and links to external identity providers.
//! Every secret is stored as a hash: argon2id for passwords, SHA-256 for the
//! random 256-bit client secrets, codes, refresh tokens and session ids.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(text_null(Alias::new("password_hash")))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(string(Clients::Id).primary_key())
                    .col(string(Clients::Name))
                    // NULL for public clients, which authenticate with PKCE alone.
                    .col(string_null(Clients::SecretHash))
                    // Newline-separated, matched exactly.
                    .col(text(Clients::RedirectUris))
                    .col(string(Clients::Scopes))
                    .col(string(Clients::GrantTypes))
                    // The user client-credentials tokens act as.
                    .col(uuid_null(Clients::ServiceUserId))
                    .col(timestamp_with_time_zone(Clients::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_clients_service_user")
                            .from(Clients::Table, Clients::ServiceUserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;

        // A grant is what a user (or a client, for its service user) allowed:
        // every access token names its grant, and revoking the grant stops
        // every token issued under it. Deleting the user or the client deletes
        // the grant, which is how their tokens stop working.
        manager
            .create_table(
                Table::create()
                    .table(Grants::Table)
                    .col(uuid(Grants::Id).primary_key())
                    .col(uuid(Grants::UserId))
                    // NULL for developer tokens from `errand token`.
                    .col(string_null(Grants::ClientId))
                    .col(string(Grants::Scopes))
                    .col(timestamp_with_time_zone(Grants::CreatedAt))
                    .col(timestamp_with_time_zone_null(Grants::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_grants_user")
                            .from(Grants::Table, Grants::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_grants_client")
                            .from(Grants::Table, Grants::ClientId)
                            .to(Clients::Table, Clients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Codes::Table)
                    .col(string(Codes::CodeHash).primary_key())
                    .col(string(Codes::ClientId))
                    .col(uuid(Codes::UserId))
                    .col(text(Codes::RedirectUri))
                    .col(string(Codes::Scopes))
                    .col(string_null(Codes::CodeChallenge))
                    .col(timestamp_with_time_zone(Codes::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Codes::UsedAt))
                    // The grant the first redemption created: revoked if the
                    // code is ever presented again.
                    .col(uuid_null(Codes::GrantId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_codes_client")
                            .from(Codes::Table, Codes::ClientId)
                            .to(Clients::Table, Clients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_codes_user")
                            .from(Codes::Table, Codes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string(RefreshTokens::TokenHash).primary_key())
                    .col(uuid(RefreshTokens::GrantId))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    // Set when the token is exchanged; presenting it again
                    // revokes the whole grant (RFC 9700 §4.14.2).
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_refresh_tokens_grant")
                            .from(RefreshTokens::Table, RefreshTokens::GrantId)
                            .to(Grants::Table, Grants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(uuid(Consents::UserId))
                    .col(string(Consents::ClientId))
                    .col(string(Consents::Scopes))
                    .col(timestamp_with_time_zone(Consents::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Consents::UserId)
                            .col(Consents::ClientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_consents_user")
                            .from(Consents::Table, Consents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_consents_client")
                            .from(Consents::Table, Consents::ClientId)
                            .to(Clients::Table, Clients::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(string(Sessions::IdHash).primary_key())
                    .col(uuid(Sessions::UserId))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_web_sessions_user")
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Failed sign-ins per key (`account:<email>` or `address:<ip>`) in the
        // current window.
        manager
            .create_table(
                Table::create()
                    .table(Throttle::Table)
                    .col(string(Throttle::Key).primary_key())
                    .col(integer(Throttle::Failures))
                    .col(timestamp_with_time_zone(Throttle::WindowStartedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Identities::Table)
                    .col(string(Identities::Issuer))
                    .col(string(Identities::Subject))
                    .col(uuid(Identities::UserId))
                    .primary_key(
                        Index::create()
                            .col(Identities::Issuer)
                            .col(Identities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_identities_user")
                            .from(Identities::Table, Identities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Clients {
    #[sea_orm(iden = "oauth_clients")]
    Table,
    Id,
    Name,
    SecretHash,
    RedirectUris,
    Scopes,
    GrantTypes,
    ServiceUserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Grants {
    #[sea_orm(iden = "oauth_grants")]
    Table,
    Id,
    UserId,
    ClientId,
    Scopes,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Codes {
    #[sea_orm(iden = "oauth_codes")]
    Table,
    CodeHash,
    ClientId,
    UserId,
    RedirectUri,
    Scopes,
    CodeChallenge,
    ExpiresAt,
    UsedAt,
    GrantId,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    #[sea_orm(iden = "oauth_refresh_tokens")]
    Table,
    TokenHash,
    GrantId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Consents {
    #[sea_orm(iden = "oauth_consents")]
    Table,
    UserId,
    ClientId,
    Scopes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    #[sea_orm(iden = "web_sessions")]
    Table,
    IdHash,
    UserId,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Throttle {
    #[sea_orm(iden = "sign_in_throttle")]
    Table,
    Key,
    Failures,
    WindowStartedAt,
}

#[derive(DeriveIden)]
enum Identities {
    #[sea_orm(iden = "user_identities")]
    Table,
    Issuer,
    Subject,
    UserId,
}
