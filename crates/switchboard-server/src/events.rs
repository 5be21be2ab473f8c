//! The live event stream: what happened, who it concerns, and the JSON sent to watchers.
//! Each event is serialised once; every subscriber filters by what its user may watch.

use serde::Serialize;
use std::sync::Arc;
use switchboard_core::{Actor, Channel, QueueId, TeamId, UserId, Watched};
use tokio::sync::broadcast;

/// Events buffered per subscriber before a slow one starts missing some (it is told how many).
const BUFFER: usize = 4096;

/// Whom an event concerns, for deciding who may see it.
#[derive(Clone, Debug)]
pub enum Subject {
    Agent {
        id: UserId,
        teams: Vec<TeamId>,
    },
    Waiting {
        queue: Option<QueueId>,
        channel: Channel,
    },
}

/// One published event.
#[derive(Debug)]
pub struct Event {
    pub subject: Subject,
    /// The event as sent on the wire.
    pub json: String,
}

impl Event {
    pub fn visible_to(&self, actor: &Actor) -> bool {
        match &self.subject {
            Subject::Agent { id, teams } => actor.may_watch(Watched::Agent { id: *id, teams }),
            Subject::Waiting { queue, channel } => actor.may_watch(Watched::Waiting {
                queue: *queue,
                channel: *channel,
            }),
        }
    }
}

/// Fan-out of events to every open stream.
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
    pub fn publish(&self, subject: Subject, payload: &impl Serialize) {
        match serde_json::to_string(payload) {
            // Sending fails only when nobody listens, which is fine.
            Ok(json) => drop(self.sender.send(Arc::new(Event { subject, json }))),
            Err(error) => tracing::error!(%error, "event not serialisable"),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}
