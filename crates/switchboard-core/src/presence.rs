//! Agent presence and its state machine.
//!
//! Presence is what the agent (or a supervisor) says about availability. A forced change,
//! such as Do Not Disturb while an emergency call is in progress (EMG-2), remembers the
//! status it replaced so that it can be restored afterwards (EMG-8).

use crate::text::{Name, TextError};
use chrono::{DateTime, Utc};
use std::fmt;

/// An agent's presence.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Presence {
    /// Ready to be routed contacts.
    Available,
    /// Working, not to be routed new contacts.
    Busy,
    Break,
    DoNotDisturb,
    Offline,
    /// A status the center defined, such as "Training"; never routable.
    Custom(Name),
}

impl Presence {
    /// Parses the wire form: `available`, `busy`, `break`, `do_not_disturb`, `offline`, or
    /// `custom:<name>`. Whether a custom name is one the center defined is the caller's check.
    pub fn parse(text: &str) -> Result<Self, TextError> {
        Ok(match text {
            "available" => Presence::Available,
            "busy" => Presence::Busy,
            "break" => Presence::Break,
            "do_not_disturb" => Presence::DoNotDisturb,
            "offline" => Presence::Offline,
            other => match other.strip_prefix("custom:") {
                Some(name) => Presence::Custom(Name::parse("custom status", name)?),
                None => {
                    return Err(TextError::Invalid {
                        field: "presence",
                        detail: format!(
                            "`{}` is not available, busy, break, do_not_disturb, offline or custom:<name>",
                            other.chars().take(40).collect::<String>()
                        ),
                    })
                }
            },
        })
    }

    /// Whether the routing engine may offer this agent new contacts.
    pub fn is_routable(&self) -> bool {
        matches!(self, Presence::Available)
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presence::Available => f.write_str("available"),
            Presence::Busy => f.write_str("busy"),
            Presence::Break => f.write_str("break"),
            Presence::DoNotDisturb => f.write_str("do_not_disturb"),
            Presence::Offline => f.write_str("offline"),
            Presence::Custom(name) => write!(f, "custom:{name}"),
        }
    }
}

/// What changed when presence was set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PresenceChange {
    pub from: Presence,
    pub to: Presence,
    pub at: DateTime<Utc>,
}

/// An agent's presence with the memory needed to undo a forced change.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PresenceState {
    current: Presence,
    since: DateTime<Utc>,
    /// The status a forced change replaced; set while a forced status is in effect and
    /// cleared when it is restored or when the agent chooses a status themselves.
    forced_from: Option<Presence>,
}

impl PresenceState {
    /// A new agent starts offline.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            current: Presence::Offline,
            since: now,
            forced_from: None,
        }
    }

    /// Rebuilds a state from storage.
    pub fn from_parts(
        current: Presence,
        since: DateTime<Utc>,
        forced_from: Option<Presence>,
    ) -> Self {
        Self {
            current,
            since,
            forced_from,
        }
    }

    pub fn current(&self) -> &Presence {
        &self.current
    }

    pub fn since(&self) -> DateTime<Utc> {
        self.since
    }

    pub fn forced_from(&self) -> Option<&Presence> {
        self.forced_from.as_ref()
    }

    /// A chosen change (by the agent or a supervisor). It ends any forced status: what the
    /// person chose wins over what was remembered. Setting the same status changes nothing.
    pub fn set(&mut self, to: Presence, now: DateTime<Utc>) -> Option<PresenceChange> {
        self.forced_from = None;
        self.change_to(to, now)
    }

    /// A forced change (EMG-2). The status in effect before the first forced change is kept,
    /// so a second forced change on top of the first still restores the original.
    pub fn force(&mut self, to: Presence, now: DateTime<Utc>) -> Option<PresenceChange> {
        if self.forced_from.is_none() {
            self.forced_from = Some(self.current.clone());
        }
        self.change_to(to, now)
    }

    /// Returns to the status remembered by a forced change (EMG-8); nothing if none is.
    pub fn restore(&mut self, now: DateTime<Utc>) -> Option<PresenceChange> {
        let previous = self.forced_from.take()?;
        self.change_to(previous, now)
    }

    fn change_to(&mut self, to: Presence, now: DateTime<Utc>) -> Option<PresenceChange> {
        if to == self.current {
            return None;
        }
        let from = std::mem::replace(&mut self.current, to.clone());
        self.since = now;
        Some(PresenceChange { from, to, at: now })
    }
}
