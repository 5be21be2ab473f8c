//! RTP headers, telephone-events, RTCP and G.711 (moved here with `rtp` from the SIP crate).

use switchboard_media::{rtp, Codec, PCMA, PCMU};

#[test]
fn g711_matches_the_reference_values_and_round_trips_closely() {
    assert_eq!(rtp::linear_to_ulaw(0), 0xff);
    assert_eq!(rtp::linear_to_alaw(0), 0xd5);
    assert_eq!(rtp::linear_to_ulaw(i16::MAX), 0x80);
    assert_eq!(rtp::linear_to_ulaw(i16::MIN), 0x00);
    assert_eq!(rtp::linear_to_alaw(i16::MAX), 0xaa);
    assert_eq!(rtp::linear_to_alaw(i16::MIN), 0x2a);
    for code in 0..=255u8 {
        // Decoding then encoding gives the code back (µ-law's two zeros aside).
        let u = rtp::ulaw_to_linear(code);
        if code != 0x7f {
            assert_eq!(rtp::linear_to_ulaw(u), code, "µ-law {code:#x}");
        }
        assert_eq!(
            rtp::linear_to_alaw(rtp::alaw_to_linear(code)),
            code,
            "A-law {code:#x}"
        );
    }
    for sample in (-32768i32..32768).step_by(97) {
        let sample = sample as i16;
        let error = |decoded: i16| (i32::from(decoded) - i32::from(sample)).abs();
        let bound = (i32::from(sample).abs() / 16).max(16);
        assert!(
            error(rtp::ulaw_to_linear(rtp::linear_to_ulaw(sample))) <= bound,
            "µ-law {sample}"
        );
        assert!(
            error(rtp::alaw_to_linear(rtp::linear_to_alaw(sample))) <= bound,
            "A-law {sample}"
        );
    }
    // Converting between the laws keeps the sound.
    let mut payload: Vec<u8> = (0..=255).collect();
    let original: Vec<i16> = payload.iter().map(|c| rtp::ulaw_to_linear(*c)).collect();
    rtp::transcode(PCMU, PCMA, &mut payload);
    for (code, before) in payload.iter().zip(original) {
        let after = rtp::alaw_to_linear(*code);
        assert!(
            (i32::from(after) - i32::from(before)).abs() <= (i32::from(before).abs() / 8).max(16)
        );
    }
}

#[test]
fn rtp_packets_and_telephone_events_are_read_strictly() {
    let mut packet = Vec::new();
    rtp::write_header(&mut packet, true, 101, 7, 16000, 0xdead_beef);
    packet.extend_from_slice(&[5, 0x80 | 10, 0x03, 0x20]);
    let header = rtp::parse(&packet).unwrap();
    assert_eq!(
        (
            header.marker,
            header.payload_type,
            header.sequence,
            header.timestamp,
            header.ssrc
        ),
        (true, 101, 7, 16000, 0xdead_beef)
    );
    let event = rtp::parse_event(&packet[header.payload_start..header.payload_end]).unwrap();
    assert_eq!(
        (event.event, event.end, event.volume, event.duration),
        (5, true, 10, 800)
    );
    assert_eq!(rtp::event_digit(5), Some('5'));
    assert_eq!(rtp::event_digit(10), Some('*'));
    assert_eq!(rtp::event_digit(11), Some('#'));
    assert_eq!(rtp::event_digit(200), None);
    // Not RTP: too short, version 1, RTCP, padding longer than the packet.
    assert!(rtp::parse(&packet[..8]).is_none());
    let mut old = packet.clone();
    old[0] = 0x40;
    assert!(rtp::parse(&old).is_none());
    let report = rtp::sender_report(1, 2, 3, 4, 5);
    assert!(rtp::is_rtcp(&report) && rtp::parse(&report).is_none());
    let mut padded = packet.clone();
    padded[0] |= 0x20;
    *padded.last_mut().unwrap() = 200;
    assert!(rtp::parse(&padded).is_none());
}

#[test]
fn codecs_name_their_static_payload_types() {
    assert_eq!(
        (Codec::Pcmu.payload_type(), Codec::Pcma.payload_type()),
        (0, 8)
    );
    assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
    assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
    assert_eq!(Codec::from_payload_type(101), None);
    // Decoding is the per-byte inverse used by encoding.
    let samples = [0i16, 1000, -1000, 20000, -20000];
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let mut bytes = Vec::new();
        rtp::encode(codec.payload_type(), &samples, &mut bytes);
        let mut back = Vec::new();
        rtp::decode(codec.payload_type(), &bytes, &mut back);
        for (before, after) in samples.iter().zip(&back) {
            assert!(
                (i32::from(*before) - i32::from(*after)).abs()
                    <= (i32::from(*before).abs() / 16).max(16)
            );
        }
    }
}
