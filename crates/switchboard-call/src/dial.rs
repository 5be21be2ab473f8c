//! Agents' outbound calls (the adapter's dialer, click-to-dial through the calls API): the
//! agent's own device rings first (the adapter that dialled, or every phone of theirs), and
//! once they answer the number is called through the outbound trunk with the trunk's caller
//! id, while the agent hears ringback. The call's customer leg is the number's; until it
//! exists, `Call::customer` names no leg. The shell has already checked that the agent may dial
//! out and that the number is allowed; this only refuses what it alone can know.
//!
//! An emergency call (EMG-1..9) differs in three ways: the number is called at once, while the
//! agent's device rings, so nothing stands between the dial and the INVITE; it leaves through
//! the trunk the shell chose, from the callback number, with the location; and it is
//! confidential, so it has no contact (no routing, no history, no CRM) and is never recorded or
//! monitored.

use crate::call::{Call, CallState};
use crate::devices::Device;
use crate::engine::reason;
use crate::engine::{Engine, Timer};
use crate::ids::{LegId, SessionId};
use crate::interface::{
    CallError, CallMetric, EmergencyDial, MediaOp, Output, PhoneRefusal, RoutingRequest, Sound,
};
use crate::legs::{Leg, LegRole, Party, Signalling, SipLeg};
use std::time::Instant;
use switchboard_core::voice::{CallDirection, CallRecord, Emergency};
use switchboard_core::{CallId, ContactId, UserId};
use switchboard_sip::fields::{self, user_of};
use switchboard_sip::transaction::{Key, Peer};
use switchboard_sip::{sdp, Request, Response};

impl Engine {
    pub(crate) fn dial(
        &mut self,
        now: Instant,
        agent: UserId,
        number: &str,
        from: Option<SessionId>,
        emergency: Option<EmergencyDial>,
    ) -> Result<CallRecord, CallError> {
        let confidential = emergency.is_some();
        let route = match emergency {
            Some(emergency) => self.route_emergency(emergency)?,
            None => self.route_number(number)?,
        };
        if self.agent_busy(agent) {
            return Err(CallError::State("you are already on a call"));
        }
        if let Some(session) = from {
            if !self
                .browsers
                .get(&agent)
                .is_some_and(|s| s.contains(&session))
            {
                return Err(CallError::State(
                    "this adapter's phone is not on: reload the page and allow the microphone",
                ));
            }
        }
        let wall = self.wall(now);
        let id = CallId::from_uuid(self.random.uuid_v7(wall));
        let contact = ContactId::from_uuid(self.random.uuid_v7(wall));
        let presented = route.presented();
        let mut record = CallRecord::new(id, presented, route.number.clone(), wall);
        record.direction = CallDirection::Outbound;
        record.agent = Some(agent);
        record.contact = (!confidential).then_some(contact);
        record.ringing_at = Some(wall);
        if confidential {
            record.emergency = Some(Emergency::Outgoing);
        }
        // No leg until the agent has answered and the number is called.
        let customer = LegId(self.next_id());
        self.calls.insert(
            id,
            Call {
                dial: Some(route),
                ..Call::new(record, CallState::Dialing, customer)
            },
        );
        let devices = match from {
            Some(session) => vec![Device::Browser { session }],
            None => self.devices_of(now, id, agent),
        };
        if devices.is_empty() {
            self.calls.remove(&id);
            return Err(CallError::State(
                "none of your phones is online: open the adapter or register your SIP phone",
            ));
        }
        self.output(Output::Metric(CallMetric::Started));
        if !confidential {
            self.by_contact.insert(contact, id);
            self.output(Output::Routing(RoutingRequest::Outbound {
                call: id,
                contact,
                agent,
                number: number.to_owned(),
            }));
        }
        for device in devices {
            let leg = self.place_leg(id, LegRole::Agent, Party::Agent(agent), device);
            let at = now + self.config.ring;
            self.schedule(at, Timer::Ring { leg });
        }
        if confidential {
            // Nothing waits for the agent's device: the emergency service is called now.
            self.call_out(id);
        }
        self.save(id);
        self.record(id)
    }

    /// Whether `agent` is on (or being rung for) a call already.
    pub(crate) fn agent_busy(&self, agent: UserId) -> bool {
        self.calls.values().any(|c| {
            c.state != CallState::Answering
                && c.agent
                    .iter()
                    .chain(&c.ringing)
                    .chain(&c.consult)
                    .filter_map(|l| self.legs.get(*l))
                    .any(|l| l.party == Party::Agent(agent))
        })
    }

    /// The agent answered their own call: call the number, with ringback for the agent.
    pub(crate) fn call_out(&mut self, call: CallId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(route) = state.dial.take() else {
            return;
        };
        state.state = CallState::Calling;
        let agent = state.agent;
        let number = route.number.clone();
        let leg = self.call_number(call, LegRole::Customer, &number, route);
        if let Some(state) = self.calls.get_mut(&call) {
            state.customer = leg;
        }
        if let Some(agent) = agent {
            self.play_to_agent(call, agent, Vec::new(), Some(Sound::Ringback));
        }
        self.sync_media(call);
        self.save(call);
    }

    /// The agent answered their emergency call, which is already calling the number: they
    /// hear ringback until it answers, or talk at once if it has.
    pub(crate) fn agent_joined_emergency(&mut self, call: CallId, leg: LegId) {
        let calling = self
            .calls
            .get(&call)
            .is_some_and(|c| c.state == CallState::Calling);
        if calling {
            self.play_to_agent(call, leg, Vec::new(), Some(Sound::Ringback));
        }
        self.sync_media(call);
        self.save(call);
    }

    /// The number answered: the agent stops hearing ringback and talks to it.
    pub(crate) fn number_answered(&mut self, now: Instant, call: CallId) {
        let wall = self.wall(now);
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::Talking;
        state.agent_token += 1;
        if state.record.answered_at.is_none() {
            state.record.answered_at = Some(wall);
            self.output(Output::Metric(CallMetric::Answered { wait_ms: None }));
        }
        if let Some(agent) = self.calls.get(&call).and_then(|c| c.agent) {
            self.media(MediaOp::StopPlaying { leg: agent });
        }
        self.sync_media(call);
        self.save(call);
    }
}

// ----- agents' SIP phones dialling out -----

impl Engine {
    /// An agent's phone (its digest proved) sends an INVITE for a number. Nothing is answered
    /// until the shell says whether the number is an emergency number they may call, or one
    /// they may dial (`Output::PhoneDial`, answered by `phone_decided`).
    pub(crate) fn on_phone_invite(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
        key: Option<Key>,
        agent: UserId,
    ) {
        let tag = self.token();
        let number = user_of(&request.uri)
            .map(fields::unescape)
            .unwrap_or_default();
        if number.is_empty() {
            self.reply(now, &request, &key, peer, 404);
            return;
        }
        let Ok(offer) = self.read_offer(now, &request, &key, peer, &tag) else {
            return;
        };
        let Some(call_id) = request.headers.get("Call-ID").map(str::to_owned) else {
            self.reply(now, &request, &key, peer, 400);
            return;
        };
        if self.agent_busy(agent) {
            self.refuse_invite(now, &request, &key, peer, 486, "you are already on a call");
            return;
        }
        let wall = self.wall(now);
        let id = CallId::from_uuid(self.random.uuid_v7(wall));
        let leg = LegId(self.next_id());
        let codec = offer
            .as_ref()
            .and_then(sdp::choose_codec)
            .unwrap_or(sdp::PCMU);
        self.legs.insert(Leg {
            id: leg,
            call: id,
            role: LegRole::Agent,
            party: Party::Agent(agent),
            signalling: Signalling::Sip(Box::new(SipLeg::answering(
                peer, call_id, request, key, offer,
            ))),
            port: None,
            codec,
            answered: false,
            // The media opens, and the phone is answered, once the number is allowed.
            opening: None,
        });
        let mut record = CallRecord::new(id, String::new(), number.clone(), wall);
        record.direction = CallDirection::Outbound;
        record.agent = Some(agent);
        record.ringing_at = Some(wall);
        let customer = LegId(self.next_id());
        self.calls.insert(
            id,
            Call {
                ringing: vec![leg],
                ..Call::new(record, CallState::Dialing, customer)
            },
        );
        self.output(Output::PhoneDial {
            call: id,
            agent,
            number,
        });
    }

    /// The shell's decision on a number dialled from a phone: refuse it with its status and
    /// Warning, or place it (at once for an emergency call, as the dialer does).
    pub(crate) fn phone_decided(
        &mut self,
        now: Instant,
        call: CallId,
        decision: Result<Option<EmergencyDial>, PhoneRefusal>,
    ) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        if state.state != CallState::Dialing || state.dial.is_some() {
            return;
        }
        let Some(leg) = state.ringing.first().copied() else {
            return;
        };
        let number = state.record.did.clone();
        let route = match decision {
            Ok(Some(emergency)) => self.route_emergency(emergency),
            Ok(None) => self.route_number(&number),
            Err(refusal) => {
                self.refuse_phone(now, call, leg, refusal.status, &refusal.warning);
                return;
            }
        };
        let route = match route {
            Ok(route) => route,
            Err(error) => {
                let warning = error.to_string();
                self.refuse_phone(now, call, leg, 503, &warning);
                return;
            }
        };
        let wall = self.wall(now);
        let contact = ContactId::from_uuid(self.random.uuid_v7(wall));
        let confidential = route.emergency.is_some();
        let presented = route.presented();
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let agent = state.record.agent;
        state.record.caller = presented;
        state.record.did = route.number.clone();
        if confidential {
            state.record.emergency = Some(Emergency::Outgoing);
        } else {
            state.record.contact = Some(contact);
        }
        state.dial = Some(route);
        self.output(Output::Metric(CallMetric::Started));
        if let (false, Some(agent)) = (confidential, agent) {
            self.by_contact.insert(contact, call);
            self.output(Output::Routing(RoutingRequest::Outbound {
                call,
                contact,
                agent,
                number,
            }));
        }
        if let Some(phone) = self.legs.get_mut(leg) {
            phone.opening = Some(crate::legs::Opening::Answer);
        }
        self.media(MediaOp::Open {
            call,
            leg,
            kind: crate::interface::MediaKind::Rtp,
        });
        if confidential {
            self.call_out(call);
        }
        self.save(call);
    }

    /// Refuses a phone's INVITE with `status` and a Warning saying why; its call never was.
    fn refuse_phone(&mut self, now: Instant, call: CallId, leg: LegId, status: u16, warning: &str) {
        let invite = self.legs.get_mut(leg).and_then(|l| {
            let sip = l.sip_mut()?;
            Some((sip.invite.take()?, sip.invite_key.clone(), sip.peer))
        });
        if let Some((invite, key, peer)) = invite {
            self.refuse_invite(now, &invite, &key, peer, status, warning);
        }
        self.legs.remove(leg);
        self.calls.remove(&call);
    }

    /// Answers an INVITE with `status` and a Warning (RFC 3261 §20.43) the phone can show.
    fn refuse_invite(
        &mut self,
        now: Instant,
        request: &Request,
        key: &Option<Key>,
        peer: Peer,
        status: u16,
        warning: &str,
    ) {
        let tag = self.token();
        let mut response = Response::to(request, status, reason(status), Some(&tag));
        let text: String = warning
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '\''
                } else {
                    c
                }
            })
            .collect();
        response
            .headers
            .push("Warning", &format!("399 switchboard \"{text}\""));
        self.respond(now, key, peer, response);
    }
}
