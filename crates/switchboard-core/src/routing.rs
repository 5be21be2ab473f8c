//! The routing engine: waiting contacts and agents in, assignments out.
//!
//! Rules:
//! - Among the agents who can take a contact, the one idle longest gets it. An agent's idle
//!   time starts when they become available and restarts with each assignment, so agents with
//!   room for several chats are served in turn.
//! - Among the contacts an agent can take, the highest priority goes first, then the one that
//!   has waited longest (its enqueue time), then the one enqueued first.
//! - An agent takes a contact only when their presence is routable and they have room for one
//!   more of its kind (calls or chats) under their capacity profile, in one of their queues,
//!   and in a language they serve (an agent with no languages serves every language).
//! - An override assignment (an emergency callback, EMG-4) goes to one named agent at once,
//!   whatever their presence and capacity; it is not counted against capacity.
//!
//! Layout: every leaf queue keeps one bucket of waiting contacts per language (ordered by
//! priority, age, sequence) and one set of eligible agents per language (ordered by idle time).
//! Between calls the engine is at rest: no waiting contact has an eligible agent. A new contact
//! therefore only looks at its own queue's agent sets, and an agent who frees up only looks at
//! the heads of the buckets of its own queues, so a decision costs a few ordered-map look-ups
//! whatever the number of agents and contacts.

use crate::ids::{ContactId, QueueId, UserId};
use crate::text::Language;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which capacity a contact uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WorkKind {
    Call = 0,
    Chat = 1,
}

const KINDS: [WorkKind; 2] = [WorkKind::Call, WorkKind::Chat];

/// An agent as routing sees them.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSpec {
    pub id: UserId,
    /// Leaf queues the agent takes contacts from.
    pub queues: Vec<QueueId>,
    /// Languages served; empty means every language.
    pub languages: Vec<Language>,
    pub max_calls: u16,
    pub max_chats: u16,
}

/// A contact that asks for an agent.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitingContact {
    pub id: ContactId,
    pub queue: QueueId,
    /// Higher is served first; within a priority, the longest waiting first.
    pub priority: i32,
    /// When the contact started waiting (kept across a transfer so it does not lose its place).
    pub enqueued_at: DateTime<Utc>,
    /// The language asked for; `None` accepts any agent of the queue.
    pub language: Option<Language>,
}

/// A decision: this contact goes to this agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub contact: ContactId,
    pub agent: UserId,
    /// The queue the contact waited in; `None` for an override.
    pub queue: Option<QueueId>,
    pub kind: WorkKind,
    /// Whether presence and capacity were bypassed (EMG-4).
    pub overridden: bool,
}

/// A request the engine refused; the engine is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("queue {0} is not known to routing")]
    UnknownQueue(QueueId),
    #[error("agent {0} is not known to routing")]
    UnknownAgent(UserId),
    #[error("contact {0} is not known to routing")]
    UnknownContact(ContactId),
    #[error("contact {0} is already waiting or assigned")]
    DuplicateContact(ContactId),
    #[error("queue {0} still has waiting contacts")]
    QueueNotEmpty(QueueId),
    #[error("agent {0} is not available or has no room for another contact of that kind")]
    AgentUnavailable(UserId),
}

type AgentIx = u32;
type ContactIx = u32;
type QueueIx = u32;
/// Index into a queue's per-language buckets and agent sets.
type LangIx = usize;
/// The agent set of every eligible agent of a queue (for contacts that name no language).
const ANY: LangIx = 0;
/// The agent set of eligible agents who serve every language.
const EVERY: LangIx = 1;
const FIRST_LANGUAGE: LangIx = 2;

/// Orders waiting contacts: higher priority, then older, then enqueued first.
type ContactKey = (Reverse<i32>, i64, u64);
/// Orders eligible agents: idle longest first.
type AgentKey = (i64, AgentIx);

struct AgentSlot {
    id: UserId,
    /// False once the agent is removed; the slot stays so that releases still balance.
    live: bool,
    routable: bool,
    queues: Vec<QueueIx>,
    /// Specific languages served; empty means every language.
    languages: Vec<LangIx>,
    max: [u16; 2],
    in_use: [u16; 2],
    override_in_use: [u16; 2],
    /// Milliseconds since the epoch when the agent's idle time began.
    idle_since: i64,
    /// Whether the agent is in the agent sets of its queues of each kind.
    listed: [bool; 2],
}

impl AgentSlot {
    fn eligible(&self, kind: WorkKind) -> bool {
        self.live && self.routable && self.in_use[kind as usize] < self.max[kind as usize]
    }

    /// The agent sets this agent belongs to in a queue.
    fn sets(&self) -> impl Iterator<Item = LangIx> + '_ {
        let own: &[LangIx] = &self.languages;
        let every = own.is_empty().then_some(EVERY);
        std::iter::once(ANY).chain(every).chain(own.iter().copied())
    }
}

enum ContactState {
    Waiting {
        key: ContactKey,
        lang: LangIx,
    },
    Assigned {
        agent: AgentIx,
        kind: WorkKind,
        overridden: bool,
    },
}

struct ContactSlot {
    id: ContactId,
    queue: Option<QueueIx>,
    state: ContactState,
}

struct QueueSlot {
    id: QueueId,
    kind: WorkKind,
    /// Waiting contacts per language index (ANY holds contacts that name no language).
    buckets: Vec<BTreeMap<ContactKey, ContactIx>>,
    /// Eligible agents per language index (see ANY, EVERY).
    agents: Vec<BTreeSet<AgentKey>>,
    waiting: usize,
}

impl QueueSlot {
    fn bucket(&mut self, lang: LangIx) -> &mut BTreeMap<ContactKey, ContactIx> {
        if self.buckets.len() <= lang {
            self.buckets.resize_with(lang + 1, BTreeMap::new);
        }
        &mut self.buckets[lang]
    }

    fn agent_set(&mut self, lang: LangIx) -> &mut BTreeSet<AgentKey> {
        if self.agents.len() <= lang {
            self.agents.resize_with(lang + 1, BTreeSet::new);
        }
        &mut self.agents[lang]
    }

    fn first_agent(&self, lang: LangIx) -> Option<AgentKey> {
        self.agents.get(lang).and_then(|set| set.first().copied())
    }
}

/// The routing engine. See the module documentation for the rules.
#[derive(Default)]
pub struct RoutingEngine {
    agents: Vec<AgentSlot>,
    agent_index: HashMap<UserId, AgentIx>,
    contacts: Vec<Option<ContactSlot>>,
    free_contacts: Vec<ContactIx>,
    contact_index: HashMap<ContactId, ContactIx>,
    queues: Vec<QueueSlot>,
    queue_index: HashMap<QueueId, QueueIx>,
    languages: HashMap<Language, LangIx>,
    sequence: u64,
}

impl RoutingEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a leaf queue, or changes its kind when nothing waits in it.
    pub fn upsert_queue(&mut self, id: QueueId, kind: WorkKind) -> Result<(), RoutingError> {
        if let Some(&ix) = self.queue_index.get(&id) {
            let queue = &mut self.queues[ix as usize];
            if queue.kind != kind {
                if queue.waiting > 0 {
                    return Err(RoutingError::QueueNotEmpty(id));
                }
                queue.kind = kind;
                // Agents were listed by the old kind; list them again by the new one.
                let members: Vec<AgentIx> = self.members_of(ix);
                for agent in members {
                    self.unlist(agent);
                    self.list(agent);
                }
            }
            return Ok(());
        }
        let ix = self.queues.len() as QueueIx;
        self.queues.push(QueueSlot {
            id,
            kind,
            buckets: Vec::new(),
            agents: Vec::new(),
            waiting: 0,
        });
        self.queue_index.insert(id, ix);
        Ok(())
    }

    fn members_of(&self, queue: QueueIx) -> Vec<AgentIx> {
        (0..self.agents.len() as AgentIx)
            .filter(|&a| self.agents[a as usize].queues.contains(&queue))
            .collect()
    }

    /// Adds an agent or changes their queues, languages and capacity. A new agent starts
    /// not routable. Returns the contacts the change routes to them.
    pub fn upsert_agent(
        &mut self,
        spec: AgentSpec,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RoutingError> {
        let queues = spec
            .queues
            .iter()
            .map(|q| {
                self.queue_index
                    .get(q)
                    .copied()
                    .ok_or(RoutingError::UnknownQueue(*q))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let languages: Vec<LangIx> = spec
            .languages
            .iter()
            .map(|l| self.language_index(l))
            .collect();
        let max = [spec.max_calls, spec.max_chats];
        let ix = match self.agent_index.get(&spec.id) {
            Some(&ix) => {
                self.unlist(ix);
                let agent = &mut self.agents[ix as usize];
                agent.live = true;
                agent.queues = queues;
                agent.languages = languages;
                agent.max = max;
                ix
            }
            None => {
                let ix = self.agents.len() as AgentIx;
                self.agents.push(AgentSlot {
                    id: spec.id,
                    live: true,
                    routable: false,
                    queues,
                    languages,
                    max,
                    in_use: [0; 2],
                    override_in_use: [0; 2],
                    idle_since: now.timestamp_millis(),
                    listed: [false; 2],
                });
                self.agent_index.insert(spec.id, ix);
                ix
            }
        };
        let mut out = Vec::new();
        self.offer_agent(ix, now, &mut out);
        Ok(out)
    }

    /// Removes an agent from routing (disabled or deleted). Contacts already assigned to them
    /// stay assigned until released.
    pub fn remove_agent(&mut self, id: UserId) -> Result<(), RoutingError> {
        let ix = *self
            .agent_index
            .get(&id)
            .ok_or(RoutingError::UnknownAgent(id))?;
        self.unlist(ix);
        self.agents[ix as usize].live = false;
        Ok(())
    }

    /// Sets whether the agent's presence is routable. Becoming routable starts their idle time
    /// and may route waiting contacts to them at once.
    pub fn set_routable(
        &mut self,
        id: UserId,
        routable: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RoutingError> {
        let ix = *self
            .agent_index
            .get(&id)
            .ok_or(RoutingError::UnknownAgent(id))?;
        let mut out = Vec::new();
        if self.agents[ix as usize].routable == routable {
            return Ok(out);
        }
        self.unlist(ix);
        let agent = &mut self.agents[ix as usize];
        agent.routable = routable;
        if routable {
            agent.idle_since = now.timestamp_millis();
        }
        self.offer_agent(ix, now, &mut out);
        Ok(out)
    }

    /// A contact starts waiting in a leaf queue. Returns its assignment when an agent can take
    /// it now.
    pub fn enqueue(
        &mut self,
        contact: WaitingContact,
        now: DateTime<Utc>,
    ) -> Result<Option<Assignment>, RoutingError> {
        if self.contact_index.contains_key(&contact.id) {
            return Err(RoutingError::DuplicateContact(contact.id));
        }
        let qix = *self
            .queue_index
            .get(&contact.queue)
            .ok_or(RoutingError::UnknownQueue(contact.queue))?;
        let lang = match &contact.language {
            Some(language) => self.language_index(language),
            None => ANY,
        };
        self.sequence += 1;
        let key: ContactKey = (
            Reverse(contact.priority),
            contact.enqueued_at.timestamp_millis(),
            self.sequence,
        );
        let cix = self.new_contact_slot(ContactSlot {
            id: contact.id,
            queue: Some(qix),
            state: ContactState::Waiting { key, lang },
        });
        let queue = &self.queues[qix as usize];
        // At rest, nobody in these sets has a waiting contact they could take instead, so the
        // longest-idle of them may take this one.
        let candidate = if lang == ANY {
            queue.first_agent(ANY)
        } else {
            match (queue.first_agent(lang), queue.first_agent(EVERY)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        let queue = &mut self.queues[qix as usize];
        queue.bucket(lang).insert(key, cix);
        queue.waiting += 1;
        let Some((_, agent)) = candidate else {
            return Ok(None);
        };
        let kind = queue.kind;
        self.unlist(agent);
        let assignment = self.assign(cix, agent, kind, now);
        self.list(agent);
        Ok(Some(assignment))
    }

    /// Assigns a contact straight to one agent, bypassing routing rules, presence and
    /// capacity (the emergency callback, EMG-4).
    pub fn assign_override(
        &mut self,
        contact: ContactId,
        agent: UserId,
        kind: WorkKind,
    ) -> Result<Assignment, RoutingError> {
        let (aix, _) = self.direct_target(contact, agent, None)?;
        self.hold(contact, aix, None, kind, true, None);
        Ok(Assignment {
            contact,
            agent,
            queue: None,
            kind,
            overridden: true,
        })
    }

    /// Records a contact that was already with an agent (when routing state is rebuilt after a
    /// restart). It uses the agent's capacity like any routed contact, even beyond the limit
    /// if the limit was lowered meanwhile.
    pub fn restore_assigned(
        &mut self,
        contact: ContactId,
        agent: UserId,
        queue: Option<QueueId>,
        kind: WorkKind,
        overridden: bool,
    ) -> Result<(), RoutingError> {
        let (aix, qix) = self.direct_target(contact, agent, queue)?;
        self.hold(contact, aix, qix, kind, overridden, None);
        Ok(())
    }

    /// Gives a contact that is not in routing straight to one agent (a transfer to a named
    /// agent), only if they are available and have room under their capacity.
    pub fn assign_direct(
        &mut self,
        contact: ContactId,
        agent: UserId,
        queue: Option<QueueId>,
        kind: WorkKind,
        now: DateTime<Utc>,
    ) -> Result<Assignment, RoutingError> {
        let (aix, qix) = self.direct_target(contact, agent, queue)?;
        if !self.agents[aix as usize].eligible(kind) {
            return Err(RoutingError::AgentUnavailable(agent));
        }
        self.hold(contact, aix, qix, kind, false, Some(now.timestamp_millis()));
        Ok(Assignment {
            contact,
            agent,
            queue,
            kind,
            overridden: false,
        })
    }

    /// Checks a contact that goes straight to an agent: new to routing, agent and queue known.
    fn direct_target(
        &self,
        contact: ContactId,
        agent: UserId,
        queue: Option<QueueId>,
    ) -> Result<(AgentIx, Option<QueueIx>), RoutingError> {
        if self.contact_index.contains_key(&contact) {
            return Err(RoutingError::DuplicateContact(contact));
        }
        let aix = *self
            .agent_index
            .get(&agent)
            .ok_or(RoutingError::UnknownAgent(agent))?;
        let qix = queue
            .map(|q| {
                self.queue_index
                    .get(&q)
                    .copied()
                    .ok_or(RoutingError::UnknownQueue(q))
            })
            .transpose()?;
        Ok((aix, qix))
    }

    /// Records a contact as held by an agent: within capacity, or beside it when overridden.
    /// `idle_since` restarts the agent's idle time (a routed assignment does; a restore does not).
    fn hold(
        &mut self,
        contact: ContactId,
        aix: AgentIx,
        queue: Option<QueueIx>,
        kind: WorkKind,
        overridden: bool,
        idle_since: Option<i64>,
    ) {
        self.unlist(aix);
        self.new_contact_slot(ContactSlot {
            id: contact,
            queue,
            state: ContactState::Assigned {
                agent: aix,
                kind,
                overridden,
            },
        });
        let slot = &mut self.agents[aix as usize];
        let counter = if overridden {
            &mut slot.override_in_use
        } else {
            &mut slot.in_use
        };
        counter[kind as usize] += 1;
        if let Some(at) = idle_since {
            slot.idle_since = at;
        }
        self.list(aix);
    }

    /// A waiting contact leaves its queue (hang-up, abandon, deflection).
    pub fn abandon(&mut self, contact: ContactId) -> Result<(), RoutingError> {
        let cix = *self
            .contact_index
            .get(&contact)
            .ok_or(RoutingError::UnknownContact(contact))?;
        let slot = self.contacts[cix as usize]
            .as_ref()
            .ok_or(RoutingError::UnknownContact(contact))?;
        match slot.state {
            ContactState::Waiting { .. } => {
                self.remove_waiting(cix);
                self.free_contact_slot(cix);
                Ok(())
            }
            ContactState::Assigned { .. } => Err(RoutingError::DuplicateContact(contact)),
        }
    }

    /// A contact ends, waiting or assigned. An assigned contact frees its agent's capacity,
    /// which may route the agent their next contact at once.
    pub fn release(
        &mut self,
        contact: ContactId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RoutingError> {
        let cix = *self
            .contact_index
            .get(&contact)
            .ok_or(RoutingError::UnknownContact(contact))?;
        let slot = self.contacts[cix as usize]
            .as_ref()
            .ok_or(RoutingError::UnknownContact(contact))?;
        let mut out = Vec::new();
        match slot.state {
            ContactState::Waiting { .. } => {
                self.remove_waiting(cix);
                self.free_contact_slot(cix);
            }
            ContactState::Assigned {
                agent,
                kind,
                overridden,
            } => {
                self.free_contact_slot(cix);
                self.unlist(agent);
                let slot = &mut self.agents[agent as usize];
                let counter = if overridden {
                    &mut slot.override_in_use
                } else {
                    &mut slot.in_use
                };
                counter[kind as usize] = counter[kind as usize].saturating_sub(1);
                self.offer_agent(agent, now, &mut out);
            }
        }
        Ok(out)
    }

    /// How many contacts wait ahead of this one in its queue (0 = next).
    pub fn position(&self, contact: ContactId) -> Option<usize> {
        let cix = *self.contact_index.get(&contact)?;
        let slot = self.contacts[cix as usize].as_ref()?;
        let ContactState::Waiting { key, .. } = slot.state else {
            return None;
        };
        let queue = &self.queues[slot.queue? as usize];
        Some(
            queue
                .buckets
                .iter()
                .map(|bucket| bucket.range(..key).count())
                .sum(),
        )
    }

    /// How many contacts wait in a queue.
    pub fn waiting_in(&self, queue: QueueId) -> usize {
        self.queue_index
            .get(&queue)
            .map_or(0, |&ix| self.queues[ix as usize].waiting)
    }

    /// How many contacts wait in all queues.
    pub fn waiting_total(&self) -> usize {
        self.queues.iter().map(|q| q.waiting).sum()
    }

    /// The agent a contact is assigned to, if it is.
    pub fn agent_of(&self, contact: ContactId) -> Option<UserId> {
        let cix = *self.contact_index.get(&contact)?;
        match self.contacts[cix as usize].as_ref()?.state {
            ContactState::Assigned { agent, .. } => Some(self.agents[agent as usize].id),
            ContactState::Waiting { .. } => None,
        }
    }

    /// Contacts of each kind an agent holds within capacity, as `(calls, chats)`.
    pub fn load_of(&self, agent: UserId) -> Option<(u16, u16)> {
        let slot = &self.agents[*self.agent_index.get(&agent)? as usize];
        Some((slot.in_use[0], slot.in_use[1]))
    }

    /// Checks every internal invariant; for tests and debugging. Costs a full scan.
    pub fn audit(&self) -> Result<(), String> {
        for (ix, agent) in self.agents.iter().enumerate() {
            for kind in KINDS {
                let k = kind as usize;
                if agent.listed[k] != agent.eligible(kind) {
                    return Err(format!(
                        "agent {:?} listing for {kind:?} is stale",
                        agent.id
                    ));
                }
            }
            let assigned = self
                .contacts
                .iter()
                .flatten()
                .filter(|c| matches!(c.state, ContactState::Assigned { agent, overridden: false, .. } if agent as usize == ix))
                .count();
            if assigned != (agent.in_use[0] + agent.in_use[1]) as usize {
                return Err(format!(
                    "agent {:?} load {:?} but {assigned} contacts",
                    agent.id, agent.in_use
                ));
            }
        }
        for slot in self.contacts.iter().flatten() {
            let ContactState::Waiting { lang, .. } = slot.state else {
                continue;
            };
            let Some(qix) = slot.queue else {
                return Err("waiting contact without queue".into());
            };
            let queue = &self.queues[qix as usize];
            for agent in &self.agents {
                let speaks =
                    lang == ANY || agent.languages.is_empty() || agent.languages.contains(&lang);
                if agent.eligible(queue.kind) && agent.queues.contains(&qix) && speaks {
                    return Err(format!(
                        "contact {:?} waits while agent {:?} could take it",
                        slot.id, agent.id
                    ));
                }
            }
        }
        let waiting: usize = self
            .queues
            .iter()
            .map(|q| q.buckets.iter().map(BTreeMap::len).sum::<usize>())
            .sum();
        if waiting != self.waiting_total() {
            return Err("waiting counters disagree with buckets".into());
        }
        Ok(())
    }

    fn language_index(&mut self, language: &Language) -> LangIx {
        let next = FIRST_LANGUAGE + self.languages.len();
        *self.languages.entry(language.clone()).or_insert(next)
    }

    fn new_contact_slot(&mut self, slot: ContactSlot) -> ContactIx {
        let id = slot.id;
        let ix = match self.free_contacts.pop() {
            Some(ix) => {
                self.contacts[ix as usize] = Some(slot);
                ix
            }
            None => {
                self.contacts.push(Some(slot));
                (self.contacts.len() - 1) as ContactIx
            }
        };
        self.contact_index.insert(id, ix);
        ix
    }

    fn free_contact_slot(&mut self, ix: ContactIx) {
        if let Some(slot) = self.contacts[ix as usize].take() {
            self.contact_index.remove(&slot.id);
            self.free_contacts.push(ix);
        }
    }

    fn remove_waiting(&mut self, cix: ContactIx) {
        let Some(slot) = self.contacts[cix as usize].as_ref() else {
            return;
        };
        if let (ContactState::Waiting { key, lang }, Some(qix)) = (&slot.state, slot.queue) {
            let queue = &mut self.queues[qix as usize];
            if queue.bucket(*lang).remove(key).is_some() {
                queue.waiting -= 1;
            }
        }
    }

    /// Moves a waiting contact to an agent who is not listed. The caller lists them again.
    fn assign(
        &mut self,
        cix: ContactIx,
        agent: AgentIx,
        kind: WorkKind,
        now: DateTime<Utc>,
    ) -> Assignment {
        self.remove_waiting(cix);
        let slot = self.contacts[cix as usize]
            .as_mut()
            .expect("assign is called with a live contact slot");
        slot.state = ContactState::Assigned {
            agent,
            kind,
            overridden: false,
        };
        let contact = slot.id;
        let queue = slot.queue.map(|q| self.queues[q as usize].id);
        let agent_slot = &mut self.agents[agent as usize];
        agent_slot.in_use[kind as usize] += 1;
        agent_slot.idle_since = now.timestamp_millis();
        Assignment {
            contact,
            agent: agent_slot.id,
            queue,
            kind,
            overridden: false,
        }
    }

    /// Gives an unlisted agent the best waiting contacts they can take, one at a time, then
    /// lists them for what room they have left.
    fn offer_agent(&mut self, ix: AgentIx, now: DateTime<Utc>, out: &mut Vec<Assignment>) {
        loop {
            let agent = &self.agents[ix as usize];
            let mut best: Option<(ContactKey, ContactIx, WorkKind)> = None;
            for &qix in &agent.queues {
                let queue = &self.queues[qix as usize];
                if !agent.eligible(queue.kind) {
                    continue;
                }
                let mut consider = |bucket: Option<&BTreeMap<ContactKey, ContactIx>>| {
                    if let Some((key, &cix)) = bucket.and_then(BTreeMap::first_key_value) {
                        if best.is_none_or(|(best_key, _, _)| *key < best_key) {
                            best = Some((*key, cix, queue.kind));
                        }
                    }
                };
                if agent.languages.is_empty() {
                    queue.buckets.iter().for_each(|b| consider(Some(b)));
                } else {
                    consider(queue.buckets.get(ANY));
                    agent
                        .languages
                        .iter()
                        .for_each(|&l| consider(queue.buckets.get(l)));
                }
            }
            match best {
                Some((_, cix, kind)) => out.push(self.assign(cix, ix, kind, now)),
                None => break,
            }
        }
        self.list(ix);
    }

    /// Puts the agent in the agent sets of every queue they are eligible for.
    fn list(&mut self, ix: AgentIx) {
        for kind in KINDS {
            let agent = &self.agents[ix as usize];
            if !agent.listed[kind as usize] && agent.eligible(kind) {
                self.set_listing(ix, kind, true);
            }
        }
    }

    /// Takes the agent out of every agent set (before their key or eligibility changes).
    fn unlist(&mut self, ix: AgentIx) {
        for kind in KINDS {
            if self.agents[ix as usize].listed[kind as usize] {
                self.set_listing(ix, kind, false);
            }
        }
    }

    /// Inserts the agent into (or removes them from) the agent sets of their queues of `kind`.
    fn set_listing(&mut self, ix: AgentIx, kind: WorkKind, listed: bool) {
        let agent = &self.agents[ix as usize];
        let key = (agent.idle_since, ix);
        let sets: Vec<LangIx> = agent.sets().collect();
        for &qix in &agent.queues {
            let queue = &mut self.queues[qix as usize];
            if queue.kind != kind {
                continue;
            }
            for &lang in &sets {
                let set = queue.agent_set(lang);
                if listed {
                    set.insert(key);
                } else {
                    set.remove(&key);
                }
            }
        }
        self.agents[ix as usize].listed[kind as usize] = listed;
    }
}
