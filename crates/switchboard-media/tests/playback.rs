//! Playback: to one participant only, sample-exact, `PlaybackDone` with its token, a loop
//! that never finishes, a replaced playback that never reports.

use crate::*;
use switchboard_media::{rtp as wire, Event, Playback, Route, Samples};

fn samples(values: &[i16]) -> Samples {
    values.to_vec().into()
}

fn tone(frequency: f64, count: usize) -> Vec<i16> {
    let sender = Sender {
        codec: Codec::Pcmu,
        signal: Signal::Tone(frequency),
        packet_samples: 160,
        ssrc: 0,
        sequence: 0,
        timestamp: 0,
        position: 0,
        next_send: Instant::now(),
        active: false,
    };
    sender.samples(count)
}

#[test]
fn a_prompt_plays_sample_by_sample_to_one_participant_and_reports_done() {
    let mut call = two_party_call();
    let mut replica = call.senders[&CALLER].clone();
    // The caller hears only the prompt (as in a menu); the agent still hears the caller.
    call.room.set_hears(CALLER, &[]);
    let prompt = speech_like(8000 + 80, 5);
    call.room.play(
        call.now,
        CALLER,
        Playback {
            parts: vec![samples(&prompt[..4000]), samples(&prompt[4000..])],
            then_loop: None,
            token: 42,
        },
    );
    assert_eq!(call.room.route(CALLER), Some(Route::Mix));
    assert_eq!(
        call.room.route(AGENT),
        Some(Route::Forward { from: CALLER })
    );
    call.run(ms(1500));
    let got = call.take(CALLER);
    assert_eq!(
        got.len(),
        51,
        "1.01 s of prompt is 51 frames, the last one part silence"
    );
    let mut padded = prompt.clone();
    padded.resize(51 * 160, 0);
    let mut expected = Vec::new();
    wire::encode(0, &padded, &mut expected);
    let payloads: Vec<u8> = got.iter().flat_map(|p| p[12..].to_vec()).collect();
    assert_eq!(payloads, expected, "the prompt, byte for byte");
    assert_eq!(
        call.take_events(),
        vec![Event::PlaybackDone {
            to: CALLER,
            token: 42
        }]
    );
    // Done: the caller hears nobody again and the clock stops.
    assert_eq!(call.room.route(CALLER), Some(Route::Silent));
    assert!(call.room.poll_timeout().unwrap() > call.now + ms(1000));
    // The agent got the caller's packets exactly as sent, all along.
    let agent = call.take(AGENT);
    let sent: Vec<Vec<u8>> = (0..agent.len()).map(|_| replica.next_packet()).collect();
    assert_eq!(agent, sent);
}

#[test]
fn a_prompt_is_mixed_with_what_the_listener_hears() {
    let mut call = two_party_call();
    call.room.play(
        call.now,
        CALLER,
        Playback {
            parts: vec![samples(&tone(SUPERVISOR_TONE, 16000))],
            then_loop: None,
            token: 1,
        },
    );
    call.run(ms(1000));
    assert_tones("caller", &call.take(CALLER), &[AGENT_TONE, SUPERVISOR_TONE]);
    assert_tones("agent", &call.take(AGENT), &[CALLER_TONE]);
    call.run(ms(1500));
    assert_eq!(
        call.take_events(),
        vec![Event::PlaybackDone {
            to: CALLER,
            token: 1
        }]
    );
    assert_eq!(
        call.room.route(CALLER),
        Some(Route::Forward { from: AGENT })
    );
    call.delivered.clear();
    call.run(ms(500));
    assert_tones("caller after", &call.take(CALLER), &[AGENT_TONE]);
}

#[test]
fn a_replaced_playback_does_not_report_and_its_replacement_does() {
    let mut call = two_party_call();
    let long = Playback {
        parts: vec![samples(&tone(SUPERVISOR_TONE, 80000))],
        then_loop: None,
        token: 1,
    };
    call.room.play(call.now, AGENT, long);
    call.run(ms(200));
    let short = Playback {
        parts: vec![samples(&tone(SUPERVISOR_TONE, 800))],
        then_loop: None,
        token: 2,
    };
    call.room.play(call.now, AGENT, short);
    call.run(ms(1000));
    assert_eq!(
        call.take_events(),
        vec![Event::PlaybackDone {
            to: AGENT,
            token: 2
        }]
    );
    // The new playback is a new talk spurt.
    let markers = call
        .take(AGENT)
        .iter()
        .filter(|p| wire::parse(p).unwrap().marker)
        .count();
    assert_eq!(markers, 2);
}

#[test]
fn a_loop_never_finishes_and_stopping_it_reports_nothing() {
    let mut call = two_party_call();
    call.room.set_hears(CALLER, &[]);
    call.room.play(
        call.now,
        CALLER,
        Playback {
            parts: vec![samples(&tone(AGENT_TONE, 1600))],
            then_loop: Some(samples(&tone(SUPERVISOR_TONE, 1600))),
            token: 9,
        },
    );
    call.run(ms(5000));
    assert!(call.take_events().is_empty());
    assert_eq!(call.room.route(CALLER), Some(Route::Mix));
    let got = call.take(CALLER);
    assert_eq!(got.len(), 250, "a frame every tick for 5 s");
    assert_tones("hold music", &got[20..], &[SUPERVISOR_TONE]);
    call.room.stop_playing(CALLER);
    assert_eq!(call.room.route(CALLER), Some(Route::Silent));
    call.run(ms(1000));
    assert!(call.take_events().is_empty());
    assert!(call.take(CALLER).is_empty());
}
