//! Time: the media timeout (once, re-armed by packets, not while the far end holds), what
//! `poll_timeout` asks for on each route, the tick grid, catching up, and sender reports.

use crate::*;
use switchboard_media::{rtp as wire, Event, Playback};

fn timeouts(events: &[Event]) -> Vec<ParticipantId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MediaTimeout { from } => Some(*from),
            _ => None,
        })
        .collect()
}

#[test]
fn the_media_timeout_fires_once_and_is_re_armed_when_packets_resume() {
    let mut call = two_party_call();
    call.run(ms(2000));
    call.silence(CALLER);
    // The caller's last packet came at 1985 ms; the timeout is 5 s.
    call.run(ms(4980));
    assert!(timeouts(&call.take_events()).is_empty());
    call.run(ms(20));
    assert_eq!(call.now, call.start + ms(7000));
    assert_eq!(timeouts(&call.take_events()), vec![CALLER]);
    call.run(ms(10_000));
    assert!(timeouts(&call.take_events()).is_empty(), "once");
    // The caller is back for a moment, then silent again: a second report.
    let sender = call.senders.get_mut(&CALLER).unwrap();
    sender.active = true;
    sender.next_send = call.now + ms(5);
    call.run(ms(100));
    call.silence(CALLER);
    call.run(ms(6000));
    assert_eq!(timeouts(&call.take_events()), vec![CALLER]);
}

#[test]
fn no_media_timeout_while_the_far_end_holds() {
    let mut call = two_party_call();
    call.run(ms(1000));
    // The caller puts the call on hold (sendonly) and stops sending.
    call.room.expect_media(call.now, CALLER, false);
    call.silence(CALLER);
    call.run(ms(60_000));
    assert!(timeouts(&call.take_events()).is_empty());
    // Off hold: a fresh timeout from now, not from the last packet a minute ago.
    call.room.expect_media(call.now, CALLER, true);
    let resumed = call.now;
    call.run(ms(4990));
    assert!(timeouts(&call.take_events()).is_empty());
    call.run(ms(20));
    assert_eq!(timeouts(&call.take_events()), vec![CALLER]);
    assert!(call.now - resumed >= ms(5000));
}

#[test]
fn poll_timeout_ticks_on_the_grid_only_while_something_needs_ticks() {
    let mut call = two_party_call();
    call.run(ms(1003));
    // The fast path: only the earliest media deadline (the agent's last packet at 985 ms).
    assert_eq!(call.room.poll_timeout(), Some(call.start + ms(985 + 5000)));
    // A monitor joins: ticks, on the room's grid of 20 ms from its start.
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.silence(MONITOR);
    call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    call.run(ms(50));
    let next = call.room.poll_timeout().unwrap();
    assert!(next > call.now && next <= call.now + ms(20));
    assert_eq!(next.duration_since(call.start).as_nanos() % 20_000_000, 0);
    call.room.set_hears(MONITOR, &[]);
    assert!(call.room.poll_timeout().unwrap() > call.now + ms(1000));
    // A playback ticks too, and stops ticking when it is done.
    call.room.play(
        call.now,
        MONITOR,
        Playback {
            parts: vec![vec![100i16; 320].into()],
            then_loop: None,
            token: 3,
        },
    );
    let next = call.room.poll_timeout().unwrap();
    assert!(next > call.now && next <= call.now + ms(20));
    call.run(ms(100));
    assert!(call.room.poll_timeout().unwrap() > call.now + ms(1000));
}

#[test]
fn a_mix_started_by_who_hears_whom_is_due_at_once_then_ticks_on_the_grid() {
    let mut call = two_party_call();
    call.run(ms(1003));
    call.take(MONITOR);
    // A monitor starts hearing both parties: `set_hears` has no clock reading, so the room
    // asks to be called at once, with a deadline that lies in the past. A shell must run it
    // (and not take a past deadline as nothing to do), or the mix never starts.
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.silence(MONITOR);
    call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    let due = call.room.poll_timeout().unwrap();
    assert!(due < call.now, "due at once");
    // Called then, the clock aligns to the grid: the next tick is ahead, within a frame...
    call.room.handle_timeout(call.now);
    call.drain();
    assert!(call.take(MONITOR).is_empty());
    let next = call.room.poll_timeout().unwrap();
    assert!(next > call.now && next <= call.now + ms(20));
    assert_eq!(next.duration_since(call.start).as_nanos() % 20_000_000, 0);
    // ...and brings the monitor its first mixed packet.
    call.now = next;
    call.room.handle_timeout(call.now);
    call.drain();
    assert_eq!(call.take(MONITOR).len(), 1);
}

#[test]
fn a_shell_a_few_ticks_late_catches_up_tick_by_tick() {
    let mut call = two_party_call();
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.silence(MONITOR);
    call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    call.run(ms(500));
    call.take(MONITOR);
    let due = call.room.poll_timeout().unwrap();
    // Five ticks late (and some): five packets at once, in sequence, then back on the grid.
    call.now = due + ms(90);
    call.room.handle_timeout(call.now);
    call.drain();
    let burst = call.take(MONITOR);
    assert_eq!(burst.len(), 5);
    let headers: Vec<_> = burst.iter().map(|p| wire::parse(p).unwrap()).collect();
    for pair in headers.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(160));
    }
    assert_eq!(call.room.poll_timeout(), Some(due + ms(100)));
}

#[test]
fn sender_reports_describe_only_the_streams_the_room_generates() {
    let mut call = two_party_call();
    call.add(MONITOR, Codec::Pcmu, Signal::Tone(SUPERVISOR_TONE));
    call.silence(MONITOR);
    assert_eq!(
        call.room.sender_report(MONITOR, 1),
        None,
        "nothing sent yet"
    );
    call.room.set_hears(MONITOR, &[CALLER, AGENT]);
    call.run(ms(1000));
    assert_eq!(
        call.room.sender_report(CALLER, 1),
        None,
        "the caller is only forwarded"
    );
    let ntp = 0x1234_5678_9abc_def0;
    let report = call
        .room
        .sender_report(MONITOR, ntp)
        .expect("the monitor's mix");
    assert!(wire::is_rtcp(&report));
    let packets = call.take(MONITOR);
    let last = wire::parse(packets.last().unwrap()).unwrap();
    let word = |at: usize| u32::from_be_bytes(report[at..at + 4].try_into().unwrap());
    assert_eq!(word(4), last.ssrc);
    assert_eq!(u64::from_be_bytes(report[8..16].try_into().unwrap()), ntp);
    assert_eq!(word(16), last.timestamp);
    assert_eq!(word(20) as usize, packets.len());
    assert_eq!(word(24) as usize, packets.len() * 160);
    assert_eq!(call.room.sender_report(ParticipantId(99), ntp), None);
}
