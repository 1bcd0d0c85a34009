//! Accounts on Errand's own sign-in pages: sign-up, sign-in with throttling,
//! and the browser session that carries a signed-in person through consent.
//!
//! Messages never say whether an email is registered: a failed sign-in is
//! "email or password is incorrect" whichever was wrong, an unknown email
//! costs the same password-hash time as a known one, and throttling counts
//! failures per email whether or not an account has it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::entity::{session, throttle};
use crate::{
    secrets::{self, SecretError},
    timestamp::{from_now, span},
    users::{self, EmailAddress},
};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Failed sign-ins allowed per window before further attempts are refused.
pub const MAX_FAILURES_PER_ACCOUNT: i32 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i32 = 20;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("The email or password is incorrect.")]
    BadCredentials,
    #[error("Too many failed sign-ins. Try again in {minutes} minutes.")]
    Throttled { minutes: i64 },
    #[error("{0}")]
    InvalidInput(String),
    /// Sign-up did not create an account. Worded so as not to confirm that the
    /// email is registered.
    #[error(
        "An account could not be created with these details. If you already have an account, \
         sign in instead."
    )]
    NotCreated,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("database error")]
    Database(#[from] DbErr),
}

pub fn check_password(password: &str) -> Result<(), AccountError> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&len) {
        return Err(AccountError::InvalidInput(format!(
            "Choose a password of {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters."
        )));
    }
    Ok(())
}

fn parse_email(raw: &str) -> Result<EmailAddress, AccountError> {
    EmailAddress::parse(raw).map_err(|_| {
        AccountError::InvalidInput("Enter an email address such as alice@example.com.".into())
    })
}

pub async fn sign_up(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
) -> Result<Uuid, AccountError> {
    let email = parse_email(email)?;
    check_password(password)?;
    let hash = secrets::hash_password(password)?;
    users::store::create(db, &email, Some(hash))
        .await?
        .map(|user| user.id)
        .ok_or(AccountError::NotCreated)
}

/// Minutes until `key` may try again, if it is over `limit` in this window
/// (`THROTTLE_WINDOW`). Sign-ins count failures; registrations count every
/// attempt.
pub async fn throttled_for(
    db: &DatabaseConnection,
    key: &str,
    limit: i32,
    now: DateTime<Utc>,
) -> Result<Option<i64>, DbErr> {
    let Some(row) = throttle::Entity::find_by_id(key.to_owned()).one(db).await? else {
        return Ok(None);
    };
    let ends = row.window_started_at + span(THROTTLE_WINDOW);
    if row.failures >= limit && ends > now {
        return Ok(Some(((ends - now).num_seconds() + 59) / 60));
    }
    Ok(None)
}

pub async fn count_attempt(
    db: &DatabaseConnection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let expired = throttle::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .is_some_and(|row| row.window_started_at + span(THROTTLE_WINDOW) <= now);
    if expired {
        throttle::Entity::delete_by_id(key.to_owned())
            .exec(db)
            .await?;
    }
    throttle::Entity::insert(throttle::ActiveModel {
        key: Set(key.to_owned()),
        failures: Set(1),
        window_started_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(throttle::Column::Key)
            .value(
                throttle::Column::Failures,
                Expr::col((throttle::Entity, throttle::Column::Failures)).add(1),
            )
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Checks an email and password. `client_address` is the caller's IP, for
/// the per-address limit.
pub async fn sign_in(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
    client_address: &str,
) -> Result<Uuid, AccountError> {
    let now = Utc::now();
    // Throttle keys use the raw (trimmed, lowercased) text, so that an
    // invalid or unknown email is counted like any other.
    let account_key = format!("account:{}", email.trim().to_lowercase());
    let address_key = format!("address:{client_address}");
    for (key, limit) in [
        (&account_key, MAX_FAILURES_PER_ACCOUNT),
        (&address_key, MAX_FAILURES_PER_ADDRESS),
    ] {
        if let Some(minutes) = throttled_for(db, key, limit, now).await? {
            return Err(AccountError::Throttled { minutes });
        }
    }
    let user = match EmailAddress::parse(email) {
        Ok(email) => users::store::find_by_email(db, &email).await?,
        Err(_) => None,
    };
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.as_deref())
        .unwrap_or_else(|| secrets::decoy_password_hash());
    let valid = secrets::verify_password(password, stored);
    match user {
        Some(user) if valid && user.password_hash.is_some() => {
            throttle::Entity::delete_by_id(account_key).exec(db).await?;
            Ok(user.id)
        }
        _ => {
            count_attempt(db, &account_key, now).await?;
            count_attempt(db, &address_key, now).await?;
            Err(AccountError::BadCredentials)
        }
    }
}

/// Counts one attempt under `key` and says how many minutes to wait if it
/// is past the `limit` of this window. Counting comes first, so attempts
/// made at the same moment cannot all pass one check. For what anyone may
/// do a few times (registering a client, looking one up), not for sign-in,
/// which counts failures only.
pub async fn ration(
    db: &DatabaseConnection,
    key: &str,
    limit: i32,
    now: DateTime<Utc>,
) -> Result<Option<i64>, DbErr> {
    count_attempt(db, key, now).await?;
    throttled_for(db, key, limit + 1, now).await
}

/// Starts a browser session; returns the cookie value (only its hash is kept).
pub async fn start_session(db: &DatabaseConnection, user_id: Uuid) -> Result<String, AccountError> {
    let id = secrets::random_token()?;
    session::Entity::insert(session::ActiveModel {
        id_hash: Set(secrets::digest(&id)),
        user_id: Set(user_id),
        expires_at: Set(from_now(SESSION_LIFETIME)),
    })
    .exec_without_returning(db)
    .await?;
    // Expired sessions are of no use to anyone; clear them while here.
    session::Entity::delete_many()
        .filter(session::Column::ExpiresAt.lt(Utc::now()))
        .exec(db)
        .await?;
    Ok(id)
}

/// The signed-in user of a session cookie, if it is current.
pub async fn session_user(db: &DatabaseConnection, cookie: &str) -> Result<Option<Uuid>, DbErr> {
    Ok(session::Entity::find_by_id(secrets::digest(cookie))
        .filter(session::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
        .map(|row| row.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_have_bounds() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pass").is_ok());
        assert!(check_password(&"x".repeat(129)).is_err());
    }
}
