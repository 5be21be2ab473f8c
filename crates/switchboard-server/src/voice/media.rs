//! RTP legs: one UDP port pair (RTP and RTCP) per call leg, a task per leg that plays audio to
//! the far end, reports DTMF (RFC 4733) and, once bridged, relays packets to the other leg
//! without decoding (G.711 of the other law is converted byte by byte). The far end's address
//! is learnt from the packets it sends (symmetric RTP), so callers behind NAT are heard.

use super::audio::Samples;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_media::rtp;
use switchboard_sip::sdp;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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

const NO_PT: u8 = 0xff;

/// Where a leg's media goes, read and written on every packet: an IPv4 address and port packed
/// in one atomic (no lock on the relay path), IPv6 behind a lock.
#[derive(Default)]
struct RemoteAddr {
    /// 0: none; bit 63 set: IPv4 (address << 16 | port); bit 62 set: IPv6, in `v6`.
    packed: std::sync::atomic::AtomicU64,
    v6: Mutex<Option<SocketAddr>>,
}

impl RemoteAddr {
    const V4: u64 = 1 << 63;
    const V6: u64 = 1 << 62;

    fn get(&self) -> Option<SocketAddr> {
        let packed = self.packed.load(Ordering::Relaxed);
        if packed & Self::V4 != 0 {
            let ip = std::net::Ipv4Addr::from(((packed >> 16) & 0xffff_ffff) as u32);
            Some(SocketAddr::new(ip.into(), (packed & 0xffff) as u16))
        } else if packed & Self::V6 != 0 {
            self.v6.lock().ok().and_then(|v6| *v6)
        } else {
            None
        }
    }

    fn latch(&self, addr: SocketAddr) {
        let packed = match addr {
            SocketAddr::V4(v4) => {
                Self::V4 | u64::from(u32::from(*v4.ip())) << 16 | u64::from(v4.port())
            }
            SocketAddr::V6(_) => {
                if let Ok(mut v6) = self.v6.lock() {
                    *v6 = Some(addr);
                }
                Self::V6
            }
        };
        if self.packed.load(Ordering::Relaxed) != packed || packed == Self::V6 {
            self.packed.store(packed, Ordering::Relaxed);
        }
    }
}

/// What both a leg's task and its bridge partner see of it.
pub struct LegShared {
    socket: UdpSocket,
    remote: RemoteAddr,
    /// The socket is connected to `remote` (after the far end's first packet): sends skip the
    /// route lookup, and packets from anyone else are dropped by the kernel.
    connected: std::sync::atomic::AtomicBool,
    codec: AtomicU8,
    dtmf: AtomicU8,
    /// Packets received and sent, for the call's statistics.
    pub received: AtomicU32,
    pub sent: AtomicU32,
}

impl LegShared {
    fn remote(&self) -> Option<SocketAddr> {
        self.remote.get()
    }
}

/// What a leg reports to the call engine.
#[derive(Debug)]
pub enum MediaEvent {
    Dtmf { leg: u64, digit: char },
}

enum Command {
    Play {
        parts: Vec<Samples>,
        then_loop: Option<Samples>,
    },
    Stop,
    Bridge(Arc<LegShared>),
    Unbridge,
    Remote {
        addr: SocketAddr,
        codec: u8,
        dtmf: Option<u8>,
    },
}

/// A call leg's media: its ports and the handle to its task. Dropping it ends the task and
/// frees the ports.
pub struct Leg {
    pub port: u16,
    pub shared: Arc<LegShared>,
    control: mpsc::UnboundedSender<Command>,
}

impl Leg {
    /// Opens a leg on the next free port pair of `ports`, on `ip`.
    pub async fn open(
        ports: &Arc<Ports>,
        ip: std::net::IpAddr,
        id: u64,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Option<Leg> {
        for _ in 0..16 {
            let port = ports.take()?;
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).await;
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await;
            let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) else {
                // Taken (by another program, or a socket still closing): try it again later.
                ports.give(port);
                continue;
            };
            let shared = Arc::new(LegShared {
                socket: rtp,
                remote: RemoteAddr::default(),
                connected: std::sync::atomic::AtomicBool::new(false),
                codec: AtomicU8::new(sdp::PCMU),
                dtmf: AtomicU8::new(NO_PT),
                received: AtomicU32::new(0),
                sent: AtomicU32::new(0),
            });
            let (control, commands) = mpsc::unbounded_channel();
            let task = LegTask {
                id,
                shared: shared.clone(),
                rtcp,
                events,
                ports: ports.clone(),
                port,
            };
            tokio::spawn(task.run(commands));
            return Some(Leg {
                port,
                shared,
                control,
            });
        }
        None
    }

    pub fn set_remote(&self, addr: SocketAddr, codec: u8, dtmf: Option<u8>) {
        let _ = self.control.send(Command::Remote { addr, codec, dtmf });
    }

    /// Plays `parts` in order, then `then_loop` over and over.
    pub fn play(&self, parts: Vec<Samples>, then_loop: Option<Samples>) {
        let _ = self.control.send(Command::Play { parts, then_loop });
    }

    pub fn stop(&self) {
        let _ = self.control.send(Command::Stop);
    }

    /// Sends what this leg receives to `other` (call it on both legs for two-way audio).
    pub fn bridge(&self, other: &Leg) {
        let _ = self.control.send(Command::Bridge(other.shared.clone()));
    }

    pub fn unbridge(&self) {
        let _ = self.control.send(Command::Unbridge);
    }

    /// Packets received and sent so far.
    pub fn counts(&self) -> (u32, u32) {
        (
            self.shared.received.load(Ordering::Relaxed),
            self.shared.sent.load(Ordering::Relaxed),
        )
    }

    pub fn codec(&self) -> u8 {
        self.shared.codec.load(Ordering::Relaxed)
    }
}

struct Player {
    parts: VecDeque<Samples>,
    then_loop: Option<Samples>,
    position: usize,
}

impl Player {
    /// The next 20 ms of audio, or `None` when done.
    fn next(&mut self, out: &mut [i16; 160]) -> bool {
        let mut filled = 0;
        while filled < out.len() {
            let current = match self.parts.front() {
                Some(part) => part.clone(),
                None => match &self.then_loop {
                    Some(looped) if !looped.is_empty() => {
                        self.parts.push_back(looped.clone());
                        continue;
                    }
                    _ => break,
                },
            };
            let take = (current.len() - self.position.min(current.len())).min(out.len() - filled);
            out[filled..filled + take]
                .copy_from_slice(&current[self.position..self.position + take]);
            filled += take;
            self.position += take;
            if self.position >= current.len() {
                self.parts.pop_front();
                self.position = 0;
            }
        }
        out[filled..].fill(0);
        filled > 0
    }
}

struct LegTask {
    id: u64,
    shared: Arc<LegShared>,
    rtcp: UdpSocket,
    events: mpsc::UnboundedSender<MediaEvent>,
    ports: Arc<Ports>,
    port: u16,
}

/// A leg task's state between wake-ups.
struct LegState {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    player: Option<Player>,
    partner: Option<Arc<LegShared>>,
    last_event_timestamp: Option<u32>,
    marker: bool,
}

impl LegTask {
    async fn run(self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let shared = self.shared.clone();
        let ssrc: u32 = rand_u32(self.id);
        let mut state = LegState {
            ssrc,
            sequence: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            player: None,
            partner: None,
            last_event_timestamp: None,
            marker: true,
        };
        let mut frame = [0i16; 160];
        let mut packet = Vec::with_capacity(200);
        let mut buffer = vec![0u8; 2048];
        let mut control_buffer = vec![0u8; 1500];
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut report = tokio::time::interval(Duration::from_secs(5));
        'task: loop {
            if state.partner.is_some() && state.player.is_none() {
                // Bridged: the hot path relays packets and waits for nothing else but commands.
                loop {
                    tokio::select! {
                        biased;
                        received = shared.socket.recv_from(&mut buffer) => {
                            if let Ok((length, from)) = received {
                                self.on_packet(&mut state, &mut buffer[..length], from);
                            }
                        }
                        command = commands.recv() => {
                            let Some(command) = command else { break 'task };
                            self.on_command(&mut state, command);
                            continue 'task;
                        }
                    }
                }
            }
            tokio::select! {
                biased;
                received = shared.socket.recv_from(&mut buffer) => {
                    if let Ok((length, from)) = received {
                        self.on_packet(&mut state, &mut buffer[..length], from);
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    self.on_command(&mut state, command);
                }
                received = self.rtcp.recv_from(&mut control_buffer) => {
                    // Reports from the far end are read and dropped; the socket must be drained.
                    let _ = received;
                }
                _ = clock.tick(), if state.player.is_some() => {
                    let Some(current) = state.player.as_mut() else { continue };
                    if !current.next(&mut frame) {
                        state.player = None;
                        continue;
                    }
                    let Some(remote) = shared.remote() else { continue };
                    let codec = shared.codec.load(Ordering::Relaxed);
                    rtp::write_header(&mut packet, state.marker, codec, state.sequence, state.timestamp, state.ssrc);
                    rtp::encode(codec, &frame, &mut packet);
                    state.marker = false;
                    state.sequence = state.sequence.wrapping_add(1);
                    state.timestamp = state.timestamp.wrapping_add(160);
                    if shared.socket.send_to(&packet, remote).await.is_ok() {
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ = report.tick() => {
                    let sent = shared.sent.load(Ordering::Relaxed);
                    if let (Some(remote), true) = (shared.remote(), sent > 0 && state.partner.is_none()) {
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                        let fraction = (u64::from(now.subsec_nanos()) << 32) / 1_000_000_000;
                        let ntp = ((now.as_secs() + 2_208_988_800) << 32) | fraction;
                        let report = rtp::sender_report(state.ssrc, ntp, state.timestamp, sent, sent * 160);
                        let _ = self.rtcp.send_to(&report, SocketAddr::new(remote.ip(), remote.port().wrapping_add(1))).await;
                    }
                }
            }
        }
        drop(state);
        self.ports.give(self.port);
    }

    fn on_packet(&self, state: &mut LegState, packet: &mut [u8], from: SocketAddr) {
        let shared = &self.shared;
        let Some(header) = rtp::parse(packet) else {
            return;
        };
        shared.received.fetch_add(1, Ordering::Relaxed);
        // Symmetric RTP: answer where the media comes from, and from then on hear only that.
        if !shared.connected.load(Ordering::Relaxed) {
            shared.remote.latch(from);
            if socket2::SockRef::from(&shared.socket)
                .connect(&from.into())
                .is_ok()
            {
                shared.connected.store(true, Ordering::Relaxed);
            }
        }
        if header.payload_type == shared.dtmf.load(Ordering::Relaxed) {
            let payload = &packet[header.payload_start..header.payload_end];
            if let Some(event) = rtp::parse_event(payload) {
                if state.last_event_timestamp != Some(header.timestamp) {
                    state.last_event_timestamp = Some(header.timestamp);
                    if let Some(digit) = rtp::event_digit(event.event) {
                        let _ = self.events.send(MediaEvent::Dtmf {
                            leg: self.id,
                            digit,
                        });
                    }
                }
            }
        }
        if let Some(other) = &state.partner {
            relay(packet, &header, shared, other);
        }
    }

    fn on_command(&self, state: &mut LegState, command: Command) {
        let shared = &self.shared;
        match command {
            Command::Play { parts, then_loop } => {
                state.player = Some(Player {
                    parts: parts.into(),
                    then_loop,
                    position: 0,
                });
                state.marker = true;
            }
            Command::Stop => state.player = None,
            Command::Bridge(other) => state.partner = Some(other),
            Command::Unbridge => state.partner = None,
            Command::Remote { addr, codec, dtmf } => {
                // A new offer moved the far end's media: follow it (re-connecting if connected).
                if shared.remote() != Some(addr) {
                    shared.remote.latch(addr);
                    if shared.connected.load(Ordering::Relaxed)
                        && socket2::SockRef::from(&shared.socket)
                            .connect(&addr.into())
                            .is_err()
                    {
                        shared.connected.store(false, Ordering::Relaxed);
                    }
                }
                shared.codec.store(codec, Ordering::Relaxed);
                shared.dtmf.store(dtmf.unwrap_or(NO_PT), Ordering::Relaxed);
            }
        }
    }
}

/// Sends a received packet on through the partner leg, converting the payload where the two
/// legs use different G.711 laws and renumbering telephone-events to the partner's type.
fn relay(packet: &mut [u8], header: &rtp::Header, from: &LegShared, to: &LegShared) {
    let Some(remote) = to.remote() else { return };
    let theirs = to.codec.load(Ordering::Relaxed);
    let pt = header.payload_type;
    // Either G.711 law may arrive (an answer may list both); the partner gets its own.
    let new_pt = if pt == sdp::PCMU || pt == sdp::PCMA {
        if pt != theirs {
            rtp::transcode(
                pt,
                theirs,
                &mut packet[header.payload_start..header.payload_end],
            );
        }
        theirs
    } else if pt == from.dtmf.load(Ordering::Relaxed) {
        match to.dtmf.load(Ordering::Relaxed) {
            NO_PT => return,
            other => other,
        }
    } else {
        return;
    };
    packet[1] = (packet[1] & 0x80) | new_pt;
    let sent = if to.connected.load(Ordering::Relaxed) {
        to.socket.try_send(packet).is_ok()
    } else {
        to.socket.try_send_to(packet, remote).is_ok()
    };
    if sent {
        to.sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// A per-leg SSRC: not secret, only distinct.
fn rand_u32(seed: u64) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(nanos));
    (mixed ^ (mixed >> 29)) as u32
}
