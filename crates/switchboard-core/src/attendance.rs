//! Who is still there: live connections counted per party (an agent's adapters, a chat's
//! consumer widgets), and which parties have had none for longer than a grace period.
//!
//! The shell reports connections as they open and close; a party whose last connection
//! closes is *away* from that moment, and one that connects again within the grace is simply
//! present again, as if nothing had happened. `poll_due(now)` hands out, one at a time, the
//! parties away for the whole grace; the shell then decides what that means with what only it
//! knows (an agent with a registered SIP phone is still reachable; a chat already with an
//! agent is not abandoned) and either forgets the party or `keep`s it away for another grace.
//!
//! Two rules are pure functions here so the shell only gathers facts: `agent_goes_offline`
//! and `chat_is_abandoned`.
//!
//! Cost: each report is a few hash-map and ordered-set operations; `next_deadline` is the
//! first entry of an ordered set. Nothing here reads a clock: `now` is always an argument.

use crate::contact::ContactStatus;
use crate::presence::Presence;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

/// Connections per party and the parties away, for one kind of party (`K`: a user id, a
/// contact id). A connection is named by the shell's connection id.
#[derive(Debug)]
pub struct Attendance<K> {
    grace: Duration,
    /// Open connections per party; a party with none is absent from this map.
    present: HashMap<K, HashSet<u64>>,
    /// Which parties each open connection belongs to, so a closing connection leaves them all.
    parties: HashMap<u64, Vec<K>>,
    /// Since when each away party has been away (or was last kept).
    away_since: HashMap<K, DateTime<Utc>>,
    /// The same, ordered by time, for the next deadline.
    away: BTreeSet<(DateTime<Utc>, K)>,
}

impl<K: Copy + Ord + Hash> Attendance<K> {
    /// Parties away for `grace` are due.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            present: HashMap::new(),
            parties: HashMap::new(),
            away_since: HashMap::new(),
            away: BTreeSet::new(),
        }
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// A connection of `party` opened: the party is present (no longer away).
    pub fn connected(&mut self, party: K, connection: u64) {
        if self.present.entry(party).or_default().insert(connection) {
            self.parties.entry(connection).or_default().push(party);
        }
        self.clear_away(party);
    }

    /// A connection closed: every party it belonged to that has no other connection is away
    /// from `now`. An unknown connection changes nothing.
    pub fn disconnected(&mut self, connection: u64, now: DateTime<Utc>) {
        for party in self.parties.remove(&connection).unwrap_or_default() {
            let Some(connections) = self.present.get_mut(&party) else {
                continue;
            };
            connections.remove(&connection);
            if connections.is_empty() {
                self.present.remove(&party);
                self.mark_away(party, now);
            }
        }
    }

    /// A party with no connection that should be watched anyway (a chat the last run left
    /// waiting, whose widget has not come back): away from `now` unless it is present or
    /// already away.
    pub fn expect(&mut self, party: K, now: DateTime<Utc>) {
        if !self.present.contains_key(&party) && !self.away_since.contains_key(&party) {
            self.mark_away(party, now);
        }
    }

    /// Stops watching a party that is away (its chat ended, the agent chose a status). Its
    /// open connections, if any, are still counted.
    pub fn forget(&mut self, party: K) {
        self.clear_away(party);
    }

    /// A due party the shell decided to keep: away again from `now`, due after another grace.
    pub fn keep(&mut self, party: K, now: DateTime<Utc>) {
        if !self.present.contains_key(&party) {
            self.clear_away(party);
            self.mark_away(party, now);
        }
    }

    /// Whether a party has an open connection.
    pub fn is_present(&self, party: K) -> bool {
        self.present.contains_key(&party)
    }

    /// Since when a party has been away, if it is.
    pub fn away_since(&self, party: K) -> Option<DateTime<Utc>> {
        self.away_since.get(&party).copied()
    }

    /// When the next away party becomes due; `None` when nobody is away.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.away.first().map(|(since, _)| *since + self.grace)
    }

    /// The next party that has been away for the whole grace at `now`, no longer watched once
    /// handed out (the shell `keep`s it to watch it again).
    pub fn poll_due(&mut self, now: DateTime<Utc>) -> Option<K> {
        let &(since, party) = self.away.first()?;
        if since + self.grace > now {
            return None;
        }
        self.clear_away(party);
        Some(party)
    }

    fn mark_away(&mut self, party: K, now: DateTime<Utc>) {
        self.away_since.insert(party, now);
        self.away.insert((now, party));
    }

    fn clear_away(&mut self, party: K) {
        if let Some(since) = self.away_since.remove(&party) {
            self.away.remove(&(since, party));
        }
    }
}

/// Whether an agent whose adapters have all been gone for the grace goes offline: not when they
/// are offline already, and not while a registered SIP phone still reaches them.
pub fn agent_goes_offline(presence: &Presence, has_registered_phone: bool) -> bool {
    *presence != Presence::Offline && !has_registered_phone
}

/// Whether a chat whose consumer has had no connection for the grace is ended as abandoned:
/// only while it waits in a queue (a chat with an agent is the agent's to end).
pub fn chat_is_abandoned(status: ContactStatus) -> bool {
    status == ContactStatus::Queued
}
