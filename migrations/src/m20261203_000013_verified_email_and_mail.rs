//! Email that reaches people, and addresses known to be theirs.
//!
//! * `users.email_verified_at`: when the owner of the address proved it by
//!   following the link Errand sent. Null until then (and for every account
//!   made before this migration): nothing but account mail goes to an
//!   unverified address.
//! * `user_tokens`: single-use links sent by email (verify an address; later
//!   reset a password), by the SHA-256 of their secret, with what they are
//!   for and until when. Deleted with their user.
//! * `mail_outbox`: messages waiting to be sent, written in the transaction
//!   of the change that causes them and sent by the mail job, with retries.
//!   The message (its links are secrets) is sealed at rest and dropped once
//!   sent; the row stays a while as a record of what was sent when.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The new column of `users`.
#[derive(DeriveIden)]
enum Verified {
    EmailVerifiedAt,
}

#[derive(DeriveIden)]
enum UserTokens {
    Table,
    TokenHash,
    UserId,
    Purpose,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    Purpose,
    Recipient,
    Sealed,
    Status,
    Attempts,
    CreatedAt,
    NextAttemptAt,
    SentAt,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Verified::EmailVerifiedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserTokens::Table)
                    .col(text(UserTokens::TokenHash).primary_key())
                    .col(uuid(UserTokens::UserId))
                    .col(text(UserTokens::Purpose))
                    .col(timestamp_with_time_zone(UserTokens::CreatedAt))
                    .col(timestamp_with_time_zone(UserTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(UserTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_tokens_user")
                            .from(UserTokens::Table, UserTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_user_tokens_user")
                    .table(UserTokens::Table)
                    .col(UserTokens::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .col(uuid(MailOutbox::Id).primary_key())
                    .col(text(MailOutbox::Purpose))
                    .col(text(MailOutbox::Recipient))
                    .col(text_null(MailOutbox::Sealed))
                    .col(text(MailOutbox::Status))
                    .col(integer(MailOutbox::Attempts).default(0))
                    .col(timestamp_with_time_zone(MailOutbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(MailOutbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(MailOutbox::SentAt))
                    .col(text_null(MailOutbox::LastError))
                    .to_owned(),
            )
            .await?;
        // The mail job: what is due, in time order.
        manager
            .create_index(
                Index::create()
                    .name("ix_mail_outbox_due")
                    .table(MailOutbox::Table)
                    .col(MailOutbox::Status)
                    .col(MailOutbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Verified::EmailVerifiedAt)
                    .to_owned(),
            )
            .await
    }
}
