//! Live connections: the consumers' widgets in each chat and each agent's adapters. Frames
//! are serialised once and handed to each connection's bounded outbox. A connection whose
//! outbox is full is dropped rather than waited for: its client reconnects and resumes from
//! the last message it has, because every message is stored before anyone is told of it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use switchboard_core::{ContactId, UserId};
use tokio::sync::mpsc;

/// Frames a connection may have waiting before it counts as too slow.
const OUTBOX: usize = 128;

/// One connection's sending half.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    outbox: mpsc::Sender<Arc<str>>,
}

impl Conn {
    /// Sends to this connection only; false when it is gone or too slow.
    pub fn send(&self, frame: Arc<str>) -> bool {
        self.outbox.try_send(frame).is_ok()
    }
}

#[derive(Default)]
struct Rooms {
    /// Consumer connections per chat (a consumer may have several tabs).
    chats: HashMap<ContactId, Vec<Conn>>,
    /// Adapter connections per agent.
    agents: HashMap<UserId, Vec<Conn>>,
}

#[derive(Default)]
pub struct Hub {
    rooms: Mutex<Rooms>,
    next_id: AtomicU64,
}

/// Hands a frame to every connection in the list, dropping the ones that cannot take it.
fn deliver(list: &mut Vec<Conn>, frame: &Arc<str>, except: Option<u64>) {
    list.retain(|conn| Some(conn.id) == except || conn.send(frame.clone()));
}

impl Hub {
    /// A new connection and the receiving half of its outbox.
    pub fn connect(&self) -> (Conn, mpsc::Receiver<Arc<str>>) {
        let (outbox, receiver) = mpsc::channel(OUTBOX);
        (
            Conn {
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
                outbox,
            },
            receiver,
        )
    }

    fn with<T>(&self, f: impl FnOnce(&mut Rooms) -> T) -> T {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut rooms)
    }

    pub fn join_chat(&self, chat: ContactId, conn: &Conn) {
        self.with(|rooms| {
            let list = rooms.chats.entry(chat).or_default();
            if !list.iter().any(|c| c.id == conn.id) {
                list.push(conn.clone());
            }
        });
    }

    pub fn join_agent(&self, agent: UserId, conn: &Conn) {
        self.with(|rooms| rooms.agents.entry(agent).or_default().push(conn.clone()));
    }

    /// Forgets a connection everywhere (it closed).
    pub fn leave(&self, conn_id: u64) {
        self.with(|rooms| {
            for list in rooms.chats.values_mut().chain(rooms.agents.values_mut()) {
                list.retain(|c| c.id != conn_id);
            }
            rooms.chats.retain(|_, list| !list.is_empty());
            rooms.agents.retain(|_, list| !list.is_empty());
        });
    }

    /// Forgets a chat that ended.
    pub fn close_chat(&self, chat: ContactId) {
        self.with(|rooms| rooms.chats.remove(&chat));
    }

    /// To the consumer side of a chat, except one connection (the sender's own).
    pub fn to_chat(&self, chat: ContactId, frame: &Arc<str>, except: Option<u64>) {
        self.with(|rooms| {
            if let Some(list) = rooms.chats.get_mut(&chat) {
                deliver(list, frame, except);
            }
        });
    }

    /// To every adapter an agent has open, except one connection.
    pub fn to_agent(&self, agent: UserId, frame: &Arc<str>, except: Option<u64>) {
        self.with(|rooms| {
            if let Some(list) = rooms.agents.get_mut(&agent) {
                deliver(list, frame, except);
            }
        });
    }

    /// The chats that have a consumer connection open.
    pub fn chats_with_consumers(&self) -> Vec<ContactId> {
        self.with(|rooms| rooms.chats.keys().copied().collect())
    }

    /// Open consumer and agent connections, for metrics.
    pub fn counts(&self) -> (usize, usize) {
        self.with(|rooms| {
            (
                rooms.chats.values().map(Vec::len).sum(),
                rooms.agents.values().map(Vec::len).sum(),
            )
        })
    }
}
