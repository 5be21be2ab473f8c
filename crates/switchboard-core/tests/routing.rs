//! Routing engine properties, driven by random operation sequences against a small model.

use crate::{at, uuid};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use std::collections::HashMap;
use switchboard_core::routing::{
    AgentSpec, Assignment, RoutingEngine, RoutingError, WaitingContact, WorkKind,
};
use switchboard_core::{ContactId, Language, QueueId, UserId};

const QUEUES: usize = 4;
const AGENTS: usize = 6;
const LANGS: [&str; 3] = ["en", "fr", "de"];

fn queue_id(q: usize) -> QueueId {
    QueueId::from_uuid(uuid(1000 + q as u64))
}
fn agent_id(a: usize) -> UserId {
    UserId::from_uuid(uuid(2000 + a as u64))
}
fn contact_id(c: u64) -> ContactId {
    ContactId::from_uuid(uuid(3000 + c))
}
fn lang(l: usize) -> Language {
    Language::parse(LANGS[l]).unwrap()
}
/// Queue 0 takes calls, the others chats.
fn queue_kind(q: usize) -> WorkKind {
    if q == 0 {
        WorkKind::Call
    } else {
        WorkKind::Chat
    }
}

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        queue: usize,
        priority: i32,
        language: Option<usize>,
        backdate_secs: i64,
    },
    Routable {
        agent: usize,
        routable: bool,
    },
    Release {
        pick: usize,
    },
    Abandon {
        pick: usize,
    },
    Reconfigure {
        agent: usize,
        queues: Vec<usize>,
        languages: Vec<usize>,
        max_chats: u16,
    },
    Override {
        agent: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..QUEUES, 0..3i32, proptest::option::of(0..LANGS.len()), 0..120i64)
            .prop_map(|(queue, priority, language, backdate_secs)| Op::Enqueue { queue, priority, language, backdate_secs }),
        3 => (0..AGENTS, any::<bool>()).prop_map(|(agent, routable)| Op::Routable { agent, routable }),
        3 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
        1 => (0..AGENTS, proptest::collection::vec(0..QUEUES, 0..3), proptest::collection::vec(0..LANGS.len(), 0..2), 0..4u16)
            .prop_map(|(agent, queues, languages, max_chats)| Op::Reconfigure { agent, queues, languages, max_chats }),
        1 => (0..AGENTS).prop_map(|agent| Op::Override { agent }),
    ]
}

/// A waiting contact as the model keeps it: queue, priority, enqueue time, language, sequence.
type Waiting = (usize, i32, DateTime<Utc>, Option<usize>, u64);

/// What the test knows independently of the engine.
struct Model {
    specs: Vec<AgentSpec>,
    routable: Vec<bool>,
    idle_since: Vec<DateTime<Utc>>,
    /// Contact number -> (queue, priority, enqueued_at, language, sequence)
    waiting: HashMap<u64, Waiting>,
    /// Contact number -> (agent, kind, overridden)
    assigned: HashMap<u64, (usize, WorkKind, bool)>,
}

impl Model {
    fn can_take(&self, agent: usize, queue: usize, language: Option<usize>) -> bool {
        let spec = &self.specs[agent];
        let speaks = match language {
            None => true,
            Some(l) => spec.languages.is_empty() || spec.languages.contains(&lang(l)),
        };
        spec.queues.contains(&queue_id(queue)) && speaks
    }

    fn load(&self, agent: usize, kind: WorkKind) -> u16 {
        self.assigned
            .values()
            .filter(|(a, k, o)| *a == agent && *k == kind && !o)
            .count() as u16
    }

    fn max(&self, agent: usize, kind: WorkKind) -> u16 {
        match kind {
            WorkKind::Call => self.specs[agent].max_calls,
            WorkKind::Chat => self.specs[agent].max_chats,
        }
    }

    fn eligible(&self, agent: usize, kind: WorkKind) -> bool {
        self.routable[agent] && self.load(agent, kind) < self.max(agent, kind)
    }

    fn number_of(&self, contact: ContactId) -> u64 {
        (contact.uuid().as_u64_pair().1) - 3000
    }

    /// Applies the engine's decisions to the model, checking each one.
    fn apply(
        &mut self,
        assignments: &[Assignment],
        now: DateTime<Utc>,
    ) -> Result<(), TestCaseError> {
        for a in assignments {
            let n = self.number_of(a.contact);
            let agent = (a.agent.uuid().as_u64_pair().1 - 2000) as usize;
            prop_assert!(
                !self.assigned.contains_key(&n),
                "contact {n} assigned twice"
            );
            if a.overridden {
                self.assigned.insert(n, (agent, a.kind, true));
                continue;
            }
            let (queue, priority, enqueued, language, seq) = self
                .waiting
                .remove(&n)
                .ok_or_else(|| TestCaseError::fail(format!("contact {n} was not waiting")))?;
            prop_assert!(self.routable[agent], "agent {agent} was not available");
            prop_assert!(
                self.can_take(agent, queue, language),
                "agent {agent} does not serve queue {queue} lang {language:?}"
            );
            prop_assert!(
                self.eligible(agent, a.kind),
                "agent {agent} had no room (load {})",
                self.load(agent, a.kind)
            );
            // Best contact first: nothing still waiting that this agent could take ranks higher.
            for (other, (q, p, e, l, s)) in &self.waiting {
                if queue_kind(*q) == a.kind && self.can_take(agent, *q, *l) {
                    prop_assert!(
                        (-p, *e, *s) > (-priority, enqueued, seq),
                        "agent {agent} took {n} while better contact {other} waits"
                    );
                }
            }
            self.assigned.insert(n, (agent, a.kind, false));
            self.idle_since[agent] = now;
            prop_assert!(self.load(agent, a.kind) <= self.max(agent, a.kind));
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut engine = RoutingEngine::new();
    let start = at(2026, 3, 2, 9, 0);
    for q in 0..QUEUES {
        engine.upsert_queue(queue_id(q), queue_kind(q)).unwrap();
    }
    let mut model = Model {
        specs: Vec::new(),
        routable: vec![false; AGENTS],
        idle_since: vec![start; AGENTS],
        waiting: HashMap::new(),
        assigned: HashMap::new(),
    };
    for a in 0..AGENTS {
        let spec = AgentSpec {
            id: agent_id(a),
            queues: vec![queue_id(a % QUEUES), queue_id((a + 1) % QUEUES)],
            languages: if a % 3 == 0 {
                vec![]
            } else {
                vec![lang(a % LANGS.len())]
            },
            max_calls: 1,
            max_chats: 1 + (a % 3) as u16,
        };
        prop_assert!(engine.upsert_agent(spec.clone(), start).unwrap().is_empty());
        model.specs.push(spec);
    }
    let mut next_contact = 0u64;
    for (step, op) in ops.into_iter().enumerate() {
        let now = start + Duration::seconds(step as i64);
        match op {
            Op::Enqueue {
                queue,
                priority,
                language,
                backdate_secs,
            } => {
                next_contact += 1;
                let enqueued_at = now - Duration::seconds(backdate_secs);
                // Who should get it: the longest-idle eligible agent who can take it.
                let expected = (0..AGENTS)
                    .filter(|&a| {
                        model.eligible(a, queue_kind(queue)) && model.can_take(a, queue, language)
                    })
                    .min_by_key(|&a| (model.idle_since[a], a));
                model.waiting.insert(
                    next_contact,
                    (queue, priority, enqueued_at, language, next_contact),
                );
                let contact = WaitingContact {
                    id: contact_id(next_contact),
                    queue: queue_id(queue),
                    priority,
                    enqueued_at,
                    language: language.map(lang),
                };
                let assignment = engine.enqueue(contact, now).unwrap();
                prop_assert_eq!(
                    assignment.as_ref().map(|a| a.agent),
                    expected.map(agent_id),
                    "longest-idle agent first"
                );
                model.apply(assignment.as_slice(), now)?;
            }
            Op::Routable { agent, routable } => {
                let changed = model.routable[agent] != routable;
                model.routable[agent] = routable;
                if changed && routable {
                    model.idle_since[agent] = now;
                }
                let out = engine.set_routable(agent_id(agent), routable, now).unwrap();
                model.apply(&out, now)?;
            }
            Op::Release { pick } => {
                let mut all: Vec<u64> = model
                    .assigned
                    .keys()
                    .chain(model.waiting.keys())
                    .copied()
                    .collect();
                all.sort_unstable();
                if all.is_empty() {
                    continue;
                }
                let n = all[pick % all.len()];
                model.assigned.remove(&n);
                model.waiting.remove(&n);
                let out = engine.release(contact_id(n), now).unwrap();
                model.apply(&out, now)?;
                prop_assert_eq!(
                    engine.release(contact_id(n), now),
                    Err(RoutingError::UnknownContact(contact_id(n)))
                );
            }
            Op::Abandon { pick } => {
                let mut waiting: Vec<u64> = model.waiting.keys().copied().collect();
                waiting.sort_unstable();
                if let Some(&n) = waiting.get(pick % waiting.len().max(1)) {
                    model.waiting.remove(&n);
                    engine.abandon(contact_id(n)).unwrap();
                }
            }
            Op::Reconfigure {
                agent,
                queues,
                languages,
                max_chats,
            } => {
                let spec = AgentSpec {
                    id: agent_id(agent),
                    queues: queues.into_iter().map(queue_id).collect(),
                    languages: languages.into_iter().map(lang).collect(),
                    max_calls: 1,
                    max_chats,
                };
                model.specs[agent] = spec.clone();
                let out = engine.upsert_agent(spec, now).unwrap();
                model.apply(&out, now)?;
            }
            Op::Override { agent } => {
                next_contact += 1;
                let before = engine.load_of(agent_id(agent));
                let a = engine
                    .assign_override(contact_id(next_contact), agent_id(agent), WorkKind::Call)
                    .unwrap();
                prop_assert!(a.overridden);
                prop_assert_eq!(
                    engine.load_of(agent_id(agent)),
                    before,
                    "overrides do not use capacity"
                );
                model.apply(&[a], now)?;
            }
        }
        engine.audit().map_err(TestCaseError::fail)?;
        prop_assert_eq!(engine.waiting_total(), model.waiting.len());
        for a in 0..AGENTS {
            let (calls, chats) = engine.load_of(agent_id(a)).unwrap();
            prop_assert_eq!(calls, model.load(a, WorkKind::Call));
            prop_assert_eq!(chats, model.load(a, WorkKind::Chat));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn routing_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}

#[test]
fn contacts_of_one_priority_are_served_in_arrival_order() {
    let mut engine = RoutingEngine::new();
    let t = at(2026, 3, 2, 9, 0);
    engine.upsert_queue(queue_id(1), WorkKind::Chat).unwrap();
    let spec = AgentSpec {
        id: agent_id(1),
        queues: vec![queue_id(1)],
        languages: vec![],
        max_calls: 0,
        max_chats: 1,
    };
    engine.upsert_agent(spec, t).unwrap();
    for n in 1..=50 {
        let contact = WaitingContact {
            id: contact_id(n),
            queue: queue_id(1),
            priority: 0,
            enqueued_at: t,
            language: None,
        };
        assert_eq!(engine.enqueue(contact, t).unwrap(), None);
    }
    // A higher-priority contact arriving last is served first, then the others in order.
    let urgent = WaitingContact {
        id: contact_id(99),
        queue: queue_id(1),
        priority: 5,
        enqueued_at: t,
        language: None,
    };
    engine.enqueue(urgent, t).unwrap();
    assert_eq!(engine.position(contact_id(99)), Some(0));
    assert_eq!(engine.position(contact_id(1)), Some(1));
    let mut served = engine.set_routable(agent_id(1), true, t).unwrap();
    let mut order = Vec::new();
    while let Some(a) = served.pop() {
        order.push(a.contact);
        served = engine.release(a.contact, t).unwrap();
    }
    let expected: Vec<ContactId> = std::iter::once(99).chain(1..=50).map(contact_id).collect();
    assert_eq!(order, expected);
}

#[test]
fn unknown_references_are_refused_without_changing_anything() {
    let mut engine = RoutingEngine::new();
    let t = at(2026, 3, 2, 9, 0);
    let contact = WaitingContact {
        id: contact_id(1),
        queue: queue_id(7),
        priority: 0,
        enqueued_at: t,
        language: None,
    };
    assert_eq!(
        engine.enqueue(contact, t),
        Err(RoutingError::UnknownQueue(queue_id(7)))
    );
    assert_eq!(engine.waiting_total(), 0);
    let spec = AgentSpec {
        id: agent_id(1),
        queues: vec![queue_id(7)],
        languages: vec![],
        max_calls: 1,
        max_chats: 1,
    };
    assert_eq!(
        engine.upsert_agent(spec, t),
        Err(RoutingError::UnknownQueue(queue_id(7)))
    );
    assert_eq!(
        engine.set_routable(agent_id(1), true, t),
        Err(RoutingError::UnknownAgent(agent_id(1)))
    );
    engine.upsert_queue(queue_id(7), WorkKind::Chat).unwrap();
    let contact = WaitingContact {
        id: contact_id(1),
        queue: queue_id(7),
        priority: 0,
        enqueued_at: t,
        language: None,
    };
    engine.enqueue(contact.clone(), t).unwrap();
    assert_eq!(
        engine.enqueue(contact, t),
        Err(RoutingError::DuplicateContact(contact_id(1)))
    );
    assert_eq!(
        engine.upsert_queue(queue_id(7), WorkKind::Call),
        Err(RoutingError::QueueNotEmpty(queue_id(7)))
    );
    engine.audit().unwrap();
}

#[test]
fn direct_assignment_respects_presence_and_capacity() {
    let mut engine = RoutingEngine::new();
    let t = at(2026, 3, 2, 9, 0);
    engine.upsert_queue(queue_id(1), WorkKind::Chat).unwrap();
    let spec = AgentSpec {
        id: agent_id(1),
        queues: vec![],
        languages: vec![],
        max_calls: 0,
        max_chats: 1,
    };
    engine.upsert_agent(spec, t).unwrap();
    assert_eq!(
        engine.assign_direct(
            contact_id(1),
            agent_id(1),
            Some(queue_id(1)),
            WorkKind::Chat,
            t
        ),
        Err(RoutingError::AgentUnavailable(agent_id(1))),
        "not available"
    );
    engine.set_routable(agent_id(1), true, t).unwrap();
    let a = engine
        .assign_direct(
            contact_id(1),
            agent_id(1),
            Some(queue_id(1)),
            WorkKind::Chat,
            t,
        )
        .unwrap();
    assert!(!a.overridden);
    assert_eq!(engine.load_of(agent_id(1)), Some((0, 1)));
    assert_eq!(
        engine.assign_direct(contact_id(2), agent_id(1), None, WorkKind::Chat, t),
        Err(RoutingError::AgentUnavailable(agent_id(1))),
        "full"
    );
    engine.audit().unwrap();
    engine.release(contact_id(1), t).unwrap();
    assert_eq!(engine.load_of(agent_id(1)), Some((0, 0)));
    engine.audit().unwrap();
}
