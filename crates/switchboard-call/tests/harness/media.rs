//! The media plane in memory: a `switchboard_media::Room` per call, as the server's shell runs
//! them, with ports handed out at once (or refused when the test empties the pool, or answered
//! late when it says so). RTP a test peer sends to one of our ports goes into that leg's room;
//! what rooms send goes to the far end's address, where a story can read and decode it. Each
//! leg's last mix-matrix row and playback are kept so a story can check who hears whom.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use switchboard_call::{LegId, MediaEvent, MediaOp, RecordingOp};
use switchboard_core::CallId;
use switchboard_media::{rtp, Codec, Event, Output, ParticipantId, Playback, Room, RoomConfig};

/// A finished recording: its length in ms and its paused spans (start, end) in ms.
pub type Finished = (u64, Vec<(u64, u64)>);

/// What the harness keeps of a leg, besides its room's state.
#[derive(Debug, Default, Clone)]
pub struct Leg {
    pub call: Option<CallId>,
    pub port: u16,
    pub remote: Option<(SocketAddr, u8)>,
    pub hears: Vec<LegId>,
    /// The token of what it plays, if anything.
    pub playing: Option<u64>,
    pub expects_media: bool,
    pub closed: bool,
}

#[derive(Default)]
pub struct Media {
    next_port: u16,
    pub legs: HashMap<LegId, Leg>,
    rooms: HashMap<CallId, Room>,
    /// RTP the rooms sent, by the address it went to.
    pub sent: HashMap<SocketAddr, Vec<Vec<u8>>>,
    /// No port pair is free.
    pub exhausted: bool,
    /// Opening media takes a while: `Ready` answers wait in `held` until this is cleared.
    pub slow: bool,
    pub held: Vec<MediaEvent>,
    pub config: RoomConfig,
    /// Lose the rooms' reports that a playback ended.
    pub drop_playback_done: bool,
    /// Every recording operation, in order, with its call.
    pub recording_ops: Vec<(CallId, RecordingOp)>,
    /// What the rooms recorded: per call, its stereo samples and its finished recordings'
    /// (duration, paused spans).
    pub recorded: HashMap<CallId, Vec<i16>>,
    pub finished: HashMap<CallId, Vec<Finished>>,
}

fn participant(leg: LegId) -> ParticipantId {
    ParticipantId(leg.0)
}

impl Media {
    /// Carries out one operation; returns what the media plane answers or reports.
    pub fn apply(&mut self, now: Instant, op: MediaOp) -> Vec<MediaEvent> {
        match op {
            MediaOp::Open { call, leg, .. } => {
                if self.exhausted {
                    return vec![MediaEvent::Unavailable { leg }];
                }
                self.next_port += 2;
                let port = 40_000 + self.next_port;
                let config = self.config;
                self.rooms
                    .entry(call)
                    .or_insert_with(|| Room::new(now, config, leg.0))
                    .add(now, participant(leg), Codec::Pcmu, None);
                self.legs.insert(
                    leg,
                    Leg {
                        call: Some(call),
                        port,
                        expects_media: true,
                        ..Leg::default()
                    },
                );
                let ready = MediaEvent::Ready { leg, port };
                if self.slow {
                    self.held.push(ready);
                    return Vec::new();
                }
                vec![ready]
            }
            MediaOp::Remote {
                leg,
                addr,
                payload_type,
                dtmf,
            } => {
                self.leg(leg).remote = Some((addr, payload_type));
                let codec = Codec::from_payload_type(payload_type).unwrap_or(Codec::Pcmu);
                if let Some(room) = self.room_of(leg) {
                    room.set_codec(participant(leg), codec, dtmf);
                }
                Vec::new()
            }
            MediaOp::Hears { leg, sources } => {
                let ids: Vec<ParticipantId> = sources.iter().copied().map(participant).collect();
                if let Some(room) = self.room_of(leg) {
                    room.set_hears(participant(leg), &ids);
                }
                self.leg(leg).hears = sources;
                self.drain(now)
            }
            MediaOp::Play {
                leg,
                token,
                parts,
                then_loop,
            } => {
                if let Some(room) = self.room_of(leg) {
                    let playback = Playback {
                        parts,
                        then_loop,
                        token,
                    };
                    room.play(now, participant(leg), playback);
                }
                self.leg(leg).playing = Some(token);
                Vec::new()
            }
            MediaOp::StopPlaying { leg } => {
                if let Some(room) = self.room_of(leg) {
                    room.stop_playing(participant(leg));
                }
                self.leg(leg).playing = None;
                Vec::new()
            }
            MediaOp::ExpectMedia { leg, expect } => {
                if let Some(room) = self.room_of(leg) {
                    room.expect_media(now, participant(leg), expect);
                }
                self.leg(leg).expects_media = expect;
                Vec::new()
            }
            MediaOp::Close { leg } => {
                let stats = self
                    .room_of(leg)
                    .and_then(|room| room.remove(participant(leg)))
                    .unwrap_or_default();
                let state = self.leg(leg);
                state.closed = true;
                vec![MediaEvent::Closed {
                    leg,
                    received: stats.received,
                    sent: stats.sent,
                }]
            }
            MediaOp::Recording { call, op } => {
                self.recording_ops.push((call, op.clone()));
                if let Some(room) = self.rooms.get_mut(&call) {
                    match op {
                        RecordingOp::Start { left, right, .. } => {
                            room.start_recording(now, participant(left), participant(right))
                        }
                        RecordingOp::Pause => room.pause_recording(now),
                        RecordingOp::Resume => room.resume_recording(now),
                        RecordingOp::Stop { .. } => room.stop_recording(now),
                    }
                }
                self.drain(now)
            }
        }
    }

    fn leg(&mut self, leg: LegId) -> &mut Leg {
        self.legs.entry(leg).or_default()
    }

    fn room_of(&mut self, leg: LegId) -> Option<&mut Room> {
        let call = self.legs.get(&leg)?.call?;
        self.rooms.get_mut(&call)
    }

    /// A datagram from `from` reaches our port `port`.
    pub fn receive(&mut self, now: Instant, port: u16, mut packet: Vec<u8>) -> Vec<MediaEvent> {
        let Some((leg, call)) = self
            .legs
            .iter()
            .find(|(_, l)| l.port == port && !l.closed)
            .and_then(|(id, l)| Some((*id, l.call?)))
        else {
            return Vec::new();
        };
        let Some(room) = self.rooms.get_mut(&call) else {
            return Vec::new();
        };
        if let Some(to) = room.receive(now, participant(leg), &mut packet) {
            self.deliver(LegId(to.0), packet);
        }
        self.drain(now)
    }

    fn deliver(&mut self, to: LegId, packet: Vec<u8>) {
        if let Some((addr, _)) = self.legs.get(&to).and_then(|l| l.remote) {
            self.sent.entry(addr).or_default().push(packet);
        }
    }

    /// What the rooms want done now: ticks, timeouts, their packets and events.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<MediaEvent> {
        for room in self.rooms.values_mut() {
            if room.poll_timeout().is_some_and(|at| at <= now) {
                room.handle_timeout(now);
            }
        }
        self.drain(now)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rooms.values().filter_map(Room::poll_timeout).min()
    }

    fn drain(&mut self, _now: Instant) -> Vec<MediaEvent> {
        let mut events = Vec::new();
        let mut packets = Vec::new();
        for (call, room) in self.rooms.iter_mut() {
            while let Some(output) = room.poll_output() {
                match output {
                    Output::Transmit { to, packet } => packets.push((LegId(to.0), packet)),
                    Output::Event(Event::Dtmf { from, digit }) => events.push(MediaEvent::Dtmf {
                        leg: LegId(from.0),
                        digit,
                    }),
                    Output::Event(Event::MediaTimeout { from }) => {
                        events.push(MediaEvent::Timeout { leg: LegId(from.0) })
                    }
                    Output::Event(Event::PlaybackDone { .. }) if self.drop_playback_done => {}
                    Output::Event(Event::PlaybackDone { to, token }) => {
                        events.push(MediaEvent::PlaybackDone {
                            leg: LegId(to.0),
                            token,
                        })
                    }
                    Output::Event(Event::RecordingChunk { chunk }) => {
                        chunk.decode_into(self.recorded.entry(*call).or_default())
                    }
                    Output::Event(Event::RecordingStopped {
                        duration_ms,
                        paused,
                    }) => self
                        .finished
                        .entry(*call)
                        .or_default()
                        .push((duration_ms, paused)),
                    Output::Event(_) => {}
                }
            }
        }
        for (to, packet) in packets {
            self.deliver(to, packet);
        }
        events
    }

    /// The open legs of a call.
    pub fn open_legs(&self, call: CallId) -> Vec<(LegId, &Leg)> {
        let mut legs: Vec<_> = self
            .legs
            .iter()
            .filter(|(_, l)| l.call == Some(call) && !l.closed)
            .map(|(id, l)| (*id, l))
            .collect();
        legs.sort_by_key(|(id, _)| *id);
        legs
    }

    /// The open leg whose far end is at `addr`.
    pub fn leg_to(&self, addr: SocketAddr) -> Option<(LegId, &Leg)> {
        self.legs
            .iter()
            .find(|(_, l)| !l.closed && l.remote.map(|(a, _)| a) == Some(addr))
            .map(|(id, l)| (*id, l))
    }

    /// Takes the RTP sent to `addr` so far.
    pub fn take_sent(&mut self, addr: SocketAddr) -> Vec<Vec<u8>> {
        self.sent.remove(&addr).unwrap_or_default()
    }
}

/// A stream of RTP packets of one tone, 20 ms each, as a phone would send.
pub struct Tone {
    pub frequency: f32,
    pub payload_type: u8,
    pub ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Tone {
    pub fn new(frequency: f32, payload_type: u8, ssrc: u32) -> Self {
        Tone {
            frequency,
            payload_type,
            ssrc,
            sequence: 0,
            timestamp: 0,
        }
    }

    pub fn next_packet(&mut self) -> Vec<u8> {
        let samples: Vec<i16> = (0..160)
            .map(|n| {
                let t = (self.timestamp + n) as f32 / 8000.0;
                ((t * self.frequency * std::f32::consts::TAU).sin() * 8000.0) as i16
            })
            .collect();
        let mut packet = Vec::new();
        rtp::write_header(
            &mut packet,
            self.sequence == 0,
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        rtp::encode(self.payload_type, &samples, &mut packet);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        packet
    }
}

/// The decoded audio of packets, in order.
pub fn decode(packets: &[Vec<u8>]) -> Vec<i16> {
    let mut samples = Vec::new();
    for packet in packets {
        if let Some(header) = rtp::parse(packet) {
            rtp::decode(
                header.payload_type,
                &packet[header.payload_start..header.payload_end],
                &mut samples,
            );
        }
    }
    samples
}

/// The power of `frequency` in `samples` relative to their total power (Goertzel).
pub fn share_of(samples: &[i16], frequency: f32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (std::f64::consts::TAU * f64::from(frequency) / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for sample in samples {
        let s0 = f64::from(*sample) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    let total: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    if total == 0.0 {
        return 0.0;
    }
    2.0 * power / (total * samples.len() as f64)
}
