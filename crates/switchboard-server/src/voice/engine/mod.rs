//! The call engine: one task that owns every SIP transaction, registration and call, fed by
//! the transports, the media legs, routing and the API. It is a back-to-back user agent: the
//! caller's leg and the agent's (or a number's) leg are separate dialogs, joined only through
//! media.
//!
//! Nothing here waits on the database while holding a call's state: store writes and routing
//! calls run in spawned tasks that report back as commands.

use super::audio::Samples;
use super::media::{Leg, MediaEvent, Ports};
use super::prompts::{Prompts, Sound};
use super::transport::{Inbound, Transport};
use super::{CallControl, TransferTo, VoiceError};
use crate::app::AppState;
use chrono::Utc;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_core::voice::{
    apply_dial_rules, choose, menu_choices, CallRecord, Did, Disposition, Trunk, TrunkDirection,
};
use switchboard_core::{
    CallId, Channel, Contact, ContactId, Language, QueueId, QueueKind, QueueNode, UserId, Username,
};
use switchboard_services::bus::ContactChange;
use switchboard_services::contacts::{NewContact, TransferTarget};
use switchboard_services::events::{DomainEvent, Subject};
use switchboard_sip::dialog::Dialog;
use switchboard_sip::fields::{self, uri_of, user_of};
use switchboard_sip::transaction::{cancel_for, Event, Key, Peer, Timers, Transactions};
use switchboard_sip::{
    digest, sdp, Headers, Message, Method, Request, Response, Transport as Wire,
};
use tokio::sync::{mpsc, oneshot};

mod access;
mod control;
mod legs;

pub const REALM: &str = "switchboard";
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO";
const MENU_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REGISTER_SECONDS: u64 = 3600;
const MIN_REGISTER_SECONDS: u64 = 60;

/// What the engine is asked to do, besides SIP and media.
pub enum Command {
    Contact(ContactChange),
    Control {
        call: CallId,
        control: CallControl,
        reply: oneshot::Sender<Result<CallRecord, VoiceError>>,
    },
    Live(oneshot::Sender<Vec<CallRecord>>),
    Registrations(oneshot::Sender<Vec<(UserId, String, SocketAddr)>>),
    /// Audio is ready for the leg it was asked for, if that request is still current.
    Play {
        call: u64,
        token: u64,
        parts: Vec<Samples>,
        then_loop: Option<Samples>,
    },
    /// A routing call made for a call finished.
    Enqueued {
        call: u64,
        result: Result<Contact, String>,
    },
    Position {
        call: u64,
        token: u64,
        position: Option<usize>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Caller,
    Other,
    Consult,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Party {
    Agent(UserId),
    Number(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Menu,
    Queued,
    Ringing,
    Talking,
    Held,
    /// The agent talks to a transfer target while the caller holds.
    Consulting,
    /// Ringing a number after a blind transfer; the contact has ended.
    TransferringOut,
}

struct CallerLeg {
    dialog: Dialog,
    peer: Peer,
    invite: Option<Key>,
    media: Leg,
    /// The INVITE had no offer: ours went in the 200 and the answer comes in the ACK.
    late_offer: bool,
}

struct OtherLeg {
    id: u64,
    party: Party,
    invite: Request,
    invite_key: Option<Key>,
    dialog: Option<Dialog>,
    peer: Peer,
    media: Leg,
    answered: bool,
    trunk: Option<Trunk>,
    auth_tried: bool,
}

struct Call {
    key: u64,
    record: CallRecord,
    language: Option<Language>,
    state: State,
    menu: Option<QueueId>,
    caller: CallerLeg,
    other: Option<OtherLeg>,
    consult: Option<OtherLeg>,
    play_token: u64,
    menu_generation: u64,
    /// RTP packets from the caller at the last media check, and since when that count stood.
    media_seen: u32,
    media_quiet_since: Instant,
    /// Whether the caller's side sends media (not while they hold the call with `inactive`
    /// or `recvonly`), so silence means they are gone.
    caller_sends: bool,
}

struct Registration {
    username: String,
    contact: String,
    peer: Peer,
    expires: Instant,
}

#[derive(Clone, Copy)]
enum Timer {
    Ring {
        call: u64,
        leg: u64,
    },
    Menu {
        call: u64,
        generation: u64,
    },
    Announce {
        call: u64,
        token: u64,
    },
    /// Checks the caller still sends media.
    Media {
        call: u64,
    },
}

/// The voice configuration the engine reads on every call, reloaded after changes.
#[derive(Default)]
struct Directory {
    trunks: Vec<Trunk>,
    dids: Vec<Did>,
    nodes: Vec<QueueNode>,
}

pub struct Engine {
    app: AppState,
    transport: Arc<Transport>,
    local: SocketAddr,
    ip: IpAddr,
    tx: Transactions,
    ports: Arc<Ports>,
    prompts: Arc<Prompts>,
    media_events: mpsc::UnboundedSender<MediaEvent>,
    commands: mpsc::UnboundedSender<Command>,
    records: mpsc::UnboundedSender<CallRecord>,
    calls: HashMap<u64, Call>,
    /// SIP Call-ID to the call and leg it belongs to.
    dialogs: HashMap<String, (u64, Side)>,
    /// Client transactions (INVITE, BYE, CANCEL) to their call and leg.
    clients: HashMap<Key, (u64, Side)>,
    /// A caller's INVITE server transaction, for CANCEL.
    invites: HashMap<Key, u64>,
    by_contact: HashMap<ContactId, u64>,
    by_leg: HashMap<u64, (u64, Side)>,
    /// INVITEs cancelled before a final response: a late 2xx gets ACK and BYE.
    orphans: HashMap<Key, (Request, Peer)>,
    registrations: HashMap<UserId, Registration>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_payloads: HashMap<u64, Timer>,
    next_id: u64,
    nonce_secret: String,
    directory: Directory,
    /// The configuration generation the directory was loaded at; `None` before the first load.
    directory_generation: Option<u64>,
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
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

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: AppState,
        transport: Arc<Transport>,
        local: SocketAddr,
        ip: IpAddr,
        prompts: Arc<Prompts>,
        media_events: mpsc::UnboundedSender<MediaEvent>,
        commands: mpsc::UnboundedSender<Command>,
        records: mpsc::UnboundedSender<CallRecord>,
    ) -> Self {
        let (first, last) = app.config.voice.rtp_ports;
        Engine {
            transport,
            local,
            ip,
            tx: Transactions::new(Timers::default()),
            ports: Ports::new(first, last),
            prompts,
            media_events,
            commands,
            records,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            clients: HashMap::new(),
            invites: HashMap::new(),
            by_contact: HashMap::new(),
            by_leg: HashMap::new(),
            orphans: HashMap::new(),
            registrations: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_payloads: HashMap::new(),
            next_id: 0,
            nonce_secret: random(),
            directory: Directory::default(),
            directory_generation: None,
            app,
        }
    }

    /// Runs until every input closes.
    pub async fn run(
        mut self,
        mut inbound: mpsc::UnboundedReceiver<Inbound>,
        mut media: mpsc::UnboundedReceiver<MediaEvent>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        loop {
            let next = [
                self.tx.poll_timeout(),
                self.timers.peek().map(|Reverse((at, _))| *at),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                message = inbound.recv() => match message {
                    Some(Inbound { message, peer }) => {
                        self.tx.receive(Instant::now(), message, peer);
                    }
                    None => break,
                },
                event = media.recv() => if let Some(event) = event {
                    self.on_media(event);
                },
                command = commands.recv() => if let Some(command) = command {
                    self.on_command(command).await;
                },
                _ = tokio::time::sleep_until(next.into()) => {
                    let now = Instant::now();
                    self.tx.handle_timeout(now);
                    self.run_timers(now).await;
                }
            }
            self.pump().await;
        }
    }

    /// Sends what the transactions want sent and handles their events, until both are empty.
    async fn pump(&mut self) {
        loop {
            while let Some((peer, bytes)) = self.tx.poll_transmit() {
                self.transport.send(peer, bytes);
            }
            let Some(event) = self.tx.poll_event() else {
                break;
            };
            self.on_sip(event).await;
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        let id = self.id();
        self.timers.push(Reverse((at, id)));
        self.timer_payloads.insert(id, timer);
    }

    fn via(&self, peer: Peer) -> String {
        let transport = if peer.transport == Wire::Tcp {
            "TCP"
        } else {
            "UDP"
        };
        format!(
            "SIP/2.0/{transport} {};branch=z9hG4bK{};rport",
            self.local,
            random()
        )
    }

    fn contact_header(&self, peer: Peer) -> String {
        if peer.transport == Wire::Tcp {
            format!("<sip:switchboard@{};transport=tcp>", self.local)
        } else {
            format!("<sip:switchboard@{}>", self.local)
        }
    }

    fn respond(&mut self, key: &Option<Key>, peer: Peer, response: Response) {
        match key {
            Some(key) => {
                self.tx.respond(Instant::now(), key, response);
            }
            None => self.tx.send_stateless(Message::Response(response), peer),
        }
    }

    fn reply(&mut self, request: &Request, key: &Option<Key>, peer: Peer, status: u16) {
        let tag = random();
        let mut response = Response::to(request, status, reason(status), Some(&tag));
        if status == 405 || status == 501 {
            response.headers.push("Allow", ALLOW);
        }
        self.respond(key, peer, response);
    }

    async fn on_sip(&mut self, event: Event) {
        match event {
            Event::Request { request, peer, key } => self.on_request(request, peer, key).await,
            Event::Response { response, key } => self.on_response(response, key).await,
            Event::Timeout { key } => {
                if let Some((call, side)) = self.clients.remove(&key) {
                    if key.method == Method::Invite {
                        self.leg_failed(call, side, 408).await;
                    }
                }
            }
            Event::AckTimeout { call_id } => {
                if let Some((call, Side::Caller)) = self.dialogs.get(&call_id).copied() {
                    tracing::warn!(%call_id, "caller never acknowledged the answer");
                    self.end_call(call, "system", Some(Disposition::Failed), None)
                        .await;
                }
            }
        }
    }

    async fn on_request(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        if request.method == Method::Ack {
            self.on_ack(request);
            return;
        }
        // RFC 3261 §8.2.2.3: we support no extensions.
        if let Some(required) = request.headers.get("Require") {
            if request.method != Method::Cancel {
                let tag = random();
                let mut response = Response::to(&request, 420, reason(420), Some(&tag));
                response.headers.push("Unsupported", required);
                self.respond(&key, peer, response);
                return;
            }
        }
        if request
            .headers
            .get("Max-Forwards")
            .is_some_and(|m| m.trim() == "0")
            && !matches!(request.method, Method::Options | Method::Register)
        {
            self.reply(&request, &key, peer, 483);
            return;
        }
        let in_dialog = request.headers.get("To").and_then(fields::tag).is_some();
        match request.method {
            Method::Register => self.on_register(request, peer, key).await,
            Method::Options => {
                let tag = random();
                let mut response = Response::to(&request, 200, "OK", Some(&tag));
                response.headers.push("Allow", ALLOW);
                response
                    .headers
                    .push("Accept", "application/sdp, application/dtmf-relay");
                self.respond(&key, peer, response);
            }
            Method::Invite if in_dialog => self.on_reinvite(request, peer, key),
            Method::Invite => self.on_invite(request, peer, key).await,
            Method::Bye => self.on_bye(request, peer, key).await,
            Method::Cancel => self.on_cancel(request, peer, key).await,
            Method::Info => self.on_info(request, peer, key),
            _ => self.reply(&request, &key, peer, 501),
        }
    }

    // ----- inbound calls (registration and trunk checks: access.rs) -----

    async fn load_directory(&mut self) {
        let generation = self.app.services.config.generation();
        if self.directory_generation == Some(generation) {
            return;
        }
        let store = &self.app.services.store;
        match (
            store.list_trunks().await,
            store.list_dids().await,
            store.list_queues().await,
        ) {
            (Ok(trunks), Ok(dids), Ok(nodes)) => {
                self.directory = Directory {
                    trunks,
                    dids,
                    nodes: nodes
                        .into_iter()
                        .filter(|n| n.channel == Channel::Voice)
                        .collect(),
                };
                self.directory_generation = Some(generation);
            }
            _ => tracing::warn!("could not load the voice configuration; using the last one"),
        }
    }

    async fn on_invite(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        self.load_directory().await;
        if !self.trunk_allows(&request, peer, &key) {
            return;
        }
        let dialled = user_of(&request.uri)
            .or_else(|| request.headers.get("To").map(uri_of).and_then(user_of))
            .unwrap_or_default()
            .to_owned();
        let Some(did) = self
            .directory
            .dids
            .iter()
            .find(|d| {
                let number = d.number.as_str();
                number == dialled
                    || number.trim_start_matches('+') == dialled.trim_start_matches('+')
            })
            .cloned()
        else {
            self.reply(&request, &key, peer, 404);
            return;
        };
        let offer = if request.body.is_empty() {
            None
        } else {
            let content_type = request.headers.get("Content-Type").unwrap_or_default();
            if !content_type
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/sdp")
            {
                let tag = random();
                let mut response = Response::to(&request, 415, reason(415), Some(&tag));
                response.headers.push("Accept", "application/sdp");
                self.respond(&key, peer, response);
                return;
            }
            match sdp::parse(&request.body) {
                Ok(audio) if sdp::choose_codec(&audio).is_some() => Some(audio),
                _ => {
                    self.reply(&request, &key, peer, 488);
                    return;
                }
            }
        };
        let call = self.id();
        let Some(media) =
            Leg::open(&self.ports, self.ip, call * 4, self.media_events.clone()).await
        else {
            tracing::warn!("no free RTP ports; refusing a call");
            self.reply(&request, &key, peer, 503);
            return;
        };
        let codec = offer
            .as_ref()
            .and_then(sdp::choose_codec)
            .unwrap_or(sdp::PCMU);
        let dtmf = offer.as_ref().and_then(|o| o.telephone_event);
        if let Some(offer) = &offer {
            media.set_remote(SocketAddr::new(offer.address, offer.port), codec, dtmf);
        }
        let local_tag = random();
        let dialog = Dialog::as_uas(&request, &local_tag, &self.contact_header(peer));
        let body = match &offer {
            Some(offer) => sdp::write(
                call,
                1,
                self.ip,
                media.port,
                &[codec],
                offer.telephone_event,
                sdp::Direction::SendRecv,
            ),
            None => sdp::write(
                call,
                1,
                self.ip,
                media.port,
                &[sdp::PCMU, sdp::PCMA],
                Some(sdp::TELEPHONE_EVENT),
                sdp::Direction::SendRecv,
            ),
        };
        let mut response = Response::to(&request, 200, "OK", Some(&local_tag));
        response.headers.push("Contact", &dialog.contact);
        response.headers.push("Allow", ALLOW);
        response.headers.push("Content-Type", "application/sdp");
        response.body = body;
        self.respond(&key, peer, response);
        let caller = request
            .headers
            .get("From")
            .map(uri_of)
            .and_then(user_of)
            .unwrap_or("anonymous")
            .to_owned();
        let record = CallRecord::new(
            CallId::from_uuid(uuid::Uuid::now_v7()),
            caller,
            did.number.as_str().to_owned(),
            Utc::now(),
        );
        self.dialogs
            .insert(dialog.call_id.clone(), (call, Side::Caller));
        if let Some(key) = &key {
            self.invites.insert(key.clone(), call);
        }
        self.by_leg.insert(call * 4, (call, Side::Caller));
        self.calls.insert(
            call,
            Call {
                key: call,
                record,
                language: did.language.clone(),
                state: State::Menu,
                menu: did.entry,
                caller: CallerLeg {
                    dialog,
                    peer,
                    invite: key,
                    media,
                    late_offer: offer.is_none(),
                },
                other: None,
                consult: None,
                play_token: 0,
                menu_generation: 0,
                media_seen: 0,
                media_quiet_since: Instant::now(),
                caller_sends: true,
            },
        );
        let check = self.media_check_interval();
        self.schedule(Instant::now() + check, Timer::Media { call });
        self.app.services.metrics.calls_in_progress.inc();
        self.save(call);
        self.enter_node(call, did.entry);
    }

    /// Puts the caller at a menu node: a leaf queues them, a menu (or the top level) plays its
    /// choices.
    fn enter_node(&mut self, call: u64, node: Option<QueueId>) {
        let leaf = node
            .and_then(|id| self.directory.nodes.iter().find(|n| n.id == id))
            .filter(|n| n.kind == QueueKind::Leaf)
            .map(|n| n.id);
        if let Some(queue) = leaf {
            self.enqueue(call, queue);
            return;
        }
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = State::Menu;
        state.menu = node;
        state.menu_generation += 1;
        let generation = state.menu_generation;
        let language = state.language.clone();
        let choices: Vec<String> = menu_choices(&self.directory.nodes, node)
            .iter()
            .map(|n| n.name.as_str().to_owned())
            .collect();
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
        self.schedule(
            Instant::now() + MENU_TIMEOUT,
            Timer::Menu { call, generation },
        );
    }

    /// Asks for audio for the caller; the newest request wins. With `repeat`, the parts play
    /// again after `then`.
    fn play(&mut self, call: u64, parts: Vec<Sound>, then: Option<Sound>, repeat: bool) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.play_token += 1;
        let token = state.play_token;
        let prompts = self.prompts.clone();
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            for part in parts {
                samples.push(prompts.render(part).await);
            }
            let looped = match then {
                Some(sound) => {
                    let tail = prompts.render(sound).await;
                    if repeat {
                        let mut all: Vec<i16> =
                            samples.iter().flat_map(|s| s.iter().copied()).collect();
                        all.extend_from_slice(&tail);
                        let all: Samples = all.into();
                        let _ = commands.send(Command::Play {
                            call,
                            token,
                            parts: Vec::new(),
                            then_loop: Some(all),
                        });
                        return;
                    }
                    Some(tail)
                }
                None => None,
            };
            let _ = commands.send(Command::Play {
                call,
                token,
                parts: samples,
                then_loop: looped,
            });
        });
    }

    fn hold_music(&mut self, call: u64, announce: Option<usize>) {
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let queue = state.record.queue;
        let parts = announce
            .map(|p| vec![Sound::Position(p)])
            .unwrap_or_default();
        self.play(call, parts, Some(Sound::Hold(queue)), false);
    }

    fn enqueue(&mut self, call: u64, queue: QueueId) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = State::Queued;
        state.menu_generation += 1;
        state.record.queue = Some(queue);
        state.record.queued_at = Some(Utc::now());
        let contact = ContactId::from_uuid(uuid::Uuid::now_v7());
        state.record.contact = Some(contact);
        let language = state.language.clone();
        let customer = Some(state.record.caller.clone());
        self.by_contact.insert(contact, call);
        self.app.services.metrics.calls_queued.inc();
        self.save(call);
        self.hold_music(call, None);
        let app = self.app.clone();
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let request = NewContact {
                queue,
                priority: None,
                language,
                customer,
                chat: None,
            };
            let result = app
                .services
                .contacts
                .enqueue(request, contact)
                .await
                .map_err(|e| e.to_string());
            let _ = commands.send(Command::Enqueued { call, result });
        });
        let announce = self.app.config.voice.announce_seconds;
        let token = self.calls.get(&call).map_or(0, |c| c.play_token);
        self.schedule(
            Instant::now() + Duration::from_secs(announce),
            Timer::Announce { call, token },
        );
    }

    fn media_check_interval(&self) -> Duration {
        Duration::from_secs((self.app.config.voice.media_timeout_seconds / 4).max(1))
    }

    fn on_ack(&mut self, request: Request) {
        let Some(call_id) = request.headers.get("Call-ID") else {
            return;
        };
        let Some((call, Side::Caller)) = self.dialogs.get(call_id).copied() else {
            return;
        };
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if state.caller.late_offer && !request.body.is_empty() {
            if let Ok(answer) = sdp::parse(&request.body) {
                let codec = sdp::choose_codec(&answer).unwrap_or(sdp::PCMU);
                state.caller.media.set_remote(
                    SocketAddr::new(answer.address, answer.port),
                    codec,
                    answer.telephone_event,
                );
                state.caller.late_offer = false;
            }
        }
    }

    /// The call and leg an in-dialog request belongs to: its Call-ID and both tags must match.
    fn dialog_of(&self, request: &Request) -> Option<(u64, Side)> {
        let (call, side) = *self.dialogs.get(request.headers.get("Call-ID")?)?;
        let state = self.calls.get(&call)?;
        let dialog = match side {
            Side::Caller => Some(&state.caller.dialog),
            Side::Other => state.other.as_ref().and_then(|l| l.dialog.as_ref()),
            Side::Consult => state.consult.as_ref().and_then(|l| l.dialog.as_ref()),
        }?;
        dialog.matches(request).then_some((call, side))
    }

    fn on_info(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let Some((call, side)) = self.dialog_of(&request) else {
            self.reply(&request, &key, peer, 481);
            return;
        };
        self.reply(&request, &key, peer, 200);
        let body = String::from_utf8_lossy(&request.body);
        let content_type = request
            .headers
            .get("Content-Type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let digit = if content_type.contains("dtmf-relay") {
            body.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("Signal=")
                        .or(l.trim().strip_prefix("Signal ="))
                })
                .and_then(|s| s.trim().chars().next())
        } else if content_type.contains("application/dtmf") {
            body.trim().chars().next()
        } else {
            None
        };
        if let (Some(digit), Side::Caller) = (digit, side) {
            self.on_digit(call, digit);
        }
    }

    fn on_media(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Dtmf { leg, digit } => {
                if let Some((call, Side::Caller)) = self.by_leg.get(&leg).copied() {
                    self.on_digit(call, digit);
                }
            }
        }
    }

    fn on_digit(&mut self, call: u64, digit: char) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if state.state != State::Menu {
            return;
        }
        let menu = state.menu;
        let choices = menu_choices(&self.directory.nodes, menu);
        let Some(chosen) = choose(&choices, digit).map(|n| n.id) else {
            let language = state.language.clone();
            let names = choices.iter().map(|n| n.name.as_str().to_owned()).collect();
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
        state.record.ivr_path.push(digit);
        self.enter_node(call, Some(chosen));
    }

    // ----- routing (ringing, answers, hang-ups: legs.rs) -----

    async fn on_contact(&mut self, change: ContactChange) {
        match change {
            ContactChange::Assigned(contact) => {
                let Some(call) = self.by_contact.get(&contact.id).copied() else {
                    return;
                };
                if let (Some(agent), Some(State::Queued)) =
                    (contact.agent, self.calls.get(&call).map(|c| c.state))
                {
                    self.ring_agent(call, agent).await;
                }
            }
            ContactChange::Requeued { contact, from } => {
                let Some(call) = self.by_contact.get(&contact.id).copied() else {
                    return;
                };
                self.drop_other(call, Some(&Party::Agent(from)));
                if let Some(state) = self.calls.get_mut(&call) {
                    state.state = State::Queued;
                    state.record.queue = contact.queue;
                    state.record.agent = None;
                    state.caller.media.unbridge();
                }
                self.save(call);
                self.hold_music(call, None);
            }
            ContactChange::Handed { contact, from } => {
                let Some(call) = self.by_contact.get(&contact.id).copied() else {
                    return;
                };
                let Some(agent) = contact.agent else { return };
                let already = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.other.as_ref())
                    .is_some_and(|o| o.party == Party::Agent(agent));
                if already {
                    return;
                }
                self.drop_other(call, Some(&Party::Agent(from)));
                if let Some(state) = self.calls.get_mut(&call) {
                    state.caller.media.unbridge();
                    state.state = State::Queued;
                }
                self.hold_music(call, None);
                self.ring_agent(call, agent).await;
            }
            ContactChange::Ended(contact) => {
                let Some(call) = self.by_contact.remove(&contact.id) else {
                    return;
                };
                let transferring = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.state == State::TransferringOut);
                if !transferring {
                    self.end_call(call, "system", None, None).await;
                }
            }
        }
    }

    // ----- timers and commands (call control: control.rs) -----

    async fn run_timers(&mut self, now: Instant) {
        let mut expired = Vec::new();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.timers.pop() else {
                break;
            };
            let Some(timer) = self.timer_payloads.remove(&id) else {
                continue;
            };
            match timer {
                Timer::Ring { call, leg } => {
                    let ringing = self
                        .calls
                        .get(&call)
                        .and_then(|c| c.other.as_ref())
                        .filter(|o| o.id == leg && !o.answered)
                        .map(|o| o.party.clone());
                    if let Some(Party::Agent(agent)) = ringing {
                        tracing::info!(%agent, "the agent did not answer in time");
                        self.missed(call, agent);
                    }
                }
                Timer::Menu { call, generation } => {
                    let idle = self
                        .calls
                        .get(&call)
                        .is_some_and(|c| c.state == State::Menu && c.menu_generation == generation);
                    if idle {
                        tracing::info!("no choice in the menu; hanging up");
                        expired.push(call);
                    }
                }
                Timer::Media { call } => {
                    let timeout = Duration::from_secs(self.app.config.voice.media_timeout_seconds);
                    let check = self.media_check_interval();
                    let Some(state) = self.calls.get_mut(&call) else {
                        continue;
                    };
                    let (received, _) = state.caller.media.counts();
                    if received != state.media_seen || !state.caller_sends {
                        state.media_seen = received;
                        state.media_quiet_since = now;
                    } else if now.duration_since(state.media_quiet_since) >= timeout {
                        tracing::info!(call = %state.record.id, "no media from the caller; hanging up");
                        expired.push(call);
                        continue;
                    }
                    self.schedule(now + check, Timer::Media { call });
                }
                Timer::Announce { call, token } => {
                    let Some(state) = self.calls.get(&call) else {
                        continue;
                    };
                    let waiting = matches!(state.state, State::Queued | State::Ringing);
                    if !waiting {
                        continue;
                    }
                    let (contact, token_now) = (state.record.contact, state.play_token);
                    let announce = Duration::from_secs(self.app.config.voice.announce_seconds);
                    self.schedule(now + announce, Timer::Announce { call, token });
                    let Some(contact) = contact else { continue };
                    let app = self.app.clone();
                    let commands = self.commands.clone();
                    let token = token_now;
                    tokio::spawn(async move {
                        let position = app.services.contacts.position(contact).await;
                        let _ = commands.send(Command::Position {
                            call,
                            token,
                            position,
                        });
                    });
                }
            }
        }
        for call in expired {
            self.end_call(call, "system", None, None).await;
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Contact(change) => self.on_contact(change).await,
            Command::Play {
                call,
                token,
                parts,
                then_loop,
            } => {
                if let Some(state) = self.calls.get(&call) {
                    if state.play_token == token {
                        state.caller.media.play(parts, then_loop);
                    }
                }
            }
            Command::Position {
                call,
                token,
                position,
            } => {
                let current = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.play_token == token && c.state == State::Queued);
                if let (true, Some(position)) = (current, position) {
                    self.hold_music(call, Some(position + 1));
                }
            }
            Command::Enqueued { call, result } => {
                if let Err(error) = result {
                    tracing::warn!(%error, "a call could not be queued");
                    self.end_call(call, "system", Some(Disposition::Failed), None)
                        .await;
                }
            }
            Command::Live(reply) => {
                let mut live: Vec<CallRecord> =
                    self.calls.values().map(|c| c.record.clone()).collect();
                live.sort_by_key(|r| r.started_at);
                let _ = reply.send(live);
            }
            Command::Registrations(reply) => {
                let now = Instant::now();
                let list = self
                    .registrations
                    .iter()
                    .filter(|(_, r)| r.expires > now)
                    .map(|(user, r)| (*user, r.contact.clone(), r.peer.addr))
                    .collect();
                let _ = reply.send(list);
            }
            Command::Control {
                call,
                control,
                reply,
            } => {
                let result = self.control(call, control).await;
                let _ = reply.send(result);
            }
        }
    }

    fn publish(&self, record: &CallRecord) {
        self.app.services.events.publish(
            Subject::Waiting {
                queue: record.queue,
                channel: Channel::Voice,
            },
            DomainEvent::CallUpdated(record.clone()),
        );
    }

    /// Stores the call's record (in order, by the record writer) and announces it.
    fn save(&mut self, call: u64) {
        if let Some(state) = self.calls.get(&call) {
            self.publish(&state.record);
            let _ = self.records.send(state.record.clone());
        }
    }
}
