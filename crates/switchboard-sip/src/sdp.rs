//! The part of SDP (RFC 4566, offer/answer per RFC 3264) a G.711 voice endpoint needs: one audio
//! stream, its address, codecs, telephone-event and direction.

use std::net::IpAddr;

/// G.711 µ-law's static payload type.
pub const PCMU: u8 = 0;
/// G.711 A-law's static payload type.
pub const PCMA: u8 = 8;
/// The payload type we offer for telephone-event.
pub const TELEPHONE_EVENT: u8 = 101;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to this offer.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    /// Whether this side (the one that wrote it) puts the other on hold.
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
}

/// One audio stream as described by a session description.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Audio {
    pub address: IpAddr,
    pub port: u16,
    /// Payload types in preference order.
    pub payloads: Vec<u8>,
    /// The payload type of telephone-event/8000, when present.
    pub telephone_event: Option<u8>,
    pub direction: Direction,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the session description is not text")]
    NotText,
    #[error("no connection address")]
    NoAddress,
    #[error("no audio stream")]
    NoAudio,
    #[error("malformed line `{0}`")]
    Malformed(String),
}

/// Reads the first audio stream of a session description.
pub fn parse(body: &[u8]) -> Result<Audio, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_address = None;
    let mut audio: Option<(Option<IpAddr>, u16, Vec<u8>)> = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut telephone_event = None;
    let mut direction = Direction::SendRecv;
    for line in text.lines() {
        let line = line.trim_end();
        let Some((kind, value)) = line.split_once('=') else {
            if line.is_empty() {
                continue;
            }
            return Err(SdpError::Malformed(line.chars().take(40).collect()));
        };
        match kind {
            "m" => {
                in_audio = false;
                let mut parts = value.split_whitespace();
                if parts.next() == Some("audio") && !seen_audio {
                    let port = parts
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| SdpError::Malformed(line.chars().take(40).collect()))?;
                    let _proto = parts.next();
                    let payloads = parts.filter_map(|p| p.parse().ok()).collect();
                    audio = Some((None, port, payloads));
                    in_audio = true;
                    seen_audio = true;
                }
            }
            "c" => {
                let address = value
                    .split_whitespace()
                    .nth(2)
                    .and_then(|a| a.split('/').next())
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| SdpError::Malformed(line.chars().take(40).collect()))?;
                match (&mut audio, in_audio) {
                    (Some(stream), true) => stream.0 = Some(address),
                    _ => session_address = Some(address),
                }
            }
            "a" if in_audio || !seen_audio => {
                let (name, rest) = value.split_once(':').unwrap_or((value, ""));
                match name {
                    "rtpmap" => {
                        let mut parts = rest.split_whitespace();
                        let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
                        let codec = parts.next().unwrap_or("");
                        if codec
                            .to_ascii_lowercase()
                            .starts_with("telephone-event/8000")
                        {
                            telephone_event = pt;
                        }
                    }
                    "sendrecv" => direction = Direction::SendRecv,
                    "sendonly" => direction = Direction::SendOnly,
                    "recvonly" => direction = Direction::RecvOnly,
                    "inactive" => direction = Direction::Inactive,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let (address, port, payloads) = audio.ok_or(SdpError::NoAudio)?;
    let address = address.or(session_address).ok_or(SdpError::NoAddress)?;
    // c=0.0.0.0 is the old (RFC 2543) way to say hold.
    if address.is_unspecified() && direction == Direction::SendRecv {
        direction = Direction::SendOnly;
    }
    Ok(Audio {
        address,
        port,
        payloads,
        telephone_event,
        direction,
    })
}

/// The codec to use for an offer: the first G.711 law the offer lists.
pub fn choose_codec(offer: &Audio) -> Option<u8> {
    offer
        .payloads
        .iter()
        .copied()
        .find(|pt| *pt == PCMU || *pt == PCMA)
}

/// Writes a session description for one audio stream. `codecs` lists the G.711 payload types
/// to offer or answer with; telephone-event is added when `telephone_event` is set.
pub fn write(
    session_id: u64,
    version: u64,
    address: IpAddr,
    port: u16,
    codecs: &[u8],
    telephone_event: Option<u8>,
    direction: Direction,
) -> Vec<u8> {
    let family = if address.is_ipv6() { "IP6" } else { "IP4" };
    let mut formats: Vec<String> = codecs.iter().map(u8::to_string).collect();
    if let Some(pt) = telephone_event {
        formats.push(pt.to_string());
    }
    let mut text = format!(
        "v=0\r\no=switchboard {session_id} {version} IN {family} {address}\r\ns=switchboard\r\nc=IN {family} {address}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        formats.join(" ")
    );
    for codec in codecs {
        let name = if *codec == PCMA { "PCMA" } else { "PCMU" };
        text.push_str(&format!("a=rtpmap:{codec} {name}/8000\r\n"));
    }
    if let Some(pt) = telephone_event {
        text.push_str(&format!(
            "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
        ));
    }
    text.push_str(&format!("a=ptime:20\r\na={}\r\n", direction.as_str()));
    text.into_bytes()
}
