//! `mail_outbox`: messages waiting to be sent. Written by [`queue`] in the
//! transaction of the change that causes them, claimed and settled by the
//! sender. A message is sealed at rest (its links are single-use secrets)
//! and dropped once it was sent or given up on; the row stays for a week as
//! a record.

use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Letter, MailError};
use crate::{db, sealing::SealingKey};

/// Sent and given-up rows are kept this long, then swept.
const RETENTION: TimeDelta = TimeDelta::days(7);

/// Rung when this process queued mail, after the commit.
static QUEUED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Wakes this process's sender; call it after the transaction that queued
/// mail committed (inside a shared transaction, it waits for that commit).
pub fn wake() {
    db::after_commit(|| QUEUED.notify_waiters());
}

/// What the sender waits on.
pub(super) fn queued() -> &'static Notify {
    &QUEUED
}

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mail_outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// What the message is for, for the log and metrics (`verify-email`).
        pub purpose: String,
        pub recipient: String,
        /// The [`super::Letter`] as sealed JSON; `None` once settled.
        pub sealed: Option<String>,
        /// `pending`, `sent` or `failed`.
        pub status: String,
        pub attempts: i32,
        pub created_at: DateTimeUtc,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub sent_at: Option<DateTimeUtc>,
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity as mail;

const PENDING: &str = "pending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

fn context(id: Uuid) -> Vec<u8> {
    format!("mail:{id}").into_bytes()
}

/// Queues `letter` inside the caller's transaction; call [`wake`] once it
/// commits.
pub async fn queue(
    conn: &impl ConnectionTrait,
    key: &SealingKey,
    purpose: &str,
    letter: &Letter,
) -> Result<Uuid, MailError> {
    let id = Uuid::now_v7();
    let sealed = key.seal_bytes(&context(id), &serde_json::to_vec(letter)?)?;
    let now = Utc::now();
    mail::Entity::insert(mail::ActiveModel {
        id: Set(id),
        purpose: Set(purpose.to_owned()),
        recipient: Set(letter.to.clone()),
        sealed: Set(Some(sealed)),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        created_at: Set(now),
        next_attempt_at: Set(Some(now)),
        sent_at: Set(None),
        last_error: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(id)
}

/// A message claimed for an attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: Uuid,
    pub purpose: String,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub letter: Letter,
}

/// Claims up to `limit` messages due at `now`, leasing each until
/// `now + lease` (another process skips them; if this one dies mid-send the
/// lease runs out and one retries). A message that cannot be opened is
/// given up at once.
pub async fn claim_due(
    db: &DatabaseConnection,
    key: &SealingKey,
    now: DateTime<Utc>,
    lease: TimeDelta,
    limit: u64,
) -> Result<Vec<Claimed>, MailError> {
    // Most rounds find nothing: look before taking SQLite's write lock.
    if next_due_at(db).await?.is_none_or(|at| at > now) {
        return Ok(Vec::new());
    }
    let txn = db::begin_write(db).await?;
    let due = mail::Entity::find()
        .filter(mail::Column::Status.eq(PENDING))
        .filter(mail::Column::NextAttemptAt.lte(now))
        .order_by_asc(mail::Column::NextAttemptAt)
        .limit(limit);
    let rows = db::claim(due, db.get_database_backend()).all(&txn).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let letter = row
            .sealed
            .as_deref()
            .ok_or(MailError::Send("nothing to send".into()))
            .and_then(|sealed| Ok(key.open_bytes(&context(row.id), sealed)?))
            .and_then(|plain| Ok(serde_json::from_slice::<Letter>(&plain)?));
        let attempt = row.attempts + 1;
        let (id, purpose) = (row.id, row.purpose.clone());
        let mut active = mail::ActiveModel::from(row);
        active.attempts = Set(attempt);
        match letter {
            Ok(letter) => {
                active.next_attempt_at = Set(Some(now + lease));
                active.update(&txn).await?;
                claimed.push(Claimed {
                    id,
                    purpose,
                    attempt,
                    letter,
                });
            }
            Err(err) => {
                tracing::error!(mail = %id, error = %err, "a queued message cannot be opened; giving up on it");
                active.status = Set(FAILED.to_owned());
                active.sealed = Set(None);
                active.next_attempt_at = Set(None);
                active.last_error = Set(Some(err.to_string()));
                active.update(&txn).await?;
            }
        }
    }
    txn.commit().await?;
    Ok(claimed)
}

/// Records that a message was sent, and drops its content.
pub async fn sent(db: &DatabaseConnection, id: Uuid) -> Result<(), DbErr> {
    mail::Entity::update_many()
        .col_expr(mail::Column::Status, Expr::value(SENT))
        .col_expr(mail::Column::Sealed, Expr::value(Option::<String>::None))
        .col_expr(
            mail::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(mail::Column::SentAt, Expr::value(Utc::now()))
        .col_expr(mail::Column::LastError, Expr::value(Option::<String>::None))
        .filter(mail::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: tried again at `retry_at`, or given up (and
/// its content dropped) when there is none.
pub async fn failed(
    db: &DatabaseConnection,
    id: Uuid,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let mut update = mail::Entity::update_many()
        .col_expr(mail::Column::LastError, Expr::value(error))
        .col_expr(mail::Column::NextAttemptAt, Expr::value(retry_at));
    if retry_at.is_none() {
        update = update
            .col_expr(mail::Column::Status, Expr::value(FAILED))
            .col_expr(mail::Column::Sealed, Expr::value(Option::<String>::None));
    }
    update.filter(mail::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// When the next pending message is due, if any.
pub async fn next_due_at(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(mail::Entity::find()
        .filter(mail::Column::Status.eq(PENDING))
        .order_by_asc(mail::Column::NextAttemptAt)
        .one(db)
        .await?
        .and_then(|row| row.next_attempt_at))
}

/// Forgets settled messages after a week, for the janitor.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(mail::Entity::delete_many()
        .filter(mail::Column::Status.ne(PENDING))
        .filter(mail::Column::CreatedAt.lt(now - RETENTION))
        .exec(db)
        .await?
        .rows_affected)
}
