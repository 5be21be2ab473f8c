//! The SMS channel's rules: the reply-digit menu a new sender is shown when the SMS queue tree
//! has more than one leaf, what a message's delivery status may move to, what a provider's
//! answer to a send means (accepted, try again, give up), and the text agents are sent for an
//! incoming call (NTF-4).
//!
//! Pure: the shell reads the tree and the answers and carries out what these say.

use crate::queue::{Channel, QueueKind, QueueTree};
use crate::text::TextError;
use crate::QueueId;

/// The longest body sent or kept: Twilio's limit for one message (it splits it into segments).
pub const MAX_BODY_CHARS: usize = 1600;

/// Why an outbound message is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmsPurpose {
    /// An agent's message in a conversation.
    Reply,
    /// The queue menu for a new sender.
    Menu,
    /// A closed queue's after-hours text (AHD-5).
    AfterHours,
    /// An incoming call is ringing the agent (NTF-4).
    AgentNotice,
}

impl SmsPurpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            SmsPurpose::Reply => "reply",
            SmsPurpose::Menu => "menu",
            SmsPurpose::AfterHours => "after_hours",
            SmsPurpose::AgentNotice => "agent_notice",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        [
            SmsPurpose::Reply,
            SmsPurpose::Menu,
            SmsPurpose::AfterHours,
            SmsPurpose::AgentNotice,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
        .ok_or_else(|| TextError::Invalid {
            field: "purpose",
            detail: "reply, menu, after_hours or agent_notice".into(),
        })
    }
}

/// Where an outbound message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Stored; not yet accepted by the provider.
    Queued,
    /// The provider accepted it (Twilio: `queued`, `sending`, `sent`).
    Sent,
    Delivered,
    /// The carrier could not deliver it.
    Undelivered,
    /// Refused for good (by the provider, or after the retries).
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Undelivered => "undelivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Our stored words.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => DeliveryStatus::Queued,
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "undelivered" => DeliveryStatus::Undelivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    /// Twilio's `MessageStatus` words (status callbacks and the Messages API's `status`):
    /// once Twilio has a message it is at least sent, as far as we are concerned.
    pub fn from_twilio(text: &str) -> Option<Self> {
        Some(match text {
            "accepted" | "scheduled" | "queued" | "sending" | "sent" => DeliveryStatus::Sent,
            "delivered" | "read" => DeliveryStatus::Delivered,
            "undelivered" => DeliveryStatus::Undelivered,
            "failed" | "canceled" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Queued => 0,
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered | DeliveryStatus::Undelivered | DeliveryStatus::Failed => 2,
        }
    }

    /// Whether `next` moves a message on from this status: callbacks come in any order, and a
    /// late `sent` must not undo `delivered`; a final status is never replaced.
    pub fn advanced_by(self, next: DeliveryStatus) -> bool {
        next.rank() > self.rank()
    }
}

/// What a provider's answer to a send means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendVerdict {
    Accepted,
    /// Try again later (429, 408, a 5xx): the provider is busy or failing.
    RetryLater,
    /// The request itself is wrong (another 4xx): sending it again fails the same way.
    GiveUp,
}

impl SendVerdict {
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => SendVerdict::Accepted,
            408 | 429 | 500..=599 => SendVerdict::RetryLater,
            _ => SendVerdict::GiveUp,
        }
    }
}

/// A message body: not empty, at most `MAX_BODY_CHARS` characters.
pub fn check_body(text: &str) -> Result<&str, TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty { field: "body" });
    }
    if text.chars().count() > MAX_BODY_CHARS {
        return Err(TextError::TooLong {
            field: "body",
            max: MAX_BODY_CHARS,
        });
    }
    Ok(text)
}

/// The SMS queue tree's leaves as a reply-digit menu: option `n` is the `n`th leaf in menu
/// order (depth first, siblings by position), named by its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsMenu {
    options: Vec<(QueueId, String)>,
}

impl SmsMenu {
    pub fn new(tree: &QueueTree) -> Self {
        let mut options = Vec::new();
        let mut stack: Vec<QueueId> = tree
            .children(Channel::Sms, None)
            .iter()
            .rev()
            .map(|n| n.id)
            .collect();
        while let Some(id) = stack.pop() {
            let Some(node) = tree.get(id) else { continue };
            match node.kind {
                QueueKind::Leaf => {
                    options.push((id, tree.path(id).unwrap_or_else(|| node.name.to_string())))
                }
                QueueKind::Menu => stack.extend(
                    tree.children(Channel::Sms, Some(id))
                        .iter()
                        .rev()
                        .map(|n| n.id),
                ),
            }
        }
        SmsMenu { options }
    }

    /// The leaf a sender goes to at once: the only one, when there is no choice to make.
    pub fn only_leaf(&self) -> Option<QueueId> {
        match self.options.as_slice() {
            [(leaf, _)] => Some(*leaf),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    /// The menu as a message: "Reply with a number: 1 Billing, 2 Sales > Orders".
    pub fn text(&self) -> String {
        let options: Vec<String> = self
            .options
            .iter()
            .enumerate()
            .map(|(index, (_, path))| format!("{} {path}", index + 1))
            .collect();
        format!("Reply with a number: {}", options.join(", "))
    }

    /// The leaf a reply picks: its number, with spaces around it allowed.
    pub fn choose(&self, reply: &str) -> Option<QueueId> {
        let number: usize = reply.trim().parse().ok()?;
        self.options.get(number.checked_sub(1)?).map(|(id, _)| *id)
    }
}

/// The text an agent is sent when an incoming call rings them (NTF-4).
pub fn agent_notice(caller: Option<&str>, queue_path: Option<&str>) -> String {
    let caller = caller
        .filter(|c| !c.is_empty())
        .unwrap_or("an unknown number");
    match queue_path {
        Some(path) => format!("Incoming call from {caller} ({path})"),
        None => format!("Incoming call from {caller}"),
    }
}
