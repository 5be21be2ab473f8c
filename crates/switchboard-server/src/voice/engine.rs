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
use crate::contacts::{ContactChange, NewContact, TransferTarget};
use crate::events::Subject;
use crate::http::wire::{CallView, EventPayload};
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
use switchboard_sip::dialog::Dialog;
use switchboard_sip::fields::{self, uri_of, user_of};
use switchboard_sip::transaction::{cancel_for, Event, Key, Peer, Timers, Transactions};
use switchboard_sip::{
    digest, sdp, Headers, Message, Method, Request, Response, Transport as Wire,
};
use tokio::sync::{mpsc, oneshot};

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
    Reload,
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
    directory_stale: bool,
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
            directory_stale: true,
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

    // ----- registrar -----

    fn nonce(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let sign = digest::md5_hex(&format!("{now:x}:{}", self.nonce_secret));
        format!("{now:x}.{}", &sign[..16])
    }

    /// Whether a nonce is ours and fresh (five minutes).
    fn nonce_fresh(&self, nonce: &str) -> bool {
        let Some((time, sign)) = nonce.split_once('.') else {
            return false;
        };
        let expected = digest::md5_hex(&format!("{time}:{}", self.nonce_secret));
        let Ok(issued) = u64::from_str_radix(time, 16) else {
            return false;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        expected.get(..16) == Some(sign) && now.saturating_sub(issued) <= 300
    }

    fn challenge(&mut self, request: &Request, key: &Option<Key>, peer: Peer, stale: bool) {
        let tag = random();
        let mut response = Response::to(request, 401, reason(401), Some(&tag));
        response.headers.push(
            "WWW-Authenticate",
            &digest::challenge(REALM, &self.nonce(), stale),
        );
        self.respond(key, peer, response);
    }

    async fn on_register(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let aor = request.headers.get("To").map(uri_of).unwrap_or_default();
        let Some(username) = user_of(aor).map(|u| u.to_owned()) else {
            self.reply(&request, &key, peer, 400);
            return;
        };
        let Some(credentials) = request.headers.get("Authorization").and_then(digest::parse) else {
            self.challenge(&request, &key, peer, false);
            return;
        };
        if !self.nonce_fresh(&credentials.nonce) {
            self.challenge(&request, &key, peer, true);
            return;
        }
        let phone = match Username::parse(&username) {
            Ok(name) if credentials.username == username => {
                self.app.store.sip_phone(&name).await.ok().flatten()
            }
            _ => None,
        };
        let Some((user, ha1)) =
            phone.filter(|(_, ha1)| digest::verify(ha1, "REGISTER", &credentials))
        else {
            tracing::info!(%username, peer = %peer.addr, "SIP registration refused");
            self.reply(&request, &key, peer, 403);
            return;
        };
        let _ = ha1;
        let contact = request
            .headers
            .all("Contact")
            .first()
            .map(|c| c.to_string());
        let header_expires = request
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u64>().ok());
        let tag = random();
        match contact {
            None => {}
            Some(c) if c.trim() == "*" => {
                self.registrations.remove(&user);
            }
            Some(c) => {
                let expires = fields::param(&c, "expires")
                    .and_then(|e| e.parse::<u64>().ok())
                    .or(header_expires)
                    .unwrap_or(MAX_REGISTER_SECONDS)
                    .min(MAX_REGISTER_SECONDS);
                if expires == 0 {
                    self.registrations.remove(&user);
                } else if expires < MIN_REGISTER_SECONDS {
                    let mut response = Response::to(&request, 423, reason(423), Some(&tag));
                    response
                        .headers
                        .push("Min-Expires", &MIN_REGISTER_SECONDS.to_string());
                    self.respond(&key, peer, response);
                    return;
                } else {
                    let uri = uri_of(&c).to_owned();
                    tracing::info!(%username, contact = %uri, "SIP phone registered");
                    self.registrations.insert(
                        user,
                        Registration {
                            username: username.clone(),
                            contact: uri,
                            peer,
                            expires: Instant::now() + Duration::from_secs(expires),
                        },
                    );
                }
            }
        }
        let mut response = Response::to(&request, 200, "OK", Some(&tag));
        if let Some(registration) = self.registrations.get(&user) {
            let left = registration
                .expires
                .saturating_duration_since(Instant::now())
                .as_secs();
            response.headers.push(
                "Contact",
                &format!("<{}>;expires={left}", registration.contact),
            );
        }
        self.respond(&key, peer, response);
    }

    /// Where to send requests for a registered phone: the Contact's address when it is the
    /// address the registration came from, else (behind NAT) the source address itself.
    fn phone_target(&mut self, user: UserId) -> Option<(String, Peer, String)> {
        let registration = self.registration(user)?;
        let mut peer = registration.peer;
        if let Some((host, port)) = fields::host_port_of(&registration.contact) {
            if host.parse::<IpAddr>().ok() == Some(peer.addr.ip()) {
                peer.addr = SocketAddr::new(peer.addr.ip(), port.unwrap_or(5060));
            }
        }
        if registration
            .contact
            .to_ascii_lowercase()
            .contains("transport=tcp")
        {
            peer.transport = Wire::Tcp;
        }
        Some((
            registration.contact.clone(),
            peer,
            registration.username.clone(),
        ))
    }

    fn registration(&mut self, user: UserId) -> Option<&Registration> {
        if self
            .registrations
            .get(&user)
            .is_some_and(|r| r.expires <= Instant::now())
        {
            self.registrations.remove(&user);
        }
        self.registrations.get(&user)
    }

    // ----- inbound calls -----

    async fn load_directory(&mut self) {
        if !self.directory_stale {
            return;
        }
        let store = &self.app.store;
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
                self.directory_stale = false;
            }
            _ => tracing::warn!("could not load the voice configuration; using the last one"),
        }
    }

    /// Whether an INVITE comes from an inbound trunk: by source address, or by digest
    /// credentials (challenged when missing).
    fn trunk_allows(&mut self, request: &Request, peer: Peer, key: &Option<Key>) -> bool {
        let ip = peer.addr.ip();
        if self.directory.trunks.iter().any(|t| t.accepts_address(ip)) {
            return true;
        }
        let with_credentials: Vec<&Trunk> = self
            .directory
            .trunks
            .iter()
            .filter(|t| t.direction == TrunkDirection::Inbound && t.username.is_some())
            .collect();
        if with_credentials.is_empty() {
            self.reply(request, key, peer, 403);
            return false;
        }
        let credentials = request
            .headers
            .get("Authorization")
            .or(request.headers.get("Proxy-Authorization"))
            .and_then(digest::parse);
        let Some(credentials) = credentials else {
            self.challenge(request, key, peer, false);
            return false;
        };
        if !self.nonce_fresh(&credentials.nonce) {
            self.challenge(request, key, peer, true);
            return false;
        }
        let good = with_credentials.iter().any(|t| {
            t.username.as_deref() == Some(credentials.username.as_str())
                && t.secret
                    .as_deref()
                    .is_some_and(|ha1| digest::verify(ha1, "INVITE", &credentials))
        });
        if !good {
            self.reply(request, key, peer, 403);
        }
        good
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
        self.app.metrics.calls_in_progress.inc();
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
        self.app.metrics.calls_queued.inc();
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

    // ----- routing -----

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

    async fn ring_agent(&mut self, call: u64, agent: UserId) {
        let Some((uri, peer, username)) = self.phone_target(agent) else {
            tracing::info!(%agent, "the agent has no registered phone; trying the next agent");
            self.missed(call, agent);
            return;
        };
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let caller = state.record.caller.clone();
        let codec = state.caller.media.codec();
        let to = format!("<sip:{username}@{}>", self.ip);
        let leg = self
            .place_call(
                call,
                Side::Other,
                Party::Agent(agent),
                uri,
                peer,
                &caller,
                to,
                codec,
                None,
            )
            .await;
        let Some(leg) = leg else {
            self.missed(call, agent);
            return;
        };
        let ring = Duration::from_secs(self.app.config.voice.ring_seconds);
        self.schedule(Instant::now() + ring, Timer::Ring { call, leg });
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = State::Ringing;
            state.record.agent = Some(agent);
            if state.record.ringing_at.is_none() {
                state.record.ringing_at = Some(Utc::now());
            }
        }
        self.save(call);
    }

    /// Sends an INVITE for a new leg and files it under `side`. Returns the leg's id.
    #[allow(clippy::too_many_arguments)]
    async fn place_call(
        &mut self,
        call: u64,
        side: Side,
        party: Party,
        uri: String,
        peer: Peer,
        caller: &str,
        to: String,
        codec: u8,
        trunk: Option<Trunk>,
    ) -> Option<u64> {
        let leg_id = self.id() * 4 + if side == Side::Consult { 2 } else { 1 };
        let media = Leg::open(&self.ports, self.ip, leg_id, self.media_events.clone()).await?;
        let call_id = format!("{}@{}", random(), self.ip);
        let mut headers = Headers::default();
        headers.push("Via", &self.via(peer));
        headers.push("Max-Forwards", "70");
        let from_user = trunk
            .as_ref()
            .and_then(|t| t.caller_id.as_ref())
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| caller.to_owned());
        headers.push(
            "From",
            &format!(
                "\"{caller}\" <sip:{from_user}@{}>;tag={}",
                self.ip,
                random()
            ),
        );
        headers.push("To", &to);
        headers.push("Call-ID", &call_id);
        headers.push("CSeq", "1 INVITE");
        headers.push("Contact", &self.contact_header(peer));
        headers.push("Allow", ALLOW);
        headers.push("Content-Type", "application/sdp");
        let codecs = if codec == sdp::PCMA {
            [sdp::PCMA, sdp::PCMU]
        } else {
            [sdp::PCMU, sdp::PCMA]
        };
        let request = Request {
            method: Method::Invite,
            uri,
            headers,
            body: sdp::write(
                leg_id,
                1,
                self.ip,
                media.port,
                &codecs,
                Some(sdp::TELEPHONE_EVENT),
                sdp::Direction::SendRecv,
            ),
        };
        let key = self.tx.send_request(Instant::now(), request.clone(), peer);
        if let Some(key) = &key {
            self.clients.insert(key.clone(), (call, side));
        }
        self.dialogs.insert(call_id, (call, side));
        self.by_leg.insert(leg_id, (call, side));
        let leg = OtherLeg {
            id: leg_id,
            party,
            invite: request,
            invite_key: key,
            dialog: None,
            peer,
            media,
            answered: false,
            trunk,
            auth_tried: false,
        };
        let state = self.calls.get_mut(&call)?;
        match side {
            Side::Consult => state.consult = Some(leg),
            _ => state.other = Some(leg),
        }
        Some(leg_id)
    }

    // ----- responses to our requests -----

    async fn on_response(&mut self, response: Response, key: Key) {
        let status = response.status;
        if let Some((request, peer)) = self.orphans.get(&key).cloned() {
            if status >= 200 {
                self.orphans.remove(&key);
                self.clients.remove(&key);
            }
            if (200..300).contains(&status) {
                let mut dialog = Dialog::as_uac(&request, &response);
                let number = fields::cseq(&response.headers).map_or(1, |(n, _)| n);
                let ack = dialog.ack(number, &self.via(peer));
                self.tx.send_stateless(Message::Request(ack), peer);
                let bye = dialog.request(Method::Bye, &self.via(peer));
                self.tx.send_request(Instant::now(), bye, peer);
            }
            return;
        }
        let Some((call, side)) = self.clients.get(&key).copied() else {
            return;
        };
        if status >= 200 && (key.method != Method::Invite || status >= 300) {
            self.clients.remove(&key);
        }
        if key.method != Method::Invite || status < 200 {
            return;
        }
        let Some(leg) = self.leg_mut(call, side) else {
            return;
        };
        if leg.invite_key.as_ref() != Some(&key) {
            return;
        }
        if status >= 300 {
            if (status == 401 || status == 407) && !leg.auth_tried {
                if let Some(retry) = authorize(leg, &response) {
                    leg.auth_tried = true;
                    let peer = leg.peer;
                    leg.invite = retry.clone();
                    let new_key = self.tx.send_request(Instant::now(), retry, peer);
                    if let Some(new_key) = &new_key {
                        self.clients.insert(new_key.clone(), (call, side));
                    }
                    if let Some(leg) = self.leg_mut(call, side) {
                        leg.invite_key = new_key;
                    }
                    return;
                }
            }
            self.leg_failed(call, side, status).await;
            return;
        }
        // A 2xx: confirm the dialog with an ACK (again, for a retransmitted 2xx).
        let dialog = leg
            .dialog
            .get_or_insert_with(|| Dialog::as_uac(&leg.invite, &response))
            .clone();
        let number = fields::cseq(&response.headers).map_or(1, |(n, _)| n);
        let peer = leg.peer;
        let ack = dialog.ack(number, &self.via(peer));
        self.tx.send_stateless(Message::Request(ack), peer);
        let Some(leg) = self.leg_mut(call, side) else {
            return;
        };
        if leg.answered {
            return;
        }
        leg.answered = true;
        if let Ok(answer) = sdp::parse(&response.body) {
            let codec = sdp::choose_codec(&answer).unwrap_or(sdp::PCMU);
            leg.media.set_remote(
                SocketAddr::new(answer.address, answer.port),
                codec,
                answer.telephone_event,
            );
        }
        self.leg_answered(call, side);
    }

    fn leg_mut(&mut self, call: u64, side: Side) -> Option<&mut OtherLeg> {
        let state = self.calls.get_mut(&call)?;
        match side {
            Side::Other => state.other.as_mut(),
            Side::Consult => state.consult.as_mut(),
            Side::Caller => None,
        }
    }

    fn take_leg(&mut self, call: u64, side: Side) -> Option<OtherLeg> {
        let state = self.calls.get_mut(&call)?;
        let leg = match side {
            Side::Other => state.other.take(),
            Side::Consult => state.consult.take(),
            Side::Caller => None,
        }?;
        if side == Side::Other {
            let (received, sent) = leg.media.counts();
            state.record.rtp.from_agent += received;
            state.record.rtp.to_agent += sent;
        }
        self.by_leg.remove(&leg.id);
        if let Some(dialog) = &leg.dialog {
            self.dialogs.remove(&dialog.call_id);
        } else if let Some(id) = leg.invite.headers.get("Call-ID") {
            self.dialogs.remove(id);
        }
        Some(leg)
    }

    fn leg_answered(&mut self, call: u64, side: Side) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        match side {
            Side::Other => {
                let Some(other) = &state.other else { return };
                state.caller.media.stop();
                state.caller.media.bridge(&other.media);
                other.media.bridge(&state.caller.media);
                let first = state.record.answered_at.is_none();
                if first {
                    state.record.answered_at = Some(Utc::now());
                }
                if let Party::Agent(agent) = other.party {
                    state.record.agent = Some(agent);
                }
                let was_queued = matches!(state.state, State::Ringing | State::Queued);
                if state.state != State::TransferringOut {
                    state.state = State::Talking;
                }
                if was_queued && first {
                    self.app.metrics.calls_queued.dec();
                }
                if first {
                    if let Some(wait) = state.record.wait_ms() {
                        self.app
                            .metrics
                            .call_wait_seconds
                            .observe(wait as f64 / 1000.0);
                    }
                }
                self.save(call);
            }
            Side::Consult => {
                let (Some(other), Some(consult)) = (&state.other, &state.consult) else {
                    return;
                };
                other.media.bridge(&consult.media);
                consult.media.bridge(&other.media);
            }
            Side::Caller => {}
        }
    }

    async fn leg_failed(&mut self, call: u64, side: Side, status: u16) {
        let Some(leg) = self.take_leg(call, side) else {
            return;
        };
        tracing::info!(status, "a call leg was not answered");
        match (side, &leg.party) {
            (Side::Other, Party::Agent(agent)) => self.missed(call, *agent),
            (Side::Other, Party::Number(_)) => {
                // A blind transfer out failed: back to the queue the caller came from.
                let queue = self.calls.get(&call).and_then(|c| c.record.queue);
                match queue {
                    Some(queue) => self.enqueue(call, queue),
                    None => {
                        self.end_call(call, "system", Some(Disposition::Failed), None)
                            .await
                    }
                }
            }
            (Side::Consult, _) => self.rejoin(call),
            (Side::Caller, _) => {}
        }
    }

    /// The agent did not answer: they become not ready and the call goes back to the queue.
    fn missed(&mut self, call: u64, agent: UserId) {
        self.drop_other(call, Some(&Party::Agent(agent)));
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = State::Queued;
        state.record.agent = None;
        let Some(contact) = state.record.contact else {
            return;
        };
        let app = self.app.clone();
        tokio::spawn(async move {
            if let Err(error) = app.contacts.mark_not_ready(agent).await {
                tracing::warn!(%error, "could not set the agent not ready");
            }
            if let Err(error) = app.contacts.return_to_queue(contact).await {
                tracing::warn!(%error, "could not return the call to its queue");
            }
        });
    }

    // ----- hang-ups -----

    async fn on_bye(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let Some((call, side)) = self.dialog_of(&request) else {
            self.reply(&request, &key, peer, 481);
            return;
        };
        self.reply(&request, &key, peer, 200);
        match side {
            Side::Caller => {
                self.end_call(call, "caller", None, Some(Side::Caller))
                    .await
            }
            Side::Other => {
                let leg = self.take_leg(call, Side::Other);
                let by = match leg.map(|l| l.party) {
                    Some(Party::Number(_)) => "number",
                    _ => "agent",
                };
                self.end_call(call, by, None, None).await;
            }
            Side::Consult => {
                self.take_leg(call, Side::Consult);
                self.rejoin(call);
            }
        }
    }

    async fn on_cancel(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let invite_key = key.as_ref().map(|k| Key {
            branch: k.branch.clone(),
            method: Method::Invite,
        });
        let call = invite_key
            .as_ref()
            .and_then(|k| self.invites.get(k))
            .copied();
        match (call, invite_key) {
            (Some(call), Some(invite_key)) => {
                self.reply(&request, &key, peer, 200);
                if self.tx.is_pending(&invite_key) {
                    self.end_call(call, "caller", None, Some(Side::Caller))
                        .await;
                }
            }
            _ => self.reply(&request, &key, peer, 481),
        }
    }

    /// Hangs up a leg of ours: BYE when answered, CANCEL while its INVITE is pending (a 2xx
    /// that still arrives gets ACK and BYE).
    fn hang_up_leg(&mut self, call: u64, side: Side) {
        let Some(mut leg) = self.take_leg(call, side) else {
            return;
        };
        let peer = leg.peer;
        if leg.answered {
            if let Some(dialog) = leg.dialog.as_mut() {
                let bye = dialog.request(Method::Bye, &self.via(peer));
                self.tx.send_request(Instant::now(), bye, peer);
            }
        } else if let Some(key) = leg.invite_key.take() {
            let cancel = cancel_for(&leg.invite);
            self.tx.send_request(Instant::now(), cancel, peer);
            self.orphans.insert(key, (leg.invite.clone(), peer));
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.caller.media.unbridge();
        }
    }

    /// Drops the other leg (only if it is `party`, when given).
    fn drop_other(&mut self, call: u64, party: Option<&Party>) {
        let matches = self
            .calls
            .get(&call)
            .and_then(|c| c.other.as_ref())
            .is_some_and(|o| party.is_none_or(|p| *p == o.party));
        if matches {
            self.hang_up_leg(call, Side::Other);
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.caller.media.unbridge();
        }
    }

    /// Ends a call: hangs up every leg (except `gone`, which hung up), ends its contact, and
    /// closes its record.
    async fn end_call(
        &mut self,
        call: u64,
        by: &str,
        disposition: Option<Disposition>,
        gone: Option<Side>,
    ) {
        self.hang_up_leg(call, Side::Consult);
        self.hang_up_leg(call, Side::Other);
        let Some(mut state) = self.calls.remove(&call) else {
            return;
        };
        let (received, sent) = state.caller.media.counts();
        state.record.rtp.from_caller = received;
        state.record.rtp.to_caller = sent;
        if gone != Some(Side::Caller) {
            // The caller's INVITE was answered at once, so the caller is always in a dialog.
            let peer = state.caller.peer;
            let bye = state.caller.dialog.request(Method::Bye, &self.via(peer));
            self.tx.send_request(Instant::now(), bye, peer);
        }
        if let Some(key) = &state.caller.invite {
            self.invites.remove(key);
        }
        self.dialogs.remove(&state.caller.dialog.call_id);
        self.by_leg.remove(&(call * 4));
        let transferred_out = state.state == State::TransferringOut;
        let was_waiting = matches!(state.state, State::Queued | State::Ringing);
        if was_waiting {
            self.app.metrics.calls_queued.dec();
        }
        let disposition = disposition.or(transferred_out.then_some(Disposition::TransferredOut));
        state.record.end(Utc::now(), by, disposition);
        self.app.metrics.calls_in_progress.dec();
        self.app
            .metrics
            .count_call(state.record.disposition.as_str());
        if let Some(contact) = state.record.contact {
            if self.by_contact.remove(&contact).is_some() && !transferred_out {
                let app = self.app.clone();
                let reason = match by {
                    "caller" => "caller hung up",
                    "agent" => "agent hung up",
                    _ => "call ended",
                };
                tokio::spawn(async move {
                    if let Err(error) = app.contacts.end(contact, reason).await {
                        tracing::debug!(%error, "the call's contact had already ended");
                    }
                });
            }
        }
        self.publish(&state.record);
        let _ = self.records.send(state.record.clone());
    }

    /// Puts the caller back with their agent after a consultation ends.
    fn rejoin(&mut self, call: u64) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(other) = &state.other {
            other.media.unbridge();
            state.caller.media.stop();
            state.caller.media.bridge(&other.media);
            other.media.bridge(&state.caller.media);
            state.state = State::Talking;
        }
    }

    fn on_reinvite(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let Some((call, side)) = self.dialog_of(&request) else {
            self.reply(&request, &key, peer, 481);
            return;
        };
        let offer = if request.body.is_empty() {
            None
        } else {
            match sdp::parse(&request.body) {
                Ok(offer) if sdp::choose_codec(&offer).is_some() => Some(offer),
                _ => {
                    self.reply(&request, &key, peer, 488);
                    return;
                }
            }
        };
        let (ip, contact) = (self.ip, self.contact_header(peer));
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let (media, dialog_tag) = match side {
            Side::Caller => (&state.caller.media, state.caller.dialog.local_tag.clone()),
            Side::Other | Side::Consult => {
                let leg = if side == Side::Other {
                    state.other.as_ref()
                } else {
                    state.consult.as_ref()
                };
                let Some(leg) = leg else { return };
                (
                    &leg.media,
                    leg.dialog
                        .as_ref()
                        .map(|d| d.local_tag.clone())
                        .unwrap_or_default(),
                )
            }
        };
        let direction = offer
            .as_ref()
            .map_or(sdp::Direction::SendRecv, |o| o.direction);
        let codec = offer
            .as_ref()
            .and_then(sdp::choose_codec)
            .unwrap_or(media.codec());
        if let Some(offer) = &offer {
            if !offer.address.is_unspecified() {
                media.set_remote(
                    SocketAddr::new(offer.address, offer.port),
                    codec,
                    offer.telephone_event,
                );
            }
        }
        let body = sdp::write(
            call,
            2 + state.play_token,
            ip,
            media.port,
            &[codec],
            offer.as_ref().and_then(|o| o.telephone_event),
            direction.answer(),
        );
        let current = state.state;
        if side == Side::Caller {
            state.caller_sends = matches!(
                direction,
                sdp::Direction::SendRecv | sdp::Direction::SendOnly
            );
        }
        let mut response = Response::to(&request, 200, "OK", Some(&dialog_tag));
        response.headers.push("Contact", &contact);
        response.headers.push("Content-Type", "application/sdp");
        response.body = body;
        self.respond(&key, peer, response);
        // The agent's phone put the caller on hold, or took them off it.
        if side == Side::Other {
            if direction.is_hold() && current == State::Talking {
                self.hold(call);
            } else if !direction.is_hold() && current == State::Held {
                self.resume(call);
            }
        }
    }

    fn hold(&mut self, call: u64) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(other) = &state.other {
            other.media.unbridge();
        }
        state.caller.media.unbridge();
        state.state = State::Held;
        self.hold_music(call, None);
    }

    fn resume(&mut self, call: u64) {
        if let Some(state) = self.calls.get_mut(&call) {
            state.play_token += 1;
        }
        self.rejoin(call);
    }

    // ----- timers and commands -----

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
                        let position = app.contacts.position(contact).await;
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
            Command::Reload => self.directory_stale = true,
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

    fn find(&self, id: CallId) -> Option<u64> {
        self.calls
            .values()
            .find(|c| c.record.id == id)
            .map(|c| c.key)
    }

    async fn control(
        &mut self,
        id: CallId,
        control: CallControl,
    ) -> Result<CallRecord, VoiceError> {
        let call = self.find(id).ok_or(VoiceError::NotFound)?;
        let state = self
            .calls
            .get(&call)
            .map(|c| c.state)
            .ok_or(VoiceError::NotFound)?;
        match control {
            CallControl::HangUp => {
                let record = self.calls.get(&call).map(|c| c.record.clone());
                self.end_call(call, "system", None, None).await;
                let mut record = record.ok_or(VoiceError::NotFound)?;
                record.end(Utc::now(), "system", None);
                return Ok(record);
            }
            CallControl::Hold => {
                if state != State::Talking {
                    return Err(VoiceError::State("only a call in conversation can be held"));
                }
                self.hold(call);
            }
            CallControl::Resume => {
                if state != State::Held {
                    return Err(VoiceError::State("the call is not on hold"));
                }
                self.resume(call);
            }
            CallControl::Transfer { to, attended } => {
                if !matches!(state, State::Talking | State::Held) {
                    return Err(VoiceError::State(
                        "only a call with an agent can be transferred",
                    ));
                }
                let contact = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.record.contact)
                    .ok_or(VoiceError::NotFound)?;
                let description = match &to {
                    TransferTo::Queue(q) => format!("queue:{q}"),
                    TransferTo::Agent(a) => format!("agent:{a}"),
                    TransferTo::Number(n) => format!("number:{n}"),
                };
                if attended {
                    self.consult(call, to).await?;
                } else {
                    let target = match to {
                        TransferTo::Queue(queue) => Some(TransferTarget::Queue(queue)),
                        TransferTo::Agent(agent) => Some(TransferTarget::Agent(agent)),
                        TransferTo::Number(number) => {
                            self.transfer_out(call, &number).await?;
                            None
                        }
                    };
                    // Routing moves the contact; its change tells this engine what to ring.
                    if let Some(target) = target {
                        self.app.contacts.transfer(contact, target).await?;
                    }
                }
                if let Some(state) = self.calls.get_mut(&call) {
                    state.record.transfers.push(description);
                }
                self.save(call);
            }
            CallControl::CompleteTransfer => {
                if state != State::Consulting {
                    return Err(VoiceError::State("no transfer is being consulted"));
                }
                let answered = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.consult.as_ref())
                    .is_some_and(|l| l.answered);
                if !answered {
                    return Err(VoiceError::State(
                        "the transfer target has not answered yet",
                    ));
                }
                let party = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.consult.as_ref())
                    .map(|l| l.party.clone());
                let contact = self.calls.get(&call).and_then(|c| c.record.contact);
                if let (Some(Party::Agent(agent)), Some(contact)) = (&party, contact) {
                    // Routing must accept the new agent before the legs are swapped.
                    let agent = *agent;
                    let old = self.calls.get_mut(&call).and_then(|c| c.other.take());
                    let consult = self.calls.get_mut(&call).and_then(|c| c.consult.take());
                    if let Some(state) = self.calls.get_mut(&call) {
                        state.other = consult;
                    }
                    if let Err(error) = self
                        .app
                        .contacts
                        .transfer(contact, TransferTarget::Agent(agent))
                        .await
                    {
                        let consult = self.calls.get_mut(&call).and_then(|c| c.other.take());
                        if let Some(state) = self.calls.get_mut(&call) {
                            state.other = old;
                            state.consult = consult;
                        }
                        return Err(VoiceError::from(error));
                    }
                    if let Some(mut old) = old {
                        self.by_leg.remove(&old.id);
                        if let Some(dialog) = old.dialog.as_mut() {
                            self.dialogs.remove(&dialog.call_id);
                            let bye = dialog.request(Method::Bye, &self.via(old.peer));
                            self.tx.send_request(Instant::now(), bye, old.peer);
                        }
                    }
                    if let Some(leg) = self
                        .calls
                        .get(&call)
                        .and_then(|c| c.other.as_ref())
                        .map(|l| l.id)
                    {
                        self.by_leg.insert(leg, (call, Side::Other));
                        let call_id = self
                            .calls
                            .get(&call)
                            .and_then(|c| c.other.as_ref())
                            .and_then(|l| l.dialog.as_ref())
                            .map(|d| d.call_id.clone());
                        if let Some(call_id) = call_id {
                            self.dialogs.insert(call_id, (call, Side::Other));
                        }
                    }
                    if let Some(state) = self.calls.get_mut(&call) {
                        state.record.agent = Some(agent);
                    }
                } else {
                    // To a number: the contact ends; the caller talks to the number.
                    self.hang_up_leg(call, Side::Other);
                    let consult = self.take_leg(call, Side::Consult);
                    if let Some(consult) = consult {
                        let (id, call_id) = (
                            consult.id,
                            consult.dialog.as_ref().map(|d| d.call_id.clone()),
                        );
                        if let Some(state) = self.calls.get_mut(&call) {
                            state.other = Some(consult);
                            state.state = State::TransferringOut;
                        }
                        self.by_leg.insert(id, (call, Side::Other));
                        if let Some(call_id) = call_id {
                            self.dialogs.insert(call_id, (call, Side::Other));
                        }
                    }
                    if let Some(contact) = contact {
                        self.by_contact.remove(&contact);
                        let app = self.app.clone();
                        tokio::spawn(async move {
                            let _ = app.contacts.end(contact, "transferred to a number").await;
                        });
                    }
                }
                self.rejoin(call);
                if let Some(state) = self.calls.get_mut(&call) {
                    if party
                        .as_ref()
                        .is_some_and(|p| matches!(p, Party::Number(_)))
                    {
                        state.state = State::TransferringOut;
                    }
                }
                self.save(call);
            }
            CallControl::CancelTransfer => {
                if state != State::Consulting {
                    return Err(VoiceError::State("no transfer is being consulted"));
                }
                self.hang_up_leg(call, Side::Consult);
                self.rejoin(call);
            }
        }
        self.calls
            .get(&call)
            .map(|c| c.record.clone())
            .ok_or(VoiceError::NotFound)
    }

    /// An outbound trunk and the request URI for a number.
    async fn route_number(&mut self, number: &str) -> Result<(Trunk, String, Peer), VoiceError> {
        self.load_directory().await;
        let trunk = self
            .directory
            .trunks
            .iter()
            .find(|t| t.direction == TrunkDirection::Outbound)
            .cloned()
            .ok_or(VoiceError::State("no outbound trunk is configured"))?;
        let host = trunk.host.clone().unwrap_or_default();
        let port = trunk.port.unwrap_or(5060);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or(VoiceError::State(
                "the outbound trunk's host does not resolve",
            ))?;
        let dialled = apply_dial_rules(&trunk.dial_rules, number);
        let uri = format!("sip:{dialled}@{host}:{port}");
        let peer = Peer {
            addr,
            transport: if trunk.tcp { Wire::Tcp } else { Wire::Udp },
        };
        Ok((trunk, uri, peer))
    }

    async fn transfer_out(&mut self, call: u64, number: &str) -> Result<(), VoiceError> {
        let route = self.route_number(number).await?;
        let contact = self.calls.get(&call).and_then(|c| c.record.contact);
        self.drop_other(call, None);
        let Some(state) = self.calls.get_mut(&call) else {
            return Err(VoiceError::NotFound);
        };
        state.state = State::TransferringOut;
        let caller = state.record.caller.clone();
        let codec = state.caller.media.codec();
        self.hold_music(call, None);
        if let Some(contact) = contact {
            self.by_contact.remove(&contact);
            let app = self.app.clone();
            tokio::spawn(async move {
                let _ = app.contacts.end(contact, "transferred to a number").await;
            });
        }
        self.call_number(call, Side::Other, number, route, &caller, codec)
            .await
            .ok_or(VoiceError::State("no free RTP ports"))?;
        Ok(())
    }

    /// Calls a number through an outbound trunk as the call's `side` leg.
    async fn call_number(
        &mut self,
        call: u64,
        side: Side,
        number: &str,
        (trunk, uri, peer): (Trunk, String, Peer),
        caller: &str,
        codec: u8,
    ) -> Option<u64> {
        let to = format!("<{uri}>");
        let party = Party::Number(number.to_owned());
        self.place_call(call, side, party, uri, peer, caller, to, codec, Some(trunk))
            .await
    }

    async fn consult(&mut self, call: u64, to: TransferTo) -> Result<(), VoiceError> {
        let caller = self
            .calls
            .get(&call)
            .map(|c| c.record.caller.clone())
            .unwrap_or_default();
        let codec = self
            .calls
            .get(&call)
            .and_then(|c| c.other.as_ref())
            .map_or(sdp::PCMU, |o| o.media.codec());
        let placed = match to {
            TransferTo::Queue(_) => {
                return Err(VoiceError::State(
                    "an attended transfer goes to an agent or a number",
                ))
            }
            TransferTo::Agent(agent) => {
                let (uri, peer, username) = self
                    .phone_target(agent)
                    .ok_or(VoiceError::State("that agent has no registered phone"))?;
                let to = format!("<sip:{username}@{}>", self.ip);
                self.place_call(
                    call,
                    Side::Consult,
                    Party::Agent(agent),
                    uri,
                    peer,
                    &caller,
                    to,
                    codec,
                    None,
                )
                .await
            }
            TransferTo::Number(number) => {
                let route = self.route_number(&number).await?;
                self.call_number(call, Side::Consult, &number, route, &caller, codec)
                    .await
            }
        };
        placed.ok_or(VoiceError::State("no free RTP ports"))?;
        self.hold(call);
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = State::Consulting;
        }
        Ok(())
    }

    fn publish(&self, record: &CallRecord) {
        self.app.events.publish(
            Subject::Waiting {
                queue: record.queue,
                channel: Channel::Voice,
            },
            &EventPayload::CallUpdated {
                call: CallView::from(record),
            },
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

/// The INVITE again with credentials for a trunk's challenge, if the trunk has them.
fn authorize(leg: &OtherLeg, response: &Response) -> Option<Request> {
    let trunk = leg.trunk.as_ref()?;
    let (username, password) = (trunk.username.as_ref()?, trunk.secret.as_ref()?);
    let (header, answer_header) = match response.status {
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => ("WWW-Authenticate", "Authorization"),
    };
    let (realm, nonce) = digest::parse_challenge(response.headers.get(header)?)?;
    let mut retry = leg.invite.clone();
    let number = fields::cseq(&retry.headers).map_or(1, |(n, _)| n) + 1;
    retry.headers.set("CSeq", &format!("{number} INVITE"));
    let via = retry.headers.get("Via")?.to_owned();
    let fresh = fields::with_param(&via, "branch", &format!("z9hG4bK{}", random()));
    retry.headers.set("Via", &fresh);
    let answer = digest::answer(
        username,
        password,
        &realm,
        &nonce,
        "INVITE",
        &retry.uri,
        &random()[..16],
    );
    retry.headers.push(answer_header, &answer);
    Some(retry)
}
