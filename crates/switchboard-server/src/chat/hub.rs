//! Live connections: the consumers' widgets in each chat, each agent's adapters, and the
//! supervisors watching a chat (MON-3). Frames are serialised once and handed to each
//! connection's bounded outbox. A connection whose outbox is full is dropped rather than
//! waited for: its client reconnects and resumes from the last message it has, because every
//! message is stored before anyone is told of it.
//!
//! Watchers are kept apart from the chat's own connections: nothing sent to a chat's consumer
//! or agent ever reaches them through a watcher's room, and nothing a watcher does is sent to
//! anyone. A watcher's room is dropped when the chat ends, which closes its outbox.

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

/// A frame for the supervisors watching a chat; a message's carries its place in the chat, so
/// a watcher that read the history after it joined shows each message once.
#[derive(Clone)]
pub struct WatchFrame {
    pub seq: Option<i64>,
    pub frame: Arc<str>,
}

/// One watching connection's sending half.
struct Watcher {
    id: u64,
    outbox: mpsc::Sender<WatchFrame>,
}

#[derive(Default)]
struct Rooms {
    /// Consumer connections per chat (a consumer may have several tabs).
    chats: HashMap<ContactId, Vec<Conn>>,
    /// Adapter connections per agent.
    agents: HashMap<UserId, Vec<Conn>>,
    /// Watching connections per chat, from when they open until they close or the chat ends.
    watchers: HashMap<ContactId, Vec<Watcher>>,
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

    /// Forgets a chat that ended, with its watchers (their outboxes close once emptied).
    pub fn close_chat(&self, chat: ContactId) {
        self.with(|rooms| {
            rooms.chats.remove(&chat);
            rooms.watchers.remove(&chat);
        });
    }

    /// A new watcher of a chat: its id and the receiving half of its outbox, which gets every
    /// frame for the chat's watchers from now on and closes when the chat ends.
    pub fn watch(&self, chat: ContactId) -> (u64, mpsc::Receiver<WatchFrame>) {
        let (outbox, receiver) = mpsc::channel(OUTBOX);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.with(|rooms| {
            rooms
                .watchers
                .entry(chat)
                .or_default()
                .push(Watcher { id, outbox })
        });
        (id, receiver)
    }

    /// Forgets a watcher (its connection closed).
    pub fn unwatch(&self, chat: ContactId, watcher: u64) {
        self.with(|rooms| {
            if let Some(list) = rooms.watchers.get_mut(&chat) {
                list.retain(|w| w.id != watcher);
                if list.is_empty() {
                    rooms.watchers.remove(&chat);
                }
            }
        });
    }

    /// Whether anyone watches the chat (so a frame only they would get is made only then).
    pub fn is_watched(&self, chat: ContactId) -> bool {
        self.with(|rooms| rooms.watchers.contains_key(&chat))
    }

    /// To every watcher of a chat, dropping those too slow to take it.
    pub fn to_watchers(&self, chat: ContactId, frame: WatchFrame) {
        self.with(|rooms| {
            if let Some(list) = rooms.watchers.get_mut(&chat) {
                list.retain(|w| w.outbox.try_send(frame.clone()).is_ok());
                if list.is_empty() {
                    rooms.watchers.remove(&chat);
                }
            }
        });
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
