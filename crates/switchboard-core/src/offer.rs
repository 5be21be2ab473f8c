//! What a consumer may do instead of chatting (AHD-4) or instead of waiting longer: leave a
//! message for the help center by email. The request's checks, where it goes (the help-center
//! address over SMTP, or a CRM ticket when no address is set), the mail's text, and when a
//! waiting chat is offered the way out. Pure: `now` is an argument.

use crate::text::{Email, TextError};
use chrono::{DateTime, Duration, Utc};

/// The longest message a consumer may leave.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The longest name a consumer may give.
pub const MAX_NAME_CHARS: usize = 120;
/// The shortest and longest wait before a waiting chat is offered email (or a callback).
pub const MIN_WAIT_OFFER_SECONDS: u32 = 10;
pub const MAX_WAIT_OFFER_SECONDS: u32 = 24 * 3600;

/// A message a consumer leaves for the help center, checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EmailRequest {
    /// Where the answer goes.
    pub from: Email,
    /// The name the consumer gave, if any.
    pub name: Option<String>,
    text: String,
}

fn check_text(field: &'static str, text: &str, max: usize, lines: bool) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty { field });
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(lines && (c == '\n' || c == '\t')))
    {
        return Err(TextError::Invalid {
            field,
            detail: "control characters".into(),
        });
    }
    Ok(())
}

impl EmailRequest {
    pub fn new(from: &str, name: Option<&str>, text: &str) -> Result<Self, TextError> {
        let from = Email::parse(from)?;
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => {
                check_text("name", name, MAX_NAME_CHARS, false)?;
                Some(name.to_owned())
            }
            None => None,
        };
        let text = text.replace("\r\n", "\n");
        let text = text.trim();
        check_text("text", text, MAX_MESSAGE_CHARS, true)?;
        Ok(EmailRequest {
            from,
            name,
            text: text.to_owned(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Who the consumer is, as the help center reads it: `Name <address>` or the address.
    pub fn sender(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} <{}>", self.from.as_str()),
            None => self.from.as_str().to_owned(),
        }
    }

    /// The mail's subject and body (also a CRM ticket's name and text): the queue the consumer
    /// wrote to, why (closed, or tired of waiting), who they are and what they wrote.
    pub fn render(&self, queue_path: &str, reason: Reason, at: &str) -> (String, String) {
        let who = self.name.as_deref().unwrap_or(self.from.as_str());
        let subject = format!("Message from {who} ({queue_path})");
        let why = match reason {
            Reason::Closed => "while the queue was closed",
            Reason::Waited => "instead of waiting for an agent",
        };
        let body = format!(
            "{sender} left this message in {queue_path} {why}, at {at}.\n\
             Reply to this mail to answer them.\n\n{text}\n",
            sender = self.sender(),
            text = self.text,
        );
        (subject, body)
    }
}

/// Why the consumer left a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    /// The queue was outside its hours and offers email.
    Closed,
    /// The consumer's chat had waited past the center's wait offer.
    Waited,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Closed => "closed",
            Reason::Waited => "waited",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "closed" => Some(Reason::Closed),
            "waited" => Some(Reason::Waited),
            _ => None,
        }
    }
}

/// Where messages consumers leave go.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Delivery {
    /// Mailed to the help-center address over SMTP (a stored job).
    Mail(Email),
    /// A ticket in the CRM (the built-in one, and the connector's).
    Ticket,
}

impl Delivery {
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Mail(_) => "mail",
            Delivery::Ticket => "ticket",
        }
    }
}

/// The center's settings for what consumers are offered.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct OfferSettings {
    /// The help center's address; without one, messages become CRM tickets.
    pub help_email: Option<Email>,
    /// After how long a waiting chat is offered to leave a message (or a callback) instead;
    /// `None`: never.
    pub wait_offer_after: Option<u32>,
}

/// Why offer settings were refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum OfferError {
    #[error(
        "wait_offer_seconds must be between {MIN_WAIT_OFFER_SECONDS} and {MAX_WAIT_OFFER_SECONDS}"
    )]
    WaitOutOfRange,
    #[error(transparent)]
    Text(#[from] TextError),
}

impl OfferSettings {
    pub fn new(
        help_email: Option<&str>,
        wait_offer_after: Option<u32>,
    ) -> Result<Self, OfferError> {
        let help_email = help_email
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Email::parse)
            .transpose()?;
        if let Some(seconds) = wait_offer_after {
            if !(MIN_WAIT_OFFER_SECONDS..=MAX_WAIT_OFFER_SECONDS).contains(&seconds) {
                return Err(OfferError::WaitOutOfRange);
            }
        }
        Ok(OfferSettings {
            help_email,
            wait_offer_after,
        })
    }

    /// Where a message left now goes.
    pub fn delivery(&self) -> Delivery {
        match &self.help_email {
            Some(address) => Delivery::Mail(address.clone()),
            None => Delivery::Ticket,
        }
    }

    /// Whether a chat that has waited since `since` is offered a way out at `now`.
    pub fn wait_offer_due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.wait_offer_after
            .is_some_and(|after| now - since >= Duration::seconds(i64::from(after)))
    }
}
