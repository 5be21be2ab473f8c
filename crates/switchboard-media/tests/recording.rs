//! The recorder: each party on its channel, the channels aligned, large chunks, pauses as
//! silence with their offsets, the length equal to the time it ran, nothing lost when the
//! shell was late, no clock of its own, and the forwarded packets untouched while recording.

use crate::*;
use std::time::{Duration, Instant};
use switchboard_media::recorder::{Recorder, Side};
use switchboard_media::{Event, Route};

/// The chunks and the final report of the recording events in `events`.
fn recording(events: &[Event]) -> (Vec<Vec<i16>>, u64, Vec<(u64, u64)>) {
    let chunks = events
        .iter()
        .filter_map(|e| match e {
            Event::RecordingChunk { chunk } => Some(chunk.decode()),
            _ => None,
        })
        .collect();
    let (duration, paused) = events
        .iter()
        .find_map(|e| match e {
            Event::RecordingStopped {
                duration_ms,
                paused,
            } => Some((*duration_ms, paused.clone())),
            _ => None,
        })
        .expect("the recording stopped");
    (chunks, duration, paused)
}

fn channels(chunks: &[Vec<i16>]) -> (Vec<i16>, Vec<i16>) {
    let all: Vec<i16> = chunks.concat();
    (
        all.iter().step_by(2).copied().collect(),
        all.iter().skip(1).step_by(2).copied().collect(),
    )
}

#[test]
fn each_party_is_on_its_channel_in_large_chunks_and_forwarding_is_untouched() {
    let mut plain = two_party_call();
    plain.run(ms(5000));
    let mut call = two_party_call();
    call.room.start_recording(call.now, CALLER, AGENT);
    assert_eq!(
        call.room.route(CALLER),
        Some(Route::Forward { from: AGENT })
    );
    call.run(ms(2500));
    // Recording needs no clock and no jitter buffer: only the media timeouts are asked for.
    assert!(call.room.poll_timeout().unwrap() > call.now + ms(1000));
    assert_eq!(call.room.jitter_stats(CALLER), None);
    call.run(ms(2500));
    call.room.stop_recording(call.now);
    call.drain();
    let (chunks, duration, paused) = recording(&call.take_events());
    let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        vec![32000, 32000, 16000],
        "100 stereo frames a chunk, then the rest"
    );
    assert_eq!((duration, paused), (5000, vec![]));
    let (left, right) = channels(&chunks);
    let (left, right) = (&left[800..], &right[800..]);
    assert!(amplitude(left, CALLER_TONE) > 0.8 * AMPLITUDE);
    assert!(amplitude(left, AGENT_TONE) < 0.02 * AMPLITUDE);
    assert!(amplitude(right, AGENT_TONE) > 0.8 * AMPLITUDE);
    assert!(amplitude(right, CALLER_TONE) < 0.02 * AMPLITUDE);
    // Recording decodes on the side: the parties got exactly what they get unrecorded.
    assert_eq!(call.take(CALLER), plain.take(CALLER));
    assert_eq!(call.take(AGENT), plain.take(AGENT));
    // And with the recording stopped, nothing ticks or decodes any more.
    assert_eq!(call.room.jitter_stats(CALLER), None);
    assert!(call.room.poll_timeout().unwrap() > call.now + ms(1000));
}

#[test]
fn the_two_directions_are_aligned_on_their_arrival() {
    // Both say nothing but a click, at the same moment, each its own.
    let click = |seed| {
        let mut samples = vec![0i16; 50 * 160];
        samples[30 * 160..31 * 160].copy_from_slice(&speech_like(160, seed));
        // Loud from its first sample, so where it starts is unmistakable in either law.
        samples[30 * 160] = 12000;
        samples
    };
    let mut call = Harness::new();
    call.add(CALLER, Codec::Pcmu, Signal::Samples(click(1)));
    call.add(AGENT, Codec::Pcma, Signal::Samples(click(2)));
    call.room.set_hears(CALLER, &[AGENT]);
    call.room.set_hears(AGENT, &[CALLER]);
    call.room.start_recording(call.now, CALLER, AGENT);
    call.run(ms(1000));
    call.room.stop_recording(call.now);
    call.drain();
    let (chunks, _, _) = recording(&call.take_events());
    let (left, right) = channels(&chunks);
    // (A-law has no zero: its silence decodes to ±8; the recording keeps µ-law.)
    let first_sound = |channel: &[i16]| {
        channel
            .iter()
            .position(|s| s.unsigned_abs() > 1000)
            .expect("a click")
    };
    assert_eq!(
        first_sound(&left),
        first_sound(&right),
        "the clicks line up"
    );
    // And each is the party's own click, sample for sample (through its law).
    // (The click's first sample is its loudest, so the first sound is where it starts.)
    let at = first_sound(&left);
    let law = |codec: Codec, samples: &[i16]| {
        let mut bytes = Vec::new();
        wire::encode(codec.payload_type(), samples, &mut bytes);
        let mut back = Vec::new();
        wire::decode(codec.payload_type(), &bytes, &mut back);
        back
    };
    assert_eq!(
        left[at..at + 160],
        law(Codec::Pcmu, &click(1)[4800..4960])[..]
    );
    // The A-law party's bytes are kept as µ-law, a byte each by table.
    let mut bytes = Vec::new();
    wire::encode(
        Codec::Pcma.payload_type(),
        &click(2)[4800..4960],
        &mut bytes,
    );
    wire::transcode(
        Codec::Pcma.payload_type(),
        Codec::Pcmu.payload_type(),
        &mut bytes,
    );
    let mut kept = Vec::new();
    wire::decode(Codec::Pcmu.payload_type(), &bytes, &mut kept);
    assert_eq!(right[at..at + 160], kept[..]);
}

#[test]
fn a_paused_span_is_silence_with_its_offsets() {
    let mut call = two_party_call();
    call.room.start_recording(call.now, CALLER, AGENT);
    call.run(ms(1000));
    call.room.pause_recording(call.now);
    call.run(ms(1000));
    call.room.resume_recording(call.now);
    call.run(ms(1000));
    call.room.stop_recording(call.now);
    call.drain();
    let events = call.take_events();
    assert!(events.contains(&Event::RecordingPaused { at_ms: 1000 }));
    assert!(events.contains(&Event::RecordingResumed { at_ms: 2000 }));
    let (chunks, duration, paused) = recording(&events);
    assert_eq!((duration, paused), (3000, vec![(1000, 2000)]));
    let (left, right) = channels(&chunks);
    assert_eq!(left.len(), 24000, "as long as the time it ran");
    for channel in [&left, &right] {
        assert!(
            channel[8000..16000].iter().all(|s| *s == 0),
            "paused: silence"
        );
        assert!(channel[16000..].iter().filter(|s| **s != 0).count() > 5000);
    }
    assert!(amplitude(&left[16000..], CALLER_TONE) > 0.8 * AMPLITUDE);
    assert!(amplitude(&right[16000..], AGENT_TONE) > 0.8 * AMPLITUDE);

    // A pause still open when the recording stops ends there.
    call.room.start_recording(call.now, AGENT, CALLER);
    call.run(ms(500));
    call.room.pause_recording(call.now);
    call.room.pause_recording(call.now);
    call.run(ms(500));
    call.room.stop_recording(call.now);
    call.drain();
    let events = call.take_events();
    let pauses = events
        .iter()
        .filter(|e| matches!(e, Event::RecordingPaused { .. }))
        .count();
    assert_eq!(pauses, 1, "pausing a paused recording does nothing");
    let (chunks, duration, paused) = recording(&events);
    assert_eq!((duration, paused), (1000, vec![(500, 1000)]));
    assert_eq!(chunks.concat().len(), 2 * 8000);
}

#[test]
fn a_late_shell_loses_nothing_the_queued_packets_land_where_their_timestamps_say() {
    let mut call = two_party_call();
    call.room.start_recording(call.now, CALLER, AGENT);
    call.run(ms(1000));
    // The shell stalls for a second; the far ends' packets queue meanwhile and then arrive
    // in a burst.
    call.now += ms(1007);
    call.room.handle_timeout(call.now);
    call.run(ms(993));
    call.room.stop_recording(call.now);
    call.drain();
    let (chunks, duration, _) = recording(&call.take_events());
    let elapsed = call.now.duration_since(call.start).as_millis() as u64;
    assert_eq!(duration, elapsed, "as long as the time it ran");
    let (left, right) = channels(&chunks);
    assert_eq!(left.len() as u64, duration * 8);
    // The stalled span carries what the parties said then, as the rest does.
    for (channel, tone, other) in [
        (&left, CALLER_TONE, AGENT_TONE),
        (&right, AGENT_TONE, CALLER_TONE),
    ] {
        for span in [
            &channel[800..8000],
            &channel[8000..16000],
            &channel[16000..23000],
        ] {
            assert!(amplitude(span, tone) > 0.8 * AMPLITUDE);
            assert!(amplitude(span, other) < 0.02 * AMPLITUDE);
        }
    }
}

/// The shell closes a leaving agent's leg before the engine's stop reaches the room: the
/// recording goes on with silence on that channel, and keeps the length of the time it ran.
#[test]
fn a_party_that_leaves_is_silence_until_the_recording_stops() {
    let mut call = two_party_call();
    call.room.start_recording(call.now, CALLER, AGENT);
    call.run(ms(1000));
    call.room.remove(AGENT);
    call.silence(AGENT);
    call.run(ms(400));
    call.room.stop_recording(call.now);
    call.drain();
    let (chunks, duration, paused) = recording(&call.take_events());
    assert_eq!((duration, paused), (1400, vec![]));
    let (left, right) = channels(&chunks);
    assert_eq!(right.len(), 1400 * 8);
    assert!(right[8000 + 320..].iter().all(|s| *s == 0), "gone: silence");
    assert!(left[8000 + 320..].iter().filter(|s| **s != 0).count() > 1000);
}

// The recorder on its own: packets placed by timestamp, pauses, re-anchoring.

fn at(origin: Instant, ms: u64) -> Instant {
    origin + Duration::from_millis(ms)
}

/// µ-law codes: what the recorder keeps of each channel, a byte a sample.
const SILENCE: u8 = 0xff;

#[test]
fn places_packets_by_timestamp_and_silences_pauses() {
    let origin = Instant::now();
    let mut recorder = Recorder::new(origin, 2);
    let left = [1u8; 160];
    let right = [2u8; 160];
    let write = |recorder: &mut Recorder, ms, side, ssrc, timestamp, payload: &[u8]| {
        recorder.write(at(origin, ms), side, ssrc, timestamp, Codec::Pcmu, payload)
    };
    // Both arrive at 20 ms: their audio is 0..20 ms.
    write(&mut recorder, 20, Side::Left, 7, 1000, &left);
    write(&mut recorder, 20, Side::Right, 9, 50, &right);
    assert_eq!(recorder.next_chunk(), None, "not final yet");
    // The right's next packets arrive out of order and late; each lands where its
    // timestamp says.
    write(&mut recorder, 40, Side::Left, 7, 1160, &left);
    write(&mut recorder, 75, Side::Right, 9, 370, &[3; 160]);
    write(&mut recorder, 76, Side::Right, 9, 210, &right);
    for n in 0..8 {
        write(
            &mut recorder,
            60 + 20 * n,
            Side::Left,
            7,
            1320 + 160 * n as u32,
            &left,
        );
        write(
            &mut recorder,
            80 + 20 * n,
            Side::Right,
            9,
            530 + 160 * n as u32,
            &right,
        );
    }
    let chunk = recorder.next_chunk().expect("two frames are final");
    assert_eq!((chunk.left.len(), chunk.right.len()), (2 * 160, 2 * 160));
    assert!(chunk.left.iter().all(|b| *b == 1));
    assert!(
        chunk.right.iter().all(|b| *b == 2),
        "the second frame in place"
    );
    let chunk = recorder.next_chunk().expect("the next two");
    assert_eq!(
        (chunk.left[0], chunk.right[0]),
        (1, 3),
        "the reordered packet where its timestamp says"
    );
    assert_eq!(recorder.pause(at(origin, 200)), Some(200));
    assert_eq!(recorder.pause(at(origin, 210)), None);
    assert!(recorder.is_paused());
    write(&mut recorder, 240, Side::Left, 7, 1320 + 160 * 9, &left);
    assert_eq!(recorder.resume(at(origin, 250)), Some(250));
    let finished = recorder.stop(at(origin, 300));
    assert_eq!(finished.duration_ms, 300);
    assert_eq!(finished.paused, vec![(200, 250)]);
    // 80 ms to 300 ms are left: nothing in the pause, silence where nobody spoke.
    let left_channel = &finished.last_chunk.left;
    assert_eq!(left_channel.len(), 220 * 8);
    assert!(left_channel[120 * 8..170 * 8].iter().all(|s| *s == SILENCE));
    assert!(left_channel[..120 * 8].iter().all(|s| *s == 1));
    assert!(left_channel[170 * 8..].iter().all(|s| *s == SILENCE));
    // Decoded, it is interleaved stereo and the silence is zero.
    let stereo = finished.last_chunk.decode();
    assert_eq!(stereo.len(), 2 * 220 * 8);
    assert_eq!(stereo[2 * 120 * 8], 0);
    assert_eq!(
        stereo[..2],
        [wire::ulaw_to_linear(1), wire::ulaw_to_linear(2)]
    );
}

#[test]
fn a_sender_that_restarts_its_clock_is_anchored_again() {
    let origin = Instant::now();
    let mut recorder = Recorder::new(origin, 100);
    recorder.write(at(origin, 20), Side::Left, 7, 0, Codec::Pcmu, &[5; 160]);
    // Same SSRC, its timestamps jumped an hour ahead: placed by arrival instead.
    recorder.write(
        at(origin, 40),
        Side::Left,
        7,
        28_800_000,
        Codec::Pcmu,
        &[6; 160],
    );
    // A new SSRC is a new stream, here in A-law: kept as µ-law.
    let alaw = wire::linear_to_alaw(-1000);
    let mut kept = [alaw];
    wire::transcode(
        Codec::Pcma.payload_type(),
        Codec::Pcmu.payload_type(),
        &mut kept,
    );
    recorder.write(at(origin, 60), Side::Left, 8, 77, Codec::Pcma, &[alaw; 160]);
    let finished = recorder.stop(at(origin, 60));
    let left = &finished.last_chunk.left;
    assert_eq!(left.len(), 480);
    assert!(left[..160].iter().all(|s| *s == 5));
    assert!(left[160..320].iter().all(|s| *s == 6));
    assert!(left[320..].iter().all(|s| *s == kept[0]));
    assert!((i32::from(wire::ulaw_to_linear(kept[0])) + 1000).abs() < 64);
}
