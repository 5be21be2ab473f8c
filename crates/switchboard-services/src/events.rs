//! The domain event bus: what happened in the center and whom it concerns, for everyone
//! watching live (supervisors' and agents' event streams).
//!
//! Publishers pass a `Subject` (whom the event concerns, for deciding who may see it) and a
//! typed `DomainEvent`; nothing here knows JSON. Every watcher receives the same
//! `Arc<Event>` and asks `Event::visible_to` whether its viewer may see it. Text for the wire
//! is made at the edge, once per event: the first watcher that sends an event encodes it with
//! the encoder the edge supplies (`Event::encoded`) into a `OnceLock` the event carries, and
//! every later watcher sends that same text. So an event is encoded at most once however many
//! watchers there are, an event nobody may see is never encoded, and no task sits between the
//! publisher and the watchers. The encoder is a plain `fn`: one wire format for every watcher,
//! which is what makes sharing the text sound.
//!
//! Failure policy: a slow watcher misses events rather than slowing anyone down. The bus keeps
//! `BUFFER` events per watcher; a watcher that falls further behind is told how many it missed
//! (`broadcast::error::RecvError::Lagged`) and carries on from the oldest still kept.

use chrono::{DateTime, Utc};
use std::sync::{Arc, OnceLock};
use switchboard_core::voice::CallRecord;
use switchboard_core::{
    Actor, CallId, Channel, Contact, Presence, QueueId, TeamId, UserId, Watched,
};
use tokio::sync::broadcast;

/// Events buffered per watcher before a slow one starts missing some.
pub const BUFFER: usize = 4096;

/// Whom an event concerns, for deciding who may see it.
#[derive(Clone, Debug)]
pub enum Subject {
    /// An agent (and the teams they belong to).
    Agent { id: UserId, teams: Vec<TeamId> },
    /// Something waiting in a queue (or, without a queue, in a channel's menu).
    Waiting {
        queue: Option<QueueId>,
        channel: Channel,
    },
    /// Something only this user may see (their own emergency call, EMG-6).
    Own(UserId),
}

impl Subject {
    /// Whether this viewer may see what concerns this subject.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        match self {
            Subject::Agent { id, teams } => actor.may_watch(Watched::Agent { id: *id, teams }),
            Subject::Waiting { queue, channel } => actor.may_watch(Watched::Waiting {
                queue: *queue,
                channel: *channel,
            }),
            Subject::Own(user) => actor.user_id == *user,
        }
    }
}

/// What happened. New kinds of event are added here and given a wire form at the edge.
#[derive(Clone, Debug)]
pub enum DomainEvent {
    /// An agent's presence changed.
    PresenceChanged {
        user: UserId,
        presence: Presence,
        since: DateTime<Utc>,
    },
    /// A contact started waiting in a queue (new, or transferred back to a queue).
    ContactQueued(Contact),
    /// A contact reached an agent.
    ContactAssigned(Contact),
    /// A contact ended (or was abandoned, per its status).
    ContactEnded(Contact),
    /// A call started, moved (menu, queue, ringing, answered, transferred) or ended.
    CallUpdated(CallRecord),
    /// An agent dialled an emergency number: the live alert for on-duty supervisors (Kari's
    /// Law). It names the call only to match its end; it is not a call for live call lists.
    EmergencyStarted(EmergencyAlert),
    /// The emergency call ended.
    EmergencyEnded {
        call: CallId,
        agent: UserId,
        at: DateTime<Utc>,
    },
}

/// What supervisors are told live when an agent dials an emergency number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencyAlert {
    pub call: CallId,
    pub agent: UserId,
    /// The agent's display name when they dialled.
    pub agent_name: String,
    /// The emergency number called (`911`).
    pub number: String,
    /// A carriers' test number (933).
    pub test: bool,
    pub at: DateTime<Utc>,
}

/// Turns an event into the text sent to watchers; `None` when it cannot be encoded.
pub type Encoder = fn(&DomainEvent) -> Option<String>;

/// One published event.
#[derive(Debug)]
pub struct Event {
    pub subject: Subject,
    pub event: DomainEvent,
    /// The event's wire text, made by the first watcher that sends it and kept for the others.
    encoded: OnceLock<Option<String>>,
}

impl Event {
    pub fn new(subject: Subject, event: DomainEvent) -> Self {
        Self {
            subject,
            event,
            encoded: OnceLock::new(),
        }
    }

    /// Whether this viewer may see the event.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        self.subject.visible_to(actor)
    }

    /// The event's wire text: encoded by the first caller, the same text for every later one.
    pub fn encoded(&self, encode: Encoder) -> Option<&str> {
        self.encoded.get_or_init(|| encode(&self.event)).as_deref()
    }
}

/// Fan-out of events to every watcher. Cloning gives another handle to the same bus.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
        }
    }
}

impl EventBus {
    /// Publishes an event to everyone watching now.
    pub fn publish(&self, subject: Subject, event: DomainEvent) {
        // Sending fails only when nobody watches, which is fine.
        let _ = self.sender.send(Arc::new(Event::new(subject, event)));
    }

    /// A new watcher: it receives every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}
