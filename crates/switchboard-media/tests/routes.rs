//! Routes: the two-party fast path, law conversion, listen, coach and barge (and switching
//! between them), several forward listeners, removal, telephone-events, and the jitter
//! buffer as seen through a mixed stream.

use crate::*;
use switchboard_media::{rtp as wire, Codec, Event, Route};

fn packet(codec: Codec, marker: bool, sequence: u16, timestamp: u32, samples: &[i16]) -> Vec<u8> {
    let mut packet = Vec::new();
    wire::write_header(
        &mut packet,
        marker,
        codec.payload_type(),
        sequence,
        timestamp,
        0xabcd,
    );
    wire::encode(codec.payload_type(), samples, &mut packet);
    packet
}

#[test]
fn two_parties_are_forwarded_as_they_arrive_without_decoding_or_ticks() {
    let mut call = two_party_call();
    assert_eq!(
        call.room.route(CALLER),
        Some(Route::Forward { from: AGENT })
    );
    assert_eq!(
        call.room.route(AGENT),
        Some(Route::Forward { from: CALLER })
    );
    let mut sent = call.senders[&CALLER].clone();
    let original = sent.next_packet();
    let mut packet = original.clone();
    assert_eq!(
        call.room.receive(call.now, CALLER, &mut packet),
        Some(AGENT)
    );
    assert_eq!(packet, original, "same law: not a byte changed");
    assert_eq!(call.room.poll_output(), None, "one listener: no copies");
    // No tick is wanted: only the media timeout, 5 s after the participants were added.
    assert_eq!(call.room.poll_timeout(), Some(call.start + ms(5000)));
    assert_eq!(call.room.jitter_stats(CALLER), None, "nothing is decoded");
    call.run(ms(1000));
    assert_tones("caller", &call.take(CALLER), &[AGENT_TONE]);
    assert_tones("agent", &call.take(AGENT), &[CALLER_TONE]);
    let caller = call.room.stats(CALLER).unwrap();
    let agent = call.room.stats(AGENT).unwrap();
    assert_eq!((caller.received, caller.sent), (51, 50));
    assert_eq!((agent.received, agent.sent), (50, 51));
}

#[test]
fn the_g711_law_is_converted_by_table_when_the_parties_differ() {
    let mut call = Harness::new();
    call.add(CALLER, Codec::Pcmu, Signal::Tone(CALLER_TONE));
    call.add(AGENT, Codec::Pcma, Signal::Tone(AGENT_TONE));
    call.room.set_hears(CALLER, &[AGENT]);
    call.room.set_hears(AGENT, &[CALLER]);
    let samples = speech_like(160, 1);
    for (from, to, law, theirs) in [
        (CALLER, AGENT, Codec::Pcmu, Codec::Pcma),
        (AGENT, CALLER, Codec::Pcma, Codec::Pcmu),
        // Either law may arrive whatever was negotiated; the listener gets its own.
        (CALLER, AGENT, Codec::Pcma, Codec::Pcma),
    ] {
        let original = packet(law, true, 9, 12345, &samples);
        let mut forwarded = original.clone();
        assert_eq!(call.room.receive(call.now, from, &mut forwarded), Some(to));
        let mut expected = original.clone();
        wire::transcode(
            law.payload_type(),
            theirs.payload_type(),
            &mut expected[12..],
        );
        expected[1] = 0x80 | theirs.payload_type();
        assert_eq!(forwarded, expected, "{law:?} to {theirs:?}");
        // Header fields other than the payload type are the source's.
        assert_eq!(forwarded[..1], original[..1]);
        assert_eq!(forwarded[2..12], original[2..12]);
    }
    call.run(ms(1000));
    assert_tones("PCMA agent", &call.take(AGENT), &[CALLER_TONE]);
    assert_tones("PCMU caller", &call.take(CALLER), &[AGENT_TONE]);
}

/// Caller, agent and (when `with_monitor`) a monitor who hears both and is heard by nobody,
/// run for two seconds.
fn listened_call(with_monitor: bool) -> Harness {
    let mut call = two_party_call();
    if with_monitor {
        call.add(MONITOR, Codec::Pcma, Signal::Tone(SUPERVISOR_TONE));
        call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    }
    call.run(ms(2000));
    call
}

#[test]
fn a_listening_monitor_hears_both_and_changes_no_byte_the_parties_get() {
    let mut plain = listened_call(false);
    let mut listened = listened_call(true);
    assert_eq!(
        listened.room.route(CALLER),
        Some(Route::Forward { from: AGENT })
    );
    assert_eq!(
        listened.room.route(AGENT),
        Some(Route::Forward { from: CALLER })
    );
    assert_eq!(listened.room.route(MONITOR), Some(Route::Mix));
    let (caller, agent) = (listened.take(CALLER), listened.take(AGENT));
    assert_eq!(
        caller,
        plain.take(CALLER),
        "the caller's packets are unchanged"
    );
    assert_eq!(
        agent,
        plain.take(AGENT),
        "the agent's packets are unchanged"
    );
    assert_tones("caller", &caller, &[AGENT_TONE]);
    assert_tones("agent", &agent, &[CALLER_TONE]);
    let monitor = listened.take(MONITOR);
    assert_tones("monitor", &monitor, &[CALLER_TONE, AGENT_TONE]);
    // The monitor's own stream: one packet a tick in its law, marker first, then in order.
    assert_eq!(monitor.len(), 100);
    let headers: Vec<_> = monitor.iter().map(|p| wire::parse(p).unwrap()).collect();
    assert!(headers[0].marker && headers[1..].iter().all(|h| !h.marker));
    for pair in headers.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
        assert_eq!((pair[1].ssrc, pair[1].payload_type), (headers[0].ssrc, 8));
    }
}

#[test]
fn coach_whispers_to_the_agent_and_the_caller_stays_on_the_forward_route() {
    let mut call = two_party_call();
    call.add(SUPERVISOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.room.set_hears(AGENT, &[CALLER, SUPERVISOR]);
    call.room.set_hears(SUPERVISOR, &[CALLER, AGENT]);
    call.run(ms(2000));
    assert_eq!(
        call.room.route(CALLER),
        Some(Route::Forward { from: AGENT })
    );
    assert_eq!(call.room.route(AGENT), Some(Route::Mix));
    assert_tones("caller", &call.take(CALLER), &[AGENT_TONE]);
    assert_tones("agent", &call.take(AGENT), &[CALLER_TONE, SUPERVISOR_TONE]);
    assert_tones("coach", &call.take(SUPERVISOR), &[CALLER_TONE, AGENT_TONE]);
}

#[test]
fn barge_lets_everyone_hear_the_other_two() {
    let mut call = two_party_call();
    call.add(SUPERVISOR, Codec::Pcma, Signal::Tone(SUPERVISOR_TONE));
    call.room.set_hears(CALLER, &[AGENT, SUPERVISOR]);
    call.room.set_hears(AGENT, &[CALLER, SUPERVISOR]);
    call.room.set_hears(SUPERVISOR, &[CALLER, AGENT]);
    call.run(ms(2000));
    for id in [CALLER, AGENT, SUPERVISOR] {
        assert_eq!(call.room.route(id), Some(Route::Mix));
    }
    assert_tones("caller", &call.take(CALLER), &[AGENT_TONE, SUPERVISOR_TONE]);
    assert_tones("agent", &call.take(AGENT), &[CALLER_TONE, SUPERVISOR_TONE]);
    assert_tones(
        "supervisor",
        &call.take(SUPERVISOR),
        &[CALLER_TONE, AGENT_TONE],
    );
}

#[test]
fn switching_between_listen_coach_and_barge_is_only_set_hears() {
    let mut call = two_party_call();
    call.add(SUPERVISOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    type Phase = (
        &'static str,
        [&'static [ParticipantId]; 3],
        [&'static [f64]; 3],
    );
    let phases: [Phase; 5] = [
        (
            "listen",
            [&[AGENT], &[CALLER], &[CALLER, AGENT]],
            [&[AGENT_TONE], &[CALLER_TONE], &[CALLER_TONE, AGENT_TONE]],
        ),
        (
            "coach",
            [&[AGENT], &[CALLER, SUPERVISOR], &[CALLER, AGENT]],
            [
                &[AGENT_TONE],
                &[CALLER_TONE, SUPERVISOR_TONE],
                &[CALLER_TONE, AGENT_TONE],
            ],
        ),
        (
            "barge",
            [
                &[AGENT, SUPERVISOR],
                &[CALLER, SUPERVISOR],
                &[CALLER, AGENT],
            ],
            [
                &[AGENT_TONE, SUPERVISOR_TONE],
                &[CALLER_TONE, SUPERVISOR_TONE],
                &[CALLER_TONE, AGENT_TONE],
            ],
        ),
        (
            "coach again",
            [&[AGENT], &[CALLER, SUPERVISOR], &[CALLER, AGENT]],
            [
                &[AGENT_TONE],
                &[CALLER_TONE, SUPERVISOR_TONE],
                &[CALLER_TONE, AGENT_TONE],
            ],
        ),
        (
            "listen again",
            [&[AGENT], &[CALLER], &[CALLER, AGENT]],
            [&[AGENT_TONE], &[CALLER_TONE], &[CALLER_TONE, AGENT_TONE]],
        ),
    ];
    for (name, rows, tones) in phases {
        for (id, row) in [CALLER, AGENT, SUPERVISOR].into_iter().zip(rows) {
            call.room.set_hears(id, row);
            assert_eq!(call.room.hears(id), row.to_vec());
        }
        // What was delivered before the switch belongs to the last phase.
        call.delivered.clear();
        call.run(ms(1000));
        for ((id, who), expected) in [
            (CALLER, "caller"),
            (AGENT, "agent"),
            (SUPERVISOR, "supervisor"),
        ]
        .into_iter()
        .zip(tones)
        {
            assert_tones(&format!("{name}: {who}"), &call.take(id), expected);
        }
        let forwarded = rows[0].len() == 1;
        assert_eq!(
            call.room.route(CALLER) == Some(Route::Forward { from: AGENT }),
            forwarded,
            "{name}"
        );
    }
    // Back on listen, the caller gets the agent's packets untouched again.
    let mut sent = call.senders[&AGENT].clone();
    let original = sent.next_packet();
    let mut packet = original.clone();
    assert_eq!(
        call.room.receive(call.now, AGENT, &mut packet),
        Some(CALLER)
    );
    assert_eq!(packet, original);
}

#[test]
fn the_mixed_stream_restarts_with_a_marker_and_time_passed_in_its_timestamps() {
    let mut call = two_party_call();
    call.add(SUPERVISOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.room.set_hears(AGENT, &[CALLER, SUPERVISOR]);
    call.run(ms(200));
    let first = call.take(AGENT);
    call.room.set_hears(AGENT, &[CALLER]);
    call.run(ms(400));
    call.take(AGENT);
    call.room.set_hears(AGENT, &[CALLER, SUPERVISOR]);
    call.run(ms(200));
    let second = call.take(AGENT);
    let own = |packets: &[Vec<u8>]| -> Vec<wire::Header> {
        packets
            .iter()
            .map(|p| wire::parse(p).unwrap())
            .filter(|h| h.ssrc != call.senders[&CALLER].ssrc)
            .collect()
    };
    let (first, second) = (own(&first), own(&second));
    let (last, next) = (first.last().unwrap(), &second[0]);
    assert!(next.marker, "a restart is marked");
    assert_eq!(next.ssrc, last.ssrc, "the same stream");
    assert_eq!(next.sequence, last.sequence.wrapping_add(1));
    // 400 ms forwarded in between: 21 ticks on from the last mixed packet.
    assert_eq!(next.timestamp.wrapping_sub(last.timestamp), 21 * 160);
}

#[test]
fn a_source_forwarded_to_several_listeners_sends_copies_through_poll_output() {
    let mut call = two_party_call();
    call.add(MONITOR, Codec::Pcma, Signal::Tone(SUPERVISOR_TONE));
    call.add(SUPERVISOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    // Two monitors who hear only the caller are on the forward route from the caller too.
    call.room.set_hears(MONITOR, &[CALLER]);
    call.room.set_hears(SUPERVISOR, &[CALLER]);
    assert_eq!(
        call.room.route(MONITOR),
        Some(Route::Forward { from: CALLER })
    );
    let mut sent = call.senders[&CALLER].clone();
    let original = sent.next_packet();
    let mut packet = original.clone();
    assert_eq!(
        call.room.receive(call.now, CALLER, &mut packet),
        Some(AGENT)
    );
    assert_eq!(packet, original);
    let mut copies = Vec::new();
    while let Some(Output::Transmit { to, packet }) = call.room.poll_output() {
        copies.push((to, packet));
    }
    let mut alaw = original.clone();
    wire::transcode(0, 8, &mut alaw[12..]);
    alaw[1] = (alaw[1] & 0x80) | 8;
    assert_eq!(copies, vec![(MONITOR, alaw), (SUPERVISOR, original)]);
    assert_eq!(
        call.room.poll_timeout(),
        Some(call.start + ms(5000)),
        "still no ticks"
    );
}

#[test]
fn a_listener_hearing_nobody_gets_nothing_and_hears_no_one_twice_or_itself() {
    let mut call = two_party_call();
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.run(ms(500));
    assert_eq!(call.room.route(MONITOR), Some(Route::Silent));
    assert!(call.take(MONITOR).is_empty());
    call.room
        .set_hears(MONITOR, &[MONITOR, CALLER, CALLER, ParticipantId(99)]);
    assert_eq!(call.room.hears(MONITOR), vec![CALLER]);
    assert_eq!(
        call.room.route(MONITOR),
        Some(Route::Forward { from: CALLER })
    );
}

#[test]
fn removing_a_participant_returns_its_counts_and_puts_listeners_back_on_forward() {
    let mut call = two_party_call();
    call.add(SUPERVISOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.room.set_hears(CALLER, &[AGENT, SUPERVISOR]);
    call.room.set_hears(AGENT, &[CALLER, SUPERVISOR]);
    call.room.set_hears(SUPERVISOR, &[CALLER, AGENT]);
    call.run(ms(1000));
    let stats = call.room.remove(SUPERVISOR).expect("was there");
    call.senders.remove(&SUPERVISOR);
    assert_eq!((stats.received, stats.sent), (50, 50));
    assert_eq!(call.room.remove(SUPERVISOR), None);
    assert_eq!(call.room.stats(SUPERVISOR), None);
    assert_eq!(call.room.hears(CALLER), vec![AGENT]);
    assert_eq!(
        call.room.route(CALLER),
        Some(Route::Forward { from: AGENT })
    );
    assert_eq!(
        call.room.route(AGENT),
        Some(Route::Forward { from: CALLER })
    );
    // Back to the fast path: no ticks, nothing decoded, packets passed through.
    assert_eq!(call.room.jitter_stats(CALLER), None);
    assert!(call.room.poll_timeout().unwrap() > call.now + ms(1000));
    call.delivered.clear();
    call.run(ms(1000));
    assert_tones("caller", &call.take(CALLER), &[AGENT_TONE]);
    assert_tones("agent", &call.take(AGENT), &[CALLER_TONE]);
}

fn event_packet(payload_type: u8, timestamp: u32, sequence: u16, end: bool) -> Vec<u8> {
    let mut packet = Vec::new();
    wire::write_header(&mut packet, !end, payload_type, sequence, timestamp, 0x77);
    packet.extend_from_slice(&[5, if end { 0x80 } else { 0 } | 10, 0x01, 0x40]);
    packet
}

#[test]
fn telephone_events_are_reported_once_and_forwarded_renumbered() {
    let mut call = Harness::new();
    call.add_with(
        CALLER,
        Codec::Pcmu,
        Some(101),
        Signal::Tone(CALLER_TONE),
        160,
    );
    call.add_with(AGENT, Codec::Pcma, Some(96), Signal::Tone(AGENT_TONE), 160);
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.room.set_hears(CALLER, &[AGENT]);
    call.room.set_hears(AGENT, &[CALLER]);
    call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    // One key press: several packets with the event's timestamp, three of them end packets.
    for (sequence, end) in [(1, false), (2, false), (3, true), (4, true), (5, true)] {
        let original = event_packet(101, 8000, sequence, end);
        let mut packet = original.clone();
        assert_eq!(call.receive(CALLER, &mut packet), Some(AGENT));
        assert_eq!(packet[1] & 0x7f, 96, "renumbered to the agent's type");
        assert_eq!(
            packet[12..],
            original[12..],
            "the event itself is unchanged"
        );
    }
    let mut again = event_packet(101, 9600, 6, false);
    call.receive(CALLER, &mut again);
    assert_eq!(
        call.take_events(),
        vec![
            Event::Dtmf {
                from: CALLER,
                digit: '5'
            },
            Event::Dtmf {
                from: CALLER,
                digit: '5'
            }
        ],
        "once per event"
    );
    // The monitor mixes the caller, but events are never mixed: none reached the decoder.
    assert_eq!(call.room.jitter_stats(CALLER).unwrap().accepted, 0);
    // A listener with no telephone-event type gets none; the event is still reported.
    call.room.set_codec(AGENT, Codec::Pcma, None);
    let mut packet = event_packet(101, 11200, 7, false);
    assert_eq!(call.receive(CALLER, &mut packet), None);
    assert_eq!(
        call.take_events(),
        vec![Event::Dtmf {
            from: CALLER,
            digit: '5'
        }]
    );
    // The agent's type is not the caller's: 96 from the caller is nothing and dropped.
    let mut packet = event_packet(96, 12800, 8, false);
    assert_eq!(call.receive(CALLER, &mut packet), None);
    assert!(call.take_events().is_empty());
}

#[test]
fn other_payload_types_and_non_rtp_are_dropped_but_rtp_is_counted() {
    let mut call = two_party_call();
    let mut comfort_noise = Vec::new();
    wire::write_header(&mut comfort_noise, false, 13, 1, 160, 5);
    comfort_noise.push(40);
    assert_eq!(call.receive(CALLER, &mut comfort_noise), None);
    let mut report = wire::sender_report(1, 2, 3, 4, 5);
    assert_eq!(call.receive(CALLER, &mut report), None);
    assert_eq!(call.receive(ParticipantId(42), &mut [0x80; 20]), None);
    assert_eq!(call.room.stats(CALLER).unwrap().received, 1);
}

/// Sends the caller's packets to a room where a monitor hears the caller and a silent agent:
/// `schedule` lists, tick by tick, the packets (indices) that arrive before that tick. Returns
/// what the caller sent and what the monitor got, decoded.
fn through_the_jitter_buffer(
    packet_samples: usize,
    schedule: &[Vec<usize>],
) -> (Vec<i16>, Vec<i16>) {
    let mut call = Harness::new();
    let signal = speech_like(40 * 160, 3);
    call.add_with(
        CALLER,
        Codec::Pcmu,
        None,
        Signal::Samples(signal),
        packet_samples,
    );
    call.add(AGENT, Codec::Pcma, Signal::Tone(AGENT_TONE));
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    for id in [CALLER, AGENT, MONITOR] {
        call.silence(id);
    }
    call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    let mut sender = call.senders[&CALLER].clone();
    let count = schedule.iter().flatten().max().unwrap() + 1;
    let packets: Vec<Vec<u8>> = (0..count).map(|_| sender.next_packet()).collect();
    let sent = decode(&packets);
    for arrivals in schedule {
        for index in arrivals {
            let mut packet = packets[*index].clone();
            call.receive(CALLER, &mut packet);
        }
        call.run(ms(20));
    }
    call.run(ms(400));
    (sent, decode(&call.take(MONITOR)))
}

/// Where `sent`'s first frame appears in `got`.
fn offset(sent: &[i16], got: &[i16]) -> usize {
    (0..got.len())
        .find(|start| got[*start..].starts_with(&sent[..160]))
        .expect("the caller's audio reaches the monitor")
}

#[test]
fn the_jitter_buffer_reorders_drops_duplicates_and_fills_a_loss_with_silence() {
    // Packets 2 and 3 arrive swapped, 6 twice, 9 never.
    let schedule: Vec<Vec<usize>> = vec![
        vec![0],
        vec![1],
        vec![3],
        vec![2],
        vec![4],
        vec![5],
        vec![6, 6],
        vec![7],
        vec![8],
        vec![],
        vec![10],
        vec![11],
        vec![12],
        vec![13],
        vec![14],
        vec![15],
    ];
    let (sent, got) = through_the_jitter_buffer(160, &schedule);
    let start = offset(&sent, &got);
    let got = &got[start..];
    for frame in 0..16 {
        let range = frame * 160..(frame + 1) * 160;
        if frame == 9 {
            assert!(
                got[range].iter().all(|s| *s == 0),
                "the lost frame is silence"
            );
        } else {
            assert_eq!(
                got[range.clone()],
                sent[range],
                "frame {frame} sample by sample"
            );
        }
    }
}

#[test]
fn packets_of_10_and_30_ms_are_mixed_like_20_ms_ones() {
    // 10 ms: two packets before every tick.
    let schedule: Vec<Vec<usize>> = (0..30).map(|k| vec![2 * k, 2 * k + 1]).collect();
    let (sent, got) = through_the_jitter_buffer(80, &schedule);
    let start = offset(&sent, &got);
    assert_eq!(got[start..start + 3200], sent[..3200], "10 ms packets");
    // 30 ms: two packets in every three ticks.
    let schedule: Vec<Vec<usize>> = (0..45)
        .map(|k| {
            if k % 3 == 2 {
                vec![]
            } else {
                vec![k / 3 * 2 + k % 3]
            }
        })
        .collect();
    let (sent, got) = through_the_jitter_buffer(240, &schedule);
    let start = offset(&sent, &got);
    assert_eq!(got[start..start + 3200], sent[..3200], "30 ms packets");
}
