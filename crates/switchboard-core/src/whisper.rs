//! What an agent hears before a caller is connected (NTF-1, NTF-2, NTF-5): the whisper ("Inbound
//! call from Sales", the queue's name, a text of the queue's, or a recording uploaded for the
//! queue) at a chosen speed, then optionally the countdown. The center sets it once; a queue
//! overrides any part of it. The caller hears hold music meanwhile, and the time counts as
//! waiting.

use crate::text::TextError;

fn invalid(field: &'static str, detail: impl Into<String>) -> TextError {
    TextError::Invalid {
        field,
        detail: detail.into(),
    }
}

/// Speed of spoken whispers, in percent of normal.
pub const MIN_SPEED: u16 = 50;
pub const MAX_SPEED: u16 = 200;
/// The longest whisper text.
pub const MAX_TEXT: usize = 300;
/// NTF-2.
pub const COUNTDOWN: &str = "Your turn! The call begins in 3, 2, 1.";

/// What the whisper says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhisperMessage {
    /// No whisper.
    Off,
    /// "{call type} from {queue name}".
    CallType,
    /// The queue's name alone.
    QueueName,
    /// A text of its own, spoken.
    Text(String),
    /// The recording uploaded for the queue (`whisper:<queue id>`); the queue's name when none
    /// is uploaded.
    Recording,
}

impl WhisperMessage {
    pub fn as_str(&self) -> &'static str {
        match self {
            WhisperMessage::Off => "off",
            WhisperMessage::CallType => "call_type",
            WhisperMessage::QueueName => "queue_name",
            WhisperMessage::Text(_) => "text",
            WhisperMessage::Recording => "recording",
        }
    }

    /// From its name and, for `text`, the text.
    pub fn parse(kind: &str, text: Option<&str>) -> Result<Self, TextError> {
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        match (kind, text) {
            ("off", _) => Ok(WhisperMessage::Off),
            ("call_type", _) => Ok(WhisperMessage::CallType),
            ("queue_name", _) => Ok(WhisperMessage::QueueName),
            ("recording", _) => Ok(WhisperMessage::Recording),
            ("text", Some(text)) if text.chars().count() <= MAX_TEXT => {
                Ok(WhisperMessage::Text(text.to_owned()))
            }
            ("text", Some(_)) => Err(invalid(
                "text",
                format!("a whisper text is at most {MAX_TEXT} characters"),
            )),
            ("text", None) => Err(invalid("text", "a text whisper needs its text")),
            (other, _) => Err(invalid(
                "message",
                format!("unknown whisper `{other}`: off, call_type, queue_name, text or recording"),
            )),
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            WhisperMessage::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// The center's whisper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Whisper {
    pub message: WhisperMessage,
    /// Percent of normal speech speed, `MIN_SPEED..=MAX_SPEED`.
    pub speed: u16,
    pub countdown: bool,
}

impl Default for Whisper {
    /// What a center starts with: no whisper (an upgrade changes nothing agents hear) until an
    /// admin chooses one; normal speed, no countdown.
    fn default() -> Self {
        Whisper {
            message: WhisperMessage::Off,
            speed: 100,
            countdown: false,
        }
    }
}

/// A queue's changes to the center's whisper; `None` keeps the center's.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WhisperOverride {
    pub message: Option<WhisperMessage>,
    pub speed: Option<u16>,
    pub countdown: Option<bool>,
}

pub fn check_speed(speed: u16) -> Result<u16, TextError> {
    if (MIN_SPEED..=MAX_SPEED).contains(&speed) {
        Ok(speed)
    } else {
        Err(invalid(
            "speed",
            format!("speed is a percentage from {MIN_SPEED} to {MAX_SPEED}"),
        ))
    }
}

impl Whisper {
    /// The center's whisper with a queue's changes.
    pub fn for_queue(&self, queue: Option<&WhisperOverride>) -> Whisper {
        let Some(queue) = queue else {
            return self.clone();
        };
        Whisper {
            message: queue
                .message
                .clone()
                .unwrap_or_else(|| self.message.clone()),
            speed: queue.speed.unwrap_or(self.speed),
            countdown: queue.countdown.unwrap_or(self.countdown),
        }
    }
}

/// Why the agent gets the call (the whisper's first words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallType {
    Inbound,
    Callback,
    Transfer,
    Outbound,
}

impl CallType {
    pub fn words(self) -> &'static str {
        match self {
            CallType::Inbound => "Inbound call",
            CallType::Callback => "Callback",
            CallType::Transfer => "Transferred call",
            CallType::Outbound => "Outbound call",
        }
    }
}

/// One part of what the agent hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhisperPart {
    /// Spoken by text-to-speech at `speed` percent.
    Speak { text: String, speed: u16 },
    /// The queue's uploaded whisper recording; `fallback` is spoken when there is none.
    Recording { fallback: String, speed: u16 },
}

/// What the agent hears, in order; empty when nothing (then the caller is connected at once).
pub fn whisper_parts(whisper: &Whisper, call_type: CallType, queue: &str) -> Vec<WhisperPart> {
    let speed = whisper.speed;
    let speak = |text: String| WhisperPart::Speak { text, speed };
    let mut parts = match &whisper.message {
        WhisperMessage::Off => Vec::new(),
        WhisperMessage::CallType if queue.is_empty() => vec![speak(call_type.words().into())],
        WhisperMessage::CallType => vec![speak(format!("{} from {queue}", call_type.words()))],
        WhisperMessage::QueueName if queue.is_empty() => Vec::new(),
        WhisperMessage::QueueName => vec![speak(queue.to_owned())],
        WhisperMessage::Text(text) => vec![speak(text.clone())],
        WhisperMessage::Recording => vec![WhisperPart::Recording {
            fallback: queue.to_owned(),
            speed,
        }],
    };
    if whisper.countdown {
        parts.push(speak(COUNTDOWN.into()));
    }
    parts
}
