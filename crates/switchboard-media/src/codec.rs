//! The two audio codecs a room speaks, G.711 µ-law and A-law, and their static payload types.

/// RTP payload type of G.711 µ-law (RFC 3551).
pub const PCMU: u8 = 0;
/// RTP payload type of G.711 A-law (RFC 3551).
pub const PCMA: u8 = 8;

/// A participant's audio codec, as negotiated in its SDP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    /// The static RTP payload type of this codec.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => PCMU,
            Codec::Pcma => PCMA,
        }
    }

    /// The codec of a static payload type; `None` for anything but 0 and 8.
    pub fn from_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            PCMU => Some(Codec::Pcmu),
            PCMA => Some(Codec::Pcma),
            _ => None,
        }
    }
}
