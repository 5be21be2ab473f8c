//! Callbacks: a consumer called back instead of waiting (issue 12, AHD-3).
//!
//! A callback is requested for one of its queue's open slots (from the widget or the API), or
//! by a caller waiting in an open voice queue who would rather be called back (they keep their
//! place: the callback enters the queue with their original enqueue time). Its life:
//!
//! ```text
//! scheduled ──due──▶ queued (a voice contact in its queue) ──agent picked──▶ dialling
//!     ▲                                                                      │
//!     └──── no answer, busy, failed: retried after `delay`, up to `max_attempts` ┤
//!                                                     connected ◀─ answered ──┘
//!                                         (attempts used up) ──▶ failed
//! ```
//!
//! A scheduled or queued callback may be cancelled. Every attempt is kept with its agent, its
//! times and its outcome. Pure: `now` is always an argument.

use crate::hours::Schedule;
use crate::ids::{CallbackId, ContactId, QueueId, UserId};
use crate::text::TextError;
use chrono::{DateTime, Duration, Utc};

/// The most attempts a policy may allow.
pub const MAX_ATTEMPTS_LIMIT: u32 = 10;
/// The shortest and longest wait between attempts.
pub const MIN_RETRY_DELAY: Duration = Duration::minutes(1);
pub const MAX_RETRY_DELAY: Duration = Duration::hours(24);
/// The length of a bookable slot, and how many are offered.
pub const SLOT_MINUTES: i64 = 30;
pub const SLOTS_OFFERED: usize = 12;

/// Why a callback request or a step of its life was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("`{0}` is not an E.164 number: a + and 8 to 15 digits, the first not 0")]
    BadNumber(String),
    #[error("the slot is not one of the queue's next open slots")]
    SlotNotOpen,
    #[error("the queue has no business hours, so it has no slots to book")]
    NoSchedule,
    #[error("max_attempts is 1 to {MAX_ATTEMPTS_LIMIT}")]
    BadAttempts,
    #[error("retry_delay is 1 minute to 24 hours")]
    BadDelay,
    #[error("the callback is {0}, which does not allow that")]
    WrongState(&'static str),
    #[error(transparent)]
    Text(#[from] TextError),
}

/// A phone number in E.164 form: `+` then 8 to 15 digits, the first not 0.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct E164(String);

impl E164 {
    pub fn parse(text: &str) -> Result<Self, CallbackError> {
        let text = text.trim();
        let bad = || CallbackError::BadNumber(text.chars().take(40).collect());
        let digits = text.strip_prefix('+').ok_or_else(bad)?;
        if !(8..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(bad());
        }
        Ok(E164(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a callback is retried when the consumer does not answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 to 10).
    pub max_attempts: u32,
    /// The wait after an unanswered attempt before the callback is due again.
    pub delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            delay: Duration::minutes(10),
        }
    }
}

impl RetryPolicy {
    pub fn new(max_attempts: u32, delay: Duration) -> Result<Self, CallbackError> {
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(CallbackError::BadAttempts);
        }
        if delay < MIN_RETRY_DELAY || delay > MAX_RETRY_DELAY {
            return Err(CallbackError::BadDelay);
        }
        Ok(RetryPolicy {
            max_attempts,
            delay,
        })
    }
}

/// Where a callback came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallbackOrigin {
    /// Booked for a slot from the widget or the API.
    Scheduled,
    /// Asked for by a caller waiting in an open queue, who keeps their place: `enqueued_at`
    /// is when they first joined it.
    InQueue { enqueued_at: DateTime<Utc> },
}

impl CallbackOrigin {
    pub fn kind(&self) -> &'static str {
        match self {
            CallbackOrigin::Scheduled => "scheduled",
            CallbackOrigin::InQueue { .. } => "in_queue",
        }
    }
}

/// Where a callback is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum CallbackStatus {
    /// Waiting for its slot (or for its next attempt).
    Scheduled,
    /// A contact in its queue, waiting for an agent.
    Queued,
    /// An agent was picked: their device rings, then the consumer is dialled.
    Dialing,
    /// The consumer answered and talked to the agent.
    Connected,
    /// Every attempt went unanswered.
    Failed,
    Cancelled,
}

impl CallbackStatus {
    pub const ALL: [CallbackStatus; 6] = [
        CallbackStatus::Scheduled,
        CallbackStatus::Queued,
        CallbackStatus::Dialing,
        CallbackStatus::Connected,
        CallbackStatus::Failed,
        CallbackStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Scheduled => "scheduled",
            CallbackStatus::Queued => "queued",
            CallbackStatus::Dialing => "dialing",
            CallbackStatus::Connected => "connected",
            CallbackStatus::Failed => "failed",
            CallbackStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the callback is over (nothing more happens to it).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallbackStatus::Connected | CallbackStatus::Failed | CallbackStatus::Cancelled
        )
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AttemptOutcome {
    Answered,
    NoAnswer,
    Busy,
    /// The call could not be made (the trunk refused it, the agent's device failed).
    Failed,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 4] = [
        AttemptOutcome::Answered,
        AttemptOutcome::NoAnswer,
        AttemptOutcome::Busy,
        AttemptOutcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Answered => "answered",
            AttemptOutcome::NoAnswer => "no_answer",
            AttemptOutcome::Busy => "busy",
            AttemptOutcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One try at reaching the consumer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    pub agent: Option<UserId>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `None` while the attempt is under way.
    pub outcome: Option<AttemptOutcome>,
}

/// What follows an attempt's end.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AfterAttempt {
    /// They talked; the callback is done.
    Connected,
    /// Due again at this time.
    Retry(DateTime<Utc>),
    /// No attempts left.
    Failed,
}

/// A callback and its attempts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Callback {
    pub id: CallbackId,
    pub queue: QueueId,
    pub number: E164,
    /// Routing priority of its contact (higher is served first, as queues' priorities are).
    pub priority: i32,
    pub origin: CallbackOrigin,
    /// The slot booked (for an in-queue request, when it was asked for).
    pub slot: DateTime<Utc>,
    /// When it next enters its queue (the slot, then each retry's time).
    pub due_at: DateTime<Utc>,
    pub status: CallbackStatus,
    pub policy: RetryPolicy,
    /// The contact of the current (or last) attempt's turn in the queue.
    pub contact: Option<ContactId>,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A request as the API or widget gives it, before the checks.
#[derive(Clone, Debug)]
pub struct CallbackRequest {
    pub queue: QueueId,
    pub number: String,
    pub priority: i32,
    pub slot: DateTime<Utc>,
    pub policy: RetryPolicy,
}

/// The slots a queue offers for callbacks at `now`: the next open slots of its deciding
/// schedule (none when no schedule applies: a queue that is always open takes calls).
pub fn offered_slots(
    schedule: Option<&Schedule>,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, CallbackError> {
    let schedule = schedule.ok_or(CallbackError::NoSchedule)?;
    // From the next minute, so a slot starting this very instant is not offered late.
    schedule
        .next_open_slots(
            now + Duration::minutes(1),
            SLOTS_OFFERED,
            Duration::minutes(SLOT_MINUTES),
        )
        .map_err(|_| CallbackError::NoSchedule)
}

impl Callback {
    /// A booked callback: its slot must be one of `open_slots` (the queue's next open slots,
    /// `offered_slots`) and its number E.164.
    pub fn schedule(
        id: CallbackId,
        request: CallbackRequest,
        open_slots: &[DateTime<Utc>],
        now: DateTime<Utc>,
    ) -> Result<Self, CallbackError> {
        let number = E164::parse(&request.number)?;
        if !open_slots.contains(&request.slot) || request.slot < now {
            return Err(CallbackError::SlotNotOpen);
        }
        Ok(Callback {
            id,
            queue: request.queue,
            number,
            priority: request.priority,
            origin: CallbackOrigin::Scheduled,
            slot: request.slot,
            due_at: request.slot,
            status: CallbackStatus::Scheduled,
            policy: request.policy,
            contact: None,
            attempts: Vec::new(),
            created_at: now,
            updated_at: now,
        })
    }

    /// A caller waiting in `queue` since `enqueued_at` asks to be called back: due at once,
    /// and keeping their place in line.
    #[allow(clippy::too_many_arguments)]
    pub fn from_queue(
        id: CallbackId,
        queue: QueueId,
        number: &str,
        priority: i32,
        enqueued_at: DateTime<Utc>,
        policy: RetryPolicy,
        now: DateTime<Utc>,
    ) -> Result<Self, CallbackError> {
        Ok(Callback {
            id,
            queue,
            number: E164::parse(number)?,
            priority,
            origin: CallbackOrigin::InQueue { enqueued_at },
            slot: now,
            due_at: now,
            status: CallbackStatus::Scheduled,
            policy,
            contact: None,
            attempts: Vec::new(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Whether it should enter its queue now.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == CallbackStatus::Scheduled && self.due_at <= now
    }

    /// The arrival time its contact waits with: an in-queue request's first attempt keeps the
    /// caller's original place; otherwise the time it became due.
    pub fn arrival(&self) -> DateTime<Utc> {
        match self.origin {
            CallbackOrigin::InQueue { enqueued_at } if self.attempts.is_empty() => enqueued_at,
            _ => self.due_at,
        }
    }

    fn wrong(&self) -> CallbackError {
        CallbackError::WrongState(self.status.as_str())
    }

    /// It entered its queue as `contact`.
    pub fn queued(&mut self, contact: ContactId, now: DateTime<Utc>) -> Result<(), CallbackError> {
        if !self.is_due(now) {
            return Err(self.wrong());
        }
        self.status = CallbackStatus::Queued;
        self.contact = Some(contact);
        self.updated_at = now;
        Ok(())
    }

    /// Routing picked `agent`: the attempt starts (it is on the record before anyone is
    /// dialled). Gives the attempt's number.
    pub fn dialing(&mut self, agent: UserId, now: DateTime<Utc>) -> Result<u32, CallbackError> {
        if self.status != CallbackStatus::Queued {
            return Err(self.wrong());
        }
        let number = self.attempts.len() as u32 + 1;
        self.attempts.push(Attempt {
            number,
            agent: Some(agent),
            started_at: now,
            ended_at: None,
            outcome: None,
        });
        self.status = CallbackStatus::Dialing;
        self.updated_at = now;
        Ok(number)
    }

    /// The attempt under way ended so; says what follows (and does it to the callback).
    pub fn attempt_ended(
        &mut self,
        outcome: AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<AfterAttempt, CallbackError> {
        if self.status != CallbackStatus::Dialing {
            return Err(self.wrong());
        }
        let made = self.attempts.len() as u32;
        if let Some(last) = self.attempts.last_mut() {
            last.ended_at = Some(now);
            last.outcome = Some(outcome);
        }
        self.updated_at = now;
        let next = if outcome == AttemptOutcome::Answered {
            AfterAttempt::Connected
        } else if made < self.policy.max_attempts {
            AfterAttempt::Retry(now + self.policy.delay)
        } else {
            AfterAttempt::Failed
        };
        match next {
            AfterAttempt::Connected => self.status = CallbackStatus::Connected,
            AfterAttempt::Failed => self.status = CallbackStatus::Failed,
            AfterAttempt::Retry(at) => {
                self.status = CallbackStatus::Scheduled;
                self.due_at = at;
                self.contact = None;
            }
        }
        Ok(next)
    }

    /// Its contact left the queue before an agent was picked (ended by an admin, say): it is
    /// due again at once, unless it is over.
    pub fn unqueued(&mut self, now: DateTime<Utc>) -> Result<(), CallbackError> {
        if self.status != CallbackStatus::Queued {
            return Err(self.wrong());
        }
        self.status = CallbackStatus::Scheduled;
        self.contact = None;
        self.due_at = now;
        self.updated_at = now;
        Ok(())
    }

    /// Cancelled by an admin or the API: only before an agent was picked.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), CallbackError> {
        if !matches!(
            self.status,
            CallbackStatus::Scheduled | CallbackStatus::Queued
        ) {
            return Err(self.wrong());
        }
        self.status = CallbackStatus::Cancelled;
        self.updated_at = now;
        Ok(())
    }
}
