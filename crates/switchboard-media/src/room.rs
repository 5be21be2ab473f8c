//! The room: one call's participants, the mix matrix saying who hears whom, and the routes
//! derived from it (forward, mix or nothing per listener), driven by packets and ticks.
//!
//! Layout: participants live in a small vector (a call has a handful: caller, agent,
//! consult, monitors), found by a linear scan that beats hashing at that size. Everything a
//! packet needs is precomputed by `recompute` whenever the matrix, a playback or the
//! recording changes: each source's list of forward listeners (by index) and whether it is
//! decoded. A packet therefore costs a header parse, a scan, a few stores and a byte rewrite.

use crate::jitter::{JitterBuffer, JitterStats};
use crate::player::{Playback, Player};
use crate::recorder::{Chunk, Recorder, Side};
use crate::{rtp, Codec, FRAME_SAMPLES};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The length of a frame and of a tick of the room's clock.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
const FRAME_NANOS: u128 = 20_000_000;
/// A `handle_timeout` later than this many ticks re-anchors the clock instead of catching up.
const MAX_LATE_TICKS: u64 = 10;
/// Jitter buffer depths in samples: play after 2 frames, never hold more than 8.
const JITTER_TARGET: usize = 2 * FRAME_SAMPLES;
const JITTER_MAX: usize = 8 * FRAME_SAMPLES;

/// A participant of a room, named by the shell (typically its call leg's id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// How a room behaves; fixed for its life.
#[derive(Clone, Copy, Debug)]
pub struct RoomConfig {
    /// A participant whose media is expected and who sends nothing this long is reported.
    pub media_timeout: Duration,
    /// Stereo frames (20 ms each) per `RecordingChunk`.
    pub recorder_chunk_frames: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            media_timeout: Duration::from_secs(120),
            recorder_chunk_frames: 100,
        }
    }
}

/// Packets counted per participant: received from it, and sent to it (forwarded or mixed).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    pub received: u32,
    pub sent: u32,
}

/// What the shell must do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Output {
    /// Send `packet` to `to`'s far end.
    Transmit {
        to: ParticipantId,
        packet: Vec<u8>,
    },
    Event(Event),
}

/// What happened, for the call engine.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A DTMF digit (RFC 4733), reported once per event.
    Dtmf {
        from: ParticipantId,
        digit: char,
    },
    /// A playback's parts have all been played (a looping one never reports).
    PlaybackDone {
        to: ParticipantId,
        token: u64,
    },
    /// No packet from `from` for the media timeout while its media was expected. Reported
    /// once; a packet re-arms it.
    MediaTimeout {
        from: ParticipantId,
    },
    /// The next piece of the recording: each channel's G.711 µ-law bytes.
    RecordingChunk {
        chunk: Chunk,
    },
    /// Offsets in ms from the recording's start.
    RecordingPaused {
        at_ms: u64,
    },
    RecordingResumed {
        at_ms: u64,
    },
    /// The recording ended; `paused` lists its silent spans as (start, end) in ms.
    RecordingStopped {
        duration_ms: u64,
        paused: Vec<(u64, u64)>,
    },
}

/// What a listener currently gets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Route {
    /// Hears nobody and has no playback: nothing is sent to it.
    Silent,
    /// Hears exactly `from` and has no playback: its packets are forwarded as they arrive.
    Forward { from: ParticipantId },
    /// Hears two or more sources or a playback: one mixed packet of its own stream per tick.
    Mix,
}

/// A route with the source as an index into `Room::participants`, valid until the next
/// `recompute` (which every change of membership runs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RouteAt {
    Silent,
    Forward(usize),
    Mix,
}

/// What a received packet carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Audio(Codec),
    TelephoneEvent,
}

/// The stream a room generates towards one listener on the mix route. It keeps its SSRC and
/// sequence for the participant's life, so leaving and re-entering the mix route looks like
/// a talk spurt (marker bit), not a new source.
struct OwnStream {
    ssrc: u32,
    sequence: u16,
    /// RTP timestamp of tick 0; a packet's timestamp is this plus 160 per tick of the room,
    /// so time the stream was not sending still passes in its timestamps.
    timestamp_base: u32,
    last_timestamp: u32,
    /// Set when the stream (re)starts; cleared by the next packet.
    marker: bool,
    packets: u32,
    octets: u32,
}

/// A source that someone needs as audio: its jitter buffer and the frame pulled this tick.
struct Decoder {
    jitter: JitterBuffer,
    frame: [i16; FRAME_SAMPLES],
}

struct Participant {
    id: ParticipantId,
    codec: Codec,
    /// Its telephone-event payload type, if it negotiated one.
    dtmf: Option<u8>,
    stats: Stats,
    /// When its last packet arrived, or when its media started being expected.
    last_packet: Instant,
    /// False while the far end holds (sendonly, inactive): it owes us no media then.
    expect_media: bool,
    /// The media timeout was reported and not yet re-armed by a packet.
    timed_out: bool,
    /// RTP timestamp of the last telephone-event reported (one event spans many packets).
    last_event_timestamp: Option<u32>,
    /// Its row of the mix matrix: whom it hears (existing participants, never itself).
    hears: Vec<ParticipantId>,
    player: Option<Player>,
    stream: OwnStream,
    // Derived by `recompute`:
    route: RouteAt,
    /// Listeners on the forward route from this participant.
    forward_to: Vec<usize>,
    /// When on the mix route, the sources it hears.
    mix_sources: Vec<usize>,
    /// Present while a mix listener or the recorder needs this participant's audio.
    decoder: Option<Box<Decoder>>,
}

struct Recording {
    recorder: Recorder,
    left: ParticipantId,
    right: ParticipantId,
}

impl Recording {
    fn side_of(&self, id: ParticipantId) -> Option<Side> {
        if id == self.left {
            Some(Side::Left)
        } else if id == self.right {
            Some(Side::Right)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Clock {
    /// Nothing needs ticks.
    Idle,
    /// Something started needing ticks where no `now` was at hand; the next call with one
    /// aligns the next tick to the grid.
    Waking,
    Running,
}

/// One call's media. See the crate documentation for the design.
pub struct Room {
    config: RoomConfig,
    /// Feeds each participant's SSRC, first sequence number and timestamp base.
    seed: u64,
    participants: Vec<Participant>,
    recording: Option<Recording>,
    outputs: VecDeque<Output>,
    /// Decoded samples of the packet being received (kept to avoid an allocation each).
    scratch: Vec<i16>,
    clock: Clock,
    /// Ticks fall at `anchor + (k - anchor_tick) · 20 ms`; the anchor moves only when the
    /// shell was too late to catch up.
    anchor: Instant,
    anchor_tick: u64,
    /// Index of the next tick to run.
    tick: u64,
}

impl Room {
    /// A room whose clock starts at `now`. `seed` is the only source of the SSRCs, sequence
    /// numbers and timestamps the room chooses, so a test is reproducible; the shell passes
    /// something random.
    pub fn new(now: Instant, config: RoomConfig, seed: u64) -> Room {
        Room {
            config,
            seed,
            participants: Vec::new(),
            recording: None,
            outputs: VecDeque::new(),
            scratch: Vec::with_capacity(FRAME_SAMPLES),
            clock: Clock::Idle,
            anchor: now,
            anchor_tick: 0,
            tick: 0,
        }
    }

    /// Adds a participant that hears nobody yet. Its media is expected from `now` on. Adding
    /// one already there only updates its codec and telephone-event type.
    pub fn add(&mut self, now: Instant, id: ParticipantId, codec: Codec, dtmf: Option<u8>) {
        if self.index_of(id).is_some() {
            self.set_codec(id, codec, dtmf);
            return;
        }
        let mut state = self.seed ^ id.0.wrapping_mul(0xA24B_AED4_963E_E407);
        let ssrc = splitmix64(&mut state) as u32;
        let sequence = splitmix64(&mut state) as u16;
        let timestamp_base = splitmix64(&mut state) as u32;
        self.participants.push(Participant {
            id,
            codec,
            dtmf,
            stats: Stats::default(),
            last_packet: now,
            expect_media: true,
            timed_out: false,
            last_event_timestamp: None,
            hears: Vec::new(),
            player: None,
            stream: OwnStream {
                ssrc,
                sequence,
                timestamp_base,
                last_timestamp: timestamp_base,
                marker: true,
                packets: 0,
                octets: 0,
            },
            route: RouteAt::Silent,
            forward_to: Vec::new(),
            mix_sources: Vec::new(),
            decoder: None,
        });
        self.recompute();
    }

    /// Removes a participant (from every row of the matrix too) and returns its counts. A
    /// recording of it goes on with silence on its channel.
    pub fn remove(&mut self, id: ParticipantId) -> Option<Stats> {
        let index = self.index_of(id)?;
        let gone = self.participants.remove(index);
        for participant in &mut self.participants {
            participant.hears.retain(|source| *source != id);
        }
        self.recompute();
        Some(gone.stats)
    }

    /// Changes what a participant speaks (after a re-INVITE). Routes stay as they are: the
    /// codec is read when a packet is rewritten or a mix encoded.
    pub fn set_codec(&mut self, id: ParticipantId, codec: Codec, dtmf: Option<u8>) {
        if let Some(index) = self.index_of(id) {
            let participant = &mut self.participants[index];
            participant.codec = codec;
            participant.dtmf = dtmf;
        }
    }

    /// Sets whom `listener` hears (its row of the mix matrix). Unknown ids, repeats and the
    /// listener itself are left out.
    pub fn set_hears(&mut self, listener: ParticipantId, sources: &[ParticipantId]) {
        let Some(index) = self.index_of(listener) else {
            return;
        };
        let mut row = Vec::with_capacity(sources.len());
        for source in sources {
            if *source != listener && !row.contains(source) && self.index_of(*source).is_some() {
                row.push(*source);
            }
        }
        self.participants[index].hears = row;
        self.recompute();
    }

    /// Whom `listener` hears.
    pub fn hears(&self, listener: ParticipantId) -> Vec<ParticipantId> {
        self.index_of(listener)
            .map(|index| self.participants[index].hears.clone())
            .unwrap_or_default()
    }

    /// The route `listener` is on.
    pub fn route(&self, listener: ParticipantId) -> Option<Route> {
        let participant = &self.participants[self.index_of(listener)?];
        Some(match participant.route {
            RouteAt::Silent => Route::Silent,
            RouteAt::Forward(source) => Route::Forward {
                from: self.participants[source].id,
            },
            RouteAt::Mix => Route::Mix,
        })
    }

    /// Plays to `to`, replacing (without a `PlaybackDone`) whatever was playing to it.
    pub fn play(&mut self, now: Instant, to: ParticipantId, playback: Playback) {
        let Some(index) = self.index_of(to) else {
            return;
        };
        let participant = &mut self.participants[index];
        participant.player = Some(Player::new(playback));
        // A new prompt is a new talk spurt.
        participant.stream.marker = true;
        self.recompute();
        self.wake(now);
    }

    /// Stops what plays to `to` (no `PlaybackDone`: the caller asked for it).
    pub fn stop_playing(&mut self, to: ParticipantId) {
        if let Some(index) = self.index_of(to) {
            if self.participants[index].player.take().is_some() {
                self.recompute();
            }
        }
    }

    /// Whether `id`'s far end owes us media: false while it holds (sendonly or inactive),
    /// when silence is no sign that it has gone. Expecting again starts a fresh timeout.
    pub fn expect_media(&mut self, now: Instant, id: ParticipantId, expect: bool) {
        if let Some(index) = self.index_of(id) {
            let participant = &mut self.participants[index];
            if expect && !participant.expect_media {
                participant.last_packet = now;
                participant.timed_out = false;
            }
            participant.expect_media = expect;
        }
    }

    /// Starts recording what `left` says on the left channel and what `right` says on the
    /// right. A recording already running is stopped first.
    pub fn start_recording(&mut self, now: Instant, left: ParticipantId, right: ParticipantId) {
        if self.recording.is_some() {
            self.stop_recording(now);
        }
        self.recording = Some(Recording {
            recorder: Recorder::new(now, self.config.recorder_chunk_frames),
            left,
            right,
        });
    }

    /// Pauses the recording (it goes on as silence); reports `RecordingPaused`.
    pub fn pause_recording(&mut self, now: Instant) {
        if let Some(at_ms) = self.recording.as_mut().and_then(|r| r.recorder.pause(now)) {
            self.emit(Event::RecordingPaused { at_ms });
        }
    }

    /// Resumes a paused recording; reports `RecordingResumed`.
    pub fn resume_recording(&mut self, now: Instant) {
        if let Some(at_ms) = self.recording.as_mut().and_then(|r| r.recorder.resume(now)) {
            self.emit(Event::RecordingResumed { at_ms });
        }
    }

    /// Ends the recording: its last chunk, then `RecordingStopped`.
    pub fn stop_recording(&mut self, now: Instant) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        let finished = recording.recorder.stop(now);
        if !finished.last_chunk.is_empty() {
            self.emit(Event::RecordingChunk {
                chunk: finished.last_chunk,
            });
        }
        self.emit(Event::RecordingStopped {
            duration_ms: finished.duration_ms,
            paused: finished.paused,
        });
    }

    /// A datagram arrived from `from`'s socket. Returns the participant to send `packet` to,
    /// rewritten in place for it (payload type, G.711 law); further copies, for other
    /// listeners forwarded from `from`, come out of `poll_output`. Anything that is not RTP,
    /// G.711 or `from`'s telephone-events is dropped.
    pub fn receive(
        &mut self,
        now: Instant,
        from: ParticipantId,
        packet: &mut [u8],
    ) -> Option<ParticipantId> {
        let index = self.index_of(from)?;
        let header = rtp::parse(packet)?;
        let source = &mut self.participants[index];
        source.stats.received = source.stats.received.wrapping_add(1);
        source.last_packet = now;
        source.timed_out = false;
        let kind = match Codec::from_payload_type(header.payload_type) {
            Some(law) => Kind::Audio(law),
            None if Some(header.payload_type) == source.dtmf => Kind::TelephoneEvent,
            None => return None,
        };
        let payload = &packet[header.payload_start..header.payload_end];
        match kind {
            Kind::TelephoneEvent => {
                if let Some(event) = rtp::parse_event(payload) {
                    // Every packet of an event (and its three end packets) has its timestamp.
                    if source.last_event_timestamp != Some(header.timestamp) {
                        source.last_event_timestamp = Some(header.timestamp);
                        if let Some(digit) = rtp::event_digit(event.event) {
                            self.emit(Event::Dtmf { from, digit });
                        }
                    }
                }
            }
            Kind::Audio(law) => {
                if let Some(decoder) = source.decoder.as_deref_mut() {
                    self.scratch.clear();
                    rtp::decode(law.payload_type(), payload, &mut self.scratch);
                    decoder
                        .jitter
                        .push(header.ssrc, header.timestamp, &self.scratch);
                }
                let recording = self.recording.as_mut();
                if let Some((side, recording)) = recording.and_then(|r| Some((r.side_of(from)?, r)))
                {
                    let recorder = &mut recording.recorder;
                    recorder.write(now, side, header.ssrc, header.timestamp, law, payload);
                    while let Some(chunk) = recorder.next_chunk() {
                        self.outputs
                            .push_back(Output::Event(Event::RecordingChunk { chunk }));
                    }
                }
            }
        }
        self.forward(index, kind, &header, packet)
    }

    /// Runs what is due at `now`: media timeouts and the ticks of the clock.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timeout = self.config.media_timeout;
        for participant in &mut self.participants {
            let due = participant.last_packet.checked_add(timeout);
            if participant.expect_media
                && !participant.timed_out
                && due.is_some_and(|due| now >= due)
            {
                participant.timed_out = true;
                self.outputs.push_back(Output::Event(Event::MediaTimeout {
                    from: participant.id,
                }));
            }
        }
        self.run_ticks(now);
    }

    /// When `handle_timeout` should next be called: the next tick while anything needs ticks
    /// (a mix listener, the recorder), and the earliest media timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let tick = match self.clock {
            Clock::Idle => None,
            // While waking the next tick may lie in the past: the shell calls us at once and
            // the clock is aligned then.
            Clock::Waking | Clock::Running => Some(self.next_tick_at()),
        };
        let timeout = self.config.media_timeout;
        let media = self
            .participants
            .iter()
            .filter(|p| p.expect_media && !p.timed_out)
            .filter_map(|p| p.last_packet.checked_add(timeout))
            .min();
        match (tick, media) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Packets received from and sent to `id`.
    pub fn stats(&self, id: ParticipantId) -> Option<Stats> {
        Some(self.participants[self.index_of(id)?].stats)
    }

    /// The jitter buffer counters of `id`'s audio while it is decoded.
    pub fn jitter_stats(&self, id: ParticipantId) -> Option<JitterStats> {
        let participant = &self.participants[self.index_of(id)?];
        Some(participant.decoder.as_ref()?.jitter.stats())
    }

    /// An RTCP sender report (RFC 3550 §6.4.1) for the stream this room sends `id` on the mix
    /// route, with `ntp` as the report's wall-clock time. `None` while `id` is forwarded
    /// another's stream (that source's own reports describe it) or nothing was sent yet.
    pub fn sender_report(&self, id: ParticipantId, ntp: u64) -> Option<Vec<u8>> {
        let participant = &self.participants[self.index_of(id)?];
        let stream = &participant.stream;
        if matches!(participant.route, RouteAt::Forward(_)) || stream.packets == 0 {
            return None;
        }
        Some(rtp::sender_report(
            stream.ssrc,
            ntp,
            stream.last_timestamp,
            stream.packets,
            stream.octets,
        ))
    }

    fn index_of(&self, id: ParticipantId) -> Option<usize> {
        self.participants.iter().position(|p| p.id == id)
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Sends a received packet to the listeners forwarded from `source`: copies for all but
    /// the first (taken before the in-place rewrite), the original rewritten for the first.
    fn forward(
        &mut self,
        source: usize,
        kind: Kind,
        header: &rtp::Header,
        packet: &mut [u8],
    ) -> Option<ParticipantId> {
        let mut primary = None;
        for k in 0..self.participants[source].forward_to.len() {
            let listener = self.participants[source].forward_to[k];
            let target = &self.participants[listener];
            if kind == Kind::TelephoneEvent && target.dtmf.is_none() {
                continue;
            }
            if primary.is_none() {
                primary = Some(listener);
                continue;
            }
            let mut copy = packet.to_vec();
            rewrite(&mut copy, header, kind, target.codec, target.dtmf);
            let to = target.id;
            self.participants[listener].stats.sent += 1;
            self.outputs
                .push_back(Output::Transmit { to, packet: copy });
        }
        let listener = primary?;
        let target = &mut self.participants[listener];
        rewrite(packet, header, kind, target.codec, target.dtmf);
        target.stats.sent = target.stats.sent.wrapping_add(1);
        Some(target.id)
    }

    /// Derives every route from the matrix, the playbacks and the recording, creates and
    /// drops decoders to match, and starts or stops the clock.
    fn recompute(&mut self) {
        let count = self.participants.len();
        let mut decode = vec![false; count];
        for participant in &mut self.participants {
            participant.forward_to.clear();
        }
        for listener in 0..count {
            let sources: Vec<usize> = self.participants[listener]
                .hears
                .iter()
                .filter_map(|id| self.index_of(*id))
                .filter(|source| *source != listener)
                .collect();
            let route = if self.participants[listener].player.is_some() || sources.len() >= 2 {
                RouteAt::Mix
            } else if let [only] = sources[..] {
                RouteAt::Forward(only)
            } else {
                RouteAt::Silent
            };
            match route {
                RouteAt::Mix => {
                    for source in &sources {
                        decode[*source] = true;
                    }
                }
                RouteAt::Forward(source) => self.participants[source].forward_to.push(listener),
                RouteAt::Silent => {}
            }
            let participant = &mut self.participants[listener];
            if route == RouteAt::Mix && participant.route != RouteAt::Mix {
                participant.stream.marker = true;
            }
            participant.route = route;
            participant.mix_sources = if route == RouteAt::Mix {
                sources
            } else {
                Vec::new()
            };
        }
        for (participant, needed) in self.participants.iter_mut().zip(decode) {
            match (needed, participant.decoder.is_some()) {
                (true, false) => {
                    participant.decoder = Some(Box::new(Decoder {
                        jitter: JitterBuffer::new(JITTER_TARGET, JITTER_MAX),
                        frame: [0; FRAME_SAMPLES],
                    }))
                }
                (false, true) => participant.decoder = None,
                _ => {}
            }
        }
        let needs_ticks = self.participants.iter().any(|p| p.route == RouteAt::Mix);
        self.clock = match (needs_ticks, self.clock) {
            (false, _) => Clock::Idle,
            (true, Clock::Idle) => Clock::Waking,
            (true, clock) => clock,
        };
    }

    fn next_tick_at(&self) -> Instant {
        let ticks = self.tick.saturating_sub(self.anchor_tick);
        self.anchor + Duration::from_millis(ticks.saturating_mul(20))
    }

    /// Starts a waking clock: the next tick is the first on the grid after `now`.
    fn wake(&mut self, now: Instant) {
        if self.clock == Clock::Waking {
            let elapsed = now.saturating_duration_since(self.anchor).as_nanos();
            let next = (elapsed / FRAME_NANOS + 1) as u64;
            self.tick = self.tick.max(self.anchor_tick + next);
            self.clock = Clock::Running;
        }
    }

    /// Runs every tick due at `now`, or, when the shell is more than `MAX_LATE_TICKS` behind,
    /// fills the recording with silence for the skipped span and re-anchors on `now`.
    fn run_ticks(&mut self, now: Instant) {
        self.wake(now);
        if self.clock != Clock::Running {
            return;
        }
        let next = self.next_tick_at();
        if now < next {
            return;
        }
        let due = (now.duration_since(next).as_nanos() / FRAME_NANOS) as u64 + 1;
        if due > MAX_LATE_TICKS + 1 {
            let skipped = due - 1;
            self.tick += skipped;
            self.anchor = now;
            self.anchor_tick = self.tick;
            self.run_tick();
        } else {
            for _ in 0..due {
                if self.clock != Clock::Running {
                    break;
                }
                self.run_tick();
            }
        }
    }

    /// One tick: a frame from every decoded source, the recording's frame, and a mixed
    /// packet for every listener on the mix route.
    fn run_tick(&mut self) {
        for participant in &mut self.participants {
            if let Some(decoder) = participant.decoder.as_deref_mut() {
                decoder.jitter.pull(&mut decoder.frame);
            }
        }
        let mut playback_ended = false;
        for listener in 0..self.participants.len() {
            if self.participants[listener].route != RouteAt::Mix {
                continue;
            }
            let mut sum = [0i32; FRAME_SAMPLES];
            let mut frame = [0i16; FRAME_SAMPLES];
            let participant = &mut self.participants[listener];
            if let Some(player) = participant.player.as_mut() {
                if !player.next(&mut frame) {
                    let token = player.token();
                    participant.player = None;
                    playback_ended = true;
                    self.outputs.push_back(Output::Event(Event::PlaybackDone {
                        to: participant.id,
                        token,
                    }));
                }
                add(&mut sum, &frame);
            }
            for source in &self.participants[listener].mix_sources {
                if let Some(decoder) = self.participants[*source].decoder.as_deref() {
                    add(&mut sum, &decoder.frame);
                }
            }
            for (out, value) in frame.iter_mut().zip(sum) {
                *out = value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
            let participant = &mut self.participants[listener];
            let stream = &mut participant.stream;
            let timestamp = stream
                .timestamp_base
                .wrapping_add((self.tick as u32).wrapping_mul(FRAME_SAMPLES as u32));
            let payload_type = participant.codec.payload_type();
            let mut packet = Vec::with_capacity(12 + FRAME_SAMPLES);
            rtp::write_header(
                &mut packet,
                stream.marker,
                payload_type,
                stream.sequence,
                timestamp,
                stream.ssrc,
            );
            rtp::encode(payload_type, &frame, &mut packet);
            stream.marker = false;
            stream.sequence = stream.sequence.wrapping_add(1);
            stream.last_timestamp = timestamp;
            stream.packets = stream.packets.wrapping_add(1);
            stream.octets = stream.octets.wrapping_add(FRAME_SAMPLES as u32);
            participant.stats.sent = participant.stats.sent.wrapping_add(1);
            let to = participant.id;
            self.outputs.push_back(Output::Transmit { to, packet });
        }
        self.tick += 1;
        if playback_ended {
            self.recompute();
        }
    }
}

/// Rewrites a forwarded packet for its listener: its own G.711 law and payload type, or its
/// own telephone-event type.
fn rewrite(packet: &mut [u8], header: &rtp::Header, kind: Kind, codec: Codec, dtmf: Option<u8>) {
    let payload_type = match kind {
        Kind::Audio(law) => {
            if law != codec {
                rtp::transcode(
                    law.payload_type(),
                    codec.payload_type(),
                    &mut packet[header.payload_start..header.payload_end],
                );
            }
            codec.payload_type()
        }
        Kind::TelephoneEvent => match dtmf {
            Some(payload_type) => payload_type,
            None => return,
        },
    };
    packet[1] = (packet[1] & 0x80) | (payload_type & 0x7f);
}

fn add(sum: &mut [i32; FRAME_SAMPLES], frame: &[i16; FRAME_SAMPLES]) {
    for (total, sample) in sum.iter_mut().zip(frame) {
        *total += i32::from(*sample);
    }
}

/// SplitMix64: a few well-mixed numbers from a seed (not for secrets: SSRCs need only be
/// distinct).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
