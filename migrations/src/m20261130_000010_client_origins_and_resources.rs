//! Clients that register themselves, and tokens bound to a resource.
//!
//! * `oauth_clients.origin`: who registered the client. `operator` (the
//!   `errand clients` command), `dynamic` (RFC 7591 registration) or
//!   `metadata_document` (the client id is the URL of a Client ID Metadata
//!   Document, and the row caches what it said). The consent page warns
//!   when a client is not the operator's.
//! * `oauth_codes.resource` and `oauth_grants.resource`: the RFC 8707
//!   resource a sign-in was for, which becomes its tokens' audience. Null is
//!   the HTTP API (every row written before this migration).
//! * `oauth_consents.resources`: the resources a user's consent covers,
//!   space-separated (`api`, `mcp`); a consent given for one door is not
//!   taken as consent for the other. Rows before this migration were `api`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OauthClients {
    Table,
    Origin,
}

#[derive(DeriveIden)]
enum OauthCodes {
    Table,
    Resource,
}

#[derive(DeriveIden)]
enum OauthConsents {
    Table,
    Resources,
}

#[derive(DeriveIden)]
enum OauthGrants {
    Table,
    Resource,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(OauthClients::Table)
                    .add_column(string(OauthClients::Origin).default("operator"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthCodes::Table)
                    .add_column(string_null(OauthCodes::Resource))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthGrants::Table)
                    .add_column(string_null(OauthGrants::Resource))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthConsents::Table)
                    .add_column(string(OauthConsents::Resources).default("api"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (
                OauthConsents::Table.into_iden(),
                OauthConsents::Resources.into_iden(),
            ),
            (
                OauthGrants::Table.into_iden(),
                OauthGrants::Resource.into_iden(),
            ),
            (
                OauthCodes::Table.into_iden(),
                OauthCodes::Resource.into_iden(),
            ),
            (
                OauthClients::Table.into_iden(),
                OauthClients::Origin.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
