//! Accounts on Errand's own sign-in pages: sign-up with a verification
//! email, sign-in, both rationed (`ration`), and the browser session that
//! carries a signed-in person through consent.
//!
//! Nothing says whether an email is registered: a failed sign-in is "email
//! or password is incorrect" whichever was wrong, an unknown email costs the
//! same password-hash time as a known one, sign-up answers "check your
//! inbox" either way (the inbox then says which), and rationing counts an
//! email whether or not an account has it.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::letters;
use super::{
    entity::session,
    ration::{self, Limit, Verdict},
};
use crate::{
    config::PublicUrl,
    db, mail,
    sealing::SealingKey,
    secrets::{self, SecretError},
    timestamp::from_now,
    users::{
        self, EmailAddress,
        tokens::{self, Purpose},
    },
};

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Failed sign-ins allowed per window before further attempts are refused.
pub const MAX_FAILURES_PER_ACCOUNT: i32 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("The email or password is incorrect.")]
    BadCredentials,
    #[error("Too many failed sign-ins. Try again in {minutes} minutes.")]
    Throttled { minutes: i64 },
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("database error")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Token(#[from] tokens::TokenError),
    #[error(transparent)]
    Mail(#[from] mail::MailError),
    #[error("a message could not be written")]
    Letter(#[from] askama::Error),
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

/// Sign-ups allowed per address (its email, and the caller's address) in
/// each rationing window, valid or not: like sign-in, so that neither
/// guessing nor sending someone a flood of mail is cheap.
pub const MAX_SIGN_UPS_PER_EMAIL: i32 = MAX_FAILURES_PER_ACCOUNT;
pub const MAX_SIGN_UPS_PER_ADDRESS: i32 = MAX_FAILURES_PER_ADDRESS;

/// What sign-up needs to send its mail.
pub struct Mailing<'a> {
    pub sealing: &'a SealingKey,
    pub public_url: &'a PublicUrl,
}

/// Signs someone up. Answers the same whether or not the email already has
/// an account, and takes the same work either way (a password hash and a
/// queued message): a new address gets an account and a link to verify it;
/// an address that has one gets a message saying someone tried, and nothing
/// else changes. `client_address` is the caller's (rationing bucket).
pub async fn sign_up(
    db: &DatabaseConnection,
    mailing: &Mailing<'_>,
    email: &str,
    password: &str,
    client_address: &str,
) -> Result<EmailAddress, AccountError> {
    let now = Utc::now();
    let limits = [
        Limit::new(
            format!("sign-up:{}", email.trim().to_lowercase()),
            MAX_SIGN_UPS_PER_EMAIL,
        ),
        Limit::new(
            format!("sign-up-address:{client_address}"),
            MAX_SIGN_UPS_PER_ADDRESS,
        ),
    ];
    if let Verdict::Refused { minutes } = ration::take(db, &limits, now).await? {
        return Err(AccountError::Throttled { minutes });
    }
    let email = parse_email(email)?;
    check_password(password)?;
    let hash = secrets::hash_password(password)?;
    let txn = db::begin_write(db).await?;
    let letter = match users::store::create(&txn, &email, Some(hash)).await? {
        Some(user) => {
            let secret = tokens::issue(&txn, user.id, Purpose::VerifyEmail).await?;
            let link = format!(
                "{}?token={secret}",
                mailing.public_url.join(letters::VERIFY_EMAIL_PATH)
            );
            (letters::verify_email(&email, &link)?, "verify-email")
        }
        None => (letters::sign_up_attempt(&email)?, "sign-up-attempt"),
    };
    mail::outbox::queue(&txn, mailing.sealing, letter.1, &letter.0).await?;
    txn.commit().await?;
    mail::outbox::wake();
    Ok(email)
}

/// Uses an email verification link: `true` if it verified an address.
pub async fn verify_email(db: &DatabaseConnection, secret: &str) -> Result<bool, AccountError> {
    let txn = db::begin_write(db).await?;
    let Some(user_id) = tokens::redeem(&txn, secret, Purpose::VerifyEmail).await? else {
        return Ok(false);
    };
    users::store::mark_verified(&txn, user_id).await?;
    txn.commit().await?;
    Ok(true)
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
    let limits = [
        Limit::new(
            format!("account:{}", email.trim().to_lowercase()),
            MAX_FAILURES_PER_ACCOUNT,
        ),
        Limit::new(
            format!("address:{client_address}"),
            MAX_FAILURES_PER_ADDRESS,
        ),
    ];
    // Counted before the password is checked, so that a burst cannot pass
    // the limit before its failures are counted.
    let taken = match ration::take(db, &limits, now).await? {
        Verdict::Allowed(taken) => taken,
        Verdict::Refused { minutes } => return Err(AccountError::Throttled { minutes }),
    };
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
            // Only failures count: a success takes back its own attempt
            // (and nobody else's).
            ration::give_back(db, &taken).await?;
            Ok(user.id)
        }
        _ => Err(AccountError::BadCredentials),
    }
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

/// Ends the session of a cookie (signing out).
pub async fn end_session(db: &DatabaseConnection, cookie: &str) -> Result<(), DbErr> {
    session::Entity::delete_by_id(secrets::digest(cookie))
        .exec(db)
        .await?;
    Ok(())
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
