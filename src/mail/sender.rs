//! The job that sends queued mail: through SMTP when `ERRAND_SMTP_URL` is
//! set, else into a folder of `.eml` files (the embedded default, so that
//! `cargo run` needs no mail server), logging each message's links.
//! Failed attempts are retried on a schedule, then given up.

use std::{path::PathBuf, time::Duration};

use chrono::{TimeDelta, Utc};
use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header::HeaderName, header::HeaderValue},
};
use sea_orm::DatabaseConnection;

use super::{
    Letter, MailError,
    outbox::{self, Claimed},
};
use crate::{
    config::MailSettings,
    jobs::{self, Stop, jitter},
    metrics::Metrics,
    sealing::SealingKey,
};

/// Messages sent at once.
const BATCH: u64 = 16;
/// The longest the sender sleeps between looks for due mail.
const POLL: Duration = Duration::from_secs(30);
/// How long one attempt may hold a message before another may take it.
const LEASE: TimeDelta = TimeDelta::minutes(2);

/// Where mail goes.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

pub struct Mailer {
    db: DatabaseConnection,
    key: SealingKey,
    from: Mailbox,
    transport: Transport,
    retry_schedule: Vec<Duration>,
    metrics: std::sync::Arc<Metrics>,
}

impl Mailer {
    pub fn new(
        db: DatabaseConnection,
        key: SealingKey,
        settings: &MailSettings,
        metrics: std::sync::Arc<Metrics>,
    ) -> Result<Self, MailError> {
        let from: Mailbox = settings.from.parse().map_err(MailError::BadSender)?;
        let transport = match settings.smtp_url.as_deref() {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(MailError::BadSmtpUrl)?
                    .timeout(Some(Duration::from_secs(30)))
                    .build(),
            ),
            None => Transport::Folder(
                AsyncFileTransport::<Tokio1Executor>::new(&settings.folder),
                settings.folder.clone(),
            ),
        };
        Ok(Self {
            db,
            key,
            from,
            transport,
            retry_schedule: settings.retry_schedule.clone(),
            metrics,
        })
    }

    /// Where mail goes, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP (ERRAND_SMTP_URL)".to_owned(),
            Transport::Folder(_, folder) => format!("the folder {}", folder.display()),
        }
    }

    /// The message as it leaves: this deployment's sender, a fresh
    /// Message-ID and Date, a plain-text and an HTML part.
    fn build(&self, letter: &Letter) -> Result<Message, MailError> {
        let to: Mailbox = letter
            .to
            .parse()
            .map_err(|_| MailError::BadRecipient(letter.to.clone()))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject.clone())
            .message_id(None);
        for (name, value) in &letter.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| MailError::Send(format!("the header name `{name}` is not valid")))?;
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
        Ok(builder.multipart(MultiPart::alternative_plain_html(
            letter.text.clone(),
            letter.html.clone(),
        ))?)
    }

    async fn send(&self, letter: &Letter) -> Result<(), MailError> {
        let message = self.build(letter)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .map_err(|err| MailError::Send(err.to_string()))?;
            }
            Transport::Folder(folder, path) => {
                // The folder may be gone (a developer cleaned up); make it
                // again rather than fail every message.
                tokio::fs::create_dir_all(path)
                    .await
                    .map_err(|err| MailError::Send(format!("{}: {err}", path.display())))?;
                let id = folder
                    .send(message)
                    .await
                    .map_err(|err| MailError::Send(err.to_string()))?;
                tracing::info!(
                    to = %letter.to,
                    subject = %letter.subject,
                    file = %path.join(format!("{id}.eml")).display(),
                    links = ?letter.links,
                    "mail written to the folder (no ERRAND_SMTP_URL)"
                );
            }
        }
        Ok(())
    }

    /// Sends every due message once; returns how many were attempted.
    pub async fn round(&self) -> Result<usize, MailError> {
        let claimed = outbox::claim_due(&self.db, &self.key, Utc::now(), LEASE, BATCH).await?;
        for message in &claimed {
            let outcome = self.send(&message.letter).await;
            self.record(message, outcome).await?;
        }
        Ok(claimed.len())
    }

    async fn record(
        &self,
        message: &Claimed,
        outcome: Result<(), MailError>,
    ) -> Result<(), MailError> {
        let error = match outcome {
            Ok(()) => {
                self.metrics.mail_sent(&message.purpose, "sent");
                outbox::sent(&self.db, message.id).await?;
                return Ok(());
            }
            Err(err) => err.to_string(),
        };
        let done = usize::try_from(message.attempt).unwrap_or(usize::MAX);
        let retry_at = self
            .retry_schedule
            .get(done.saturating_sub(1))
            .map(|wait| Utc::now() + TimeDelta::from_std(jitter(*wait)).unwrap_or(TimeDelta::MAX));
        self.metrics.mail_sent(
            &message.purpose,
            if retry_at.is_some() {
                "retrying"
            } else {
                "failed"
            },
        );
        tracing::warn!(
            mail = %message.id,
            purpose = %message.purpose,
            attempt = message.attempt,
            error,
            retry_at = ?retry_at,
            "sending mail failed"
        );
        outbox::failed(&self.db, message.id, &error, retry_at).await?;
        Ok(())
    }
}

impl jobs::Rounds for Mailer {
    type Error = MailError;

    fn round(&self) -> impl Future<Output = Result<usize, MailError>> + Send {
        Mailer::round(self)
    }

    async fn next_due(&self) -> Option<chrono::DateTime<Utc>> {
        outbox::next_due_at(&self.db).await.ok().flatten()
    }
}

pub async fn run(mailer: Mailer, stop: Stop) {
    tracing::info!(to = %mailer.describe(), "mail goes to");
    jobs::in_rounds("mail sender", &mailer, stop, outbox::queued(), POLL).await;
}
