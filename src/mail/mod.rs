//! Email: the outbox messages wait in ([`outbox`]) and the job that sends
//! them ([`sender`]), through SMTP (`ERRAND_SMTP_URL`) or, on the embedded
//! defaults, into a folder of `.eml` files with their links logged.
//!
//! Mail is never sent inside a request: the change that causes a message
//! queues it in its own transaction, and the job sends it after the commit,
//! with retries. A slice writes its own [`Letter`]s (their text and HTML);
//! this module knows nothing of what they say.

pub mod outbox;
pub mod sender;

use serde::{Deserialize, Serialize};

/// One message as its author wrote it: the sender, date and message id are
/// added when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    /// The plain-text part (every message has one).
    pub text: String,
    /// The HTML part, saying the same.
    pub html: String,
    /// The links in the message, logged when mail goes to the folder so a
    /// developer can follow them without opening the file.
    #[serde(default)]
    pub links: Vec<String>,
    /// Further headers (`List-Unsubscribe`, …).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("ERRAND_MAIL_FROM must be an address such as `Errand <errand@example.com>`")]
    BadSender(#[source] lettre::address::AddressError),
    #[error(
        "ERRAND_SMTP_URL is not a usable SMTP URL (smtp://user:password@host:587, smtps://host)"
    )]
    BadSmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("the recipient `{0}` is not an address mail can be sent to")]
    BadRecipient(String),
    #[error("the message could not be built")]
    Build(#[from] lettre::error::Error),
    #[error("the message could not be sent: {0}")]
    Send(String),
    #[error(transparent)]
    Seal(#[from] crate::sealing::SealError),
    #[error("the queued message cannot be read")]
    Corrupt(#[from] serde_json::Error),
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
}
