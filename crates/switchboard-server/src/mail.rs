//! Outgoing mail, and the emergency notification (EMG-7) as a job handler. With
//! `SWITCHBOARD_SMTP_URL` set the message goes over SMTP (lettre); without it, it is written as
//! an `.eml` file to `outbox/` under the data directory, where an operator (or a mail pickup)
//! finds it.
//!
//! The notification is one message to all of the agent's emergency contacts, rendered when it
//! is sent from the emergency log's row (which holds every value the template names), the
//! center's template and its time zone. Its Message-ID is the call's, so a receiver can tell a
//! resend after a lost answer from a new call. Failure policy: a mail server that cannot be
//! reached or answers a temporary error fails the attempt, and the job worker tries again by
//! the core's retry policy; a permanent refusal (5xx) gives up. Each outcome is written to the
//! log row (`sent`, or `failed` with the error).

use crate::config::MailConfig;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchboard_core::emergency::notice::{format_time, MailStatus, Values};
use switchboard_core::hours::parse_time_zone;
use switchboard_core::CallId;
use switchboard_services::jobs::{JobHandler, JobOutcome};
use switchboard_store::{Job, Store, StoreError};

/// How long one SMTP conversation may take before the attempt counts as failed.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The mail configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("SWITCHBOARD_SMTP_URL is not a usable SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("SWITCHBOARD_MAIL_FROM `{0}` is not a mail address")]
    From(String),
}

/// Why a message was not sent.
#[derive(Debug)]
pub struct SendError {
    /// Trying again would fail the same way (the server refused for good).
    pub permanent: bool,
    pub message: String,
}

/// Where messages go.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A folder of `.eml` files.
    Outbox(PathBuf),
}

/// Sends messages from the configured sender, over SMTP or to the outbox.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn new(config: &MailConfig, data_dir: &Path) -> Result<Self, MailConfigError> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|_| MailConfigError::From(config.from.clone()))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailConfigError::SmtpUrl(e.to_string()))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => Transport::Outbox(data_dir.join("outbox")),
        };
        Ok(Mailer { transport, from })
    }

    /// The sender every message carries.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Sends `message`; in the outbox it is the file `<name>.eml` (written whole, then renamed
    /// into place, so a reader never sees half a message and a resend replaces it).
    pub async fn send(&self, name: &str, message: Message) -> Result<(), SendError> {
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: format!("the mail server: {e}"),
            }),
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let name = name.to_owned();
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    let partial = dir.join(format!(".{name}.eml.partial"));
                    std::fs::write(&partial, bytes)?;
                    std::fs::rename(&partial, dir.join(format!("{name}.eml")))
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|written| written.map_err(|e| e.to_string()))
                .map_err(|e| SendError {
                    permanent: false,
                    message: format!("the outbox: {e}"),
                })
            }
        }
    }
}

/// Runs `emergency_mail` jobs: the payload is the call's id in the emergency log.
pub struct EmergencyMailer {
    store: Arc<dyn Store>,
    mailer: Arc<Mailer>,
}

/// How an attempt ended, before it is written to the log.
enum Attempt {
    Sent,
    /// Nothing to send any more (the agent's contacts were removed meanwhile).
    NobodyToTell,
    Failed {
        error: String,
        permanent: bool,
    },
}

impl EmergencyMailer {
    pub fn new(store: Arc<dyn Store>, mailer: Arc<Mailer>) -> Self {
        Self { store, mailer }
    }

    async fn attempt(&self, call: CallId, now: DateTime<Utc>) -> Attempt {
        let failed = |error: StoreError| Attempt::Failed {
            error: format!("the database: {error}"),
            permanent: false,
        };
        let store = &self.store;
        let entry = match store.get_emergency_call(call).await {
            Ok(entry) => entry,
            Err(error) => return failed(error),
        };
        let agent = match store.get_user(entry.agent).await {
            Ok(agent) => agent,
            Err(StoreError::NotFound(_)) => {
                return Attempt::Failed {
                    error: "the agent no longer exists, so their contacts are unknown".into(),
                    permanent: true,
                }
            }
            Err(error) => return failed(error),
        };
        let recipients: Vec<Mailbox> = agent
            .emergency_contacts
            .emails()
            .iter()
            .filter_map(|email| email.as_str().parse::<Mailbox>().ok())
            .collect();
        if recipients.is_empty() {
            return Attempt::NobodyToTell;
        }
        let template = match store.emergency_template().await {
            Ok(template) => template,
            Err(error) => return failed(error),
        };
        let zone = match store.center_settings().await {
            Ok(settings) => parse_time_zone(&settings.time_zone).unwrap_or(chrono_tz::UTC),
            Err(error) => return failed(error),
        };
        let (subject, body) = template.render(&Values {
            agent_name: &entry.agent_name,
            time: format_time(entry.started_at, zone),
            number: &entry.number,
            callback_number: entry.callback_number.as_deref(),
            location: entry.location.as_deref(),
        });
        let domain = self.mailer.from().email.domain().to_owned();
        let mut builder = Message::builder()
            .from(self.mailer.from().clone())
            .subject(subject)
            .date(now.into())
            .message_id(Some(format!("<emergency-{call}@{domain}>")))
            .header(ContentType::TEXT_PLAIN);
        for recipient in recipients {
            builder = builder.to(recipient);
        }
        let message = match builder.body(body) {
            Ok(message) => message,
            Err(error) => {
                return Attempt::Failed {
                    error: format!("the message could not be built: {error}"),
                    permanent: true,
                }
            }
        };
        match self.mailer.send(&call.to_string(), message).await {
            Ok(()) => Attempt::Sent,
            Err(error) => Attempt::Failed {
                error: error.message,
                permanent: error.permanent,
            },
        }
    }
}

#[async_trait]
impl JobHandler for EmergencyMailer {
    async fn run(&self, job: &Job, now: DateTime<Utc>) -> JobOutcome {
        let Ok(call) = CallId::parse(job.payload.trim()) else {
            return JobOutcome::GiveUp {
                error: format!(
                    "unreadable job: `{}` is not a call id",
                    job.payload.chars().take(60).collect::<String>()
                ),
            };
        };
        let attempt = self.attempt(call, now).await;
        let (status, error) = match &attempt {
            Attempt::Sent => (MailStatus::Sent, None),
            Attempt::NobodyToTell => (MailStatus::NoContacts, None),
            Attempt::Failed { error, .. } => (MailStatus::Failed, Some(error.as_str())),
        };
        if let Err(failure) = self
            .store
            .set_emergency_mail(call, status, error, now)
            .await
        {
            tracing::error!(error = %failure, %call, status = status.as_str(), "the emergency log's mail status not written");
        }
        match attempt {
            Attempt::Sent | Attempt::NobodyToTell => JobOutcome::Done,
            Attempt::Failed {
                error,
                permanent: true,
            } => JobOutcome::GiveUp { error },
            Attempt::Failed { error, .. } => JobOutcome::Retry { error },
        }
    }
}
