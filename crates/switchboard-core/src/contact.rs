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
    /// The user who ended it when it was not theirs (a stuck contact ended from the monitoring
    /// lists, MON-7); `None` for every other end.
    pub ended_by: Option<EndedBy>,
}

/// A user who ended someone else's contact, named as they were at the time (the record keeps
/// saying who it was after a rename).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EndedBy {
    pub user: UserId,
    pub name: String,
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

/// What the agent recorded after a contact (wrap-up): one of the center's dispositions and a
/// note.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WrapUp {
    pub contact: ContactId,
    pub agent: UserId,
    pub disposition: Option<String>,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// The longest wrap-up note, in characters.
pub const WRAP_UP_NOTE_MAX: usize = 4000;
/// The most dispositions a center has, and the longest one.
pub const DISPOSITIONS_MAX: usize = 50;
pub const DISPOSITION_MAX_CHARS: usize = 60;

/// Checks a center's dispositions: 1 to 60 characters each after trimming, no two alike
/// (ignoring case), at most 50. Returns them trimmed, in order.
pub fn check_dispositions(list: &[String]) -> Result<Vec<String>, TextError> {
    let invalid = |detail: String| TextError::Invalid {
        field: "dispositions",
        detail,
    };
    if list.len() > DISPOSITIONS_MAX {
        return Err(invalid(format!(
            "a center has at most {DISPOSITIONS_MAX} dispositions"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let item = item.trim();
        let length = item.chars().count();
        if length == 0 || length > DISPOSITION_MAX_CHARS || item.chars().any(char::is_control) {
            return Err(invalid(format!(
                "a disposition is 1 to {DISPOSITION_MAX_CHARS} characters of text"
            )));
        }
        if out.iter().any(|o| o.to_lowercase() == item.to_lowercase()) {
            return Err(invalid(format!("`{item}` is listed twice")));
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

impl WrapUp {
    /// A wrap-up checked against the center's dispositions: when the center has any, one of
    /// them is required (matched ignoring case, stored as the center spells it); when it has
    /// none, there is no disposition to give. The note is at most 4,000 characters.
    pub fn new(
        contact: ContactId,
        agent: UserId,
        disposition: Option<&str>,
        note: &str,
        dispositions: &[String],
        at: DateTime<Utc>,
    ) -> Result<WrapUp, TextError> {
        let invalid = |field: &'static str, detail: &str| TextError::Invalid {
            field,
            detail: detail.to_owned(),
        };
        let disposition = match disposition.map(str::trim).filter(|d| !d.is_empty()) {
            Some(given) => Some(
                dispositions
                    .iter()
                    .find(|d| d.to_lowercase() == given.to_lowercase())
                    .cloned()
                    .ok_or_else(|| {
                        invalid("disposition", "the disposition is not one of the center's")
                    })?,
            ),
            None if !dispositions.is_empty() => {
                return Err(invalid(
                    "disposition",
                    "choose one of the center's dispositions",
                ))
            }
            None => None,
        };
        let note = note.trim();
        if note.chars().count() > WRAP_UP_NOTE_MAX {
            return Err(invalid("note", "the note is at most 4000 characters"));
        }
        Ok(WrapUp {
            contact,
            agent,
            disposition,
            note: note.to_owned(),
            at,
        })
    }
}
