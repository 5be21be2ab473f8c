//! What the API does to live calls: hold, resume, hang up, and transfers (blind or attended)
//! to a queue, an agent or a number through an outbound trunk. A transfer that routing must
//! accept waits for its answer (`Pending`) before the API hears back.

use crate::call::{CallState, EndReason};
use crate::devices::Device;
use crate::engine::Engine;
use crate::ids::ReplyToken;
use crate::interface::{
    CallControl, CallError, Output, RoutingRefusal, RoutingRequest, RoutingTarget, TransferTo,
};
use crate::legs::{LegRole, Opening, Party};
use std::time::Instant;
use switchboard_core::after_hours::AfterHoursAction;
use switchboard_core::voice::{apply_dial_rules, CallRecord, Trunk};
use switchboard_core::{CallId, QueueId, UserId};
use switchboard_sip::transaction::Peer;
use switchboard_sip::Transport as Wire;

/// An API command waiting for routing's answer.
pub(crate) enum Pending {
    /// A blind transfer to a queue or an agent.
    Blind {
        call: CallId,
        token: ReplyToken,
        description: String,
    },
    /// Handing the caller to the agent they were consulted with.
    Complete { call: CallId, token: ReplyToken },
}

/// An outbound trunk, the request URI for a number through it, and where to send.
pub(crate) struct Route {
    pub trunk: Trunk,
    pub uri: String,
    pub peer: Peer,
    /// The number as the agent gave it.
    pub number: String,
    /// An emergency call's callback number and location (its INVITE carries them).
    pub emergency: Option<Box<crate::interface::EmergencyDial>>,
}

impl Route {
    /// The number a call through this route presents: an emergency call's callback number,
    /// else the trunk's caller id.
    pub fn presented(&self) -> String {
        self.emergency
            .as_ref()
            .and_then(|e| e.callback.clone())
            .or_else(|| self.trunk.caller_id.as_ref().map(|c| c.as_str().to_owned()))
            .unwrap_or_default()
    }
}

type Answer = Option<Result<CallRecord, CallError>>;

impl Engine {
    pub(crate) fn on_command(
        &mut self,
        now: Instant,
        token: ReplyToken,
        call: CallId,
        control: CallControl,
    ) {
        if let Some(result) = self.control(now, token, call, control) {
            self.output(Output::Reply { token, result });
        }
    }

    /// A live call's record (not one still being answered).
    pub(crate) fn record(&self, call: CallId) -> Result<CallRecord, CallError> {
        self.calls
            .get(&call)
            .filter(|c| c.state != CallState::Answering)
            .map(|c| c.record.clone())
            .ok_or(CallError::NotFound)
    }

    /// Carries out a command; `None` when the answer waits for routing.
    fn control(
        &mut self,
        now: Instant,
        token: ReplyToken,
        call: CallId,
        control: CallControl,
    ) -> Answer {
        let state = match self.calls.get(&call) {
            Some(c) if c.state != CallState::Answering => c.state,
            _ => return Some(Err(CallError::NotFound)),
        };
        let refuse = |message: &'static str| -> Answer { Some(Err(CallError::State(message))) };
        match control {
            CallControl::HangUp => {
                let mut record = match self.record(call) {
                    Ok(record) => record,
                    Err(error) => return Some(Err(error)),
                };
                self.end_call(now, call, EndReason::HungUp);
                record.end(self.wall(now), EndReason::HungUp.ended_by(), None);
                return Some(Ok(record));
            }
            CallControl::Hold => {
                if state != CallState::Talking {
                    return refuse("only a call in conversation can be held");
                }
                self.hold(call);
            }
            CallControl::Resume => {
                if state != CallState::Held {
                    return refuse("the call is not on hold");
                }
                self.resume(call);
            }
            CallControl::Transfer { to, attended } => {
                if !matches!(state, CallState::Talking | CallState::Held) {
                    return refuse("only a call with an agent can be transferred");
                }
                let Some(contact) = self.calls.get(&call).and_then(|c| c.record.contact) else {
                    return Some(Err(CallError::NotFound));
                };
                let description = match &to {
                    TransferTo::Queue(q) => format!("queue:{q}"),
                    TransferTo::Agent(a) => format!("agent:{a}"),
                    TransferTo::Number(n) => format!("number:{n}"),
                };
                if attended {
                    if let Err(error) = self.consult(now, call, to) {
                        return Some(Err(error));
                    }
                } else {
                    // The hours decide again for the queue it goes to (AHD-1): a closed queue
                    // that deflects gives the call its after-hours treatment.
                    let to = match to {
                        TransferTo::Queue(queue) => match self.deflection(now, call, queue) {
                            None => TransferTo::Queue(queue),
                            Some((AfterHoursAction::Queue(target), _)) => TransferTo::Queue(target),
                            Some((AfterHoursAction::Forward(number), _)) => {
                                TransferTo::Number(number.as_str().to_owned())
                            }
                            Some((AfterHoursAction::Message, message)) => {
                                self.transfer_to_message(now, call, queue, message, None);
                                self.transfer_done(call, description);
                                return Some(self.record(call));
                            }
                            Some((AfterHoursAction::Voicemail { max_seconds }, greeting)) => {
                                self.transfer_to_message(
                                    now,
                                    call,
                                    queue,
                                    greeting,
                                    Some(max_seconds),
                                );
                                self.transfer_done(call, description);
                                return Some(self.record(call));
                            }
                        },
                        other => other,
                    };
                    let target = match to {
                        TransferTo::Queue(queue) => RoutingTarget::Queue(queue),
                        TransferTo::Agent(agent) => RoutingTarget::Agent(agent),
                        TransferTo::Number(number) => {
                            if let Err(error) = self.transfer_out(now, call, &number) {
                                return Some(Err(error));
                            }
                            self.transfer_done(call, description);
                            return Some(self.record(call));
                        }
                    };
                    // Routing moves the contact; its change tells this engine what to ring.
                    let op = self.next_id();
                    self.pending.insert(
                        op,
                        Pending::Blind {
                            call,
                            token,
                            description,
                        },
                    );
                    self.output(Output::Routing(RoutingRequest::Transfer {
                        op,
                        contact,
                        target,
                    }));
                    return None;
                }
                self.transfer_done(call, description);
            }
            CallControl::CompleteTransfer => {
                if state != CallState::Consulting {
                    return refuse("no transfer is being consulted");
                }
                let consult = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.consult)
                    .and_then(|l| self.legs.get(l))
                    .map(|l| (l.answered, l.party.clone()));
                let Some((true, party)) = consult else {
                    return refuse("the transfer target has not answered yet");
                };
                let contact = self.calls.get(&call).and_then(|c| c.record.contact);
                match (party, contact) {
                    (Party::Agent(agent), Some(contact)) => {
                        // Routing must accept the new agent before the legs are swapped.
                        let op = self.next_id();
                        self.pending.insert(op, Pending::Complete { call, token });
                        self.output(Output::Routing(RoutingRequest::Transfer {
                            op,
                            contact,
                            target: RoutingTarget::Agent(agent),
                        }));
                        return None;
                    }
                    _ => self.complete_to_number(now, call),
                }
            }
            CallControl::CancelTransfer => {
                if state != CallState::Consulting {
                    return refuse("no transfer is being consulted");
                }
                if let Some(consult) = self.calls.get(&call).and_then(|c| c.consult) {
                    self.hang_up_leg(now, consult);
                }
                self.rejoin(call);
            }
            CallControl::UpdateProperties(update) => {
                if let Some(state) = self.calls.get_mut(&call) {
                    let current = &mut state.record.properties;
                    current.verified_customer =
                        update.verified_customer.or(current.verified_customer);
                    current.bad_actor = update.bad_actor.or(current.bad_actor);
                    current.repeat_customer = update.repeat_customer.or(current.repeat_customer);
                }
                self.save(call);
            }
            CallControl::PauseRecording => {
                if let Err(error) = self.pause_recording(now, call, true) {
                    return Some(Err(error));
                }
            }
            CallControl::ResumeRecording => {
                if let Err(error) = self.pause_recording(now, call, false) {
                    return Some(Err(error));
                }
            }
            CallControl::SetRecordable(recordable) => self.set_recordable(now, call, recordable),
            CallControl::Monitor {
                user,
                mode,
                session,
            } => {
                if let Err(error) = self.monitor(now, call, user, mode, session) {
                    return Some(Err(error));
                }
            }
            CallControl::SwitchMonitor { user, mode } => {
                if let Err(error) = self.switch_monitor(call, user, mode) {
                    return Some(Err(error));
                }
            }
            CallControl::StopMonitor { user } => {
                if let Err(error) = self.stop_monitor(now, call, user) {
                    return Some(Err(error));
                }
            }
        }
        Some(self.record(call))
    }

    fn transfer_done(&mut self, call: CallId, description: String) {
        if let Some(state) = self.calls.get_mut(&call) {
            state.record.transfers.push(description);
        }
        self.save(call);
    }

    /// Routing answered a transfer.
    pub(crate) fn transferred(
        &mut self,
        now: Instant,
        op: u64,
        result: Result<(), RoutingRefusal>,
    ) {
        let Some(pending) = self.pending.remove(&op) else {
            return;
        };
        let (token, answer) = match pending {
            Pending::Blind {
                call,
                token,
                description,
            } => {
                let answer = result.map_err(CallError::from).and_then(|()| {
                    self.transfer_done(call, description);
                    self.record(call)
                });
                (token, answer)
            }
            Pending::Complete { call, token } => {
                let answer = result.map_err(CallError::from).and_then(|()| {
                    self.take_over_from_consult(now, call);
                    self.record(call)
                });
                (token, answer)
            }
        };
        self.output(Output::Reply {
            token,
            result: answer,
        });
    }

    /// The agent the call's answered consult leg rings, if any.
    pub(crate) fn consulting_agent(&self, call: CallId) -> Option<UserId> {
        let leg = self.legs.get(self.calls.get(&call)?.consult?)?;
        match (&leg.party, leg.answered) {
            (Party::Agent(agent), true) => Some(*agent),
            _ => None,
        }
    }

    /// The consulted agent takes the caller over: the first agent's leg hangs up. Does nothing
    /// when it happened already.
    pub(crate) fn take_over_from_consult(&mut self, now: Instant, call: CallId) {
        let Some(agent) = self.consulting_agent(call) else {
            return;
        };
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let (old, consult) = (state.agent.take(), state.consult.take());
        state.agent = consult;
        state.record.agent = Some(agent);
        state.state = CallState::Talking;
        if let Some(leg) = consult.and_then(|l| self.legs.get_mut(l)) {
            leg.role = LegRole::Agent;
        }
        if let Some(old) = old {
            // It is no longer the call's agent leg, so `hang_up_leg` does not touch the new one.
            self.hang_up_leg(now, old);
        }
        self.sync_media(call);
        self.save(call);
    }

    /// An attended transfer to a number completes: the contact ends; the caller talks to the
    /// number.
    fn complete_to_number(&mut self, now: Instant, call: CallId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let (old, consult) = (state.agent.take(), state.consult.take());
        state.agent = consult;
        state.state = CallState::TransferringOut;
        let contact = state.record.contact;
        if let Some(leg) = consult.and_then(|l| self.legs.get_mut(l)) {
            leg.role = LegRole::Agent;
        }
        if let Some(old) = old {
            self.hang_up_leg(now, old);
        }
        if let Some(contact) = contact {
            self.by_contact.remove(&contact);
            self.output(Output::Routing(RoutingRequest::End {
                contact,
                reason: "transferred to a number",
            }));
        }
        self.sync_media(call);
        self.save(call);
    }

    pub(crate) fn route_number(&self, number: &str) -> Result<Route, CallError> {
        let trunk = self
            .directory
            .outbound_trunk()
            .cloned()
            .ok_or(CallError::State("no outbound trunk is configured"))?;
        let addr = *self
            .directory
            .resolved
            .get(&trunk.id)
            .ok_or(CallError::State(
                "the outbound trunk's host does not resolve",
            ))?;
        let host = trunk.host.clone().unwrap_or_default();
        let port = trunk.port.unwrap_or(5060);
        let dialled = apply_dial_rules(&trunk.dial_rules, number);
        let uri = format!("sip:{dialled}@{host}:{port}");
        let peer = Peer {
            addr,
            transport: if trunk.tcp { Wire::Tcp } else { Wire::Udp },
        };
        Ok(Route {
            trunk,
            uri,
            peer,
            number: number.to_owned(),
            emergency: None,
        })
    }

    /// An emergency call's route: the trunk the shell chose (allowed to carry emergency
    /// calls), and the emergency number as it is, since no dial rule may rewrite it.
    pub(crate) fn route_emergency(
        &self,
        emergency: crate::interface::EmergencyDial,
    ) -> Result<Route, CallError> {
        let trunk = self
            .directory
            .trunks
            .iter()
            .find(|t| t.id == emergency.trunk)
            .cloned()
            .ok_or(CallError::State(
                "the trunk for emergency calls is not configured any more",
            ))?;
        let addr = *self
            .directory
            .resolved
            .get(&trunk.id)
            .ok_or(CallError::State(
                "the emergency trunk's host does not resolve",
            ))?;
        let host = trunk.host.clone().unwrap_or_default();
        let port = trunk.port.unwrap_or(5060);
        let uri = format!("sip:{}@{host}:{port}", emergency.number);
        let peer = Peer {
            addr,
            transport: if trunk.tcp { Wire::Tcp } else { Wire::Udp },
        };
        Ok(Route {
            trunk,
            uri,
            peer,
            number: emergency.number.clone(),
            emergency: Some(Box::new(emergency)),
        })
    }

    /// Calls a number through the outbound trunk as the call's `role` leg.
    pub(crate) fn call_number(
        &mut self,
        call: CallId,
        role: LegRole,
        number: &str,
        route: Route,
    ) -> crate::ids::LegId {
        let caller = self
            .calls
            .get(&call)
            .map(|c| c.record.caller.clone())
            .unwrap_or_default();
        let opening = Opening::Invite {
            to: format!("<{}>", route.uri),
            uri: route.uri,
            from_user: caller.clone(),
            display: caller,
            emergency: route.emergency,
        };
        let device = Device::Sip {
            peer: route.peer,
            opening,
            trunk: Some(route.trunk),
        };
        self.place_leg(call, role, Party::Number(number.to_owned()), device)
    }

    /// A call transferred to a closed queue that answers with its message: the agent leaves,
    /// the contact ends, and the caller hears the message, then is hung up; or, with
    /// `voicemail`'s longest length, hears it as the greeting and leaves a voicemail.
    fn transfer_to_message(
        &mut self,
        now: Instant,
        call: CallId,
        queue: QueueId,
        message: String,
        voicemail: Option<u32>,
    ) {
        self.drop_agent(now, call, None);
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.record.queue = Some(queue);
        if let Some(contact) = state.record.contact {
            self.by_contact.remove(&contact);
            self.output(Output::Routing(RoutingRequest::End {
                contact,
                reason: "transferred to a closed queue",
            }));
        }
        match voicemail {
            Some(max_seconds) => self.start_voicemail(call, queue, message, max_seconds),
            None => self.play_after_hours(call, queue, message),
        }
        self.sync_media(call);
    }

    /// A caller of a closed queue forwarded to a number (AHD-2): they hear hold music while
    /// the number rings through the outbound trunk, then talk to it; no contact is opened.
    pub(crate) fn forward_after_hours(
        &mut self,
        now: Instant,
        call: CallId,
        number: &str,
    ) -> Result<(), CallError> {
        self.transfer_out(now, call, number)
    }

    fn transfer_out(&mut self, now: Instant, call: CallId, number: &str) -> Result<(), CallError> {
        let route = self.route_number(number)?;
        self.drop_agent(now, call, None);
        let Some(state) = self.calls.get_mut(&call) else {
            return Err(CallError::NotFound);
        };
        state.state = CallState::TransferringOut;
        if let Some(contact) = state.record.contact {
            self.by_contact.remove(&contact);
            self.output(Output::Routing(RoutingRequest::End {
                contact,
                reason: "transferred to a number",
            }));
        }
        self.sync_media(call);
        self.hold_music(call, None);
        self.call_number(call, LegRole::Agent, number, route);
        Ok(())
    }

    fn consult(&mut self, now: Instant, call: CallId, to: TransferTo) -> Result<(), CallError> {
        match to {
            TransferTo::Queue(_) => {
                return Err(CallError::State(
                    "an attended transfer goes to an agent or a number",
                ))
            }
            TransferTo::Agent(agent) => {
                // The agent's phone if registered, else their first open browser.
                let device = self
                    .devices_of(now, call, agent)
                    .into_iter()
                    .next()
                    .ok_or(CallError::State("that agent has no registered phone"))?;
                self.place_leg(call, LegRole::Consult, Party::Agent(agent), device);
            }
            TransferTo::Number(number) => {
                let route = self.route_number(&number)?;
                self.call_number(call, LegRole::Consult, &number, route);
            }
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = CallState::Consulting;
        }
        self.sync_media(call);
        self.hold_music(call, None);
        Ok(())
    }
}
