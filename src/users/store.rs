//! Users and their external identities. The only module that writes the
//! `users` and `user_identities` tables; everyone else calls these functions.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query, UpdateStatement},
};
use uuid::Uuid;

use super::{
    EmailAddress,
    entity::{identity, user},
};

pub type User = user::Model;

/// The user with this email, created (without a password) if there is none
/// yet. Safe under concurrent calls: the unique email decides, and the loser
/// reads the winner.
pub async fn find_or_create(
    db: &impl ConnectionTrait,
    email: &EmailAddress,
) -> Result<User, DbErr> {
    if let Some(user) = find_by_email(db, email).await? {
        return Ok(user);
    }
    if let Some(user) = create(db, email, None).await? {
        return Ok(user);
    }
    find_by_email(db, email)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("user {email} vanished after insert")))
}

fn new_row(email: &EmailAddress, password_hash: Option<String>) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.as_str().to_owned()),
        task_counter: Set(0),
        created_at: Set(Utc::now()),
        password_hash: Set(password_hash),
        email_verified_at: Set(None),
    }
}

/// Creates a user; `None` if the email is taken.
pub async fn create(
    db: &impl ConnectionTrait,
    email: &EmailAddress,
    password_hash: Option<String>,
) -> Result<Option<User>, DbErr> {
    let inserted = user::Entity::insert(new_row(email, password_hash))
        .on_conflict(
            OnConflict::column(user::Column::Email)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    find_by_email(db, email).await
}

/// Creates a user that cannot sign in with a password (a client's service user).
pub async fn create_without_password(
    db: &impl ConnectionTrait,
    email: &EmailAddress,
) -> Result<User, DbErr> {
    create(db, email, None)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("the email {email} is already taken")))
}

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &EmailAddress,
) -> Result<Option<User>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<User>, DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// [`next_task_number`] as a statement, for a caller that makes it a clause
/// of a larger one (a data-modifying `WITH`): it yields one row with the
/// returned column, the number, or none when there is no such user.
pub fn next_task_number_statement(id: Uuid) -> (UpdateStatement, user::Column) {
    let counter = user::Column::TaskCounter;
    let mut update = Query::update();
    update
        .table(user::Entity)
        .value(counter, Expr::col(counter).add(1))
        .and_where(user::Column::Id.eq(id))
        .returning_col(counter);
    (update, counter)
}

/// Hands out the user's next task number (1, 2, 3…). Call it inside the
/// transaction that creates the task: the increment locks the user's row
/// until commit, so one user's concurrent creates queue up and get
/// consecutive numbers, and a failed create gives its number back. `None`
/// if there is no such user.
pub async fn next_task_number(txn: &impl ConnectionTrait, id: Uuid) -> Result<Option<i64>, DbErr> {
    let updated = user::Entity::update_many()
        .col_expr(
            user::Column::TaskCounter,
            Expr::col(user::Column::TaskCounter).add(1),
        )
        .filter(user::Column::Id.eq(id))
        .exec_with_returning(txn)
        .await?;
    Ok(updated.first().map(|user| user.task_counter))
}

/// Records that the user proved their address is theirs (the first time
/// counts; later proofs change nothing).
pub async fn mark_verified(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::EmailVerifiedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes a user with everything they own; their tokens stop working.
/// `false` if there was no such user.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    Ok(user::Entity::delete_by_id(id).exec(db).await?.rows_affected > 0)
}

/// The user an external identity provider's subject is linked to, if any.
pub async fn find_by_identity(
    db: &impl ConnectionTrait,
    issuer: &str,
    subject: &str,
) -> Result<Option<User>, DbErr> {
    let Some(link) = identity::Entity::find_by_id((issuer.to_owned(), subject.to_owned()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    find_by_id(db, link.user_id).await
}

/// The user an external identity provider's subject maps to, created on
/// first sight. A verified email links to an existing account with that
/// email; otherwise the user gets a placeholder address.
pub async fn find_or_link_identity(
    db: &DatabaseConnection,
    issuer: &str,
    subject: &str,
    verified_email: Option<&EmailAddress>,
) -> Result<User, DbErr> {
    if let Some(user) = find_by_identity(db, issuer, subject).await? {
        return Ok(user);
    }
    let txn = db.begin().await?;
    let email = match verified_email {
        Some(email) => email.clone(),
        None => {
            let digest = crate::secrets::digest(&format!("{issuer}\u{1f}{subject}"));
            let local: String = digest
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect::<String>()
                .to_lowercase();
            EmailAddress::parse(&format!("{local}@external.errand.invalid"))
                .map_err(|e| DbErr::Custom(e.to_string()))?
        }
    };
    let user = find_or_create(&txn, &email).await?;
    identity::Entity::delete_by_id((issuer.to_owned(), subject.to_owned()))
        .exec(&txn)
        .await?;
    identity::Entity::insert(identity::ActiveModel {
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        user_id: Set(user.id),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(user)
}
