//! The media plane's IO: one task per call that owns the call's RTP sockets and its
//! `switchboard_media::Room`, feeding it packets and ticks and sending what it says. Ports come
//! from a pool of the configured range; the far end's address is learnt from the packets it
//! sends (symmetric RTP), after which the socket is connected to it, so sends skip the route
//! lookup and the kernel drops packets from anyone else.
//!
//! A browser leg is a participant of the same room: its WebRTC session (`webrtc`) and its one
//! UDP socket live in the room task beside the RTP legs, and its frames go through the room as
//! RTP packets, so the call logic and the room do not care which kind a leg is.
//!
//! The voice task talks to rooms through `MediaPlane::apply`, in the order the call engine
//! emitted its operations; rooms report DTMF, finished playbacks, silent callers and closed
//! legs back as `MediaEvent`s, and a browser leg's connected or lost media as `BrowserEvent`s.
//!
//! A room records when the engine says so (`MediaOp::Recording`): the room fills chunks of
//! two seconds and the task hands each to the recording writer (`crate::recordings`) over a
//! channel, so no file is touched on the packet path. A room whose last leg closes while it
//! records stops the recording itself, so a recording always ends with its call.

use super::webrtc::{BrowserMedia, Note};
use crate::recordings::{Piece, RecordingWriter};
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use switchboard_call::{
    BrowserEvent, Input, LegId, MediaEvent, MediaKind, MediaOp, RecordingOp, Samples,
};
use switchboard_core::{CallId, RecordingId};
use switchboard_media::{
    Codec, Event as RoomEvent, Output as RoomOutput, ParticipantId, Playback, Room, RoomConfig,
};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// How often rooms send RTCP sender reports for the streams they generate.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// The free even RTP ports of the configured range (RTCP takes the odd port above).
pub struct Ports {
    free: Mutex<VecDeque<u16>>,
}

impl Ports {
    pub fn new(first: u16, last: u16) -> Arc<Self> {
        let first = first + first % 2;
        let free = (first..last).step_by(2).collect();
        Arc::new(Ports {
            free: Mutex::new(free),
        })
    }

    fn take(&self) -> Option<u16> {
        self.free.lock().ok()?.pop_front()
    }

    fn give(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.push_back(port);
        }
    }
}

/// A leg's sockets, handed to its room: an RTP/RTCP pair, or a browser leg's one socket
/// (RTP and RTCP multiplexed with STUN and DTLS; the odd port of its pair stays unbound).
enum LegSockets {
    Rtp {
        rtp: UdpSocket,
        rtcp: UdpSocket,
        port: u16,
    },
    Browser {
        socket: UdpSocket,
        local: SocketAddr,
    },
}

impl LegSockets {
    fn port(&self) -> u16 {
        match self {
            LegSockets::Rtp { port, .. } => *port,
            LegSockets::Browser { local, .. } => local.port(),
        }
    }
}

/// The answer to a browser's offer: our SDP, or why there is none.
pub type OfferReply = oneshot::Sender<Result<String, super::PhoneError>>;

/// What the voice task asks of a room.
enum RoomCommand {
    Add(LegId, LegSockets),
    Op(MediaOp),
    /// A browser leg's SDP offer, to answer.
    Offer {
        leg: LegId,
        sdp: String,
        reply: OfferReply,
    },
}

struct RoomHandle {
    commands: mpsc::UnboundedSender<RoomCommand>,
    /// Commands sent and not yet taken: the room looks at its queue only when this is not
    /// zero (its waker stays registered with the queue meanwhile, so a send still wakes it).
    queued: Arc<AtomicUsize>,
    /// Legs opened and not yet closed; the room ends when this reaches zero.
    open: usize,
}

impl RoomHandle {
    fn send(&self, command: RoomCommand) {
        // Counted before it is sent, so the room never sees the command without the count.
        self.queued.fetch_add(1, Ordering::Release);
        if self.commands.send(command).is_err() {
            self.queued.fetch_sub(1, Ordering::Release);
        }
    }
}

/// The threads rooms run on: a runtime of their own, so that SIP, HTTP and the database are
/// never queued behind a thousand rooms' packets (they share the cores through the operating
/// system's scheduler instead, which runs a woken request at once). Dropping it stops every
/// room at once.
struct MediaRuntime(Option<tokio::runtime::Runtime>);

impl Drop for MediaRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Dropped from async code (the voice task): do not block on the rooms.
            runtime.shutdown_background();
        }
    }
}

/// The rooms of every call on this node.
pub struct MediaPlane {
    ports: Arc<Ports>,
    ip: IpAddr,
    config: RoomConfig,
    rooms: HashMap<CallId, RoomHandle>,
    legs: HashMap<LegId, CallId>,
    events: mpsc::UnboundedSender<Input>,
    next_seed: u64,
    /// Where rooms hand what they record; without one, recording operations are ignored.
    recorder: Option<RecordingWriter>,
    /// The rooms' own threads; without them rooms run on the runtime of whoever applies.
    runtime: Option<MediaRuntime>,
}

impl MediaPlane {
    pub fn new(
        ports: Arc<Ports>,
        ip: IpAddr,
        config: RoomConfig,
        seed: u64,
        events: mpsc::UnboundedSender<Input>,
    ) -> Self {
        MediaPlane {
            ports,
            ip,
            config,
            rooms: HashMap::new(),
            legs: HashMap::new(),
            events,
            next_seed: seed,
            recorder: None,
            runtime: None,
        }
    }

    /// Rooms run on `threads` threads of their own, named `media`.
    pub fn on_threads(mut self, threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("media")
            .enable_all()
            .build()?;
        self.runtime = Some(MediaRuntime(Some(runtime)));
        Ok(self)
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime
            .as_ref()
            .and_then(|r| r.0.as_ref())
            .map(tokio::runtime::Runtime::handle)
    }

    /// Rooms record into `recorder` when the engine says so.
    pub fn with_recorder(mut self, recorder: RecordingWriter) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Carries out one operation of the call engine. Opening a leg is answered at once (the
    /// sockets are bound here); everything else goes to the call's room.
    pub fn apply(&mut self, op: MediaOp) -> Option<MediaEvent> {
        match op {
            MediaOp::Open { call, leg, kind } => Some(self.open(call, leg, kind)),
            MediaOp::Close { leg } => {
                let call = self.legs.remove(&leg)?;
                let room = self.rooms.get_mut(&call)?;
                room.send(RoomCommand::Op(MediaOp::Close { leg }));
                room.open = room.open.saturating_sub(1);
                if room.open == 0 {
                    // Dropping the sender ends the task once it has closed this leg.
                    self.rooms.remove(&call);
                }
                None
            }
            MediaOp::Recording { call, op } => {
                self.rooms
                    .get(&call)?
                    .send(RoomCommand::Op(MediaOp::Recording { call, op }));
                None
            }
            op => {
                let leg = match &op {
                    MediaOp::Remote { leg, .. }
                    | MediaOp::Hears { leg, .. }
                    | MediaOp::Play { leg, .. }
                    | MediaOp::StopPlaying { leg }
                    | MediaOp::ExpectMedia { leg, .. } => *leg,
                    MediaOp::Open { leg, .. } | MediaOp::Close { leg } => *leg,
                    MediaOp::Recording { .. } => return None,
                };
                let call = self.legs.get(&leg)?;
                self.rooms.get(call)?.send(RoomCommand::Op(op));
                None
            }
        }
    }

    /// Hands a browser's SDP offer for `leg` to its room, which answers on `reply` (dropped
    /// unanswered when the leg is gone).
    pub fn offer(&self, leg: LegId, sdp: String, reply: OfferReply) {
        let Some(room) = self.legs.get(&leg).and_then(|call| self.rooms.get(call)) else {
            return;
        };
        room.send(RoomCommand::Offer { leg, sdp, reply });
    }

    fn open(&mut self, call: CallId, leg: LegId, kind: MediaKind) -> MediaEvent {
        // Sockets belong to the runtime that polls them: the rooms'.
        let entered = self.handle().map(tokio::runtime::Handle::enter);
        let bound = match kind {
            MediaKind::Rtp => self.bind(),
            MediaKind::Browser { .. } => self.bind_browser(),
        };
        drop(entered);
        let Some(sockets) = bound else {
            return MediaEvent::Unavailable { leg };
        };
        let port = sockets.port();
        let handle = self.handle().cloned();
        let room = self.rooms.entry(call).or_insert_with(|| {
            let (commands, receiver) = mpsc::unbounded_channel();
            let queued = Arc::new(AtomicUsize::new(0));
            self.next_seed = self.next_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let task = RoomTask {
                room: Room::new(Instant::now(), self.config, self.next_seed),
                legs: Vec::new(),
                ip: self.ip,
                notes: Vec::new(),
                events: self.events.clone(),
                ports: self.ports.clone(),
                queued: queued.clone(),
                recorder: self.recorder.clone(),
                recording: None,
                discard: false,
            };
            match &handle {
                Some(handle) => drop(handle.spawn(task.run(receiver))),
                None => drop(tokio::spawn(task.run(receiver))),
            }
            RoomHandle {
                commands,
                queued,
                open: 0,
            }
        });
        room.open += 1;
        room.send(RoomCommand::Add(leg, sockets));
        self.legs.insert(leg, call);
        MediaEvent::Ready { leg, port }
    }

    /// Binds the next free RTP/RTCP port pair.
    fn bind(&self) -> Option<LegSockets> {
        for _ in 0..16 {
            let port = self.ports.take()?;
            let bound = bind_pair(self.ip, port);
            match bound {
                Ok((rtp, rtcp)) => return Some(LegSockets::Rtp { rtp, rtcp, port }),
                Err(error) => {
                    // Taken (by another program, or a socket still closing): try it later.
                    tracing::debug!(%error, port, "RTP port not free");
                    self.ports.give(port);
                }
            }
        }
        None
    }
}

impl MediaPlane {
    /// Binds the even port of the next free pair for a browser leg.
    fn bind_browser(&self) -> Option<LegSockets> {
        for _ in 0..16 {
            let port = self.ports.take()?;
            match bind_one(self.ip, port) {
                Ok(socket) => {
                    let local = SocketAddr::new(self.ip, port);
                    return Some(LegSockets::Browser { socket, local });
                }
                Err(error) => {
                    tracing::debug!(%error, port, "media port not free");
                    self.ports.give(port);
                }
            }
        }
        None
    }
}

fn bind_one(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let open = |port| -> std::io::Result<UdpSocket> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
        socket.set_nonblocking(true)?;
        UdpSocket::from_std(socket)
    };
    Ok((open(port)?, open(port + 1)?))
}

/// A leg inside its room's task.
struct LegIo {
    id: LegId,
    port: u16,
    /// The G.711 law the leg's far end uses (from its SDP; a browser is offered the caller's).
    law: Codec,
    media: LegMedia,
}

enum LegMedia {
    Rtp(RtpIo),
    Browser(Box<BrowserMedia>),
}

impl LegIo {
    /// The socket its far end sends to.
    fn socket(&self) -> &UdpSocket {
        match &self.media {
            LegMedia::Rtp(io) => &io.rtp,
            LegMedia::Browser(browser) => &browser.socket,
        }
    }

    /// Sends a packet from the room to the leg's far end.
    fn send(&mut self, now: Instant, packet: &[u8]) {
        match &mut self.media {
            LegMedia::Rtp(io) => io.send(self.id, packet),
            LegMedia::Browser(browser) => browser.send(now, packet),
        }
    }
}

/// A plain RTP leg's sockets and where its far end is.
struct RtpIo {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// Where its media goes: from the SDP, then from the first packet it sends.
    remote: Option<SocketAddr>,
    /// The socket is connected to `remote`.
    connected: bool,
}

impl RtpIo {
    fn send(&self, id: LegId, packet: &[u8]) {
        let sent = if self.connected {
            self.rtp.try_send(packet)
        } else if let Some(remote) = self.remote {
            self.rtp.try_send_to(packet, remote)
        } else {
            return;
        };
        if let Err(error) = sent {
            tracing::trace!(%error, leg = %id, "RTP packet not sent");
        }
    }

    /// Answers the far end where its media comes from, connecting the socket so that only
    /// that address is heard from then on.
    fn latch(&mut self, addr: SocketAddr) {
        self.remote = Some(addr);
        self.connected = socket2::SockRef::from(&self.rtp)
            .connect(&addr.into())
            .is_ok();
    }

    /// The far end's SDP names where its media goes. Phones often send from another port
    /// than they listen on, so this only connects a socket that was connected already (to
    /// follow a re-INVITE that moved the media); otherwise the first packet decides.
    fn offered(&mut self, addr: SocketAddr) {
        if self.remote == Some(addr) {
            return;
        }
        self.remote = Some(addr);
        if self.connected {
            self.connected = socket2::SockRef::from(&self.rtp)
                .connect(&addr.into())
                .is_ok();
        }
    }
}

struct RoomTask {
    room: Room,
    legs: Vec<LegIo>,
    /// The media address (browser legs' host candidate).
    ip: IpAddr,
    /// What browser legs reported during this pass, sent once it is over.
    notes: Vec<(LegId, Note)>,
    events: mpsc::UnboundedSender<Input>,
    ports: Arc<Ports>,
    /// Commands waiting in the queue (see `RoomHandle::queued`).
    queued: Arc<AtomicUsize>,
    /// Where the recording's pieces go.
    recorder: Option<RecordingWriter>,
    /// The recording the room writes now, from its `Start` to its stop.
    recording: Option<RecordingId>,
    /// The recording being stopped is to be deleted.
    discard: bool,
}

impl RoomTask {
    /// Runs the room until its last leg closes. One long-lived poll does everything that is
    /// ready at each wake-up (every command, every datagram waiting on any leg's sockets, the
    /// timer) before it sleeps again, so a wake-up costs one pass however much arrived.
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<RoomCommand>) {
        let mut buffer = vec![0u8; 2048];
        let mut drain = vec![0u8; 1500];
        let timer =
            tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        let mut next_report = Instant::now() + REPORT_EVERY;
        // Whether the command queue holds this task's waker (it said Pending since the last
        // command taken).
        let mut listening = false;
        poll_fn(|cx| {
            // The queue is looked at when a command is waiting, when the plane closed it (the
            // last leg is gone), or until it has said Pending once since the last command,
            // which leaves this task's waker with it so a later send wakes the room.
            while !listening || self.queued.load(Ordering::Acquire) > 0 || commands.is_closed() {
                match commands.poll_recv(cx) {
                    Poll::Ready(Some(command)) => {
                        listening = false;
                        self.queued.fetch_sub(1, Ordering::AcqRel);
                        self.on_command(command);
                    }
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => {
                        listening = true;
                        break;
                    }
                }
            }
            for index in 0..self.legs.len() {
                loop {
                    let mut read = ReadBuf::new(&mut buffer);
                    let Poll::Ready(Ok(from)) =
                        self.legs[index].socket().poll_recv_from(cx, &mut read)
                    else {
                        break;
                    };
                    let length = read.filled().len();
                    self.on_packet(index, &mut buffer[..length], from);
                }
            }
            // The timer and the report clock are polled only when due: their wakers stay
            // registered from the last poll, and on the relay path every poll costs.
            let now = Instant::now();
            if armed.is_some_and(|at| now >= at) && timer.as_mut().poll(cx).is_ready() {
                armed = None;
                self.room.handle_timeout(now);
            }
            self.browser_timeouts(now);
            if now >= next_report {
                next_report = now + REPORT_EVERY;
                self.report();
                // Reports from the far ends are read and dropped here, every few seconds: the
                // kernel keeps them meanwhile, and reading them on every wake-up would cost
                // more than the relay.
                for leg in &self.legs {
                    let LegMedia::Rtp(io) = &leg.media else {
                        continue;
                    };
                    loop {
                        let mut read = ReadBuf::new(&mut drain);
                        match io.rtcp.poll_recv_from(cx, &mut read) {
                            Poll::Ready(Ok(_)) => continue,
                            _ => break,
                        }
                    }
                }
            }
            self.drain_outputs();
            self.send_notes();
            // Re-arm only for an earlier deadline: on the fast path the media-timeout deadline
            // moves later with every packet, and resetting the timer each time would cost more
            // than the relay. A timer that fires early finds nothing due and is armed again.
            let next = self
                .room
                .poll_timeout()
                .map_or(next_report, |at| at.min(next_report));
            let next = self
                .legs
                .iter()
                .filter_map(|leg| match &leg.media {
                    LegMedia::Browser(browser) => browser.poll_timeout(),
                    LegMedia::Rtp(_) => None,
                })
                .fold(next, Instant::min);
            if armed.is_none_or(|at| next < at) {
                armed = Some(next);
                timer.as_mut().reset(tokio::time::Instant::from_std(next));
                if timer.as_mut().poll(cx).is_ready() {
                    // Already due (a room clock that starts on a change of who hears whom
                    // asks for a tick in the past, to be aligned by it): go round again at
                    // once, still armed, so that the next pass runs it. Disarming here would
                    // leave the deadline in the past forever and the room's mix unclocked.
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        })
        .await;
        // The call is over: whatever was being recorded ends here.
        self.room.stop_recording(Instant::now());
        self.drain_outputs();
        for leg in self.legs.drain(..) {
            self.ports.give(leg.port);
        }
    }

    /// A datagram from a leg's far end. RTP: latch onto its address, then let the room route
    /// it. A browser's: through its WebRTC session, whose media frames the room routes.
    fn on_packet(&mut self, index: usize, packet: &mut [u8], from: SocketAddr) {
        let now = Instant::now();
        let (before, rest) = self.legs.split_at_mut(index);
        let Some((leg, after)) = rest.split_first_mut() else {
            return;
        };
        let id = leg.id;
        let room = &mut self.room;
        match &mut leg.media {
            LegMedia::Rtp(io) => {
                if !io.connected {
                    io.latch(from);
                }
                if let Some(target) = room.receive(now, ParticipantId(id.0), packet) {
                    deliver(before, after, target, now, packet);
                }
            }
            LegMedia::Browser(browser) => {
                let notes = &mut self.notes;
                browser.receive(
                    now,
                    from,
                    packet,
                    &mut |frame| {
                        if let Some(target) = room.receive(now, ParticipantId(id.0), frame) {
                            deliver(before, after, target, now, frame);
                        }
                    },
                    &mut |note| notes.push((id, note)),
                );
            }
        }
    }

    /// Runs the timers of browser legs that are due.
    fn browser_timeouts(&mut self, now: Instant) {
        for leg in &mut self.legs {
            let LegMedia::Browser(browser) = &mut leg.media else {
                continue;
            };
            if browser.poll_timeout().is_some_and(|at| at <= now) {
                let id = leg.id;
                let notes = &mut self.notes;
                browser.handle_timeout(now, &mut |note| notes.push((id, note)));
            }
        }
    }

    /// Tells the voice task what browser legs reported: media up is the agent's answer, media
    /// lost is the agent gone.
    fn send_notes(&mut self) {
        for (leg, note) in self.notes.drain(..) {
            let event = match note {
                Note::Connected => BrowserEvent::Answered { leg },
                Note::Lost => BrowserEvent::HungUp { leg },
            };
            let _ = self.events.send(Input::Browser(event));
        }
    }

    /// Answers a browser leg's offer with the caller's law (the law of the room's other legs),
    /// so the room forwards packets without transcoding. A failed offer declines the leg.
    fn on_offer(&mut self, leg: LegId, sdp: &str, reply: OfferReply) {
        let now = Instant::now();
        let law = self
            .legs
            .iter()
            .find(|l| l.id != leg && matches!(l.media, LegMedia::Rtp(_)))
            .map_or(Codec::Pcmu, |l| l.law);
        let Some(io) = self.legs.iter_mut().find(|l| l.id == leg) else {
            return;
        };
        let LegMedia::Browser(browser) = &mut io.media else {
            let _ = reply.send(Err(super::PhoneError::NotRinging));
            return;
        };
        let answer = browser.accept_offer(now, sdp, law);
        match &answer {
            Ok((_, telephone)) => {
                io.law = law;
                self.room.set_codec(ParticipantId(leg.0), law, *telephone);
            }
            Err(error) => {
                tracing::info!(%error, %leg, "a browser's offer was refused");
                let _ = self
                    .events
                    .send(Input::Browser(BrowserEvent::Declined { leg }));
            }
        }
        let _ = reply.send(answer.map(|(sdp, _)| sdp).map_err(super::PhoneError::from));
    }

    fn on_command(&mut self, command: RoomCommand) {
        let now = Instant::now();
        match command {
            RoomCommand::Add(id, sockets) => {
                self.room.add(now, ParticipantId(id.0), Codec::Pcmu, None);
                let port = sockets.port();
                let media = match sockets {
                    LegSockets::Rtp { rtp, rtcp, .. } => LegMedia::Rtp(RtpIo {
                        rtp,
                        rtcp,
                        remote: None,
                        connected: false,
                    }),
                    LegSockets::Browser { socket, local } => {
                        debug_assert_eq!(local.ip(), self.ip);
                        // The SSRC of the browser's audio inside the room: any fixed value will
                        // do, since the room rewrites nothing by it.
                        let ssrc = (id.0 as u32).wrapping_mul(0x9E37_79B9) | 1;
                        LegMedia::Browser(Box::new(BrowserMedia::new(socket, local, ssrc)))
                    }
                };
                self.legs.push(LegIo {
                    id,
                    port,
                    law: Codec::Pcmu,
                    media,
                });
            }
            RoomCommand::Op(op) => self.on_op(now, op),
            RoomCommand::Offer { leg, sdp, reply } => self.on_offer(leg, &sdp, reply),
        }
    }

    fn on_op(&mut self, now: Instant, op: MediaOp) {
        let participant = |leg: LegId| ParticipantId(leg.0);
        match op {
            MediaOp::Open { .. } => {}
            MediaOp::Remote {
                leg,
                addr,
                payload_type,
                dtmf,
            } => {
                let codec = Codec::from_payload_type(payload_type).unwrap_or(Codec::Pcmu);
                self.room.set_codec(participant(leg), codec, dtmf);
                if let Some(io) = self.legs.iter_mut().find(|l| l.id == leg) {
                    io.law = codec;
                    if let LegMedia::Rtp(rtp) = &mut io.media {
                        rtp.offered(addr);
                    }
                }
            }
            MediaOp::Hears { leg, sources } => {
                let sources: Vec<ParticipantId> = sources.into_iter().map(participant).collect();
                self.room.set_hears(participant(leg), &sources);
            }
            MediaOp::Play {
                leg,
                token,
                parts,
                then_loop,
            } => self.room.play(
                now,
                participant(leg),
                Playback {
                    parts,
                    then_loop,
                    token,
                },
            ),
            MediaOp::StopPlaying { leg } => self.room.stop_playing(participant(leg)),
            MediaOp::ExpectMedia { leg, expect } => {
                self.room.expect_media(now, participant(leg), expect)
            }
            MediaOp::Close { leg } => {
                let stats = self.room.remove(participant(leg)).unwrap_or_default();
                if let Some(index) = self.legs.iter().position(|l| l.id == leg) {
                    let io = self.legs.swap_remove(index);
                    self.ports.give(io.port);
                }
                let _ = self.events.send(Input::Media(MediaEvent::Closed {
                    leg,
                    received: stats.received,
                    sent: stats.sent,
                }));
            }
            MediaOp::Recording { call, op } => self.on_recording(now, call, op),
        }
    }

    fn on_recording(&mut self, now: Instant, call: CallId, op: RecordingOp) {
        let Some(recorder) = self.recorder.clone() else {
            return;
        };
        match op {
            RecordingOp::Start {
                recording,
                left,
                right,
                agent,
                started_at,
            } => {
                if self.recording.is_some() {
                    self.room.stop_recording(now);
                    self.drain_outputs();
                }
                recorder.send(Piece::Start {
                    id: recording,
                    call,
                    agent,
                    started_at,
                });
                self.recording = Some(recording);
                self.discard = false;
                self.room
                    .start_recording(now, ParticipantId(left.0), ParticipantId(right.0));
            }
            RecordingOp::Pause => self.room.pause_recording(now),
            RecordingOp::Resume => self.room.resume_recording(now),
            RecordingOp::Stop { discard } => {
                self.discard = discard;
                self.room.stop_recording(now);
                self.drain_outputs();
            }
        }
    }

    /// Hands a room's recording event to the writer.
    fn recorded(&mut self, event: RoomEvent) {
        let (Some(recorder), Some(id)) = (&self.recorder, self.recording) else {
            return;
        };
        let piece = match event {
            RoomEvent::RecordingChunk { chunk } => Piece::Audio { id, chunk },
            RoomEvent::RecordingPaused { at_ms } => Piece::Paused { id, at_ms },
            RoomEvent::RecordingResumed { at_ms } => Piece::Resumed { id, at_ms },
            RoomEvent::RecordingStopped {
                duration_ms,
                paused,
            } => {
                self.recording = None;
                Piece::Stopped {
                    id,
                    duration_ms,
                    paused,
                    discard: std::mem::take(&mut self.discard),
                }
            }
            _ => return,
        };
        recorder.send(piece);
    }

    fn drain_outputs(&mut self) {
        let now = Instant::now();
        while let Some(output) = self.room.poll_output() {
            match output {
                RoomOutput::Transmit { to, packet } => {
                    if let Some(io) = self.legs.iter_mut().find(|l| l.id.0 == to.0) {
                        io.send(now, &packet);
                    }
                }
                RoomOutput::Event(event) => {
                    let event = match event {
                        RoomEvent::Dtmf { from, digit } => MediaEvent::Dtmf {
                            leg: LegId(from.0),
                            digit,
                        },
                        RoomEvent::PlaybackDone { to, token } => MediaEvent::PlaybackDone {
                            leg: LegId(to.0),
                            token,
                        },
                        RoomEvent::MediaTimeout { from } => {
                            MediaEvent::Timeout { leg: LegId(from.0) }
                        }
                        recording @ (RoomEvent::RecordingChunk { .. }
                        | RoomEvent::RecordingPaused { .. }
                        | RoomEvent::RecordingResumed { .. }
                        | RoomEvent::RecordingStopped { .. }) => {
                            self.recorded(recording);
                            continue;
                        }
                    };
                    let _ = self.events.send(Input::Media(event));
                }
            }
        }
    }

    /// RTCP sender reports for the streams the room generates (prompts, music, mixes).
    fn report(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let fraction = (u64::from(now.subsec_nanos()) << 32) / 1_000_000_000;
        let ntp = ((now.as_secs() + 2_208_988_800) << 32) | fraction;
        for leg in &self.legs {
            // A browser's session sends its own RTCP.
            let LegMedia::Rtp(io) = &leg.media else {
                continue;
            };
            let (Some(report), Some(remote)) = (
                self.room.sender_report(ParticipantId(leg.id.0), ntp),
                io.remote,
            ) else {
                continue;
            };
            let to = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
            let _ = io.rtcp.try_send_to(&report, to);
        }
    }
}

/// Hands a packet the room routed to `target`, which is one of the legs either side of the
/// sender's.
fn deliver(
    before: &mut [LegIo],
    after: &mut [LegIo],
    target: ParticipantId,
    now: Instant,
    packet: &[u8],
) {
    if let Some(to) = before
        .iter_mut()
        .chain(after.iter_mut())
        .find(|l| l.id.0 == target.0)
    {
        to.send(now, packet);
    }
}

/// The samples to hand a room for a render of `parts` then `then`, looping them all when
/// `repeat` (a menu prompt and its pause, again and again).
pub fn playback_parts(
    parts: Vec<Samples>,
    then: Option<Samples>,
    repeat: bool,
) -> (Vec<Samples>, Option<Samples>) {
    if !repeat {
        return (parts, then);
    }
    let mut all: Vec<i16> = parts.iter().flat_map(|s| s.iter().copied()).collect();
    if let Some(tail) = &then {
        all.extend_from_slice(tail);
    }
    (Vec::new(), Some(all.into()))
}
