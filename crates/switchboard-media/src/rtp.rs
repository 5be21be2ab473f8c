//! RTP (RFC 3550) packets, telephone-events (RFC 4733), G.711 µ-law and A-law, and the RTCP
//! sender report this endpoint sends. Payload types are plain `u8` here, as on the wire;
//! [`crate::Codec`] names the two G.711 laws.

/// An RTP packet's header fields and where its payload starts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Header {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload in the packet.
    pub payload_start: usize,
    /// End of the payload (padding removed).
    pub payload_end: usize,
}

/// Reads an RTP header; `None` for anything that is not RTP version 2 (RTCP on a muxed port,
/// STUN, garbage).
pub fn parse(packet: &[u8]) -> Option<Header> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let padding = packet[0] & 0x20 != 0;
    let extension = packet[0] & 0x10 != 0;
    let csrcs = usize::from(packet[0] & 0x0f);
    let payload_type = packet[1] & 0x7f;
    // 72..=79 would be RTCP sender/receiver reports on a muxed port.
    if (72..=79).contains(&payload_type) {
        return None;
    }
    let mut start = 12 + 4 * csrcs;
    if extension {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if padding {
        let pad = usize::from(*packet.last()?);
        end = end.checked_sub(pad)?;
    }
    if start > end {
        return None;
    }
    Some(Header {
        marker: packet[1] & 0x80 != 0,
        payload_type,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload_start: start,
        payload_end: end,
    })
}

/// Writes a 12-byte RTP header into `out` (cleared first) and returns it for the payload.
pub fn write_header(
    out: &mut Vec<u8>,
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out.clear();
    out.push(0x80);
    out.push(if marker { 0x80 } else { 0 } | (payload_type & 0x7f));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// A telephone-event payload (RFC 4733 §2.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

pub fn parse_event(payload: &[u8]) -> Option<TelephoneEvent> {
    if payload.len() < 4 {
        return None;
    }
    Some(TelephoneEvent {
        event: payload[0],
        end: payload[1] & 0x80 != 0,
        volume: payload[1] & 0x3f,
        duration: u16::from_be_bytes([payload[2], payload[3]]),
    })
}

/// The DTMF digit of a telephone-event code (0-9, *, #, A-D).
pub fn event_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// G.711 µ-law encoding of a 16-bit linear sample.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut value = i32::from(sample);
    let sign: u8 = if value < 0 {
        value = -value;
        0x80
    } else {
        0
    };
    value = value.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let mut exponent = 7;
    while exponent > 0 && value & (0x4000 >> (7 - exponent)) == 0 {
        exponent -= 1;
    }
    let mantissa = (value >> (exponent + 3)) & 0x0f;
    !(sign | ((exponent as u8) << 4) | mantissa as u8)
}

/// G.711 µ-law decoding.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let sign = code & 0x80;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// G.711 A-law encoding of a 16-bit linear sample.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 3;
    let sign = if value >= 0 {
        0xd5
    } else {
        value = -value - 1;
        0x55
    };
    let code = if value < 32 {
        (value >> 1) as u8
    } else {
        let mut exponent = 1;
        let mut v = value >> 5;
        while v > 1 && exponent < 7 {
            v >>= 1;
            exponent += 1;
        }
        if value >= 4096 {
            0x7f
        } else {
            ((exponent << 4) | ((value >> exponent) & 0x0f)) as u8
        }
    };
    code ^ sign
}

/// G.711 A-law decoding.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Encodes linear samples with the G.711 law of `payload_type` (PCMA for 8, PCMU otherwise).
pub fn encode(payload_type: u8, samples: &[i16], out: &mut Vec<u8>) {
    if payload_type == crate::codec::PCMA {
        out.extend(samples.iter().map(|s| linear_to_alaw(*s)));
    } else {
        out.extend(samples.iter().map(|s| linear_to_ulaw(*s)));
    }
}

/// Decodes a G.711 payload with the law of `payload_type` (PCMA for 8, PCMU otherwise),
/// appending to `out`.
pub fn decode(payload_type: u8, payload: &[u8], out: &mut Vec<i16>) {
    if payload_type == crate::codec::PCMA {
        out.extend(payload.iter().map(|c| alaw_to_linear(*c)));
    } else {
        out.extend(payload.iter().map(|c| ulaw_to_linear(*c)));
    }
}

/// Converts a G.711 payload from one law to the other in place (by table: a byte each).
pub fn transcode(from: u8, to: u8, payload: &mut [u8]) {
    if from == to {
        return;
    }
    static TABLES: std::sync::OnceLock<([u8; 256], [u8; 256])> = std::sync::OnceLock::new();
    let (ulaw_to_alaw, alaw_to_ulaw) = TABLES.get_or_init(|| {
        let mut u2a = [0u8; 256];
        let mut a2u = [0u8; 256];
        for code in 0..=255u8 {
            u2a[usize::from(code)] = linear_to_alaw(ulaw_to_linear(code));
            a2u[usize::from(code)] = linear_to_ulaw(alaw_to_linear(code));
        }
        (u2a, a2u)
    });
    let table = if to == crate::codec::PCMA {
        ulaw_to_alaw
    } else {
        alaw_to_ulaw
    };
    for byte in payload {
        *byte = table[usize::from(*byte)];
    }
}

/// An RTCP sender report (RFC 3550 §6.4.1) with no report blocks.
pub fn sender_report(
    ssrc: u32,
    ntp: u64,
    rtp_timestamp: u32,
    packets: u32,
    octets: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    out.push(0x80);
    out.push(200);
    out.extend_from_slice(&6u16.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&ntp.to_be_bytes());
    out.extend_from_slice(&rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&packets.to_be_bytes());
    out.extend_from_slice(&octets.to_be_bytes());
    out
}

/// Whether a datagram looks like RTCP (version 2, packet type 200..=204).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && (200..=204).contains(&packet[1])
}
