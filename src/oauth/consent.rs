//! What each user has allowed each client, so that a returning user is not
//! asked again for scopes they already approved.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, sea_query::OnConflict};
use uuid::Uuid;

use super::entity::consent;
use crate::auth::ScopeSet;

/// Whether the user already allowed `client_id` every one of `scopes`.
pub async fn covers(
    db: &DatabaseConnection,
    user_id: Uuid,
    client_id: &str,
    scopes: &ScopeSet,
) -> Result<bool, DbErr> {
    let Some(row) = consent::Entity::find_by_id((user_id, client_id.to_owned()))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let allowed = ScopeSet::parse_lenient(&row.scopes);
    Ok(scopes.iter().all(|scope| allowed.contains(scope)))
}

/// Remembers that the user allowed `scopes` (added to what they allowed before).
pub async fn remember(
    db: &DatabaseConnection,
    user_id: Uuid,
    client_id: &str,
    scopes: &ScopeSet,
) -> Result<(), DbErr> {
    let earlier = consent::Entity::find_by_id((user_id, client_id.to_owned()))
        .one(db)
        .await?
        .map(|row| ScopeSet::parse_lenient(&row.scopes))
        .unwrap_or_default();
    let all: ScopeSet = earlier.iter().chain(scopes.iter()).collect();
    consent::Entity::insert(consent::ActiveModel {
        user_id: Set(user_id),
        client_id: Set(client_id.to_owned()),
        scopes: Set(all.to_string()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([consent::Column::UserId, consent::Column::ClientId])
            .update_columns([consent::Column::Scopes, consent::Column::CreatedAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
