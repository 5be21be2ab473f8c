//! No input panics the room: random datagrams, every truncation of real packets, and random
//! sequences of every operation; and after `handle_timeout(now)` nothing is left due.

use crate::*;
use proptest::prelude::*;
use switchboard_media::{rtp as wire, Playback};

/// A room with every route in use: caller and agent forwarded to each other, a monitor
/// mixing both, a recording, a playback.
fn busy_room() -> Harness {
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
    call.room.start_recording(call.now, CALLER, AGENT);
    call.room.play(
        call.now,
        AGENT,
        Playback {
            parts: vec![vec![5i16; 1000].into()],
            then_loop: None,
            token: 1,
        },
    );
    call
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..40),
        version_two in any::<bool>(),
    ) {
        let mut call = busy_room();
        for (n, mut datagram) in datagrams.into_iter().enumerate() {
            if version_two && !datagram.is_empty() {
                // Mostly RTP-looking, so the parser's later checks are reached too.
                datagram[0] = 0x80 | (datagram[0] & 0x3f);
            }
            let from = [CALLER, AGENT, MONITOR][n % 3];
            if let Some(to) = call.room.receive(call.now, from, &mut datagram) {
                prop_assert!([CALLER, AGENT, MONITOR].contains(&to));
            }
            call.now += ms(7);
            call.room.handle_timeout(call.now);
            call.drain();
        }
    }

    #[test]
    fn every_truncation_of_real_packets_is_safe(cut_extension in 0usize..8, csrcs in 0u8..16) {
        let mut call = busy_room();
        let mut audio = Vec::new();
        wire::write_header(&mut audio, false, 0, 1, 160, 9);
        audio[0] |= csrcs;
        audio.extend(std::iter::repeat_n(0u8, usize::from(csrcs) * 4));
        // An extension header claiming more words than may follow.
        audio[0] |= 0x10;
        audio.extend_from_slice(&[0xbe, 0xde, 0, cut_extension as u8]);
        audio.extend(std::iter::repeat_n(0x55u8, 160));
        let mut event = Vec::new();
        wire::write_header(&mut event, true, 101, 2, 320, 9);
        event.extend_from_slice(&[1, 0x8a, 0, 160]);
        let mut padded = event.clone();
        padded[0] |= 0x20;
        for packet in [audio, event, padded] {
            for length in 0..=packet.len() {
                let mut datagram = packet[..length].to_vec();
                call.room.receive(call.now, CALLER, &mut datagram);
            }
        }
        call.now += ms(100);
        call.room.handle_timeout(call.now);
        call.drain();
    }

    #[test]
    fn random_operations_never_panic_and_leave_nothing_due(
        operations in proptest::collection::vec((0u8..12, 0u64..5, 0u64..5, 0u64..400), 1..80),
    ) {
        let mut call = Harness::new();
        let ids = |n: u64| ParticipantId(n);
        for (operation, a, b, value) in operations {
            match operation {
                0 => call.room.add(call.now, ids(a), if value % 2 == 0 { Codec::Pcmu } else { Codec::Pcma }, Some(101)),
                1 => { call.room.remove(ids(a)); }
                2 => call.room.set_hears(ids(a), &[ids(b), ids(value % 5)]),
                3 => call.room.play(call.now, ids(a), Playback {
                    parts: vec![vec![1000i16; value as usize].into()],
                    then_loop: (value % 3 == 0).then(|| vec![7i16; b as usize].into()),
                    token: value,
                }),
                4 => call.room.stop_playing(ids(a)),
                5 => call.room.expect_media(call.now, ids(a), value % 2 == 0),
                6 => call.room.start_recording(call.now, ids(a), ids(b)),
                7 => call.room.pause_recording(call.now),
                8 => call.room.resume_recording(call.now),
                9 => call.room.stop_recording(call.now),
                10 => {
                    let mut packet = Vec::new();
                    let payload_type = [0u8, 8, 101, 13][b as usize % 4];
                    wire::write_header(&mut packet, false, payload_type, value as u16, value as u32 * 80, a as u32);
                    packet.extend(std::iter::repeat_n(value as u8, (value % 300) as usize));
                    call.room.receive(call.now, ids(a), &mut packet);
                }
                _ => call.room.set_codec(ids(a), Codec::Pcma, None),
            }
            call.now += ms(value % 50 + if value % 97 == 0 { 700 } else { 0 });
            call.room.handle_timeout(call.now);
            call.drain();
            if let Some(next) = call.room.poll_timeout() {
                prop_assert!(next > call.now, "after handle_timeout nothing is due");
            }
        }
    }
}
