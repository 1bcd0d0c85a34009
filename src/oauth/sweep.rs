//! Forgetting sign-in rows that can no longer be used, so the tables stay
//! the size of what is live. Run by the janitor job.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter, sea_query::Expr,
};

use super::{
    clients::Origin,
    entity::{client, code, refresh_token, session},
};

/// How long a used refresh token is kept after its use: presenting it again
/// within this time is recognised as a replay and revokes the grant.
pub const USED_REFRESH_TOKEN_RETENTION: TimeDelta = TimeDelta::days(30);
/// Used or expired authorization codes are kept a little past their
/// expiry, so that a replay soon after still revokes what the code produced.
const CODE_RETENTION: TimeDelta = TimeDelta::hours(1);
/// Clients that registered themselves (dynamically or by a metadata
/// document) and never got a grant are forgotten after this long: anyone
/// can create them, so they must not accumulate. A client in use has grants
/// and stays; a metadata-document client is simply fetched again.
pub const UNUSED_CLIENT_RETENTION: TimeDelta = TimeDelta::days(7);

/// Rows removed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub codes: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub throttles: u64,
    pub clients: u64,
}

impl Swept {
    pub fn total(&self) -> u64 {
        self.codes + self.refresh_tokens + self.sessions + self.throttles + self.clients
    }
}

/// Deletes expired authorization codes, expired and long-used refresh
/// tokens, expired sign-in sessions, throttle windows that have closed, and
/// self-registered clients nobody signed in with.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Swept, DbErr> {
    let codes = code::Entity::delete_many()
        .filter(code::Column::ExpiresAt.lt(now - CODE_RETENTION))
        .exec(db)
        .await?
        .rows_affected;
    let refresh_tokens = refresh_token::Entity::delete_many()
        .filter(
            Condition::any()
                .add(refresh_token::Column::ExpiresAt.lt(now))
                .add(refresh_token::Column::UsedAt.lt(now - USED_REFRESH_TOKEN_RETENTION)),
        )
        .exec(db)
        .await?
        .rows_affected;
    let sessions = session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    let throttles = super::ration::sweep(db, now).await?;
    // Grants belong to `auth`; the condition names its table rather than
    // importing its entity. Codes cascade with their client.
    let clients = client::Entity::delete_many()
        .filter(client::Column::Origin.ne(Origin::Operator.as_str()))
        .filter(client::Column::CreatedAt.lt(now - UNUSED_CLIENT_RETENTION))
        .filter(Expr::cust(
            "id NOT IN (SELECT client_id FROM oauth_grants WHERE client_id IS NOT NULL)",
        ))
        .exec(db)
        .await?
        .rows_affected;
    Ok(Swept {
        codes,
        refresh_tokens,
        sessions,
        throttles,
        clients,
    })
}
