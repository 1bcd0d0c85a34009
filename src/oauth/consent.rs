//! What each user has allowed each client, so that a returning user is not
//! asked again for scopes they already approved, through the door (resource)
//! they approved them for.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait, sea_query::OnConflict};
use uuid::Uuid;

use super::entity::consent;
use crate::auth::{Resource, ScopeSet};

fn resource_name(resource: Resource) -> &'static str {
    resource.stored().unwrap_or("api")
}

/// Whether the user already allowed `client_id` every one of `scopes` for
/// `resource`.
pub async fn covers(
    db: &DatabaseConnection,
    user_id: Uuid,
    client_id: &str,
    scopes: &ScopeSet,
    resource: Resource,
) -> Result<bool, DbErr> {
    let Some(row) = consent::Entity::find_by_id((user_id, client_id.to_owned()))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let allowed = ScopeSet::parse_lenient(&row.scopes);
    Ok(scopes.iter().all(|scope| allowed.contains(scope))
        && row
            .resources
            .split_whitespace()
            .any(|r| r == resource_name(resource)))
}

/// Remembers that the user allowed `scopes` for `resource` (added to what
/// they allowed before).
pub async fn remember(
    db: &DatabaseConnection,
    user_id: Uuid,
    client_id: &str,
    scopes: &ScopeSet,
    resource: Resource,
) -> Result<(), DbErr> {
    let earlier = consent::Entity::find_by_id((user_id, client_id.to_owned()))
        .one(db)
        .await?;
    let all: ScopeSet = earlier
        .as_ref()
        .map(|row| ScopeSet::parse_lenient(&row.scopes))
        .unwrap_or_default()
        .iter()
        .chain(scopes.iter())
        .collect();
    let mut resources: Vec<&str> = earlier
        .as_ref()
        .map(|row| row.resources.split_whitespace().collect())
        .unwrap_or_default();
    if !resources.contains(&resource_name(resource)) {
        resources.push(resource_name(resource));
    }
    consent::Entity::insert(consent::ActiveModel {
        user_id: Set(user_id),
        client_id: Set(client_id.to_owned()),
        scopes: Set(all.to_string()),
        created_at: Set(Utc::now()),
        resources: Set(resources.join(" ")),
    })
    .on_conflict(
        OnConflict::columns([consent::Column::UserId, consent::Column::ClientId])
            .update_columns([
                consent::Column::Scopes,
                consent::Column::CreatedAt,
                consent::Column::Resources,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
