//! Contacts: a call, chat, SMS conversation or callback request, from arrival to end.

use crate::ids::{ContactId, QueueId, UserId};
use crate::queue::Channel;
use crate::text::{Language, TextError};
use chrono::{DateTime, Utc};

/// Where a contact is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ContactStatus {
    /// Waiting in a queue for an agent.
    Queued,
    /// With an agent.
    Assigned,
    /// Finished after reaching an agent, or ended by a supervisor.
    Ended,
    /// Left before reaching an agent.
    Abandoned,
}

impl ContactStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ContactStatus::Queued => "queued",
            ContactStatus::Assigned => "assigned",
            ContactStatus::Ended => "ended",
            ContactStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        [
            ContactStatus::Queued,
            ContactStatus::Assigned,
            ContactStatus::Ended,
            ContactStatus::Abandoned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| TextError::Invalid {
            field: "status",
            detail: text.chars().take(40).collect(),
        })
    }

    /// Whether the contact is still waiting or in progress.
    pub const fn is_open(self) -> bool {
        matches!(self, ContactStatus::Queued | ContactStatus::Assigned)
    }
}

/// A contact's record.
#[derive(Clone, PartialEq, Debug)]
pub struct Contact {
    pub id: ContactId,
    pub channel: Channel,
    /// The leaf queue the contact waits or waited in; `None` for a direct (override) contact.
    pub queue: Option<QueueId>,
    /// The queue path at the time the contact arrived ("Billing > Refunds").
    pub issue: String,
    pub priority: i32,
    pub language: Option<Language>,
    pub status: ContactStatus,
    pub agent: Option<UserId>,
    /// Who the contact is from, as given (a name, number or visitor id).
    pub customer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended: `completed`, `ended_by_supervisor`, `abandoned`, …
    pub end_reason: Option<String>,
    /// How many times the contact was transferred.
    pub transfers: u32,
}

impl Contact {
    /// Records that the contact reached an agent.
    pub fn assign(&mut self, agent: UserId, now: DateTime<Utc>) {
        self.status = ContactStatus::Assigned;
        self.agent = Some(agent);
        self.assigned_at = Some(now);
    }

    /// Records a transfer back to waiting, in another (or the same) queue; the contact keeps
    /// its arrival time so it does not lose its place.
    pub fn requeue(&mut self, queue: crate::ids::QueueId, issue: String) {
        self.status = ContactStatus::Queued;
        self.agent = None;
        self.assigned_at = None;
        self.queue = Some(queue);
        self.issue = issue;
        self.transfers += 1;
    }

    /// Records the end: a contact that never reached an agent is abandoned.
    pub fn finish(&mut self, reason: &str, now: DateTime<Utc>) {
        self.status = if self.agent.is_some() {
            ContactStatus::Ended
        } else {
            ContactStatus::Abandoned
        };
        self.ended_at = Some(now);
        self.end_reason = Some(reason.to_owned());
    }

    /// Milliseconds from arrival to an agent (or to the end, for an abandoned contact).
    pub fn wait_millis(&self) -> Option<i64> {
        let until = self.assigned_at.or(self.ended_at)?;
        Some((until - self.created_at).num_milliseconds())
    }
}
