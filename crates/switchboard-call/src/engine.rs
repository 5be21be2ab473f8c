//! The engine: every SIP transaction (through `switchboard-sip`), registration, call and leg of
//! one node, as a state machine. `handle_input` and `handle_timeout` take the time; what must
//! happen outside leaves through `poll_output`, and `poll_timeout` says when to wake it next.
//!
//! It never waits: what needs the store, routing, the media plane or the prompt renderer is an
//! output, and its answer comes back as an input. An answer about a call that has moved on (an
//! old play token, a leg that is gone, a call that ended) is dropped, not applied.

use crate::call::{Call, CallState, Closing, EndReason};
use crate::directory::Directory;
use crate::ids::{LegId, Random};
use crate::interface::{Input, MediaEvent, MediaOp, Output, RoutingResult};
use crate::legs::Legs;
use crate::registrar::Registrar;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use switchboard_core::voice::CallRecord;
use switchboard_core::{CallId, ContactId};
use switchboard_sip::fields;
use switchboard_sip::transaction::{Event, Key, Peer, Timers, Transactions};
use switchboard_sip::{Message, Method, Request, Response, Transport as Wire};

pub(crate) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO";

/// The reason phrase for the statuses the engine sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// How the engine behaves; fixed for its life.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The SIP address put in Via and Contact headers.
    pub local: SocketAddr,
    /// The address media is offered on (SDP).
    pub media_ip: IpAddr,
    /// How long an agent's phone rings before the call goes to the next agent.
    pub ring: Duration,
    /// How often a waiting caller hears their position.
    pub announce: Duration,
    /// How long a caller may stay at a menu without choosing.
    pub menu_timeout: Duration,
    /// How long an ended call waits for the media plane's packet counts before its final
    /// record is written without them.
    pub closing_grace: Duration,
    /// Signs digest nonces.
    pub nonce_secret: String,
    /// Seeds tags, branches, Call-IDs and the random bits of ids.
    pub seed: u64,
    /// A trunk's concurrent calls at most, and new calls per second at most (beyond them a
    /// new INVITE gets 503 with Retry-After), unless the trunk sets its own.
    pub trunk_max_calls: usize,
    pub trunk_calls_per_second: u32,
    /// How long an answered caller has to acknowledge; a caller who has not by then is let go
    /// and its media freed (RFC 3261 would wait 32 s, holding RTP ports all that time).
    pub ack_wait: Duration,
    /// The longest an agent's whisper may keep a caller waiting: the caller is connected then
    /// even if the whisper's audio never finished.
    pub whisper_limit: Duration,
    pub sip_timers: Timers,
}

impl EngineConfig {
    pub fn new(local: SocketAddr, media_ip: IpAddr, nonce_secret: String, seed: u64) -> Self {
        EngineConfig {
            local,
            media_ip,
            ring: Duration::from_secs(20),
            announce: Duration::from_secs(30),
            menu_timeout: Duration::from_secs(60),
            closing_grace: Duration::from_secs(2),
            nonce_secret,
            seed,
            trunk_max_calls: 1000,
            trunk_calls_per_second: 100,
            ack_wait: Duration::from_secs(8),
            whisper_limit: Duration::from_secs(20),
            sip_timers: Timers::default(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Timer {
    /// An agent's phone has rung long enough.
    Ring { leg: LegId },
    /// Nothing chosen at the menu entered as `generation`.
    Menu { call: CallId, generation: u64 },
    /// Time to tell a waiting caller their position.
    Announce { call: CallId },
    /// An ended call stops waiting for its media counts.
    Closing { call: CallId },
    /// A held-back answer (to a throttled source) is due.
    Respond { id: u64 },
    /// The answered caller should have acknowledged by now.
    AckWait { call: CallId },
    /// The whisper played as `token` has had all its time.
    Whisper { call: CallId, token: u64 },
    /// A voicemail's recording has reached its longest length.
    Voicemail {
        call: CallId,
        recording: switchboard_core::RecordingId,
    },
}

/// A trunk's load, for its limits.
#[derive(Default)]
pub(crate) struct TrunkUse {
    pub calls: usize,
    pub window_start: Option<Instant>,
    pub in_window: u32,
}

pub struct Engine {
    pub(crate) config: EngineConfig,
    /// An instant and the wall-clock time it stands for: wall time is derived from `now`.
    epoch: (Instant, DateTime<Utc>),
    pub(crate) random: Random,
    pub(crate) tx: Transactions,
    pub(crate) directory: Directory,
    pub(crate) registrar: Registrar,
    pub(crate) calls: HashMap<CallId, Call>,
    pub(crate) by_contact: HashMap<ContactId, CallId>,
    /// The callback numbers leased to agents who dialled an emergency number (EMG-4).
    pub(crate) callbacks: Vec<switchboard_core::emergency::Lease>,
    pub(crate) legs: Legs,
    /// Agents' open browser sessions that can take calls.
    pub(crate) browsers: HashMap<switchboard_core::UserId, BTreeSet<crate::ids::SessionId>>,
    /// Users' open portal phones, which take monitor legs only.
    pub(crate) monitor_browsers: HashMap<switchboard_core::UserId, BTreeSet<crate::ids::SessionId>>,
    /// INVITEs cancelled before a final response: a late 2xx gets ACK and BYE.
    pub(crate) orphans: HashMap<Key, (Request, Peer)>,
    /// Ended calls waiting for their legs' media counts.
    pub(crate) closing: HashMap<CallId, Closing>,
    /// Legs whose media is closing, and the call whose record gets their counts.
    pub(crate) closing_legs: HashMap<LegId, (CallId, crate::legs::LegRole)>,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    next_id: u64,
    /// Calls each trunk carries now, and its calls in the current one-second window.
    pub(crate) trunk_use: HashMap<switchboard_core::TrunkId, TrunkUse>,
    /// Answers held back from throttled sources, sent when their `Timer::Respond` fires.
    delayed: HashMap<u64, (Option<Key>, Peer, Response)>,
    /// Transfers waiting for routing's answer, by operation id.
    pub(crate) pending: HashMap<u64, crate::control::Pending>,
    /// Live calls' recordings (see `recording.rs`).
    pub(crate) recordings: crate::recording::Recordings,
    outputs: VecDeque<Output>,
}

impl Engine {
    /// A new engine; `now` and `wall` are the same moment on the monotonic and the wall clock.
    pub fn new(now: Instant, wall: DateTime<Utc>, config: EngineConfig) -> Self {
        Engine {
            random: Random::new(config.seed),
            tx: Transactions::new(config.sip_timers),
            registrar: Registrar::new(config.nonce_secret.clone()),
            config,
            epoch: (now, wall),
            directory: Directory::default(),
            calls: HashMap::new(),
            by_contact: HashMap::new(),
            callbacks: Vec::new(),
            legs: Legs::default(),
            browsers: HashMap::new(),
            monitor_browsers: HashMap::new(),
            orphans: HashMap::new(),
            closing: HashMap::new(),
            closing_legs: HashMap::new(),
            timers: BinaryHeap::new(),
            next_id: 0,
            pending: HashMap::new(),
            delayed: HashMap::new(),
            trunk_use: HashMap::new(),
            recordings: Default::default(),
            outputs: VecDeque::new(),
        }
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Sip { message, peer } => self.tx.receive(now, message, peer),
            Input::Directory(directory) => self.directory = directory,
            Input::Media(event) => self.on_media(now, event),
            Input::Rendered {
                leg,
                token,
                parts,
                then_loop,
            } => self.on_rendered(leg, token, parts, then_loop),
            Input::Routing(result) => self.on_routing(now, result),
            Input::Contact(event) => self.on_contact(now, event),
            Input::Browser(event) => self.on_browser(now, event),
            Input::Dial {
                token,
                agent,
                number,
                from,
                emergency,
            } => {
                let result = self.dial(now, agent, &number, from, emergency.map(|e| *e));
                self.output(Output::Reply { token, result });
            }
            Input::CallbackDial {
                token,
                contact,
                agent,
                number,
                queue,
            } => {
                let result = self.callback_dial(now, contact, agent, &number, queue);
                self.output(Output::Reply { token, result });
            }
            Input::Callbacks(leases) => self.callbacks = leases,
            Input::PhoneDialed { call, decision } => {
                self.phone_decided(now, call, decision.map(|e| e.map(|e| *e)))
            }
            Input::Command {
                token,
                call,
                control,
            } => self.on_command(now, token, call, control),
        }
        self.pump(now);
        self.sync_recordings(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.pump(now);
        while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.on_timer(now, timer);
            self.pump(now);
        }
        self.sync_recordings(now);
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ours = self.timers.peek().map(|Reverse((at, _, _))| *at);
        [self.tx.poll_timeout(), ours].into_iter().flatten().min()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Calls in progress, oldest first.
    pub fn live(&self) -> Vec<CallRecord> {
        let mut live: Vec<CallRecord> = self
            .calls
            .values()
            .filter(|c| c.state != CallState::Answering)
            .map(|c| c.record.clone())
            .collect();
        live.sort_by_key(|r| r.started_at);
        live
    }

    /// Registered phones: user, contact URI, source address.
    pub fn registrations(
        &self,
        now: Instant,
    ) -> Vec<(switchboard_core::UserId, String, SocketAddr)> {
        self.registrar.list(now)
    }

    /// How many SIP transactions, legs and calls are held (for tests and metrics).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.tx.len(),
            self.legs.len(),
            self.calls.len() + self.closing.len(),
        )
    }

    // ----- plumbing used by every part of the engine -----

    pub(crate) fn wall(&self, now: Instant) -> DateTime<Utc> {
        let elapsed = now.saturating_duration_since(self.epoch.0);
        self.epoch.1 + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    pub(crate) fn output(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    pub(crate) fn media(&mut self, op: MediaOp) {
        self.outputs.push_back(Output::Media(op));
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn schedule(&mut self, at: Instant, timer: Timer) {
        let seq = self.next_id();
        self.timers.push(Reverse((at, seq, timer)));
    }

    pub(crate) fn token(&mut self) -> String {
        self.random.token()
    }

    pub(crate) fn via(&mut self, peer: Peer) -> String {
        let transport = if peer.transport == Wire::Tcp {
            "TCP"
        } else {
            "UDP"
        };
        format!(
            "SIP/2.0/{transport} {};branch=z9hG4bK{};rport",
            self.config.local,
            self.random.token()
        )
    }

    pub(crate) fn contact_header(&self, peer: Peer) -> String {
        if peer.transport == Wire::Tcp {
            format!("<sip:switchboard@{};transport=tcp>", self.config.local)
        } else {
            format!("<sip:switchboard@{}>", self.config.local)
        }
    }

    pub(crate) fn respond(
        &mut self,
        now: Instant,
        key: &Option<Key>,
        peer: Peer,
        response: Response,
    ) {
        match key {
            Some(key) => {
                self.tx.respond(now, key, response);
            }
            None => self.tx.send_stateless(Message::Response(response), peer),
        }
    }

    /// Sends an answer now, or when its delay has passed.
    pub(crate) fn answer(
        &mut self,
        now: Instant,
        key: &Option<Key>,
        peer: Peer,
        answer: crate::registrar::Answer,
    ) {
        if answer.delay.is_zero() {
            self.respond(now, key, peer, answer.response);
            return;
        }
        let id = self.next_id();
        self.delayed
            .insert(id, (key.clone(), peer, answer.response));
        self.schedule(now + answer.delay, Timer::Respond { id });
    }

    /// Answers a request with a bare status (and Allow where the status asks for it).
    pub(crate) fn reply(
        &mut self,
        now: Instant,
        request: &Request,
        key: &Option<Key>,
        peer: Peer,
        status: u16,
    ) {
        let tag = self.token();
        let mut response = Response::to(request, status, reason(status), Some(&tag));
        if status == 405 || status == 501 {
            response.headers.push("Allow", ALLOW);
        }
        self.respond(now, key, peer, response);
    }

    /// Sends what the transactions want sent and handles their events, until both are empty.
    fn pump(&mut self, now: Instant) {
        loop {
            while let Some((peer, bytes)) = self.tx.poll_transmit() {
                self.outputs.push_back(Output::Transmit { peer, bytes });
            }
            let Some(event) = self.tx.poll_event() else {
                break;
            };
            self.on_sip(now, event);
        }
    }

    fn on_sip(&mut self, now: Instant, event: Event) {
        match event {
            Event::Request { request, peer, key } => self.on_request(now, request, peer, key),
            Event::Response { response, key } => self.on_response(now, response, key),
            Event::Timeout { key } => {
                if key.method == Method::Invite {
                    if let Some(leg) = self.legs.of_client_invite(&key) {
                        self.leg_failed(now, leg, 408);
                    }
                    self.orphans.remove(&key);
                }
            }
            Event::AckTimeout { call_id } => {
                let leg = self.legs.of_call_id(&call_id);
                let customer = leg
                    .and_then(|l| self.legs.get(l))
                    .filter(|l| l.role == crate::legs::LegRole::Customer)
                    .map(|l| l.call);
                if let Some(call) = customer {
                    tracing::warn!(%call_id, "caller never acknowledged the answer");
                    self.end_call(now, call, EndReason::NoAck);
                }
            }
        }
    }

    fn on_request(&mut self, now: Instant, request: Request, peer: Peer, key: Option<Key>) {
        if request.method == Method::Ack {
            self.on_ack(request);
            return;
        }
        // RFC 3261 §8.2.2.3: we support no extensions.
        if let Some(required) = request.headers.get("Require") {
            if request.method != Method::Cancel {
                let tag = self.token();
                let mut response = Response::to(&request, 420, reason(420), Some(&tag));
                response.headers.push("Unsupported", required);
                self.respond(now, &key, peer, response);
                return;
            }
        }
        if request
            .headers
            .get("Max-Forwards")
            .is_some_and(|m| m.trim() == "0")
            && !matches!(request.method, Method::Options | Method::Register)
        {
            self.reply(now, &request, &key, peer, 483);
            return;
        }
        let in_dialog = request.headers.get("To").and_then(fields::tag).is_some();
        match request.method {
            Method::Register => {
                let tag = self.token();
                let wall = self.wall(now);
                let answer =
                    self.registrar
                        .register(now, wall, &request, peer, &self.directory, &tag);
                self.answer(now, &key, peer, answer);
            }
            Method::Options => {
                let tag = self.token();
                let mut response = Response::to(&request, 200, "OK", Some(&tag));
                response.headers.push("Allow", ALLOW);
                response
                    .headers
                    .push("Accept", "application/sdp, application/dtmf-relay");
                self.respond(now, &key, peer, response);
            }
            Method::Invite if in_dialog => self.on_reinvite(now, request, peer, key),
            Method::Invite => self.on_invite(now, request, peer, key),
            Method::Bye => self.on_bye(now, request, peer, key),
            Method::Cancel => self.on_cancel(now, request, peer, key),
            Method::Info => self.on_info(now, request, peer, key),
            _ => self.reply(now, &request, &key, peer, 501),
        }
    }

    fn on_media(&mut self, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Ready { leg, port } => self.media_ready(now, leg, port),
            MediaEvent::Unavailable { leg } => self.media_unavailable(now, leg),
            MediaEvent::Dtmf { leg, digit } => {
                if let Some(call) = self.customer_call(leg) {
                    self.on_digit(now, call, digit);
                }
            }
            MediaEvent::Timeout { leg } => {
                if let Some(call) = self.customer_call(leg) {
                    tracing::info!(%call, "no media from the caller; hanging up");
                    self.end_call(now, call, EndReason::MediaTimeout);
                }
            }
            MediaEvent::PlaybackDone { leg, token } => {
                if let Some(call) = self.customer_call(leg) {
                    self.after_hours_done(now, call, token);
                    self.voicemail_played(now, call, token);
                    return;
                }
                let call = self
                    .legs
                    .get(leg)
                    .map(|l| l.call)
                    .filter(|c| self.calls.get(c).is_some_and(|c| c.agent == Some(leg)));
                if let Some(call) = call {
                    self.agent_playback_done(now, call, token);
                }
            }
            MediaEvent::Closed {
                leg,
                received,
                sent,
            } => self.media_closed(leg, received, sent),
        }
    }

    /// The call whose customer this leg is.
    fn customer_call(&self, leg: LegId) -> Option<CallId> {
        let leg = self.legs.get(leg)?;
        (leg.role == crate::legs::LegRole::Customer).then_some(leg.call)
    }

    fn on_rendered(
        &mut self,
        leg: LegId,
        token: u64,
        parts: Vec<crate::interface::Samples>,
        then_loop: Option<crate::interface::Samples>,
    ) {
        let current = self
            .legs
            .get(leg)
            .and_then(|l| self.calls.get(&l.call))
            .is_some_and(|c| {
                (c.customer == leg && c.play_token == token)
                    || (c.agent == Some(leg) && c.agent_token == token)
            });
        if current {
            self.media(MediaOp::Play {
                leg,
                token,
                parts,
                then_loop,
            });
        }
    }

    fn on_routing(&mut self, now: Instant, result: RoutingResult) {
        match result {
            RoutingResult::Enqueued { call, result } => {
                if let Err(error) = result {
                    tracing::warn!(%error, "a call could not be queued");
                    self.end_call(now, call, EndReason::NotQueued);
                }
            }
            RoutingResult::Position {
                call,
                token,
                position,
            } => {
                let current = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.play_token == token && c.state == CallState::Queued);
                if let (true, Some(position)) = (current, position) {
                    self.hold_music(call, Some(position + 1));
                }
            }
            RoutingResult::Transferred { op, result } => self.transferred(now, op, result),
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Ring { leg } => self.ring_timeout(now, leg),
            Timer::Menu { call, generation } => {
                let idle = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.state == CallState::Menu && c.menu_generation == generation);
                if idle {
                    tracing::info!(%call, "no choice in the menu; hanging up");
                    self.end_call(now, call, EndReason::MenuTimeout);
                }
            }
            Timer::Announce { call } => self.announce(now, call),
            Timer::Closing { call } => self.finish_closing(call),
            Timer::AckWait { call } => {
                let unacknowledged = self
                    .calls
                    .get(&call)
                    .and_then(|c| self.legs.get(c.customer))
                    .is_some_and(|l| l.sip().is_some_and(|s| !s.acked));
                if unacknowledged {
                    tracing::warn!(%call, "caller never acknowledged the answer");
                    self.end_call(now, call, EndReason::NoAck);
                }
            }
            Timer::Whisper { call, token } => self.agent_playback_done(now, call, token),
            Timer::Voicemail { call, recording } => self.voicemail_limit(now, call, recording),
            Timer::Respond { id } => {
                if let Some((key, peer, response)) = self.delayed.remove(&id) {
                    self.respond(now, &key, peer, response);
                }
            }
        }
    }
}
