//! Agents' outbound calls (the adapter's dialer, click-to-dial through the calls API): the
//! agent's own device rings first (the adapter that dialled, or every phone of theirs), and
//! once they answer the number is called through the outbound trunk with the trunk's caller
//! id, while the agent hears ringback. The call's customer leg is the number's; until it
//! exists, `Call::customer` names no leg. The shell has already checked that the agent may dial
//! out and that the number is allowed; this only refuses what it alone can know.

use crate::call::{Call, CallState};
use crate::devices::Device;
use crate::engine::{Engine, Timer};
use crate::ids::{LegId, SessionId};
use crate::interface::{CallError, CallMetric, MediaOp, Output, RoutingRequest, Sound};
use crate::legs::{LegRole, Party};
use std::collections::HashMap;
use std::time::Instant;
use switchboard_core::voice::{CallDirection, CallRecord};
use switchboard_core::{CallId, ContactId, UserId};

impl Engine {
    pub(crate) fn dial(
        &mut self,
        now: Instant,
        agent: UserId,
        number: &str,
        from: Option<SessionId>,
    ) -> Result<CallRecord, CallError> {
        let route = self.route_number(number)?;
        let busy = self.calls.values().any(|c| {
            c.state != CallState::Answering
                && c.agent
                    .iter()
                    .chain(&c.ringing)
                    .chain(&c.consult)
                    .filter_map(|l| self.legs.get(*l))
                    .any(|l| l.party == Party::Agent(agent))
        });
        if busy {
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
        let presented = route
            .trunk
            .caller_id
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let mut record = CallRecord::new(id, presented, number.to_owned(), wall);
        record.direction = CallDirection::Outbound;
        record.agent = Some(agent);
        record.contact = Some(contact);
        record.ringing_at = Some(wall);
        // No leg until the agent has answered and the number is called.
        let customer = LegId(self.next_id());
        self.calls.insert(
            id,
            Call {
                record,
                language: None,
                state: CallState::Dialing,
                menu: None,
                menu_generation: 0,
                customer,
                agent: None,
                ringing: Vec::new(),
                consult: None,
                play_token: 0,
                hears: HashMap::new(),
                trunk: None,
                agent_token: 0,
                whisper_started: None,
                dial: Some(route),
                monitors: Vec::new(),
                hold: Default::default(),
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
        self.by_contact.insert(contact, id);
        self.output(Output::Metric(CallMetric::Started));
        self.output(Output::Routing(RoutingRequest::Outbound {
            call: id,
            contact,
            agent,
            number: number.to_owned(),
        }));
        for device in devices {
            let leg = self.place_leg(id, LegRole::Agent, Party::Agent(agent), device);
            let at = now + self.config.ring;
            self.schedule(at, Timer::Ring { leg });
        }
        self.save(id);
        self.record(id)
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
