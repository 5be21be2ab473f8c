//! Scheduled callbacks (issue 12): routing gave a callback's contact to an agent, so their
//! devices ring first; once one answers the agent hears the callback whisper ("Callback from
//! {queue}", the queue's whisper settings applying), then the consumer's number is called
//! through the outbound trunk on the `dial` path while the agent hears ringback, and they
//! talk. The call's record names the callback's contact and queue; the shell reads the
//! attempt's outcome from the record's end (answered or not).

use crate::call::{Call, CallState};
use crate::engine::{Engine, Timer};
use crate::ids::LegId;
use crate::interface::{CallError, CallMetric, Output, Sound};
use crate::legs::{LegRole, Party};
use std::time::Instant;
use switchboard_core::voice::{CallDirection, CallRecord};
use switchboard_core::whisper::CallType;
use switchboard_core::{CallId, ContactId, QueueId, UserId};

/// The key a waiting caller presses to be called back instead of waiting.
pub const CALLBACK_KEY: char = '*';

/// What a caller who asked for a callback hears before they are hung up.
pub const CALLBACK_CONFIRMATION: &str =
    "Thank you. We will call you back at this number when it is your turn. Goodbye.";

impl Engine {
    /// A waiting caller pressed `*`: unless their queue does not allow it (or there is no
    /// number to call), the shell is told to store the callback, and the caller hears the
    /// confirmation and is hung up (`after_hours_done`, with the reason `CallbackAsked`).
    pub(crate) fn callback_asked(&mut self, call: CallId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let (Some(queue), Some(contact)) = (state.record.queue, state.record.contact) else {
            return;
        };
        if self.directory.no_queue_callbacks.contains(&queue) || state.record.caller.is_empty() {
            return;
        }
        state.state = CallState::AfterHours;
        state.asked_callback = true;
        let number = state.record.caller.clone();
        self.output(Output::CallbackAsked {
            call,
            contact,
            queue,
            number,
        });
        self.save(call);
        self.play(
            call,
            vec![Sound::Speak {
                text: CALLBACK_CONFIRMATION.into(),
                speed: 100,
            }],
            None,
            false,
        );
    }

    pub(crate) fn callback_dial(
        &mut self,
        now: Instant,
        contact: ContactId,
        agent: UserId,
        number: &str,
        queue: QueueId,
    ) -> Result<CallRecord, CallError> {
        let route = self.route_number(number)?;
        if self.agent_busy(agent) {
            return Err(CallError::State("the agent is already on a call"));
        }
        let wall = self.wall(now);
        let id = CallId::from_uuid(self.random.uuid_v7(wall));
        let mut record = CallRecord::new(id, route.presented(), route.number.clone(), wall);
        record.direction = CallDirection::Outbound;
        record.agent = Some(agent);
        record.contact = Some(contact);
        record.queue = Some(queue);
        record.ringing_at = Some(wall);
        let customer = LegId(self.next_id());
        self.calls.insert(
            id,
            Call {
                dial: Some(route),
                scheduled_callback: true,
                ..Call::new(record, CallState::Dialing, customer)
            },
        );
        let devices = self.devices_of(now, id, agent);
        if devices.is_empty() {
            self.calls.remove(&id);
            return Err(CallError::State("none of the agent's phones is online"));
        }
        self.output(Output::Metric(CallMetric::Started));
        self.by_contact.insert(contact, id);
        for device in devices {
            let leg = self.place_leg(id, LegRole::Agent, Party::Agent(agent), device);
            let at = now + self.config.ring;
            self.schedule(at, Timer::Ring { leg });
        }
        self.save(id);
        self.record(id)
    }

    /// The agent answered a callback's call: the whisper plays before the number is called;
    /// `false` when this is no callback or its queue's whisper is off (call out at once).
    pub(crate) fn callback_whisper(&mut self, now: Instant, call: CallId, leg: LegId) -> bool {
        let Some(state) = self.calls.get(&call) else {
            return false;
        };
        if !state.scheduled_callback {
            return false;
        }
        let queue = state.record.queue;
        let name = queue
            .and_then(|q| self.directory.nodes.iter().find(|n| n.id == q))
            .map(|n| n.name.as_str().to_owned())
            .unwrap_or_default();
        let sounds = self.whisper_sounds(queue, CallType::Callback, &name);
        if sounds.is_empty() {
            return false;
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = CallState::Whisper;
            state.whisper_started = Some(now);
        }
        let token = self.play_to_agent(call, leg, sounds, None);
        // Should the audio never come or never finish, the number is called anyway.
        let at = now + self.config.whisper_limit;
        self.schedule(at, Timer::Whisper { call, token });
        self.save(call);
        true
    }

    /// The callback whisper has played: the number is called now.
    pub(crate) fn callback_whispered(&mut self, now: Instant, call: CallId) {
        if let Some(state) = self.calls.get_mut(&call) {
            if let Some(started) = state.whisper_started.take() {
                let heard = u32::try_from(now.saturating_duration_since(started).as_millis())
                    .unwrap_or(u32::MAX);
                state.record.whisper_ms = Some(state.record.whisper_ms.unwrap_or(0) + heard);
            }
        }
        self.call_out(call);
    }
}
