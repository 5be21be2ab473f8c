//! The voice configuration the engine reads on every call: trunks, dialled numbers, the voice
//! queue tree and agents' SIP phone credentials. The shell loads it from the store and hands it
//! in whenever it changes, so nothing on a call's path waits on the database.

use std::collections::HashMap;
use std::net::SocketAddr;
use switchboard_core::voice::{Did, Trunk, TrunkDirection};
use switchboard_core::whisper::{Whisper, WhisperOverride};
use switchboard_core::{QueueId, QueueNode, UserId};

#[derive(Clone, Debug, Default)]
pub struct Directory {
    pub trunks: Vec<Trunk>,
    pub dids: Vec<Did>,
    /// The voice channel's queue tree nodes.
    pub nodes: Vec<QueueNode>,
    /// SIP phone username to the agent and the credential's HA1.
    pub phones: HashMap<String, (UserId, String)>,
    /// The outbound trunks' addresses, resolved by the shell when it loaded the directory.
    pub resolved: HashMap<switchboard_core::TrunkId, SocketAddr>,
    /// What agents hear before a caller is connected: the center's whisper, and queues'
    /// changes to it.
    pub whisper: Whisper,
    pub queue_whispers: HashMap<QueueId, WhisperOverride>,
    /// Leaf queues whose calls are not recorded (their `record_calls` is off); every other
    /// answered call is.
    pub unrecorded_queues: std::collections::HashSet<switchboard_core::QueueId>,
    /// Business hours and after-hours deflection (AHD-1, AHD-2): asked when a caller reaches
    /// a leaf queue.
    pub after_hours: std::sync::Arc<switchboard_core::after_hours::AfterHours>,
    /// Leaf queues whose waiting callers may not ask for a callback with `*`.
    pub no_queue_callbacks: std::sync::Arc<std::collections::HashSet<QueueId>>,
}

impl Directory {
    /// The number's entry point (a leading `+` is not significant).
    pub fn did(&self, dialled: &str) -> Option<&Did> {
        self.dids.iter().find(|d| {
            let number = d.number.as_str();
            number == dialled || number.trim_start_matches('+') == dialled.trim_start_matches('+')
        })
    }

    /// The whisper for a call from `queue`.
    pub fn whisper_for(&self, queue: Option<QueueId>) -> Whisper {
        self.whisper
            .for_queue(queue.and_then(|q| self.queue_whispers.get(&q)))
    }

    pub fn outbound_trunk(&self) -> Option<&Trunk> {
        self.trunks
            .iter()
            .find(|t| t.direction == TrunkDirection::Outbound)
    }
}
