//! The contact service as the engine sees it, modelled on the real one with the core's routing
//! engine: longest-idle agents, capacity of one call each, missed calls make the agent not
//! ready and return the contact to its queue keeping its place, transfers to queues and agents.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use switchboard_call::{
    ContactEvent, Input, RoutingRefusal, RoutingRequest, RoutingResult, RoutingTarget,
};
use switchboard_core::routing::{AgentSpec, Assignment, RoutingEngine, WaitingContact, WorkKind};
use switchboard_core::{ContactId, QueueId, UserId};

struct Open {
    queue: QueueId,
    enqueued_at: DateTime<Utc>,
    agent: Option<UserId>,
}

pub struct Routing {
    engine: RoutingEngine,
    open: HashMap<ContactId, Open>,
    /// Agents made not ready after a missed call, in order.
    pub not_ready: Vec<UserId>,
    /// Contacts the engine ended, with the reason.
    pub ended: Vec<(ContactId, &'static str)>,
    /// Outbound contacts opened for agents' own calls.
    pub outbound: Vec<(ContactId, UserId)>,
    /// Refuse the next enqueue with this.
    pub refuse: Option<RoutingRefusal>,
    /// Answer transfers before announcing the change (the other order of the real service's
    /// two channels).
    pub answer_first: bool,
}

impl Routing {
    pub fn new(queues: &[QueueId], agents: &[(UserId, Vec<QueueId>)], now: DateTime<Utc>) -> Self {
        let mut engine = RoutingEngine::new();
        for queue in queues {
            engine
                .upsert_queue(*queue, WorkKind::Call)
                .expect("a new queue");
        }
        for (agent, queues) in agents {
            let spec = AgentSpec {
                id: *agent,
                queues: queues.clone(),
                languages: Vec::new(),
                max_calls: 1,
                max_chats: 0,
            };
            engine.upsert_agent(spec, now).expect("a new agent");
        }
        Routing {
            engine,
            open: HashMap::new(),
            not_ready: Vec::new(),
            ended: Vec::new(),
            outbound: Vec::new(),
            refuse: None,
            answer_first: false,
        }
    }

    /// Makes an agent available (routable), which may assign them a waiting call.
    pub fn available(&mut self, agent: UserId, now: DateTime<Utc>) -> Vec<Input> {
        let decided = self
            .engine
            .set_routable(agent, true, now)
            .expect("a known agent");
        self.assigned(decided)
    }

    /// Makes an agent not routable (on a break).
    pub fn unavailable(&mut self, agent: UserId, now: DateTime<Utc>) {
        self.engine
            .set_routable(agent, false, now)
            .expect("a known agent");
    }

    pub fn agent_of(&self, contact: ContactId) -> Option<UserId> {
        self.open.get(&contact).and_then(|o| o.agent)
    }

    fn assigned(&mut self, decided: Vec<Assignment>) -> Vec<Input> {
        decided
            .into_iter()
            .map(|a| {
                if let Some(open) = self.open.get_mut(&a.contact) {
                    open.agent = Some(a.agent);
                }
                Input::Contact(ContactEvent::Assigned {
                    contact: a.contact,
                    agent: a.agent,
                })
            })
            .collect()
    }

    fn requeue(&mut self, contact: ContactId, queue: QueueId, now: DateTime<Utc>) -> Vec<Input> {
        let Some(open) = self.open.get_mut(&contact) else {
            return Vec::new();
        };
        open.agent = None;
        open.queue = queue;
        let waiting = WaitingContact {
            id: contact,
            queue,
            priority: 0,
            enqueued_at: open.enqueued_at,
            language: None,
        };
        let decided = self.engine.enqueue(waiting, now).expect("a known queue");
        self.assigned(decided.into_iter().collect())
    }

    pub fn handle(&mut self, now: DateTime<Utc>, request: RoutingRequest) -> Vec<Input> {
        match request {
            RoutingRequest::Enqueue {
                call,
                contact,
                queue,
                ..
            } => {
                if let Some(refusal) = self.refuse.take() {
                    return vec![Input::Routing(RoutingResult::Enqueued {
                        call,
                        result: Err(refusal),
                    })];
                }
                self.open.insert(
                    contact,
                    Open {
                        queue,
                        enqueued_at: now,
                        agent: None,
                    },
                );
                let waiting = WaitingContact {
                    id: contact,
                    queue,
                    priority: 0,
                    enqueued_at: now,
                    language: None,
                };
                let decided = self.engine.enqueue(waiting, now).expect("a known queue");
                let mut out = vec![Input::Routing(RoutingResult::Enqueued {
                    call,
                    result: Ok(()),
                })];
                out.extend(self.assigned(decided.into_iter().collect()));
                out
            }
            RoutingRequest::End { contact, reason } => {
                self.ended.push((contact, reason));
                self.open.remove(&contact);
                let decided = self.engine.release(contact, now).unwrap_or_default();
                let mut out = vec![Input::Contact(ContactEvent::Ended {
                    contact,
                    by_user: false,
                })];
                out.extend(self.assigned(decided));
                out
            }
            RoutingRequest::Missed { contact, agent } => {
                self.not_ready.push(agent);
                self.engine
                    .set_routable(agent, false, now)
                    .expect("a known agent");
                let Some(queue) = self.open.get(&contact).map(|o| o.queue) else {
                    return Vec::new();
                };
                let released = self.engine.release(contact, now).unwrap_or_default();
                let mut out = self.assigned(released);
                out.insert(
                    0,
                    Input::Contact(ContactEvent::Requeued {
                        contact,
                        queue: Some(queue),
                        from: agent,
                    }),
                );
                out.extend(self.requeue(contact, queue, now));
                out
            }
            RoutingRequest::Transfer {
                op,
                contact,
                target,
            } => {
                let Some(from) = self.agent_of(contact) else {
                    return vec![Input::Routing(RoutingResult::Transferred {
                        op,
                        result: Err(RoutingRefusal::NotAssigned),
                    })];
                };
                let queue = self.open.get(&contact).map(|o| o.queue);
                let mut changes = Vec::new();
                let result = match target {
                    RoutingTarget::Queue(queue) => {
                        let released = self.engine.release(contact, now).unwrap_or_default();
                        changes.extend(self.assigned(released));
                        changes.insert(
                            0,
                            Input::Contact(ContactEvent::Requeued {
                                contact,
                                queue: Some(queue),
                                from,
                            }),
                        );
                        changes.extend(self.requeue(contact, queue, now));
                        Ok(())
                    }
                    RoutingTarget::Agent(agent) if agent == from => {
                        Err(RoutingRefusal::AgentUnavailable)
                    }
                    RoutingTarget::Agent(agent) => {
                        let released = self.engine.release(contact, now).unwrap_or_default();
                        match self
                            .engine
                            .assign_direct(contact, agent, queue, WorkKind::Call, now)
                        {
                            Ok(_) => {
                                if let Some(open) = self.open.get_mut(&contact) {
                                    open.agent = Some(agent);
                                }
                                changes.push(Input::Contact(ContactEvent::Handed {
                                    contact,
                                    agent,
                                    from,
                                }));
                                changes.extend(self.assigned(released));
                                Ok(())
                            }
                            Err(_) => {
                                self.engine
                                    .restore_assigned(contact, from, queue, WorkKind::Call, false)
                                    .expect("back to the agent who had it");
                                changes.extend(self.assigned(released));
                                Err(RoutingRefusal::AgentUnavailable)
                            }
                        }
                    }
                };
                let answer = Input::Routing(RoutingResult::Transferred { op, result });
                if self.answer_first {
                    changes.insert(0, answer);
                } else {
                    changes.push(answer);
                }
                changes
            }
            RoutingRequest::Outbound {
                call,
                contact,
                agent,
                ..
            } => {
                self.open.insert(
                    contact,
                    Open {
                        queue: QueueId::from_uuid(uuid::Uuid::nil()),
                        enqueued_at: now,
                        agent: Some(agent),
                    },
                );
                let result = self
                    .engine
                    .assign_override(contact, agent, WorkKind::Call)
                    .map(|_| ())
                    .map_err(|_| RoutingRefusal::AgentUnavailable);
                self.outbound.push((contact, agent));
                vec![Input::Routing(RoutingResult::Enqueued { call, result })]
            }
            RoutingRequest::Position {
                call,
                contact,
                token,
            } => vec![Input::Routing(RoutingResult::Position {
                call,
                token,
                position: self.engine.position(contact),
            })],
        }
    }
}
