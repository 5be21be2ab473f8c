//! What a room costs on one core: the two-party fast path per packet and per call-second, a
//! monitored call, a three-party barge (decode, mix, encode), a recorded call, and a call
//! whose agent first heard a whisper and countdown (measured once they are over, to show they
//! leave no cost behind), each per simulated call-second. Prints medians over several runs as a Markdown table for
//! docs/benchmarks.md; asserts nothing about time.
//!
//! The room runs on virtual time (a base `Instant` plus offsets), so a simulated second
//! costs only its CPU time. Datagrams are copied into a receive buffer each time, as a
//! socket read would, and outputs are drained and dropped, as a shell would after sending.

use std::hint::black_box;
use std::time::{Duration, Instant};
use switchboard_media::{rtp, Codec, Output, ParticipantId, Playback, Room, RoomConfig};

const RUNS: usize = 11;
const CALLER: ParticipantId = ParticipantId(1);
const AGENT: ParticipantId = ParticipantId(2);
const SUPERVISOR: ParticipantId = ParticipantId(3);

/// A far end's stream: a 20 ms packet of a tone whose sequence and timestamp move on.
struct Stream {
    template: Vec<u8>,
    sequence: u16,
    timestamp: u32,
}

impl Stream {
    fn new(codec: Codec, frequency: f64, ssrc: u32) -> Stream {
        let samples: Vec<i16> = (0..160)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * frequency * f64::from(n) / 8000.0;
                (8000.0 * phase.sin()) as i16
            })
            .collect();
        let mut template = Vec::new();
        rtp::write_header(&mut template, false, codec.payload_type(), 0, 0, ssrc);
        rtp::encode(codec.payload_type(), &samples, &mut template);
        Stream {
            template,
            sequence: 1,
            timestamp: 1000,
        }
    }

    /// Writes the next packet into `buffer` (the socket read).
    fn next(&mut self, buffer: &mut [u8]) -> usize {
        let length = self.template.len();
        buffer[..length].copy_from_slice(&self.template);
        buffer[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        buffer[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        length
    }
}

fn drain(room: &mut Room) -> usize {
    let mut outputs = 0;
    while let Some(output) = room.poll_output() {
        if let Output::Transmit { packet, .. } = &output {
            black_box(packet.len());
        }
        outputs += 1;
    }
    outputs
}

fn room(base: Instant, parties: &[(ParticipantId, Codec)]) -> Room {
    let mut room = Room::new(base, RoomConfig::default(), 42);
    for (id, codec) in parties {
        room.add(base, *id, *codec, Some(101));
    }
    room
}

/// Nanoseconds per packet on the two-party fast path.
fn fast_path(agent_codec: Codec) -> f64 {
    let base = Instant::now();
    let mut room = room(base, &[(CALLER, Codec::Pcmu), (AGENT, agent_codec)]);
    room.set_hears(CALLER, &[AGENT]);
    room.set_hears(AGENT, &[CALLER]);
    let mut streams = [
        (CALLER, Stream::new(Codec::Pcmu, 400.0, 1)),
        (AGENT, Stream::new(agent_codec, 1000.0, 2)),
    ];
    let mut buffer = [0u8; 1500];
    const PACKETS: u64 = 400_000;
    let started = Instant::now();
    for n in 0..PACKETS {
        // Both directions, a packet each every 20 ms.
        let now = base + Duration::from_micros(n * 10_000);
        let (from, stream) = &mut streams[(n % 2) as usize];
        let length = stream.next(&mut buffer);
        black_box(room.receive(now, *from, &mut buffer[..length]));
        if n % 1000 == 0 {
            room.handle_timeout(now);
            drain(&mut room);
        }
    }
    started.elapsed().as_nanos() as f64 / PACKETS as f64
}

/// Microseconds of CPU per simulated call-second of a room where each party in `parties`
/// sends 50 packets a second and the room runs its ticks, timed only after `prelude` seconds (set up by `before`, untimed) and then
/// `configure`: what a call costs once what happened first is over.
fn call_seconds_after(
    parties: &[(ParticipantId, Codec, f64)],
    prelude: u64,
    before: impl Fn(&mut Room, Instant),
    configure: impl Fn(&mut Room, Instant),
) -> (f64, f64) {
    const SECONDS: u64 = 60;
    let base = Instant::now();
    let ids: Vec<(ParticipantId, Codec)> = parties.iter().map(|(id, c, _)| (*id, *c)).collect();
    let mut room = room(base, &ids);
    before(&mut room, base);
    let mut streams: Vec<(ParticipantId, Stream)> = parties
        .iter()
        .map(|(id, codec, tone)| (*id, Stream::new(*codec, *tone, id.0 as u32)))
        .collect();
    let mut buffer = [0u8; 1500];
    ticks(&mut room, &mut streams, &mut buffer, base, 0..prelude * 50);
    configure(&mut room, base + Duration::from_secs(prelude));
    let started = Instant::now();
    let outputs = ticks(
        &mut room,
        &mut streams,
        &mut buffer,
        base,
        prelude * 50..(prelude + SECONDS) * 50,
    );
    let micros = started.elapsed().as_nanos() as f64 / 1000.0 / SECONDS as f64;
    (micros, outputs as f64 / SECONDS as f64)
}

/// Runs the room's 20 ms ticks in `range`, every party sending a packet in each; returns the
/// outputs.
fn ticks(
    room: &mut Room,
    streams: &mut [(ParticipantId, Stream)],
    buffer: &mut [u8; 1500],
    base: Instant,
    range: std::ops::Range<u64>,
) -> u64 {
    let mut outputs = 0;
    for tick in range {
        // Packets arrive 5 ms after a tick, and the tick follows.
        let arrival = base + Duration::from_millis(tick * 20 + 5);
        for (from, stream) in streams.iter_mut() {
            let length = stream.next(buffer);
            if let Some(to) = room.receive(arrival, *from, &mut buffer[..length]) {
                black_box((to, &buffer[..length]));
                outputs += 1;
            }
        }
        outputs += drain(room) as u64;
        let next = base + Duration::from_millis(tick * 20 + 20);
        while room.poll_timeout().is_some_and(|t| t <= next) {
            room.handle_timeout(next);
        }
        outputs += drain(room) as u64;
    }
    outputs
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // Warm the G.711 tables and caches before measuring.
    fast_path(Codec::Pcma);

    let same_law = median((0..RUNS).map(|_| fast_path(Codec::Pcmu)).collect());
    let other_law = median((0..RUNS).map(|_| fast_path(Codec::Pcma)).collect());

    let two = [(CALLER, Codec::Pcmu, 400.0), (AGENT, Codec::Pcma, 1000.0)];
    let three = [
        (CALLER, Codec::Pcmu, 400.0),
        (AGENT, Codec::Pcma, 1000.0),
        (SUPERVISOR, Codec::Pcmu, 700.0),
    ];
    let measure_after = |parties: &[(ParticipantId, Codec, f64)],
                         prelude: u64,
                         before: &dyn Fn(&mut Room, Instant),
                         configure: &dyn Fn(&mut Room, Instant)| {
        let runs: Vec<(f64, f64)> = (0..RUNS)
            .map(|_| call_seconds_after(parties, prelude, before, configure))
            .collect();
        let outputs = runs[0].1;
        (median(runs.into_iter().map(|r| r.0).collect()), outputs)
    };
    let measure = |parties: &[(ParticipantId, Codec, f64)],
                   configure: &dyn Fn(&mut Room, Instant)| {
        measure_after(parties, 0, &|_, _| {}, configure)
    };
    let talk = |room: &mut Room, _: Instant| {
        room.set_hears(CALLER, &[AGENT]);
        room.set_hears(AGENT, &[CALLER]);
    };
    let (fast, fast_outputs) = measure(&two, &talk);
    let (listen, listen_outputs) = measure(&three, &|room: &mut Room, base: Instant| {
        talk(room, base);
        room.set_hears(SUPERVISOR, &[CALLER, AGENT]);
    });
    let (barge, barge_outputs) = measure(&three, &|room: &mut Room, _: Instant| {
        room.set_hears(CALLER, &[AGENT, SUPERVISOR]);
        room.set_hears(AGENT, &[CALLER, SUPERVISOR]);
        room.set_hears(SUPERVISOR, &[CALLER, AGENT]);
    });
    let (recorded, recorded_outputs) = measure(&two, &|room: &mut Room, base: Instant| {
        talk(room, base);
        room.start_recording(base, CALLER, AGENT);
    });

    // The whisper and countdown: 3 s of speech to the agent alone while the caller hears hold
    // music (a loop), then the two are bridged (which stops the caller's music, as the engine
    // does). Timed from the bridge on.
    let speech: std::sync::Arc<[i16]> = (0..24_000)
        .map(|n| ((f64::from(n) * 0.07).sin() * 6000.0) as i16)
        .collect();
    let music: std::sync::Arc<[i16]> = (0..8000)
        .map(|n| ((f64::from(n) * 0.2).sin() * 4000.0) as i16)
        .collect();
    let (whispered, whispered_outputs) = measure_after(
        &two,
        3,
        &|room: &mut Room, base: Instant| {
            room.play(
                base,
                CALLER,
                Playback {
                    parts: Vec::new(),
                    then_loop: Some(music.clone()),
                    token: 1,
                },
            );
            room.play(
                base,
                AGENT,
                Playback {
                    parts: vec![speech.clone()],
                    then_loop: None,
                    token: 2,
                },
            );
        },
        &|room: &mut Room, base: Instant| {
            room.stop_playing(CALLER);
            talk(room, base);
        },
    );

    println!("Room benchmark: medians of {RUNS} runs, one core, virtual time.");
    println!();
    println!("| scenario | per packet | per call-second | outputs per call-second | call-seconds per CPU-second |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, ns) in [
        ("two-party fast path, same law (PCMU↔PCMU)", same_law),
        ("two-party fast path, law converted (PCMU↔PCMA)", other_law),
    ] {
        let per_second = ns * 100.0 / 1000.0;
        println!(
            "| {name} | {ns:.0} ns | {per_second:.1} µs | 100 | {:.0} |",
            1e6 / per_second
        );
    }
    for (name, micros, outputs) in [
        (
            "two-party call through the room loop (a)",
            fast,
            fast_outputs,
        ),
        (
            "listen: two parties + monitor (mix for one)",
            listen,
            listen_outputs,
        ),
        (
            "barge: three parties, each hears two (b)",
            barge,
            barge_outputs,
        ),
        ("recorded two-party call (c)", recorded, recorded_outputs),
        (
            "two-party call after a 3 s whisper and countdown (d)",
            whispered,
            whispered_outputs,
        ),
    ] {
        println!(
            "| {name} | | {micros:.1} µs | {outputs:.0} | {:.0} |",
            1e6 / micros
        );
    }
}
