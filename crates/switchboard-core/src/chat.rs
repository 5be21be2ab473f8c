//! Web chat rules: message text and client ids, attachment types checked by content (SMA-2),
//! anonymous ticket names (UAC-2) and reserved data properties (RDP-1).

use crate::ids::{AttachmentId, ContactId, MessageId, UserId};
use crate::text::TextError;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The longest chat message, in characters.
pub const MAX_TEXT: usize = 4000;

/// An id the client gives each message so a resend is recognised (1 to 64 of
/// `A-Z a-z 0-9 - _ . :`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    pub fn parse(text: &str) -> Result<Self, TextError> {
        let ok = (1..=64).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !ok {
            return Err(TextError::Invalid {
                field: "client_id",
                detail: "use 1 to 64 of A-Z, a-z, 0-9, '-', '_', '.', ':'".into(),
            });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a message's text: at most `MAX_TEXT` characters, no control characters but line
/// breaks and tabs, and not blank unless a file is attached.
pub fn check_text(text: &str, has_attachment: bool) -> Result<(), TextError> {
    if text.trim().is_empty() && !has_attachment {
        return Err(TextError::Empty { field: "text" });
    }
    if text.chars().count() > MAX_TEXT {
        return Err(TextError::TooLong {
            field: "text",
            max: MAX_TEXT,
        });
    }
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(TextError::Invalid {
            field: "text",
            detail: format!("control character {bad:?}"),
        });
    }
    Ok(())
}

/// Who wrote a message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Sender {
    Consumer,
    Agent(UserId),
    /// Switchboard itself (transfers, the end of the chat).
    System,
}

impl Sender {
    /// The stored form: `consumer`, `agent:<id>`, `system`.
    pub fn key(&self) -> String {
        match self {
            Sender::Consumer => "consumer".into(),
            Sender::Agent(id) => format!("agent:{id}"),
            Sender::System => "system".into(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text {
            "consumer" => Ok(Sender::Consumer),
            "system" => Ok(Sender::System),
            other => other
                .strip_prefix("agent:")
                .and_then(|id| UserId::parse(id).ok())
                .map(Sender::Agent)
                .ok_or_else(|| TextError::Invalid {
                    field: "sender",
                    detail: other.chars().take(60).collect(),
                }),
        }
    }
}

/// A stored chat message. `seq` orders a chat's messages: 1, 2, 3… with no gaps.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChatMessage {
    pub id: MessageId,
    pub contact: ContactId,
    pub seq: i64,
    pub sender: Sender,
    pub client_id: Option<ClientMessageId>,
    pub text: String,
    pub attachment: Option<AttachmentId>,
    pub sent_at: DateTime<Utc>,
}

/// The file types web chat accepts (SMA-2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AttachmentKind {
    Png,
    Jpeg,
    Mp4,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("only .png, .jpg and .mp4 files are accepted, not `{0}`")]
    UnsupportedType(String),
    #[error("the file's content is not a {declared} file")]
    ContentMismatch { declared: &'static str },
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {max_bytes} bytes")]
    TooLarge { max_bytes: u64 },
}

impl AttachmentKind {
    pub const fn mime(self) -> &'static str {
        match self {
            AttachmentKind::Png => "image/png",
            AttachmentKind::Jpeg => "image/jpeg",
            AttachmentKind::Mp4 => "video/mp4",
        }
    }

    pub const fn extension(self) -> &'static str {
        match self {
            AttachmentKind::Png => "png",
            AttachmentKind::Jpeg => "jpg",
            AttachmentKind::Mp4 => "mp4",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "image/png" => Some(AttachmentKind::Png),
            "image/jpeg" | "image/jpg" => Some(AttachmentKind::Jpeg),
            "video/mp4" => Some(AttachmentKind::Mp4),
            _ => None,
        }
    }

    /// What the content's first bytes say the file is.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(AttachmentKind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(AttachmentKind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && is_mp4_brand(&bytes[8..12]) {
            Some(AttachmentKind::Mp4)
        } else {
            None
        }
    }

    /// Accepts a file only when its declared type is one we take and its content agrees.
    pub fn check(
        declared_mime: &str,
        bytes: &[u8],
        max_bytes: u64,
    ) -> Result<Self, AttachmentError> {
        let declared = Self::from_mime(declared_mime).ok_or_else(|| {
            AttachmentError::UnsupportedType(declared_mime.chars().take(60).collect())
        })?;
        if bytes.is_empty() {
            return Err(AttachmentError::Empty);
        }
        if bytes.len() as u64 > max_bytes {
            return Err(AttachmentError::TooLarge { max_bytes });
        }
        match Self::sniff(bytes) {
            Some(found) if found == declared => Ok(found),
            _ => Err(AttachmentError::ContentMismatch {
                declared: declared.extension(),
            }),
        }
    }
}

/// ISO base media brands that browsers play as MP4.
fn is_mp4_brand(brand: &[u8]) -> bool {
    matches!(
        brand,
        b"isom"
            | b"iso2"
            | b"iso4"
            | b"iso5"
            | b"iso6"
            | b"mp41"
            | b"mp42"
            | b"avc1"
            | b"dash"
            | b"M4V "
            | b"MSNV"
    )
}

/// The name of an anonymous consumer's ticket: "Web User - MM/DD HH:MM" in the center's time
/// zone (UAC-2); `source` is "Web" or "Mobile".
pub fn anonymous_ticket_name(source: &str, at: DateTime<Utc>, time_zone: Tz) -> String {
    format!(
        "{source} User - {}",
        at.with_timezone(&time_zone).format("%m/%d %H:%M")
    )
}

/// The name of an identified consumer's ticket: their name with their email (or the site's id
/// for them), or what there is of those.
pub fn identified_ticket_name(
    external_id: &str,
    email: Option<&str>,
    name: Option<&str>,
) -> String {
    match (name, email) {
        (Some(name), email) => format!("{name} ({})", email.unwrap_or(external_id)),
        (None, Some(email)) => format!("{email} ({external_id})"),
        (None, None) => external_id.to_owned(),
    }
}

/// The reserved data properties a session may carry (RDP-1); shown as profile flags.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct ReservedProperties {
    pub verified_customer: Option<bool>,
    pub bad_actor: Option<bool>,
    pub repeat_customer: Option<bool>,
}

/// A property value as sent: only booleans are valid for reserved keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PropertyValue {
    Bool(bool),
    /// A string, number, null, list or object.
    NotBool,
}

impl ReservedProperties {
    pub const KEYS: [&'static str; 3] = [
        "reserved_verified_customer",
        "reserved_bad_actor",
        "reserved_repeat_customer",
    ];

    /// Applies sent properties. Unknown `reserved_*` keys and non-boolean values are refused and
    /// nothing is applied; keys without the `reserved_` prefix are not this type's concern.
    pub fn apply<'a>(
        &mut self,
        sent: impl IntoIterator<Item = (&'a str, PropertyValue)>,
    ) -> Result<(), TextError> {
        let mut updated = *self;
        for (key, value) in sent {
            if !key.starts_with("reserved_") {
                continue;
            }
            let slot = match key {
                "reserved_verified_customer" => &mut updated.verified_customer,
                "reserved_bad_actor" => &mut updated.bad_actor,
                "reserved_repeat_customer" => &mut updated.repeat_customer,
                other => {
                    return Err(TextError::Invalid {
                        field: "properties",
                        detail: format!(
                            "`{}` is not a reserved property",
                            other.chars().take(60).collect::<String>()
                        ),
                    })
                }
            };
            match value {
                PropertyValue::Bool(flag) => *slot = Some(flag),
                PropertyValue::NotBool => {
                    return Err(TextError::Invalid {
                        field: "properties",
                        detail: format!("`{key}` takes true or false"),
                    })
                }
            }
        }
        *self = updated;
        Ok(())
    }

    /// The properties as (key, value) pairs, only those set.
    pub fn pairs(&self) -> Vec<(&'static str, bool)> {
        [self.verified_customer, self.bad_actor, self.repeat_customer]
            .into_iter()
            .zip(Self::KEYS)
            .filter_map(|(value, key)| value.map(|v| (key, v)))
            .collect()
    }
}
