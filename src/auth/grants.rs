//! Grants: what every access token is issued under.
//!
//! A grant is one authorization: a user allowed a client some scopes, a
//! client acts as its service user, or a developer minted a token. Access
//! tokens name their grant, so revoking the grant (or deleting its user or
//! client, which deletes it) revokes every token issued under it. This module
//! owns the `oauth_grants` table; the authorization server (`oauth`) decides
//! when grants are made and revoked, and the authenticator checks them.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{Resource, ScopeSet, TokenError, TokenService};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_grants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        /// `None` for developer tokens.
        pub client_id: Option<String>,
        pub scopes: String,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
        /// The resource its tokens are for (`Resource::stored`).
        pub resource: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity as grant;

/// A grant as the authorization server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub user_id: Uuid,
    pub client_id: Option<String>,
    pub scopes: ScopeSet,
    pub revoked: bool,
    pub resource: Resource,
}

impl From<grant::Model> for Grant {
    fn from(row: grant::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            client_id: row.client_id,
            scopes: ScopeSet::parse_lenient(&row.scopes),
            revoked: row.revoked_at.is_some(),
            resource: Resource::from_stored(row.resource.as_deref()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("database error")]
    Database(#[from] DbErr),
}

/// Records a new grant and returns its id.
pub async fn create(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    client_id: Option<&str>,
    scopes: &ScopeSet,
    resource: Resource,
) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    grant::Entity::insert(grant::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        client_id: Set(client_id.map(str::to_owned)),
        scopes: Set(scopes.to_string()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        resource: Set(resource.stored().map(str::to_owned)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Grant>, DbErr> {
    Ok(grant::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Grant::from))
}

/// A client's live grant for its service user with exactly these scopes, so
/// that frequent client-credentials requests reuse one grant.
pub async fn find_live_for_client(
    db: &impl ConnectionTrait,
    client_id: &str,
    user_id: Uuid,
    scopes: &ScopeSet,
) -> Result<Option<Uuid>, DbErr> {
    grant::Entity::find()
        .select_only()
        .column(grant::Column::Id)
        .filter(grant::Column::ClientId.eq(client_id))
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::Scopes.eq(scopes.to_string()))
        .filter(grant::Column::Resource.is_null())
        .filter(grant::Column::RevokedAt.is_null())
        .into_tuple::<Uuid>()
        .one(db)
        .await
}

/// Marks a grant revoked. Call [`super::Authenticator::revoke_grant`]
/// instead where the running process should stop accepting its tokens at
/// once; other processes hear of it through `revocation`.
pub async fn revoke(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(grant::Column::Id.eq(id))
        .filter(grant::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Whether tokens issued under `grant_id` to `user_id` still work: the grant
/// exists (its user and client do) and was not revoked. Asked only when the
/// process does not already know (see `revocation::LiveCache`).
pub async fn is_live(
    db: &impl ConnectionTrait,
    grant_id: Uuid,
    user_id: Uuid,
) -> Result<bool, DbErr> {
    Ok(grant::Entity::find_by_id(grant_id)
        .select_only()
        .column(grant::Column::Id)
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::RevokedAt.is_null())
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

/// A development token for `user` (the `errand token` command), under a
/// grant of its own so that it can be revoked like any other.
pub async fn developer_token(
    db: &impl ConnectionTrait,
    tokens: &TokenService,
    user_id: Uuid,
    scopes: &ScopeSet,
    lifetime: Duration,
    resource: Resource,
) -> Result<String, IssueError> {
    let grant_id = create(db, user_id, None, scopes, resource).await?;
    Ok(tokens.mint(user_id, scopes, lifetime, None, grant_id, resource)?)
}
