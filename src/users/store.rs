use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{EmailAddress, entity};

pub type User = entity::Model;

/// The user with this email, created if there is none yet. Safe under
/// concurrent calls: the unique email decides, and the loser reads the winner.
pub async fn find_or_create(db: &DatabaseConnection, email: &EmailAddress) -> Result<User, DbErr> {
    if let Some(user) = find_by_email(db, email).await? {
        return Ok(user);
    }
    let candidate = entity::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.as_str().to_owned()),
        task_counter: Set(0),
        created_at: Set(Utc::now()),
    };
    entity::Entity::insert(candidate)
        .on_conflict(
            OnConflict::column(entity::Column::Email)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    find_by_email(db, email)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("user {email} vanished after insert")))
}

pub async fn find_by_email(
    db: &DatabaseConnection,
    email: &EmailAddress,
) -> Result<Option<User>, DbErr> {
    entity::Entity::find()
        .filter(entity::Column::Email.eq(email.as_str()))
        .one(db)
        .await
}

pub async fn find_by_id(db: &DatabaseConnection, id: Uuid) -> Result<Option<User>, DbErr> {
    entity::Entity::find_by_id(id).one(db).await
}
