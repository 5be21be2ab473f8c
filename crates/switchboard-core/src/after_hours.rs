//! After hours: whether a contact is routed or deflected (AHD-1, AHD-2, AHD-4, AHD-5), and
//! which queues an agent may transfer to (AHD-6).
//!
//! The deciding schedule is the most specific business-hours entry for the contact's queue,
//! channel and language (`HoursSet`'s rule: a queue outweighs a language, which outweighs a
//! channel). When it says closed, the deflection rule decides: the queue's own rule for its
//! channel if it has one (even a disabled one, which opts the queue out), else the channel's
//! center-wide rule (for calls, the IVR's). A closed queue without an enabled rule routes as
//! in hours: the contact waits for an agent.
//!
//! Cost: `HoursSet` indexes the schedules by queue, so a decision looks only at the queue's
//! own entries and the entries that name no queue, then evaluates one schedule
//! (`Schedule::is_open`: the closures, the holidays, then the day's periods). Nothing on the
//! decision's path allocates (see `benches/after_hours.rs`).

use crate::hours::{HoursScope, HoursSet, Schedule};
use crate::ids::QueueId;
use crate::queue::{Channel, QueueKind, QueueNode};
use crate::text::{Language, TextError};
use crate::voice::PhoneNumber;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// The longest after-hours message text (spoken, or shown in the widget).
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// What happens to a contact that arrives while its queue is closed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AfterHoursAction {
    /// Sent to another leaf queue of the same channel (a 24-hour one, say), where it is
    /// routed without a second look at the hours.
    Queue(QueueId),
    /// Forwarded to a phone number through the outbound trunk (calls only).
    Forward(PhoneNumber),
    /// The after-hours message, then the end (a call hears it and is hung up; a chat is
    /// shown it and not started).
    Message,
    /// Voicemail (AHD-7, calls only): the greeting (the rule's message), a tone, then the
    /// caller is recorded for at most `max_seconds` (`#` or hanging up ends it sooner).
    Voicemail { max_seconds: u32 },
}

/// A voicemail's longest recording when the rule does not say.
pub const DEFAULT_VOICEMAIL_SECONDS: u32 = 120;
/// The bounds of a voicemail rule's `max_seconds`.
pub const MIN_VOICEMAIL_SECONDS: u32 = 5;
pub const MAX_VOICEMAIL_SECONDS: u32 = 600;

/// What a voicemail caller hears before the tone when the rule has no message for them.
pub const DEFAULT_GREETING: &str =
    "We are closed at the moment. Please leave a message after the tone, and press the hash key when you are done.";

impl AfterHoursAction {
    /// The action's name on the wire and in storage.
    pub fn kind(&self) -> &'static str {
        match self {
            AfterHoursAction::Queue(_) => "queue",
            AfterHoursAction::Forward(_) => "forward",
            AfterHoursAction::Message => "message",
            AfterHoursAction::Voicemail { .. } => "voicemail",
        }
    }
}

/// Why a deflection rule was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum AfterHoursError {
    #[error("`{0}` is not an after-hours action: use queue, forward, voicemail or message")]
    UnknownAction(String),
    #[error(
        "a voicemail's max_seconds must be from {MIN_VOICEMAIL_SECONDS} to {MAX_VOICEMAIL_SECONDS}"
    )]
    VoicemailLength,
    #[error("a {channel} queue after hours can only show its message (use the message action)")]
    ActionNotForChannel { channel: &'static str },
    #[error("the queue action needs target_queue_id, a leaf queue of the same channel")]
    MissingTarget,
    #[error("the forward action needs a number")]
    MissingNumber,
    #[error("the target queue is not a leaf queue of the rule's channel")]
    BadTarget,
    #[error("a queue cannot send its after-hours contacts to itself")]
    TargetIsSelf,
    #[error("the rule's queue is not a queue of its channel")]
    QueueNotInChannel,
    #[error("only a web or mobile rule has offers, not a {channel} one")]
    OffersNotForChannel { channel: &'static str },
    #[error("an offer is given twice")]
    DuplicateOffer,
    #[error("a scheduled_call offer names a voice leaf queue (queue_id)")]
    BadCallbackQueue,
    #[error("two messages are for the same language")]
    DuplicateLanguage,
    #[error(transparent)]
    Text(#[from] TextError),
}

/// An after-hours message: text to speak or show, for one language or for any.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AfterHoursMessage {
    /// `None`: for callers in any language without their own message.
    pub language: Option<Language>,
    text: String,
}

impl AfterHoursMessage {
    pub fn new(language: Option<Language>, text: &str) -> Result<Self, AfterHoursError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TextError::Empty { field: "text" }.into());
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(TextError::TooLong {
                field: "text",
                max: MAX_MESSAGE_CHARS,
            }
            .into());
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(TextError::Invalid {
                field: "text",
                detail: "control characters".into(),
            }
            .into());
        }
        Ok(AfterHoursMessage {
            language,
            text: text.to_owned(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// What is said when no message is configured for a contact's language.
pub const DEFAULT_MESSAGE: &str =
    "We are closed at the moment. Please contact us again during our opening hours.";

/// Deflection for a channel center-wide (`queue: None`; for calls, the IVR's), or for one
/// queue. The checked shape: an action that fits the channel, messages one per language.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeflectionRule {
    pub queue: Option<QueueId>,
    pub channel: Channel,
    /// Off: contacts wait for an agent as in hours (and a queue's disabled rule opts it out
    /// of the channel's).
    pub enabled: bool,
    pub action: AfterHoursAction,
    messages: Vec<AfterHoursMessage>,
    /// What a web or mobile consumer is offered instead of a chat (empty for other channels).
    offers: Vec<ChatOffer>,
}

/// What a closed web or mobile queue offers instead of a chat.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ChatOffer {
    /// A call back at one of the next open slots of `queue`, a voice leaf queue the callback
    /// enters.
    ScheduledCall { queue: QueueId },
    /// An email form (its endpoint is not built yet: the offer is only stored and sent).
    Email,
}

impl ChatOffer {
    pub fn kind(&self) -> &'static str {
        match self {
            ChatOffer::ScheduledCall { .. } => "scheduled_call",
            ChatOffer::Email => "email",
        }
    }
}

impl DeflectionRule {
    /// Checks the rule against the queue tree it will live in.
    pub fn new(
        queue: Option<QueueId>,
        channel: Channel,
        enabled: bool,
        action: AfterHoursAction,
        messages: Vec<AfterHoursMessage>,
        nodes: &[QueueNode],
    ) -> Result<Self, AfterHoursError> {
        if let Some(queue) = queue {
            if !nodes.iter().any(|n| n.id == queue && n.channel == channel) {
                return Err(AfterHoursError::QueueNotInChannel);
            }
        }
        match &action {
            AfterHoursAction::Message => {}
            _ if channel != Channel::Voice => {
                return Err(AfterHoursError::ActionNotForChannel {
                    channel: channel.as_str(),
                })
            }
            AfterHoursAction::Queue(target) => {
                if Some(*target) == queue {
                    return Err(AfterHoursError::TargetIsSelf);
                }
                if !nodes
                    .iter()
                    .any(|n| n.id == *target && n.channel == channel && n.kind == QueueKind::Leaf)
                {
                    return Err(AfterHoursError::BadTarget);
                }
            }
            AfterHoursAction::Forward(_) => {}
            AfterHoursAction::Voicemail { max_seconds } => {
                if !(MIN_VOICEMAIL_SECONDS..=MAX_VOICEMAIL_SECONDS).contains(max_seconds) {
                    return Err(AfterHoursError::VoicemailLength);
                }
            }
        }
        let mut seen = HashSet::new();
        if !messages.iter().all(|m| seen.insert(m.language.clone())) {
            return Err(AfterHoursError::DuplicateLanguage);
        }
        Ok(DeflectionRule {
            queue,
            channel,
            enabled,
            action,
            messages,
            offers: Vec::new(),
        })
    }

    pub fn messages(&self) -> &[AfterHoursMessage] {
        &self.messages
    }

    /// The rule with these offers, checked: only a web or mobile rule offers anything, a
    /// scheduled call names a voice leaf queue, and no offer is given twice.
    pub fn with_offers(
        mut self,
        offers: Vec<ChatOffer>,
        nodes: &[QueueNode],
    ) -> Result<Self, AfterHoursError> {
        if !offers.is_empty() && !matches!(self.channel, Channel::Web | Channel::Mobile) {
            return Err(AfterHoursError::OffersNotForChannel {
                channel: self.channel.as_str(),
            });
        }
        for (i, offer) in offers.iter().enumerate() {
            if offers[..i].iter().any(|o| o.kind() == offer.kind()) {
                return Err(AfterHoursError::DuplicateOffer);
            }
            if let ChatOffer::ScheduledCall { queue } = offer {
                if !nodes.iter().any(|n| {
                    n.id == *queue && n.channel == Channel::Voice && n.kind == QueueKind::Leaf
                }) {
                    return Err(AfterHoursError::BadCallbackQueue);
                }
            }
        }
        self.offers = offers;
        Ok(self)
    }

    pub fn offers(&self) -> &[ChatOffer] {
        &self.offers
    }

    /// The message for a contact in `language`: that language's, else the one for any
    /// language, else the built-in text.
    pub fn message_for(&self, language: Option<&Language>) -> &str {
        let own = language.and_then(|l| {
            self.messages
                .iter()
                .find(|m| m.language.as_ref() == Some(l))
        });
        own.or_else(|| self.messages.iter().find(|m| m.language.is_none()))
            .map_or_else(
                || match self.action {
                    AfterHoursAction::Voicemail { .. } => DEFAULT_GREETING,
                    _ => DEFAULT_MESSAGE,
                },
                |m| m.text.as_str(),
            )
    }

    /// Whether a caller of a closed queue under this rule may leave a voicemail.
    pub fn takes_voicemail(&self) -> bool {
        self.enabled && matches!(self.action, AfterHoursAction::Voicemail { .. })
    }
}

/// What to do with a contact now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decision<'a> {
    /// In hours (or no schedule applies): route as usual.
    Open,
    /// Closed, but no deflection is enabled for the queue: route as usual; it waits.
    ClosedRouted,
    /// Closed and deflected as the rule says.
    Deflect(&'a DeflectionRule),
}

impl Decision<'_> {
    pub fn is_open(&self) -> bool {
        matches!(self, Decision::Open)
    }
}

/// The schedules and deflection rules, for deciding (built whenever either changes).
#[derive(Clone, Debug, Default)]
pub struct AfterHours {
    hours: HoursSet,
    rules: HashMap<(Option<QueueId>, Channel), DeflectionRule>,
}

impl AfterHours {
    /// `schedules` as `HoursSet` takes them; at most one rule per queue (or center) and
    /// channel is kept, the last given.
    pub fn new(schedules: Vec<(HoursScope, Schedule)>, rules: Vec<DeflectionRule>) -> Self {
        let rules = rules
            .into_iter()
            .map(|r| ((r.queue, r.channel), r))
            .collect();
        AfterHours {
            hours: HoursSet::new(schedules),
            rules,
        }
    }

    /// Whether the queue is open for this contact at `now` (no schedule: always open).
    pub fn is_open(
        &self,
        queue: QueueId,
        channel: Channel,
        language: Option<&Language>,
        now: DateTime<Utc>,
    ) -> bool {
        self.hours.is_open(queue, channel, language, now)
    }

    /// The deflection rule that applies to the queue: its own, else its channel's.
    pub fn rule_for(&self, queue: QueueId, channel: Channel) -> Option<&DeflectionRule> {
        self.rules
            .get(&(Some(queue), channel))
            .or_else(|| self.rules.get(&(None, channel)))
    }

    /// Whether contacts of this queue are deflected when it is closed.
    pub fn deflects(&self, queue: QueueId, channel: Channel) -> bool {
        self.rule_for(queue, channel).is_some_and(|r| r.enabled)
    }

    /// What to do with a contact arriving in (or transferred to) `queue` at `now`.
    pub fn decide(
        &self,
        queue: QueueId,
        channel: Channel,
        language: Option<&Language>,
        now: DateTime<Utc>,
    ) -> Decision<'_> {
        if self.is_open(queue, channel, language, now) {
            return Decision::Open;
        }
        match self.rule_for(queue, channel) {
            Some(rule) if rule.enabled => Decision::Deflect(rule),
            _ => Decision::ClosedRouted,
        }
    }
}

/// Which leaf queues an agent may transfer a contact of `channel` to at `now` (AHD-6), in
/// the order of `nodes`:
/// - a queue in its hours, always;
/// - a queue outside its hours only when the center allows transfers to after-hours queues
///   (`allow_after_hours`), and then only if it deflects (the contact gets its after-hours
///   treatment) or has agents online (someone can still answer).
///
/// Virtual agents do not exist in the model yet, so the rules about queues served by one are
/// not applied here.
pub fn transfer_targets<'a>(
    hours: &AfterHours,
    nodes: &'a [QueueNode],
    channel: Channel,
    staffed: &HashSet<QueueId>,
    allow_after_hours: bool,
    now: DateTime<Utc>,
) -> Vec<&'a QueueNode> {
    nodes
        .iter()
        .filter(|n| n.channel == channel && n.kind == QueueKind::Leaf)
        .filter(|n| {
            hours.is_open(n.id, channel, None, now)
                || (allow_after_hours && (hours.deflects(n.id, channel) || staffed.contains(&n.id)))
        })
        .collect()
}
