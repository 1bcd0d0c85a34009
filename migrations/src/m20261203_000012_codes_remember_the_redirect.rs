//! `oauth_codes.redirect_uri_required`: whether the authorization request
//! named its `redirect_uri`. RFC 6749 §4.1.3: then the token request must
//! name it again; a code issued from a request that relied on the one
//! registered URI need not. Codes written before this migration live ten
//! minutes at most and keep the old rule (false).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthCodes {
    Table,
    RedirectUriRequired,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthCodes::Table)
                    .add_column(boolean(OauthCodes::RedirectUriRequired).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthCodes::Table)
                    .drop_column(OauthCodes::RedirectUriRequired)
                    .to_owned(),
            )
            .await
    }
}
