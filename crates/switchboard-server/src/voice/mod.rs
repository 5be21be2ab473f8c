//! Voice: the IO shell around the sans-IO call engine (`switchboard-call`) and media rooms
//! (`switchboard-media`). It owns the clock, the SIP sockets (`transport`), the RTP sockets
//! (`media`), the prompt renderer (`prompts`, `audio`: uploads and the text-to-speech process)
//! and the way to the contact service, and carries out what the engine decides.
//!
//! One task drives the engine: SIP messages, media events, routing answers, rendered audio,
//! contact changes and API commands all arrive as inputs on that task, and its outputs are
//! carried out before the next input. Nothing in the task waits on the database or routing
//! except one thing: when the configuration changed (its generation moved on), the voice
//! configuration is loaded again before the next INVITE or REGISTER is handed to the engine, as
//! a request right after an edit expects. Cached uploaded prompts are forgotten when audio or
//! queues change.
//!
//! Browser phones (docs/browser-phone.md): an agent's adapter that says `phone_ready` on its
//! WebSocket becomes a browser session of the engine; the task keeps each session's connection
//! and which legs ring on it, turns the engine's `BrowserOp`s into frames to that connection,
//! and checks that an answer, a decline or a hang-up names a leg of the session that sent it.

pub mod audio;
// Public for the browser-leg benchmark (benches/browser_legs.rs), which drives the media plane
// without the rest of the server; nothing else outside voice uses them.
#[doc(hidden)]
pub mod media;
pub mod prompts;
mod transport;
#[doc(hidden)]
pub mod webrtc;

use crate::app::AppState;
use crate::chat::hub::Conn;
use crate::chat::protocol::ServerEvent;
use media::{MediaPlane, Ports};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use switchboard_call::{
    BrowserEvent, BrowserOp, CallError, CallMetric, ContactEvent, Directory, EmergencyDial, Engine,
    EngineConfig, Input, LegId, Output, ReplyToken, RoutingRefusal, RoutingRequest, RoutingResult,
    RoutingTarget, SessionId,
};
use switchboard_core::voice::CallRecord;
use switchboard_core::{CallId, Channel, QueueId, TeamId, UserId};
use switchboard_media::RoomConfig;
use switchboard_services::bus::ContactChange;
use switchboard_services::config::ConfigArea;
use switchboard_services::contacts::{ContactError, NewContact, TransferTarget};
use switchboard_services::events::{DomainEvent, Subject};
use switchboard_sip::{Message, Method};
use tokio::sync::{mpsc, oneshot};
use transport::{Inbound, TcpLimits, Transport};

pub use switchboard_call::{CallControl, TransferTo, REALM};

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("call not found (it may have ended)")]
    NotFound,
    #[error("{0}")]
    State(&'static str),
    #[error(transparent)]
    Routing(#[from] RoutingRefusal),
    #[error("voice is not running")]
    Off,
    #[error(
        "this is an emergency call: emergency calls are confidential and can never be monitored"
    )]
    Confidential,
}

impl From<CallError> for VoiceError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::NotFound => VoiceError::NotFound,
            CallError::State(message) => VoiceError::State(message),
            CallError::Confidential => VoiceError::Confidential,
            CallError::Routing(refusal) => VoiceError::Routing(refusal),
        }
    }
}

/// What the rest of the server asks of the voice task.
enum Command {
    Control {
        call: CallId,
        control: CallControl,
        reply: oneshot::Sender<Result<CallRecord, VoiceError>>,
    },
    /// An agent places a call (from the adapter session `from`, or on all their devices).
    Dial {
        agent: UserId,
        number: String,
        from: Option<SessionId>,
        emergency: Option<Box<EmergencyDial>>,
        reply: oneshot::Sender<Result<CallRecord, VoiceError>>,
    },
    /// The callback numbers leased now (EMG-4).
    Callbacks(Vec<switchboard_core::emergency::Lease>),
    /// A scheduled callback's contact reached an agent: ring them, whisper, dial the number.
    CallbackDial {
        contact: switchboard_core::ContactId,
        agent: UserId,
        number: String,
        queue: switchboard_core::QueueId,
        reply: oneshot::Sender<Result<CallRecord, VoiceError>>,
    },
    /// The decision on a number an agent dialled from their SIP phone.
    PhoneDecided {
        call: CallId,
        decision: Result<Option<EmergencyDial>, switchboard_call::PhoneRefusal>,
    },
    Live(oneshot::Sender<Vec<CallRecord>>),
    /// One live call's details (MON-5), `None` once it has ended.
    Details(
        CallId,
        oneshot::Sender<Option<switchboard_call::CallDetails>>,
    ),
    Registrations(oneshot::Sender<Vec<(UserId, String, SocketAddr)>>),
    Contact(ContactChange),
    /// Users' teams changed (events about a call go to those who may watch its agent).
    Teams(HashMap<UserId, Vec<TeamId>>),
    /// An agent's adapter can take calls on this connection (its id names the session).
    PhoneOnline {
        agent: UserId,
        conn: Conn,
        /// A supervisor's portal phone: it carries their monitor legs only.
        monitor_only: bool,
    },
    /// The adapter's connection closed.
    PhoneOffline {
        session: SessionId,
    },
    /// The agent answered a leg ringing on the session, with the browser's SDP offer.
    PhoneAnswer {
        session: SessionId,
        leg: LegId,
        sdp: String,
        reply: oneshot::Sender<Result<String, PhoneError>>,
    },
    /// The agent declined (ringing) or hung up (answered) a leg of the session.
    PhoneLeg {
        session: SessionId,
        leg: LegId,
        hang_up: bool,
    },
}

/// Why a browser's answer got no SDP back.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "no such call is ringing on this adapter (it may have ended or been answered elsewhere)"
    )]
    NotRinging,
    #[error(transparent)]
    Media(#[from] webrtc::WebRtcError),
    #[error("voice is not running")]
    Off,
}

/// The handle the rest of the server holds.
#[derive(Default)]
pub struct VoiceService {
    commands: OnceLock<mpsc::UnboundedSender<Command>>,
    local: OnceLock<SocketAddr>,
}

impl VoiceService {
    /// Binds SIP (UDP and TCP) and starts the voice task. Returns the tasks to stop on shutdown.
    pub async fn start(app: &AppState) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
        let Some(addr) = app.config.voice.sip else {
            tracing::info!("voice is off (SWITCHBOARD_SIP=off)");
            return Ok(Vec::new());
        };
        let voice = &app.config.voice;
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let limits = TcpLimits {
            max_connections: voice.tcp_max_connections,
            per_source: voice.tcp_per_source,
            idle: Duration::from_secs(voice.tcp_idle_seconds),
        };
        let (transport, listener) = Transport::bind(addr, inbound_tx, limits).await?;
        let local = transport.local_addr()?;
        let ip = voice.public_ip.unwrap_or(if local.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local.ip()
        });
        let advertised = SocketAddr::new(ip, local.port());
        let speech = audio::Speech::new(&voice.tts, app.config.data_dir.join("prompts"));
        if let Some(engine) = speech.engine() {
            tracing::info!(engine, "voice prompts by text-to-speech");
        }
        let prompts = Arc::new(prompts::Prompts::new(
            speech,
            app.services.store.clone(),
            app.blobs.clone(),
        ));
        let seed = rand_seed();
        let config = EngineConfig {
            ring: Duration::from_secs(voice.ring_seconds),
            announce: Duration::from_secs(voice.announce_seconds),
            trunk_max_calls: voice.trunk_max_calls,
            trunk_calls_per_second: u32::try_from(voice.trunk_max_cps).unwrap_or(u32::MAX),
            ..EngineConfig::new(advertised, ip, crate::secret::random_token(32), seed)
        };
        let engine = Engine::new(Instant::now(), app.config.wall_clock.now(), config);
        let (media_tx, media_events) = mpsc::unbounded_channel();
        let room = RoomConfig {
            media_timeout: Duration::from_secs(voice.media_timeout_seconds),
            ..RoomConfig::default()
        };
        let (first, last) = voice.rtp_ports;
        let recorder = crate::recordings::RecordingWriter::start(
            app.services.store.clone(),
            app.recordings.clone(),
            app.services.jobs.clone(),
        )?;
        let media = MediaPlane::new(Ports::new(first, last), ip, room, seed, media_tx)
            .with_recorder(recorder)
            .on_threads(voice.media_threads)?;
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        let (routing_tx, routing) = mpsc::unbounded_channel();
        let (records_tx, records) = mpsc::unbounded_channel();
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let prompts_for_changes = prompts.clone();
        let config_changes = app.services.config.subscribe();
        let task = VoiceTask {
            app: app.clone(),
            engine,
            transport: transport.clone(),
            media,
            prompts,
            inputs: inputs_tx.clone(),
            routing: routing_tx,
            records: records_tx,
            replies: HashMap::new(),
            next_token: 0,
            loaded: None,
            teams: HashMap::new(),
            queue_paths: HashMap::new(),
            emergencies: std::collections::HashSet::new(),
            phones: HashMap::new(),
            ringing: HashMap::new(),
        };
        let _ = app.voice.commands.set(commands_tx);
        let _ = app.voice.local.set(local);
        tracing::info!(%local, "SIP listening on UDP and TCP");
        Ok(vec![
            tokio::spawn(transport.clone().run_udp()),
            tokio::spawn(transport.run_tcp(listener)),
            tokio::spawn(task.run(inbound, inputs, media_events, commands)),
            tokio::spawn(route(app.clone(), routing, inputs_tx)),
            tokio::spawn(write_records(app.clone(), records)),
            tokio::spawn(follow_config(
                app.clone(),
                prompts_for_changes,
                config_changes,
            )),
        ])
    }

    /// The SIP address (UDP and TCP), once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local.get().copied()
    }

    fn send(&self, command: Command) -> Result<(), VoiceError> {
        self.commands
            .get()
            .ok_or(VoiceError::Off)?
            .send(command)
            .map_err(|_| VoiceError::Off)
    }

    /// Routing changed a call's contact.
    pub fn contact_changed(&self, change: ContactChange) {
        let _ = self.send(Command::Contact(change));
    }

    pub async fn control(
        &self,
        call: CallId,
        control: CallControl,
    ) -> Result<CallRecord, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Control {
            call,
            control,
            reply,
        })?;
        answer.await.map_err(|_| VoiceError::Off)?
    }

    /// An agent calls `number` (already checked against their profile and the dialling
    /// policy): from the adapter connection `from` (its id), or ringing all their devices.
    /// With `emergency`, an emergency call placed as it says (EMG-1..9).
    pub async fn dial(
        &self,
        agent: UserId,
        number: String,
        from: Option<u64>,
        emergency: Option<EmergencyDial>,
    ) -> Result<CallRecord, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Dial {
            agent,
            number,
            from: from.map(SessionId),
            emergency: emergency.map(Box::new),
            reply,
        })?;
        answer.await.map_err(|_| VoiceError::Off)?
    }

    /// A scheduled callback's contact reached `agent` (see `crate::callbacks`): their devices
    /// ring, they hear the callback whisper, then `number` is called through the outbound trunk.
    pub async fn callback_dial(
        &self,
        contact: switchboard_core::ContactId,
        agent: UserId,
        number: String,
        queue: switchboard_core::QueueId,
    ) -> Result<CallRecord, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::CallbackDial {
            contact,
            agent,
            number,
            queue,
            reply,
        })?;
        answer.await.map_err(|_| VoiceError::Off)?
    }

    /// Tells the engine which callback numbers are leased now (EMG-4).
    pub fn callbacks(
        &self,
        leases: Vec<switchboard_core::emergency::Lease>,
    ) -> Result<(), VoiceError> {
        self.send(Command::Callbacks(leases))
    }

    /// Calls in progress, oldest first.
    pub async fn live(&self) -> Result<Vec<CallRecord>, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Live(reply))?;
        answer.await.map_err(|_| VoiceError::Off)
    }

    /// One live call's details: where it stands, hold so far, who is on it; `None` when it
    /// is not live (it ended, or never was).
    pub async fn details(
        &self,
        call: CallId,
    ) -> Result<Option<switchboard_call::CallDetails>, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Details(call, reply))?;
        answer.await.map_err(|_| VoiceError::Off)
    }

    /// An agent's adapter connection takes calls from now on, until `phone_offline`; with
    /// `monitor_only` (a supervisor's portal) it carries the user's monitor legs alone.
    pub fn phone_online(
        &self,
        agent: UserId,
        conn: Conn,
        monitor_only: bool,
    ) -> Result<(), VoiceError> {
        self.send(Command::PhoneOnline {
            agent,
            conn,
            monitor_only,
        })
    }

    pub fn phone_offline(&self, session: u64) {
        let _ = self.send(Command::PhoneOffline {
            session: SessionId(session),
        });
    }

    /// The browser's SDP offer for a leg ringing on its session; answers with our SDP.
    pub async fn phone_answer(
        &self,
        session: u64,
        leg: u64,
        sdp: String,
    ) -> Result<String, PhoneError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::PhoneAnswer {
            session: SessionId(session),
            leg: LegId(leg),
            sdp,
            reply,
        })
        .map_err(|_| PhoneError::Off)?;
        // No answer at all: the leg went away before its room took the offer.
        answer.await.unwrap_or(Err(PhoneError::NotRinging))
    }

    /// Declines a ringing leg, or hangs up an answered one (`hang_up`).
    pub fn phone_leg(&self, session: u64, leg: u64, hang_up: bool) -> Result<(), VoiceError> {
        self.send(Command::PhoneLeg {
            session: SessionId(session),
            leg: LegId(leg),
            hang_up,
        })
    }

    /// Registered phones: user, contact URI, source address.
    pub async fn registrations(&self) -> Result<Vec<(UserId, String, SocketAddr)>, VoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Registrations(reply))?;
        answer.await.map_err(|_| VoiceError::Off)
    }
}

fn rand_seed() -> u64 {
    let uuid = uuid::Uuid::new_v4();
    let bytes = uuid.as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}

/// The task that drives the engine.
struct VoiceTask {
    app: AppState,
    engine: Engine,
    transport: Arc<Transport>,
    media: MediaPlane,
    prompts: Arc<prompts::Prompts>,
    /// Where rendered audio and routing answers come back.
    inputs: mpsc::UnboundedSender<Input>,
    /// The routing worker's queue (requests are answered in order).
    routing: mpsc::UnboundedSender<RoutingRequest>,
    /// The record writer's queue.
    records: mpsc::UnboundedSender<CallRecord>,
    /// API commands waiting for the engine's answer.
    replies: HashMap<u64, oneshot::Sender<Result<CallRecord, VoiceError>>>,
    next_token: u64,
    /// The configuration generation the engine's directory was loaded at.
    loaded: Option<u64>,
    /// Every user's teams, for the subject of a call's events.
    teams: HashMap<UserId, Vec<TeamId>>,
    /// Voice queues' paths ("Support > Billing"), for what a ringing browser shows.
    queue_paths: HashMap<QueueId, String>,
    /// Agents' emergency calls in progress, to act once on each end (EMG-8).
    emergencies: std::collections::HashSet<CallId>,
    /// Adapter connections that take calls, by session (the connection's id), until closed.
    phones: HashMap<SessionId, Conn>,
    /// Browser legs and the session they ring or talk on, from `Ring` until `Stop`.
    ringing: HashMap<LegId, SessionId>,
}

impl VoiceTask {
    async fn run(
        mut self,
        mut inbound: mpsc::UnboundedReceiver<Inbound>,
        mut inputs: mpsc::UnboundedReceiver<Input>,
        mut media: mpsc::UnboundedReceiver<Input>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        self.reload().await;
        loop {
            let deadline = self
                .engine
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                message = inbound.recv() => {
                    let Some(Inbound { message, peer }) = message else { break };
                    let current = self.app.services.config.generation();
                    if self.loaded != Some(current) && needs_directory(&message) {
                        self.reload().await;
                    }
                    self.engine.handle_input(Instant::now(), Input::Sip { message, peer });
                }
                Some(input) = inputs.recv() => self.engine.handle_input(Instant::now(), input),
                Some(input) = media.recv() => self.on_media(input),
                Some(command) = commands.recv() => {
                    // A call placed now goes out through the trunks as they are now.
                    let current = self.app.services.config.generation();
                    if self.loaded != Some(current) && matches!(command, Command::Dial { .. } | Command::CallbackDial { .. } | Command::PhoneDecided { .. }) {
                        self.reload().await;
                    }
                    self.on_command(command);
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.engine.handle_timeout(Instant::now());
                }
            }
            self.carry_out();
        }
    }

    async fn reload(&mut self) {
        // Read before loading: a change made meanwhile is loaded again next time.
        let generation = self.app.services.config.generation();
        match self.app.services.teams_by_user().await {
            Ok(teams) => self.teams = teams,
            Err(error) => tracing::warn!(%error, "could not read users' teams"),
        }
        match self.app.services.dialing.callback_leases().await {
            Ok(leases) => self
                .engine
                .handle_input(Instant::now(), Input::Callbacks(leases)),
            Err(error) => tracing::warn!(%error, "could not read the callback leases"),
        }
        match load_directory(&self.app).await {
            Ok(directory) => {
                self.loaded = Some(generation);
                self.queue_paths = queue_paths(&directory.nodes);
                self.engine
                    .handle_input(Instant::now(), Input::Directory(directory));
            }
            Err(error) => {
                tracing::warn!(%error, "could not load the voice configuration; using the last one")
            }
        }
    }

    /// Keeps where the engine's answer goes; the token names it to the engine.
    fn awaiting(&mut self, reply: oneshot::Sender<Result<CallRecord, VoiceError>>) -> ReplyToken {
        self.next_token += 1;
        self.replies.insert(self.next_token, reply);
        ReplyToken(self.next_token)
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Control {
                call,
                control,
                reply,
            } => {
                let token = self.awaiting(reply);
                self.engine.handle_input(
                    now,
                    Input::Command {
                        token,
                        call,
                        control,
                    },
                );
            }
            Command::Dial {
                agent,
                number,
                from,
                emergency,
                reply,
            } => {
                let token = self.awaiting(reply);
                let dial = Input::Dial {
                    token,
                    agent,
                    number,
                    from,
                    emergency,
                };
                self.engine.handle_input(now, dial);
            }
            Command::CallbackDial {
                contact,
                agent,
                number,
                queue,
                reply,
            } => {
                let token = self.awaiting(reply);
                self.engine.handle_input(
                    now,
                    Input::CallbackDial {
                        token,
                        contact,
                        agent,
                        number,
                        queue,
                    },
                );
            }
            Command::PhoneDecided { call, decision } => {
                let decision = decision.map(|d| d.map(Box::new));
                self.engine
                    .handle_input(now, Input::PhoneDialed { call, decision });
            }
            Command::Callbacks(leases) => {
                self.engine
                    .handle_input(Instant::now(), Input::Callbacks(leases));
            }
            Command::Live(reply) => {
                let _ = reply.send(self.engine.live());
            }
            Command::Registrations(reply) => {
                let _ = reply.send(self.engine.registrations(now));
            }
            Command::Contact(change) => {
                if let Some(event) = contact_event(change) {
                    self.engine.handle_input(now, Input::Contact(event));
                }
            }
            Command::Teams(teams) => self.teams = teams,
            Command::Details(call, reply) => {
                let _ = reply.send(self.engine.details(now, call));
            }
            Command::PhoneOnline {
                agent,
                conn,
                monitor_only,
            } => {
                let session = SessionId(conn.id);
                tracing::debug!(%agent, %session, monitor_only, "a browser phone is online");
                self.phones.insert(session, conn);
                let event = if monitor_only {
                    BrowserEvent::MonitorOnline {
                        session,
                        user: agent,
                    }
                } else {
                    BrowserEvent::Online { session, agent }
                };
                self.engine.handle_input(now, Input::Browser(event));
            }
            Command::PhoneOffline { session } => {
                if self.phones.remove(&session).is_some() {
                    tracing::debug!(%session, "a browser phone went offline");
                    self.engine
                        .handle_input(now, Input::Browser(BrowserEvent::Offline { session }));
                }
            }
            Command::PhoneAnswer {
                session,
                leg,
                sdp,
                reply,
            } => {
                if self.ringing.get(&leg) == Some(&session) {
                    self.media.offer(leg, sdp, reply);
                } else {
                    let _ = reply.send(Err(PhoneError::NotRinging));
                }
            }
            Command::PhoneLeg {
                session,
                leg,
                hang_up,
            } => {
                if self.ringing.get(&leg) == Some(&session) {
                    let event = if hang_up {
                        BrowserEvent::HungUp { leg }
                    } else {
                        BrowserEvent::Declined { leg }
                    };
                    self.engine.handle_input(now, Input::Browser(event));
                }
            }
        }
    }

    /// What a media room reports: its own events, and browser legs whose media came up (the
    /// agent's answer) or was lost, for legs still ringing or talking on their session.
    fn on_media(&mut self, input: Input) {
        if let Input::Browser(
            BrowserEvent::Answered { leg }
            | BrowserEvent::Declined { leg }
            | BrowserEvent::HungUp { leg },
        ) = &input
        {
            if !self.ringing.contains_key(leg) {
                return;
            }
        }
        self.engine.handle_input(Instant::now(), input);
    }

    /// Tells a browser session what the engine decided about one of its legs.
    fn tell_phone(&mut self, op: BrowserOp) {
        let (session, frame) = match op {
            BrowserOp::Ring { session, leg, call } => {
                self.ringing.insert(leg, session);
                let queue = call.queue.and_then(|q| self.queue_paths.get(&q).cloned());
                let frame = ServerEvent::CallRing {
                    leg_id: leg.0.to_string(),
                    call_id: call.id.to_string(),
                    caller: call.caller.clone(),
                    queue_id: call.queue.map(|q| q.to_string()),
                    queue,
                    started_at: call.started_at,
                    queued_at: call.queued_at,
                    direction: call.direction.as_str(),
                    number: call.did.clone(),
                    flags: crate::chat::flags(&call.properties),
                    transfers: call.transfers.len(),
                    contact_id: call.contact.map(|c| c.to_string()),
                    emergency: call.emergency.map(|e| e.as_str()),
                };
                (session, frame)
            }
            BrowserOp::Stop { session, leg } => {
                self.ringing.remove(&leg);
                let frame = ServerEvent::CallStop {
                    leg_id: leg.0.to_string(),
                };
                (session, frame)
            }
        };
        if let Some(conn) = self.phones.get(&session) {
            // A connection too slow to take the frame is dropped by the hub and reconnects;
            // its close takes the session's legs with it.
            conn.send(frame.to_json());
        }
    }

    /// Carries out everything the engine asked for, until it has nothing left.
    fn carry_out(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Transmit { peer, bytes } => self.transport.send(peer, bytes),
                Output::Media(op) => {
                    if let switchboard_call::MediaOp::Close { leg } = &op {
                        // However the leg ended, it no longer belongs to its session.
                        self.ringing.remove(leg);
                    }
                    if let Some(event) = self.media.apply(op) {
                        self.engine
                            .handle_input(Instant::now(), Input::Media(event));
                    }
                }
                Output::Render {
                    leg,
                    token,
                    sounds,
                    then,
                    repeat,
                } => {
                    let prompts = self.prompts.clone();
                    let inputs = self.inputs.clone();
                    tokio::spawn(async move {
                        let mut parts = Vec::with_capacity(sounds.len());
                        for sound in sounds {
                            parts.push(prompts.render(sound).await);
                        }
                        let then = match then {
                            Some(sound) => Some(prompts.render(sound).await),
                            None => None,
                        };
                        let (parts, then_loop) = media::playback_parts(parts, then, repeat);
                        let _ = inputs.send(Input::Rendered {
                            leg,
                            token,
                            parts,
                            then_loop,
                        });
                    });
                }
                Output::Routing(request) => {
                    let _ = self.routing.send(request);
                }
                Output::CallbackAsked {
                    contact,
                    queue,
                    number,
                    ..
                } => crate::callbacks::asked(&self.app, contact, queue, number),
                Output::PhoneDial {
                    call,
                    agent,
                    number,
                } => {
                    let app = self.app.clone();
                    tokio::spawn(async move {
                        let decision =
                            crate::emergency::phone_dialled(&app, call, agent, &number).await;
                        let _ = app.voice.send(Command::PhoneDecided { call, decision });
                    });
                }
                Output::Call(record) if record.emergency.is_some() => {
                    // Confidential (EMG-6): its agent alone sees it, and it is never stored.
                    if record.ended_at.is_some() {
                        if self.emergencies.remove(&record.id) {
                            crate::emergency::ended(&self.app, &record);
                        }
                    } else {
                        self.emergencies.insert(record.id);
                    }
                    if let Some(agent) = record.agent {
                        self.app
                            .services
                            .events
                            .publish(Subject::Own(agent), DomainEvent::CallUpdated(record));
                    }
                }
                Output::Call(record) => {
                    crate::callbacks::call_ended(&self.app, &record);
                    if record.ended_at.is_some()
                        && record.answered_at.is_some()
                        && record.agent.is_some()
                    {
                        // Every answered call gets a ticket in the CRM (PLT-9).
                        let jobs = self.app.services.jobs.clone();
                        let call = record.id;
                        tokio::spawn(async move {
                            crate::crm::enqueue(&jobs, crate::crm::Event::CallEnded { call }).await;
                        });
                    }
                    // Seen as its agent is, or as a contact waiting in its queue: the same
                    // rule as the REST API's (`Actor::may_see_call`).
                    let subject = match record.agent {
                        Some(id) => Subject::Agent {
                            id,
                            teams: self.teams.get(&id).cloned().unwrap_or_default(),
                        },
                        None => Subject::Waiting {
                            queue: record.queue,
                            channel: Channel::Voice,
                        },
                    };
                    self.app
                        .services
                        .events
                        .publish(subject, DomainEvent::CallUpdated(record.clone()));
                    let _ = self.records.send(record);
                }
                Output::Metric(metric) => self.count(metric),
                Output::Browser(op) => self.tell_phone(op),
                Output::Reply { token, result } => {
                    if let Some(reply) = self.replies.remove(&token.0) {
                        let _ = reply.send(result.map_err(VoiceError::from));
                    }
                }
                Output::Voicemail(left) => {
                    let app = self.app.clone();
                    tokio::spawn(async move { crate::voicemail::left(&app, left).await });
                }
            }
        }
    }

    fn count(&self, metric: CallMetric) {
        let metrics = &self.app.services.metrics;
        match metric {
            CallMetric::Started => {
                metrics.calls_in_progress.inc();
            }
            CallMetric::Queued => {
                metrics.calls_queued.inc();
            }
            CallMetric::LeftQueue => {
                metrics.calls_queued.dec();
            }
            CallMetric::Answered { wait_ms } => {
                if let Some(wait) = wait_ms {
                    metrics.call_wait_seconds.observe(wait as f64 / 1000.0);
                }
            }
            CallMetric::Ended { disposition } => {
                metrics.calls_in_progress.dec();
                metrics.count_call(disposition.as_str());
            }
            CallMetric::MonitorJoined => {
                metrics.call_monitors.inc();
            }
            CallMetric::MonitorLeft => {
                metrics.call_monitors.dec();
            }
        }
    }
}

/// Whether the engine reads the configuration for this message: a new INVITE (trunks,
/// numbers, menus) or a REGISTER (phones).
fn needs_directory(message: &Message) -> bool {
    match message {
        Message::Request(request) => match request.method {
            Method::Register => true,
            Method::Invite => request
                .headers
                .get("To")
                .and_then(switchboard_sip::fields::tag)
                .is_none(),
            _ => false,
        },
        Message::Response(_) => false,
    }
}

/// The voice configuration as the engine reads it, with the outbound trunks' hosts resolved.
async fn load_directory(app: &AppState) -> Result<Directory, switchboard_store::StoreError> {
    let store = &app.services.store;
    let trunks = store.list_trunks().await?;
    let dids = store.list_dids().await?;
    let nodes = store
        .list_queues()
        .await?
        .into_iter()
        .filter(|n| n.channel == Channel::Voice)
        .collect();
    let phones = store
        .list_sip_phones()
        .await?
        .into_iter()
        .map(|(user, username, ha1)| (username.as_str().to_owned(), (user, ha1)))
        .collect();
    let whisper = store.whisper_settings().await?;
    let mut resolved = HashMap::new();
    for trunk in trunks
        .iter()
        .filter(|t| t.direction == switchboard_core::voice::TrunkDirection::Outbound)
    {
        let host = trunk.host.clone().unwrap_or_default();
        let port = trunk.port.unwrap_or(5060);
        let found = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(|mut addrs| addrs.next());
        match found {
            Ok(Some(addr)) => {
                resolved.insert(trunk.id, addr);
            }
            Ok(None) => tracing::warn!(%host, "an outbound trunk's host has no address"),
            Err(error) => {
                tracing::warn!(%error, %host, "an outbound trunk's host does not resolve")
            }
        }
    }
    let unrecorded_queues = store.unrecorded_queues().await?.into_iter().collect();
    let after_hours = Arc::new(crate::http::after_hours::load(store.as_ref()).await?);
    let no_queue_callbacks = Arc::new(
        store
            .queues_without_queue_callbacks()
            .await?
            .into_iter()
            .collect(),
    );
    Ok(Directory {
        trunks,
        dids,
        nodes,
        phones,
        resolved,
        whisper: whisper.center,
        queue_whispers: whisper.queues,
        unrecorded_queues,
        after_hours,
        no_queue_callbacks,
    })
}

/// Each voice queue's path from the top of the menu, names joined with " > ".
fn queue_paths(nodes: &[switchboard_core::queue::QueueNode]) -> HashMap<QueueId, String> {
    let by_id: HashMap<QueueId, &switchboard_core::queue::QueueNode> =
        nodes.iter().map(|n| (n.id, n)).collect();
    nodes
        .iter()
        .map(|node| {
            let mut names = vec![node.name.as_str()];
            let mut parent = node.parent;
            // Bounded by the node count: a tree has no cycles, but a bad row must not hang us.
            while let Some(up) = parent.and_then(|p| by_id.get(&p)) {
                if names.len() > nodes.len() {
                    break;
                }
                names.push(up.name.as_str());
                parent = up.parent;
            }
            names.reverse();
            (node.id, names.join(" > "))
        })
        .collect()
}

/// What a contact change means to the engine.
fn contact_event(change: ContactChange) -> Option<ContactEvent> {
    Some(match change {
        ContactChange::Assigned(contact) => ContactEvent::Assigned {
            contact: contact.id,
            agent: contact.agent?,
        },
        ContactChange::Ended(contact) => ContactEvent::Ended {
            contact: contact.id,
            by_user: contact.ended_by.is_some(),
        },
        ContactChange::Requeued { contact, from, .. } => ContactEvent::Requeued {
            contact: contact.id,
            queue: contact.queue,
            from,
        },
        ContactChange::Handed { contact, from } => ContactEvent::Handed {
            contact: contact.id,
            agent: contact.agent?,
            from,
        },
    })
}

fn refusal(error: ContactError) -> RoutingRefusal {
    match error {
        ContactError::UnknownQueue => RoutingRefusal::UnknownQueue,
        ContactError::NotALeaf => RoutingRefusal::NotALeaf,
        ContactError::UnknownContact => RoutingRefusal::UnknownContact,
        ContactError::AlreadyEnded => RoutingRefusal::AlreadyEnded,
        ContactError::NotAssigned => RoutingRefusal::NotAssigned,
        ContactError::AgentUnavailable => RoutingRefusal::AgentUnavailable,
        ContactError::WrongChannel => RoutingRefusal::WrongChannel,
        ContactError::Store(error) => RoutingRefusal::Unavailable(error.to_string()),
    }
}

/// Carries out the engine's routing requests one after another, in the order it made them (a
/// contact is queued before it can be ended), and sends the answers back.
async fn route(
    app: AppState,
    mut requests: mpsc::UnboundedReceiver<RoutingRequest>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    while let Some(request) = requests.recv().await {
        let answer = match request {
            RoutingRequest::Enqueue {
                call,
                contact,
                queue,
                language,
                customer,
            } => {
                let request = NewContact {
                    queue,
                    priority: None,
                    language,
                    customer: Some(customer),
                    chat: None,
                };
                let result = app
                    .services
                    .contacts
                    .enqueue(request, contact)
                    .await
                    .map(|_| ())
                    .map_err(refusal);
                Some(RoutingResult::Enqueued { call, result })
            }
            RoutingRequest::Outbound {
                call,
                contact,
                agent,
                number,
            } => {
                let result = app
                    .services
                    .contacts
                    .start_outbound(contact, agent, number)
                    .await
                    .map(|_| ())
                    .map_err(refusal);
                Some(RoutingResult::Enqueued { call, result })
            }
            RoutingRequest::End { contact, reason } => {
                if let Err(error) = app.services.contacts.end(contact, reason.to_owned()).await {
                    tracing::debug!(%error, "the call's contact had already ended");
                }
                None
            }
            RoutingRequest::Transfer {
                op,
                contact,
                target,
            } => {
                let target = match target {
                    RoutingTarget::Queue(queue) => TransferTarget::Queue(queue),
                    RoutingTarget::Agent(agent) => TransferTarget::Agent(agent),
                };
                let result = app
                    .services
                    .contacts
                    .transfer(contact, target)
                    .await
                    .map(|_| ())
                    .map_err(refusal);
                Some(RoutingResult::Transferred { op, result })
            }
            RoutingRequest::Missed { contact, agent } => {
                if let Err(error) = app.services.contacts.mark_not_ready(agent).await {
                    tracing::warn!(%error, "could not set the agent not ready");
                }
                if let Err(error) = app.services.contacts.return_to_queue(contact).await {
                    tracing::warn!(%error, "could not return the call to its queue");
                }
                None
            }
            RoutingRequest::Position {
                call,
                contact,
                token,
            } => Some(RoutingResult::Position {
                call,
                token,
                position: app.services.contacts.position(contact).await,
            }),
        };
        if let Some(answer) = answer {
            let _ = inputs.send(Input::Routing(answer));
        }
    }
}

/// Follows configuration changes beside the voice task: forgets cached uploaded prompts and
/// hold music when uploads or the queues they belong to change, and hands the task users'
/// new teams (the directory itself is checked by generation before each new call).
async fn follow_config(
    app: AppState,
    prompts: Arc<prompts::Prompts>,
    mut changes: mpsc::UnboundedReceiver<ConfigArea>,
) {
    while let Some(area) = changes.recv().await {
        if matches!(area, ConfigArea::VoiceAudio | ConfigArea::Queues) {
            prompts.forget_uploads();
        }
        if matches!(area, ConfigArea::Users | ConfigArea::Teams) {
            match app.services.teams_by_user().await {
                Ok(teams) => {
                    let _ = app.voice.send(Command::Teams(teams));
                }
                Err(error) => tracing::warn!(%error, "could not read users' teams"),
            }
        }
    }
}

/// Writes call records in the order the engine produced them, in batches, keeping only the
/// newest state of each call when several wait.
async fn write_records(app: AppState, mut records: mpsc::UnboundedReceiver<CallRecord>) {
    let mut batch = Vec::new();
    while records.recv_many(&mut batch, 256).await > 0 {
        let mut newest: Vec<CallRecord> = Vec::with_capacity(batch.len());
        for record in batch.drain(..) {
            match newest.iter_mut().find(|r| r.id == record.id) {
                Some(slot) => *slot = record,
                None => newest.push(record),
            }
        }
        // One transaction for the batch: a busy center writes thousands of changes a second.
        if let Err(error) = app.services.store.put_calls(&newest).await {
            tracing::error!(%error, count = newest.len(), "could not store call records");
        }
    }
}
