//! A call's life, independent of what carries its legs: the IVR menu, waiting in a queue,
//! ringing agents, talking, hold, the end and its record. Which leg hears which follows from the
//! call's state alone (`sync_media`), so no transition has to remember to re-wire the media.

use crate::engine::{Engine, Timer};
use crate::ids::LegId;
use crate::interface::{CallMetric, ContactEvent, MediaOp, Output, RoutingRequest, Sound};
use crate::legs::{LegRole, Party};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use switchboard_core::after_hours::{AfterHoursAction, Decision};
use switchboard_core::voice::{choose, menu_choices, CallDirection, CallRecord, Disposition};
use switchboard_core::whisper::{whisper_parts, CallType, WhisperPart};
use switchboard_core::{
    CallId, Channel, ContactId, Language, MonitorMode, QueueId, QueueKind, UserId,
};

/// Where a call stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallState {
    /// The caller's INVITE waits for its media before it is answered.
    Answering,
    /// The caller chooses at a menu.
    Menu,
    /// Waiting in a queue.
    Queued,
    /// An agent's phone rings.
    Ringing,
    Talking,
    /// The agent put the caller on hold.
    Held,
    /// The agent talks to a transfer target while the caller holds.
    Consulting,
    /// Ringing or talking to a number after a transfer out; the contact has ended.
    TransferringOut,
    /// The agent answered and hears the whisper (and countdown); the caller still hears hold
    /// music and is connected when it ends.
    Whisper,
    /// An agent's own outbound call rings on their device.
    Dialing,
    /// The queue is closed and deflects with its message: the caller hears it, then is hung
    /// up (AHD-2 "message only").
    AfterHours,
    /// The agent answered their outbound call and hears ringback while the number rings.
    Calling,
    /// The queue is closed and takes voicemail: the caller hears the greeting and the tone,
    /// is recorded, then hears the goodbye (AHD-7, `voicemail.rs`).
    Voicemail,
}

/// Why a call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EndReason {
    CallerHungUp,
    AgentHungUp,
    /// The number the call was transferred to (or an agent called) hung up.
    NumberHungUp,
    MenuTimeout,
    MediaTimeout,
    /// The caller never acknowledged our answer.
    NoAck,
    /// Routing refused the call's contact.
    NotQueued,
    /// A transfer out failed and there was no queue to return to.
    TransferFailed,
    /// The number an agent dialled did not answer (busy, refused, unreachable).
    NumberUnanswered,
    /// The agent did not pick up their own outbound call on their device.
    NotPickedUp,
    /// Routing ended the call's contact (the service).
    ContactEnded,
    /// A user ended the call's contact from the monitoring lists (MON-7).
    EndedByUser,
    /// Hung up through the API.
    HungUp,
    /// The caller heard the closed queue's after-hours message (AHD-2).
    AfterHoursMessage,
    /// The caller left a voicemail and heard the goodbye (AHD-7).
    VoicemailLeft,
    /// A waiting caller asked to be called back (`*`) and heard the confirmation.
    CallbackAsked,
}

impl EndReason {
    /// Who the record says hung up.
    pub fn ended_by(self) -> &'static str {
        match self {
            EndReason::CallerHungUp | EndReason::CallbackAsked => "caller",
            EndReason::AgentHungUp => "agent",
            EndReason::NumberHungUp | EndReason::NumberUnanswered => "number",
            EndReason::NotPickedUp => "agent",
            EndReason::EndedByUser => "supervisor",
            _ => "system",
        }
    }

    /// The disposition when it does not follow from how far the call got.
    fn disposition(self) -> Option<Disposition> {
        match self {
            EndReason::NoAck | EndReason::NotQueued | EndReason::TransferFailed => {
                Some(Disposition::Failed)
            }
            EndReason::NumberUnanswered | EndReason::NotPickedUp | EndReason::CallbackAsked => {
                Some(Disposition::Unanswered)
            }
            _ => None,
        }
    }

    /// The reason stored on the call's contact.
    fn contact_reason(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller hung up",
            EndReason::AgentHungUp => "agent hung up",
            EndReason::CallbackAsked => "callback asked",
            _ => "call ended",
        }
    }
}

pub(crate) struct Call {
    pub record: CallRecord,
    pub language: Option<Language>,
    pub state: CallState,
    /// The menu the caller is at (or entered by), `None` for the top level.
    pub menu: Option<QueueId>,
    /// Bumped on every menu entered, so a stale menu timer is ignored.
    pub menu_generation: u64,
    pub customer: LegId,
    /// The agent or number the customer talks to, once answered.
    pub agent: Option<LegId>,
    /// Legs ringing for the customer: every device of the agent routing chose (the first to
    /// answer becomes `agent`, the others stop), or the number a transfer calls.
    pub ringing: Vec<LegId>,
    pub consult: Option<LegId>,
    /// Bumped on every change of what the customer hears; late audio with an old token is
    /// dropped.
    pub play_token: u64,
    /// The mix matrix rows last sent to the media room.
    pub hears: HashMap<LegId, Vec<LegId>>,
    /// The inbound trunk the call came through (it counts towards the trunk's limits).
    pub trunk: Option<switchboard_core::TrunkId>,
    /// Like `play_token`, for what the agent's leg hears from the engine (the whisper,
    /// ringback).
    pub agent_token: u64,
    /// When the agent's whisper started, while it plays.
    pub whisper_started: Option<Instant>,
    /// An agent's outbound call: the number to call once the agent has answered, and how.
    pub dial: Option<crate::control::Route>,
    /// Users listening, coaching or barging in, in the order they started.
    pub monitors: Vec<crate::monitor::Monitor>,
    /// How long the caller has held so far (kept by `sync_hold`).
    pub hold: crate::details::HoldTime,
    /// An emergency service calling back on the number leased to this agent (EMG-4): the call
    /// rings them at once, bypassing routing, and again if they miss it.
    pub callback: Option<UserId>,
    /// A closed queue's voicemail, from its greeting to its goodbye.
    pub voicemail: Option<crate::voicemail::Voicemail>,
    /// A scheduled callback's call: the agent hears the callback whisper before the
    /// consumer is dialled.
    pub scheduled_callback: bool,
    /// The caller asked to be called back and hears the confirmation before the end.
    pub asked_callback: bool,
}

impl Call {
    /// A call in `state` for `record`, whose customer is (or will be) the leg `customer`;
    /// everything else starts empty.
    pub(crate) fn new(record: CallRecord, state: CallState, customer: LegId) -> Self {
        Call {
            record,
            language: None,
            state,
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
            dial: None,
            monitors: Vec::new(),
            hold: Default::default(),
            callback: None,
            voicemail: None,
            scheduled_callback: false,
            asked_callback: false,
        }
    }
}

/// An ended call whose legs' media counts are still on their way.
pub(crate) struct Closing {
    pub record: CallRecord,
    pub open: HashSet<LegId>,
}

impl Engine {
    // ----- the menu and the queue -----

    /// Puts the caller at a menu node: a leaf queues them, a menu (or the top level) plays its
    /// choices.
    pub(crate) fn enter_node(&mut self, now: Instant, call: CallId, node: Option<QueueId>) {
        let leaf = node
            .and_then(|id| self.directory.nodes.iter().find(|n| n.id == id))
            .filter(|n| n.kind == QueueKind::Leaf)
            .map(|n| n.id);
        if let Some(queue) = leaf {
            self.arrive(now, call, queue);
            return;
        }
        let choices: Vec<String> = menu_choices(&self.directory.nodes, node)
            .iter()
            .map(|n| n.name.as_str().to_owned())
            .collect();
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::Menu;
        state.menu = node;
        state.menu_generation += 1;
        let generation = state.menu_generation;
        let language = state.language.clone();
        self.play(
            call,
            vec![Sound::Menu {
                node,
                language,
                choices,
            }],
            Some(Sound::Silence(4000)),
            true,
        );
        let at = now + self.config.menu_timeout;
        self.schedule(at, Timer::Menu { call, generation });
    }

    /// What an agent hears before a call from `queue` is connected: the whisper's parts as
    /// sounds, a queue's recording falling back to its text where there is no queue.
    pub(crate) fn whisper_sounds(
        &self,
        queue: Option<QueueId>,
        call_type: CallType,
        name: &str,
    ) -> Vec<Sound> {
        let whisper = self.directory.whisper_for(queue);
        whisper_parts(&whisper, call_type, name)
            .into_iter()
            .map(|part| match (part, queue) {
                (WhisperPart::Speak { text, speed }, _) => Sound::Speak { text, speed },
                (WhisperPart::Recording { fallback, speed }, Some(queue)) => {
                    Sound::WhisperRecording {
                        queue,
                        fallback,
                        speed,
                    }
                }
                (WhisperPart::Recording { fallback, speed }, None) => Sound::Speak {
                    text: fallback,
                    speed,
                },
            })
            .collect()
    }

    pub(crate) fn on_digit(&mut self, now: Instant, call: CallId, digit: char) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        if state.state == CallState::Voicemail {
            self.voicemail_digit(now, call, digit);
            return;
        }
        if state.state == CallState::Queued && digit == crate::callback::CALLBACK_KEY {
            self.callback_asked(call);
            return;
        }
        if state.state != CallState::Menu {
            return;
        }
        let menu = state.menu;
        let choices = menu_choices(&self.directory.nodes, menu);
        let Some(chosen) = choose(&choices, digit).map(|n| n.id) else {
            let names = choices.iter().map(|n| n.name.as_str().to_owned()).collect();
            let language = state.language.clone();
            self.play(
                call,
                vec![
                    Sound::Invalid,
                    Sound::Menu {
                        node: menu,
                        language,
                        choices: names,
                    },
                ],
                Some(Sound::Silence(4000)),
                true,
            );
            return;
        };
        if let Some(state) = self.calls.get_mut(&call) {
            state.record.ivr_path.push(digit);
        }
        self.enter_node(now, call, Some(chosen));
    }

    /// A caller reaches a leaf queue: the hours decide (AHD-1) whether they wait in it or are
    /// deflected as its rule says (AHD-2): to another queue, to a number through the outbound
    /// trunk, or the after-hours message and the end.
    pub(crate) fn arrive(&mut self, now: Instant, call: CallId, queue: QueueId) {
        let Some((action, message)) = self.deflection(now, call, queue) else {
            self.enqueue(now, call, queue);
            return;
        };
        if let Some(state) = self.calls.get_mut(&call) {
            state.record.queue = Some(queue);
            state.menu_generation += 1;
        }
        match action {
            AfterHoursAction::Queue(target) => self.enqueue(now, call, target),
            AfterHoursAction::Forward(number) => {
                if let Err(error) = self.forward_after_hours(now, call, number.as_str()) {
                    tracing::warn!(%error, "an after-hours call could not be forwarded");
                    self.end_call(now, call, EndReason::TransferFailed);
                }
            }
            AfterHoursAction::Message => self.play_after_hours(call, queue, message),
            AfterHoursAction::Voicemail { max_seconds } => {
                self.start_voicemail(call, queue, message, max_seconds)
            }
        }
    }

    /// Plays a closed queue's after-hours message to the caller, who is hung up once it has
    /// played (`after_hours_done`).
    pub(crate) fn play_after_hours(&mut self, call: CallId, queue: QueueId, message: String) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::AfterHours;
        let language = state.language.clone();
        self.save(call);
        self.play(
            call,
            vec![Sound::AfterHours {
                queue,
                language,
                text: message,
            }],
            None,
            false,
        );
    }

    /// The deflection for a call arriving in (or transferred to) `queue` now, with the
    /// message in the caller's language; `None` to route as usual.
    pub(crate) fn deflection(
        &self,
        now: Instant,
        call: CallId,
        queue: QueueId,
    ) -> Option<(AfterHoursAction, String)> {
        let language = self.calls.get(&call)?.language.clone();
        match self.directory.after_hours.decide(
            queue,
            Channel::Voice,
            language.as_ref(),
            self.wall(now),
        ) {
            Decision::Deflect(rule) => Some((
                rule.action.clone(),
                rule.message_for(language.as_ref()).to_owned(),
            )),
            Decision::Open | Decision::ClosedRouted => None,
        }
    }

    /// The after-hours message has played to the caller: hang up.
    pub(crate) fn after_hours_done(&mut self, now: Instant, call: CallId, token: u64) {
        let done = self
            .calls
            .get(&call)
            .is_some_and(|c| c.state == CallState::AfterHours && c.play_token == token);
        if done {
            let reason = if self.calls.get(&call).is_some_and(|c| c.asked_callback) {
                EndReason::CallbackAsked
            } else {
                EndReason::AfterHoursMessage
            };
            self.end_call(now, call, reason);
        }
    }

    pub(crate) fn enqueue(&mut self, now: Instant, call: CallId, queue: QueueId) {
        let wall = self.wall(now);
        let contact = ContactId::from_uuid(self.random.uuid_v7(wall));
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::Queued;
        state.menu_generation += 1;
        state.record.queue = Some(queue);
        state.record.queued_at = Some(wall);
        state.record.contact = Some(contact);
        let request = RoutingRequest::Enqueue {
            call,
            contact,
            queue,
            language: state.language.clone(),
            customer: state.record.caller.clone(),
        };
        self.by_contact.insert(contact, call);
        self.output(Output::Metric(CallMetric::Queued));
        self.save(call);
        self.hold_music(call, None);
        self.output(Output::Routing(request));
        let at = now + self.config.announce;
        self.schedule(at, Timer::Announce { call });
    }

    /// Every `announce` while the caller waits: ask for their position (answered by
    /// `RoutingResult::Position`, which plays it with the hold music).
    pub(crate) fn announce(&mut self, now: Instant, call: CallId) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        if !matches!(state.state, CallState::Queued | CallState::Ringing) {
            return;
        }
        let (contact, token) = (state.record.contact, state.play_token);
        let at = now + self.config.announce;
        self.schedule(at, Timer::Announce { call });
        if let Some(contact) = contact {
            self.output(Output::Routing(RoutingRequest::Position {
                call,
                contact,
                token,
            }));
        }
    }

    /// Asks for audio for the caller; the newest request wins. With `repeat`, the parts play
    /// again after `then`.
    pub(crate) fn play(
        &mut self,
        call: CallId,
        sounds: Vec<Sound>,
        then: Option<Sound>,
        repeat: bool,
    ) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.play_token += 1;
        let (leg, token) = (state.customer, state.play_token);
        self.output(Output::Render {
            leg,
            token,
            sounds,
            then,
            repeat,
        });
    }

    pub(crate) fn hold_music(&mut self, call: CallId, position: Option<usize>) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let queue = state.record.queue;
        let parts = position
            .map(|p| vec![Sound::Position(p)])
            .unwrap_or_default();
        self.play(call, parts, Some(Sound::Hold(queue)), false);
    }

    // ----- routing's changes -----

    pub(crate) fn on_contact(&mut self, now: Instant, event: ContactEvent) {
        match event {
            ContactEvent::Assigned { contact, agent } => {
                let Some(call) = self.by_contact.get(&contact).copied() else {
                    return;
                };
                if self.calls.get(&call).map(|c| c.state) == Some(CallState::Queued) {
                    self.ring_agent(now, call, agent);
                }
            }
            ContactEvent::Requeued {
                contact,
                queue,
                from,
            } => {
                let Some(call) = self.by_contact.get(&contact).copied() else {
                    return;
                };
                self.drop_agent(now, call, Some(&Party::Agent(from)));
                if let Some(state) = self.calls.get_mut(&call) {
                    state.state = CallState::Queued;
                    state.record.queue = queue;
                    state.record.agent = None;
                }
                self.sync_media(call);
                self.save(call);
                self.hold_music(call, None);
            }
            ContactEvent::Handed {
                contact,
                agent,
                from,
            } => {
                let Some(call) = self.by_contact.get(&contact).copied() else {
                    return;
                };
                // An attended transfer completing: the consulted agent takes over.
                if self.consulting_agent(call) == Some(agent) {
                    self.take_over_from_consult(now, call);
                    return;
                }
                let already = self.calls.get(&call).is_some_and(|c| {
                    c.agent
                        .iter()
                        .chain(&c.ringing)
                        .filter_map(|l| self.legs.get(*l))
                        .any(|l| l.party == Party::Agent(agent))
                });
                if already {
                    return;
                }
                self.drop_agent(now, call, Some(&Party::Agent(from)));
                if let Some(state) = self.calls.get_mut(&call) {
                    state.state = CallState::Queued;
                }
                self.sync_media(call);
                self.hold_music(call, None);
                self.ring_agent(now, call, agent);
            }
            ContactEvent::Ended { contact, by_user } => {
                let Some(call) = self.by_contact.remove(&contact) else {
                    return;
                };
                let transferring = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.state == CallState::TransferringOut);
                if !transferring {
                    let reason = if by_user {
                        EndReason::EndedByUser
                    } else {
                        EndReason::ContactEnded
                    };
                    self.end_call(now, call, reason);
                }
            }
        }
    }

    /// Rings every device of the agent routing assigned the call to: their SIP phone and their
    /// open browser sessions, at once.
    pub(crate) fn ring_agent(&mut self, now: Instant, call: CallId, agent: UserId) {
        let devices = self.devices_of(now, call, agent);
        if devices.is_empty() {
            tracing::info!(%agent, "the agent has no phone or browser to ring; trying the next agent");
            self.missed(now, call, agent);
            return;
        }
        for device in devices {
            let leg = self.place_leg(call, LegRole::Agent, Party::Agent(agent), device);
            let at = now + self.config.ring;
            self.schedule(at, Timer::Ring { leg });
        }
        let wall = self.wall(now);
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = CallState::Ringing;
            state.record.agent = Some(agent);
            if state.record.ringing_at.is_none() {
                state.record.ringing_at = Some(wall);
            }
        }
        self.save(call);
    }

    pub(crate) fn ring_timeout(&mut self, now: Instant, leg: LegId) {
        let Some(leg) = self.legs.get(leg) else {
            return;
        };
        let Party::Agent(agent) = leg.party else {
            return;
        };
        let call = leg.call;
        let ringing = !leg.answered
            && self
                .calls
                .get(&call)
                .is_some_and(|c| c.ringing.contains(&leg.id));
        if ringing {
            tracing::info!(%agent, "the agent did not answer in time");
            self.missed(now, call, agent);
        }
    }

    /// The agent did not take the call: their phone stops ringing, they become not ready and
    /// the call goes back to its queue keeping its place.
    pub(crate) fn missed(&mut self, now: Instant, call: CallId, agent: UserId) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let own = state.state == CallState::Dialing
            || (state.state == CallState::Calling && state.record.emergency.is_some());
        if own {
            // Their own call: nothing goes back to a queue, and they are not made not ready.
            self.end_call(now, call, EndReason::NotPickedUp);
            return;
        }
        if state.callback == Some(agent) {
            // The emergency service calls back: ring the agent again, for as long as it waits;
            // with no device of theirs online any more, the number routes as configured.
            self.drop_agent(now, call, Some(&Party::Agent(agent)));
            if !self.devices_of(now, call, agent).is_empty() {
                self.ring_agent(now, call, agent);
                return;
            }
            tracing::warn!(%agent, "an emergency callback found none of the agent's devices; routing it as the number is configured");
            let entry = self.calls.get_mut(&call).and_then(|c| {
                c.callback = None;
                c.menu
            });
            self.enter_node(now, call, entry);
            return;
        }
        self.drop_agent(now, call, Some(&Party::Agent(agent)));
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::Queued;
        state.record.agent = None;
        if let Some(contact) = state.record.contact {
            self.output(Output::Routing(RoutingRequest::Missed { contact, agent }));
        }
        self.sync_media(call);
    }

    // ----- answers and failures of legs -----

    /// A leg of ours was answered. An agent's device that answers first takes the call; the
    /// other devices stop ringing.
    pub(crate) fn leg_answered(&mut self, now: Instant, leg: LegId) {
        let Some((call, role, party)) = self
            .legs
            .get(leg)
            .map(|l| (l.call, l.role, l.party.clone()))
        else {
            return;
        };
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        match role {
            LegRole::Agent if state.ringing.contains(&leg) => {
                let others: Vec<LegId> = state.ringing.drain(..).filter(|l| *l != leg).collect();
                state.agent = Some(leg);
                if let Party::Agent(agent) = party {
                    state.record.agent = Some(agent);
                }
                let dialing = state.state == CallState::Dialing;
                let emergency = state.record.emergency.is_some()
                    && state.record.direction == CallDirection::Outbound;
                for other in others {
                    self.hang_up_leg(now, other);
                }
                if dialing {
                    if !self.callback_whisper(now, call, leg) {
                        self.call_out(call);
                    }
                } else if emergency {
                    self.agent_joined_emergency(call, leg);
                } else if !self.start_whisper(now, call, leg) {
                    self.connect_agent(now, call);
                }
            }
            LegRole::Customer if state.state == CallState::Calling => {
                self.number_answered(now, call);
            }
            LegRole::Consult => self.sync_media(call),
            LegRole::Monitor => {
                self.output(Output::Metric(CallMetric::MonitorJoined));
                self.sync_media(call);
            }
            _ => {}
        }
    }

    /// The caller and the agent (or number) who answered for them hear each other from now
    /// on: after the answer, or once the agent's whisper has played. The wait ends here.
    pub(crate) fn connect_agent(&mut self, now: Instant, call: CallId) {
        let wall = self.wall(now);
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let first = state.record.answered_at.is_none();
        if first {
            state.record.answered_at = Some(wall);
        }
        if let Some(started) = state.whisper_started.take() {
            let heard = u32::try_from(now.saturating_duration_since(started).as_millis())
                .unwrap_or(u32::MAX);
            state.record.whisper_ms = Some(state.record.whisper_ms.unwrap_or(0) + heard);
        }
        let was_waiting = matches!(
            state.state,
            CallState::Ringing | CallState::Queued | CallState::Whisper
        );
        if state.state != CallState::TransferringOut {
            state.state = CallState::Talking;
        }
        let wait = state.record.wait_ms();
        if was_waiting && first {
            self.output(Output::Metric(CallMetric::LeftQueue));
        }
        if first {
            self.output(Output::Metric(CallMetric::Answered { wait_ms: wait }));
        }
        self.sync_media(call);
        self.save(call);
    }

    /// Plays the whisper (and countdown) to the agent who just answered, if the call's queue
    /// has one; `false` when there is nothing to play (connect at once).
    fn start_whisper(&mut self, now: Instant, call: CallId, leg: LegId) -> bool {
        let Some(state) = self.calls.get(&call) else {
            return false;
        };
        if state.state == CallState::TransferringOut
            || state.record.direction == CallDirection::Outbound
            || state.callback.is_some()
        {
            return false;
        }
        let queue = state.record.queue;
        let name = queue
            .and_then(|q| self.directory.nodes.iter().find(|n| n.id == q))
            .map(|n| n.name.as_str().to_owned())
            .unwrap_or_default();
        let call_type = if state.record.transfers.is_empty() {
            CallType::Inbound
        } else {
            CallType::Transfer
        };
        let sounds = self.whisper_sounds(queue, call_type, &name);
        if sounds.is_empty() {
            return false;
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = CallState::Whisper;
            state.whisper_started = Some(now);
        }
        self.sync_media(call);
        let token = self.play_to_agent(call, leg, sounds, None);
        // Should the audio never come or never finish, the caller is not kept waiting.
        let at = now + self.config.whisper_limit;
        self.schedule(at, Timer::Whisper { call, token });
        self.save(call);
        true
    }

    /// What the engine plays to the agent's leg ended (or its time ran out): if it was the
    /// whisper, the caller is connected now.
    pub(crate) fn agent_playback_done(&mut self, now: Instant, call: CallId, token: u64) {
        let whispering = self
            .calls
            .get(&call)
            .is_some_and(|c| c.state == CallState::Whisper && c.agent_token == token);
        if whispering && self.calls.get(&call).is_some_and(|c| c.dial.is_some()) {
            self.callback_whispered(now, call);
        } else if whispering {
            self.connect_agent(now, call);
        }
    }

    /// Asks for audio for the agent's leg (the whisper, ringback); returns its token.
    pub(crate) fn play_to_agent(
        &mut self,
        call: CallId,
        leg: LegId,
        sounds: Vec<Sound>,
        then: Option<Sound>,
    ) -> u64 {
        let Some(state) = self.calls.get_mut(&call) else {
            return 0;
        };
        state.agent_token += 1;
        let token = state.agent_token;
        self.output(Output::Render {
            leg,
            token,
            sounds,
            then,
            repeat: false,
        });
        token
    }

    /// A leg of ours could not be placed or was refused with `status`. While another device
    /// of the same agent still rings, the call waits for it.
    pub(crate) fn leg_failed(&mut self, now: Instant, leg: LegId, status: u16) {
        let Some(taken) = self.take_leg(leg) else {
            return;
        };
        tracing::info!(status, "a call leg was not answered");
        let call = taken.call;
        let still_ringing = self.calls.get(&call).is_some_and(|c| {
            c.ringing
                .iter()
                .filter_map(|l| self.legs.get(*l))
                .any(|l| l.party == taken.party)
        });
        if still_ringing {
            return;
        }
        match (taken.role, taken.party) {
            (LegRole::Agent, Party::Agent(agent)) => self.missed(now, call, agent),
            (LegRole::Agent, Party::Number(_)) => {
                // A blind transfer out failed: back to the queue the caller came from.
                match self.calls.get(&call).and_then(|c| c.record.queue) {
                    Some(queue) => self.enqueue(now, call, queue),
                    None => self.end_call(now, call, EndReason::TransferFailed),
                }
            }
            (LegRole::Consult, _) => self.rejoin(call),
            (LegRole::Customer, Party::Number(_)) => {
                self.end_call(now, call, EndReason::NumberUnanswered)
            }
            _ => {}
        }
    }

    /// The far end of a leg hung up (a SIP BYE, a browser's hang-up): for the customer or the
    /// agent the call ends, for a consult target the agent gets the caller back.
    pub(crate) fn remote_hung_up(&mut self, now: Instant, leg: LegId) {
        let Some(taken) = self.take_leg(leg) else {
            return;
        };
        match taken.role {
            LegRole::Customer => {
                let reason = match taken.party {
                    Party::Number(_) => EndReason::NumberHungUp,
                    _ => EndReason::CallerHungUp,
                };
                self.end_call(now, taken.call, reason);
            }
            LegRole::Agent => {
                let reason = match taken.party {
                    Party::Number(_) => EndReason::NumberHungUp,
                    _ => EndReason::AgentHungUp,
                };
                self.end_call(now, taken.call, reason);
            }
            LegRole::Consult => self.rejoin(taken.call),
            LegRole::Monitor => self.sync_media(taken.call),
        }
    }

    /// Takes a leg out of its call (closing its media, not signalling anything).
    pub(crate) fn take_leg(&mut self, leg: LegId) -> Option<crate::legs::Leg> {
        let taken = self.legs.remove(leg)?;
        if let Some(state) = self.calls.get_mut(&taken.call) {
            if state.agent == Some(leg) {
                state.agent = None;
            }
            state.ringing.retain(|l| *l != leg);
            if state.consult == Some(leg) {
                state.consult = None;
            }
            state.monitors.retain(|m| m.leg != leg);
            state.hears.remove(&leg);
        }
        if taken.role == LegRole::Monitor && taken.answered {
            self.output(Output::Metric(CallMetric::MonitorLeft));
        }
        self.closing_legs.insert(leg, (taken.call, taken.role));
        self.media(MediaOp::Close { leg });
        self.recordings.touch(taken.call);
        Some(taken)
    }

    /// Drops the call's agent leg and the legs ringing for it (only those of `party`, when
    /// given).
    pub(crate) fn drop_agent(&mut self, now: Instant, call: CallId, party: Option<&Party>) {
        let legs: Vec<LegId> = self
            .calls
            .get(&call)
            .map(|c| c.agent.iter().chain(&c.ringing).copied().collect())
            .unwrap_or_default();
        for leg in legs {
            let matches = self
                .legs
                .get(leg)
                .is_some_and(|l| party.is_none_or(|p| *p == l.party));
            if matches {
                self.hang_up_leg(now, leg);
            }
        }
        self.sync_media(call);
    }

    /// Puts the caller back with their agent after a consultation (or hold) ends.
    pub(crate) fn rejoin(&mut self, call: CallId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if state.agent.is_some() {
            state.state = CallState::Talking;
        }
        self.sync_media(call);
    }

    pub(crate) fn hold(&mut self, call: CallId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = CallState::Held;
        self.sync_media(call);
        self.hold_music(call, None);
    }

    pub(crate) fn resume(&mut self, call: CallId) {
        self.rejoin(call);
    }

    // ----- the end -----

    /// Ends a call: hangs up every leg (not the caller when they hung up), ends its contact,
    /// closes its record once the media plane has counted its packets.
    pub(crate) fn end_call(&mut self, now: Instant, call: CallId, reason: EndReason) {
        // A voicemail being recorded is kept, whoever ends the call.
        self.finish_voicemail(now, call, false);
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let legs: Vec<LegId> = state
            .monitors
            .iter()
            .map(|m| m.leg)
            .chain(state.consult)
            .chain(state.ringing.iter().copied())
            .chain(state.agent)
            .chain(std::iter::once(state.customer))
            .collect();
        let customer = state.customer;
        let answering = state.state == CallState::Answering;
        for leg in legs {
            // A caller who hung up, or never acknowledged our answer, gets no BYE.
            if leg == customer && matches!(reason, EndReason::CallerHungUp | EndReason::NoAck) {
                self.take_leg(leg);
            } else {
                self.hang_up_leg(now, leg);
            }
        }
        let Some(mut state) = self.calls.remove(&call) else {
            return;
        };
        if let Some(load) = state.trunk.and_then(|t| self.trunk_use.get_mut(&t)) {
            load.calls = load.calls.saturating_sub(1);
        }
        if answering {
            // Never answered, never announced: nothing to record.
            return;
        }
        let transferred_out = state.state == CallState::TransferringOut;
        if matches!(
            state.state,
            CallState::Queued | CallState::Ringing | CallState::Whisper
        ) {
            self.output(Output::Metric(CallMetric::LeftQueue));
        }
        let unanswered_out =
            state.record.direction == CallDirection::Outbound && state.record.answered_at.is_none();
        let disposition = reason
            .disposition()
            .or(transferred_out.then_some(Disposition::TransferredOut))
            .or(unanswered_out.then_some(Disposition::Unanswered))
            // A caller who only heard the after-hours message was never answered; one
            // transferred to a closed queue's message after talking to an agent was.
            .or(
                ((reason == EndReason::AfterHoursMessage || state.state == CallState::Voicemail)
                    && state.record.answered_at.is_none())
                .then_some(Disposition::Unanswered),
            );
        state
            .record
            .end(self.wall(now), reason.ended_by(), disposition);
        self.output(Output::Metric(CallMetric::Ended {
            disposition: state.record.disposition,
        }));
        if let Some(contact) = state.record.contact {
            if self.by_contact.remove(&contact).is_some() && !transferred_out {
                self.output(Output::Routing(RoutingRequest::End {
                    contact,
                    reason: reason.contact_reason(),
                }));
            }
        }
        let open: HashSet<LegId> = self
            .closing_legs
            .iter()
            .filter(|(_, (c, _))| *c == call)
            .map(|(l, _)| *l)
            .collect();
        self.closing.insert(
            call,
            Closing {
                record: state.record,
                open,
            },
        );
        let at = now + self.config.closing_grace;
        self.schedule(at, Timer::Closing { call });
        if self.closing.get(&call).is_some_and(|c| c.open.is_empty()) {
            self.finish_closing(call);
        }
    }

    /// A leg's media closed: its packets count in the call's record.
    pub(crate) fn media_closed(&mut self, leg: LegId, received: u32, sent: u32) {
        let Some((call, role)) = self.closing_legs.remove(&leg) else {
            return;
        };
        let record = match self.calls.get_mut(&call) {
            Some(state) => Some(&mut state.record),
            None => self.closing.get_mut(&call).map(|c| &mut c.record),
        };
        if let Some(record) = record {
            match role {
                LegRole::Customer => {
                    record.rtp.from_caller = received;
                    record.rtp.to_caller = sent;
                }
                LegRole::Agent => {
                    record.rtp.from_agent += received;
                    record.rtp.to_agent += sent;
                }
                LegRole::Consult | LegRole::Monitor => {}
            }
        }
        let done = self.closing.get_mut(&call).is_some_and(|c| {
            c.open.remove(&leg);
            c.open.is_empty()
        });
        if done {
            self.finish_closing(call);
        }
    }

    /// Writes an ended call's final record (all its counts arrived, or the wait is over).
    pub(crate) fn finish_closing(&mut self, call: CallId) {
        if let Some(closing) = self.closing.remove(&call) {
            for leg in closing.open {
                self.closing_legs.remove(&leg);
            }
            self.output(Output::Call(closing.record));
        }
    }

    // ----- media and records -----

    /// Sends the media room the rows of the mix matrix that the call's state changed. The
    /// customer stops hearing prompts and music as soon as they hear a person.
    pub(crate) fn sync_media(&mut self, call: CallId) {
        self.recordings.touch(call);
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let answered =
            |leg: Option<LegId>| leg.filter(|l| self.legs.get(*l).is_some_and(|l| l.answered));
        let (agent, consult) = (answered(state.agent), answered(state.consult));
        let bridged = matches!(state.state, CallState::Talking | CallState::TransferringOut);
        let mut rows = vec![(
            state.customer,
            agent.filter(|_| bridged).into_iter().collect::<Vec<_>>(),
        )];
        if let Some(leg) = state.agent {
            let hears = match state.state {
                CallState::Talking | CallState::TransferringOut => vec![state.customer],
                CallState::Consulting => consult.into_iter().collect(),
                _ => Vec::new(),
            };
            rows.push((leg, hears));
        }
        if let Some(leg) = state.consult {
            let hears = match state.state {
                CallState::Consulting => agent.into_iter().collect(),
                _ => Vec::new(),
            };
            rows.push((leg, hears));
        }
        let monitors: Vec<(LegId, MonitorMode)> = state
            .monitors
            .iter()
            .filter(|m| answered(Some(m.leg)).is_some())
            .map(|m| (m.leg, m.mode))
            .collect();
        crate::monitor::monitor_rows(&mut rows, &monitors, state.customer, agent, bridged);
        let customer = state.customer;
        let mut ops = Vec::new();
        let mut starts_hearing = false;
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        for (leg, sources) in rows {
            if state.hears.get(&leg).is_some_and(|s| *s == sources)
                || (sources.is_empty() && !state.hears.contains_key(&leg))
            {
                continue;
            }
            if leg == customer
                && !sources.is_empty()
                && state.hears.get(&leg).is_none_or(|s| s.is_empty())
            {
                starts_hearing = true;
            }
            state.hears.insert(leg, sources.clone());
            ops.push(MediaOp::Hears { leg, sources });
        }
        if starts_hearing {
            // Audio still being rendered for the caller must not start over the conversation.
            state.play_token += 1;
            ops.insert(0, MediaOp::StopPlaying { leg: customer });
        }
        for op in ops {
            self.media(op);
        }
    }

    /// Stores the call's record (in order) and announces it.
    pub(crate) fn save(&mut self, call: CallId) {
        if let Some(state) = self.calls.get(&call) {
            let record = state.record.clone();
            self.output(Output::Call(record));
        }
    }
}
