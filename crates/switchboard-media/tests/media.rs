//! The media crate's tests, one binary: RTP and G.711, and rooms driven in virtual time (a
//! fake `Instant` base plus offsets) with known tones, checked sample by sample where it
//! matters and by Goertzel amplitude per frequency elsewhere.

mod playback;
mod recording;
mod robustness;
mod routes;
mod rtp;
mod timers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_media::{rtp as wire, Codec, Event, Output, ParticipantId, Room, RoomConfig};

pub const CALLER: ParticipantId = ParticipantId(1);
pub const AGENT: ParticipantId = ParticipantId(2);
pub const SUPERVISOR: ParticipantId = ParticipantId(3);
pub const MONITOR: ParticipantId = ParticipantId(4);

/// Tone amplitude: loud enough to stand well above G.711's quantisation, three of them summed
/// stay below clipping.
pub const AMPLITUDE: f64 = 8000.0;

pub fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

/// What a sender puts in its packets.
#[derive(Clone)]
pub enum Signal {
    Tone(f64),
    /// Samples given in full (repeated when they run out).
    Samples(Vec<i16>),
}

/// A far end sending RTP: a signal cut into packets of `packet_samples`, one packet each
/// packet duration.
#[derive(Clone)]
pub struct Sender {
    pub codec: Codec,
    pub signal: Signal,
    pub packet_samples: usize,
    pub ssrc: u32,
    pub sequence: u16,
    pub timestamp: u32,
    /// Samples sent so far (the signal's position).
    pub position: usize,
    pub next_send: Instant,
    pub active: bool,
}

impl Sender {
    pub fn samples(&self, count: usize) -> Vec<i16> {
        (self.position..self.position + count)
            .map(|n| match &self.signal {
                Signal::Tone(frequency) => {
                    let phase = 2.0 * std::f64::consts::PI * frequency * n as f64 / 8000.0;
                    (AMPLITUDE * phase.sin()).round() as i16
                }
                Signal::Samples(samples) => samples[n % samples.len()],
            })
            .collect()
    }

    /// The next packet, moving the sender on.
    pub fn next_packet(&mut self) -> Vec<u8> {
        let samples = self.samples(self.packet_samples);
        let mut packet = Vec::new();
        wire::write_header(
            &mut packet,
            self.position == 0,
            self.codec.payload_type(),
            self.sequence,
            self.timestamp,
            self.ssrc,
        );
        wire::encode(self.codec.payload_type(), &samples, &mut packet);
        self.position += self.packet_samples;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.packet_samples as u32);
        self.next_send += Duration::from_micros(self.packet_samples as u64 * 125);
        packet
    }
}

/// A room and the far ends around it, on a virtual clock. Everything the room sends is kept
/// per participant, in order.
pub struct Harness {
    pub room: Room,
    pub start: Instant,
    pub now: Instant,
    pub senders: BTreeMap<ParticipantId, Sender>,
    pub delivered: BTreeMap<ParticipantId, Vec<Vec<u8>>>,
    pub events: Vec<Event>,
}

impl Default for Harness {
    /// A 5 s media timeout and chunks of 100 frames.
    fn default() -> Harness {
        Harness::with_config(RoomConfig {
            media_timeout: Duration::from_secs(5),
            recorder_chunk_frames: 100,
        })
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::default()
    }

    pub fn with_config(config: RoomConfig) -> Harness {
        let start = Instant::now();
        Harness {
            room: Room::new(start, config, 7),
            start,
            now: start,
            senders: BTreeMap::new(),
            delivered: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Adds a participant whose far end sends `signal` from 5 ms into the next 20 ms (off the
    /// room's tick grid, as a real network would be).
    pub fn add(&mut self, id: ParticipantId, codec: Codec, signal: Signal) {
        self.add_with(id, codec, None, signal, 160);
    }

    pub fn add_with(
        &mut self,
        id: ParticipantId,
        codec: Codec,
        dtmf: Option<u8>,
        signal: Signal,
        packet_samples: usize,
    ) {
        self.room.add(self.now, id, codec, dtmf);
        let elapsed = self.now.duration_since(self.start).as_millis() as u64;
        self.senders.insert(
            id,
            Sender {
                codec,
                signal,
                packet_samples,
                ssrc: 0x1000_0000 + id.0 as u32,
                sequence: 1000 * id.0 as u16,
                // Timestamps that wrap within the first second for some.
                timestamp: u32::MAX - 3200 * id.0 as u32,
                position: 0,
                next_send: self.start + ms(elapsed / 20 * 20 + 5),
                active: true,
            },
        );
    }

    pub fn silence(&mut self, id: ParticipantId) {
        if let Some(sender) = self.senders.get_mut(&id) {
            sender.active = false;
        }
    }

    /// Hands a datagram to the room as from `from`, keeping what comes out.
    pub fn receive(&mut self, from: ParticipantId, packet: &mut [u8]) -> Option<ParticipantId> {
        let to = self.room.receive(self.now, from, packet);
        if let Some(to) = to {
            self.delivered.entry(to).or_default().push(packet.to_vec());
        }
        self.drain();
        to
    }

    pub fn drain(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                Output::Transmit { to, packet } => {
                    self.delivered.entry(to).or_default().push(packet)
                }
                Output::Event(event) => self.events.push(event),
            }
        }
    }

    /// Runs `duration` of virtual time: senders send when due, and the room's timeouts are
    /// handled when it asks.
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        for _ in 0..1_000_000 {
            let send = self
                .senders
                .values()
                .filter(|s| s.active)
                .map(|s| s.next_send)
                .min();
            let timeout = self.room.poll_timeout();
            let Some(next) = [send, timeout].into_iter().flatten().min() else {
                self.now = end;
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            if timeout.is_some_and(|t| t <= self.now) {
                self.room.handle_timeout(self.now);
                self.drain();
            }
            let due: Vec<ParticipantId> = self
                .senders
                .iter()
                .filter(|(_, s)| s.active && s.next_send <= self.now)
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                let Some(sender) = self.senders.get_mut(&id) else {
                    continue;
                };
                let mut packet = sender.next_packet();
                self.receive(id, &mut packet);
            }
        }
        panic!("the room kept asking for timeouts in the past");
    }

    /// Takes what was delivered to `id` so far.
    pub fn take(&mut self, id: ParticipantId) -> Vec<Vec<u8>> {
        self.delivered.remove(&id).unwrap_or_default()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

/// The linear samples of audio packets, in order (telephone-events and others left out).
pub fn decode(packets: &[Vec<u8>]) -> Vec<i16> {
    let mut samples = Vec::new();
    for packet in packets {
        let header = wire::parse(packet).expect("the room sends RTP");
        if Codec::from_payload_type(header.payload_type).is_some() {
            wire::decode(
                header.payload_type,
                &packet[header.payload_start..header.payload_end],
                &mut samples,
            );
        }
    }
    samples
}

/// The amplitude of `frequency` in `samples` (Goertzel over the whole slice): about the tone's
/// amplitude when present, near zero when not.
pub fn amplitude(samples: &[i16], frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for sample in samples {
        let s0 = f64::from(*sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len().max(1) as f64
}

pub const CALLER_TONE: f64 = 400.0;
pub const AGENT_TONE: f64 = 1000.0;
pub const SUPERVISOR_TONE: f64 = 700.0;
const TONES: [f64; 3] = [CALLER_TONE, AGENT_TONE, SUPERVISOR_TONE];

/// Asserts that `packets` carry exactly the tones `expected` (of the three in use), judged on
/// whole frames after the first 100 ms (jitter buffers filling).
pub fn assert_tones(what: &str, packets: &[Vec<u8>], expected: &[f64]) {
    let samples = decode(packets);
    assert!(
        samples.len() >= 1600,
        "{what}: only {} samples",
        samples.len()
    );
    let samples = &samples[800..samples.len() / 160 * 160];
    for tone in TONES {
        let found = amplitude(samples, tone);
        if expected.contains(&tone) {
            assert!(
                found > 0.8 * AMPLITUDE,
                "{what}: {tone} Hz only at {found:.0}"
            );
        } else {
            assert!(
                found < 0.02 * AMPLITUDE,
                "{what}: {tone} Hz present at {found:.0}"
            );
        }
    }
}

/// A caller (400 Hz, PCMU) and an agent (1000 Hz, PCMU) who hear each other.
pub fn two_party_call() -> Harness {
    let mut call = Harness::new();
    call.add(CALLER, Codec::Pcmu, Signal::Tone(CALLER_TONE));
    call.add(AGENT, Codec::Pcmu, Signal::Tone(AGENT_TONE));
    call.room.set_hears(CALLER, &[AGENT]);
    call.room.set_hears(AGENT, &[CALLER]);
    call
}

/// Samples that never repeat a frame, so any misplacement shows sample by sample.
pub fn speech_like(count: usize, seed: u32) -> Vec<i16> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 16) as i16) / 4
        })
        .collect()
}
