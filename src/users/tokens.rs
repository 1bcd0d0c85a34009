//! Single-use links sent to a user's address: a 256-bit random secret in
//! the link, its SHA-256 in `user_tokens` with what it is for and until
//! when. Redeeming one is a single update that only the first use wins.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use uuid::Uuid;

use super::entity::token;
use crate::{
    secrets::{self, SecretError},
    timestamp::from_now,
};

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the address (24 hours).
    VerifyEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify-email",
        }
    }

    /// How long a link lasts.
    pub fn lifetime(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::from_secs(24 * 60 * 60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("database error")]
    Database(#[from] DbErr),
}

/// A new link secret for `user_id`, to put in a message (only its hash is
/// kept).
pub async fn issue(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<String, TokenError> {
    let secret = secrets::random_token()?;
    token::Entity::insert(token::ActiveModel {
        token_hash: Set(secrets::digest(&secret)),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_owned()),
        created_at: Set(Utc::now()),
        expires_at: Set(from_now(purpose.lifetime())),
        used_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(secret)
}

/// Uses a link: the user it was for, if it is for `purpose`, unused and
/// unexpired. Of two concurrent uses, one wins.
pub async fn redeem(
    db: &impl ConnectionTrait,
    secret: &str,
    purpose: Purpose,
) -> Result<Option<Uuid>, DbErr> {
    let now = Utc::now();
    let used = token::Entity::update_many()
        .col_expr(token::Column::UsedAt, Expr::value(now))
        .filter(token::Column::TokenHash.eq(secrets::digest(secret)))
        .filter(token::Column::Purpose.eq(purpose.as_str()))
        .filter(token::Column::UsedAt.is_null())
        .filter(token::Column::ExpiresAt.gt(now))
        .exec_with_returning(db)
        .await?;
    Ok(used.first().map(|row| row.user_id))
}

/// Forgets links that expired a day ago or more, for the janitor.
pub async fn sweep(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    Ok(token::Entity::delete_many()
        .filter(token::Column::ExpiresAt.lt(Utc::now() - chrono::TimeDelta::days(1)))
        .exec(db)
        .await?
        .rows_affected)
}
