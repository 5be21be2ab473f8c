//! The change bus: what routing did to a contact, for the services that carry contacts (voice
//! carries calls, chat carries chats) and for whatever else follows routing.
//!
//! Every subscriber gets every change, in the order routing made them. Each subscriber has an
//! unbounded queue, so a change is never dropped for a live subscriber: changes come at the
//! pace of routing decisions, each already stored, and a carrier that missed one would leave
//! a caller ringing nobody or a chat without its agent. A subscriber that has gone (its
//! receiver dropped) is forgotten at the next publish.

use std::sync::{Arc, Mutex};
use switchboard_core::{Contact, UserId};
use tokio::sync::mpsc;

/// What happened to a contact, as routing stored it.
#[derive(Clone, Debug)]
pub enum ContactChange {
    /// The contact reached an agent.
    Assigned(Contact),
    /// The contact ended (completed, ended by someone, or abandoned).
    Ended(Contact),
    /// Back to waiting in a queue; `from` held it until now, `reason` says why it left them.
    Requeued {
        contact: Contact,
        from: UserId,
        reason: RequeueReason,
    },
    /// Transferred from one agent straight to another (already assigned).
    Handed { contact: Contact, from: UserId },
}

/// Why a contact went back to waiting.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RequeueReason {
    /// Its agent transferred it to a queue.
    Transferred,
    /// Its agent did not take it (a call that rang out); it keeps its place.
    NotTaken,
    /// Its agent went offline (signed out, or their adapter was gone for the grace); it keeps
    /// its place.
    AgentOffline,
}

impl ContactChange {
    /// The contact as it is after the change.
    pub fn contact(&self) -> &Contact {
        match self {
            ContactChange::Assigned(contact) | ContactChange::Ended(contact) => contact,
            ContactChange::Requeued { contact, .. } | ContactChange::Handed { contact, .. } => {
                contact
            }
        }
    }
}

/// Fan-out of contact changes to every subscriber. Cloning gives another handle to the same bus.
#[derive(Clone, Default)]
pub struct ChangeBus {
    /// One sender per subscriber, in the order they subscribed; pruned when a send fails.
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<ContactChange>>>>,
}

impl ChangeBus {
    /// A new subscriber: it gets every change published from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<ContactChange> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.with(|subscribers| subscribers.push(sender));
        receiver
    }

    /// Hands a change to every subscriber, forgetting those that have gone.
    pub fn publish(&self, change: ContactChange) {
        self.with(|subscribers| subscribers.retain(|sender| sender.send(change.clone()).is_ok()));
    }

    /// How many subscribers are listening (those gone are counted until the next publish).
    pub fn subscribers(&self) -> usize {
        self.with(|subscribers| subscribers.len())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<mpsc::UnboundedSender<ContactChange>>) -> T) -> T {
        // The lock guards a plain list; a panic while holding it cannot leave it half-changed.
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut subscribers)
    }
}
