//! A browser leg's media: one str0m `Rtc` (sans-IO WebRTC) and one UDP socket, living inside
//! the call's room task next to the RTP legs. The server is ICE-lite with a single host
//! candidate (the media address and the leg's port), so there is no gathering and no
//! connectivity checks of our own; DTLS-SRTP keys the media; the only codec offered back is the
//! caller's G.711 law (PCMU or PCMA) plus RFC 4733 telephone-events, so the room forwards the
//! caller's packets to the browser as they are, with no transcoding.
//!
//! The room speaks RTP packets, str0m speaks frames: a frame from the browser becomes a plain
//! RTP packet (our own SSRC, the browser's sequence number and timestamp) for `Room::receive`,
//! and a packet the room sends to the browser is written as a frame with its own timestamp.
//! Nothing here wakes on its own: the room task reads the socket when it is readable and calls
//! `handle_timeout` when `poll_timeout` is due, the way it drives the room.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use switchboard_media::{rtp, Codec};
use tokio::net::UdpSocket;

/// The telephone-event payload type we offer (Chromium uses 126 for 8 kHz too).
const TELEPHONE_EVENT_PT: u8 = 126;

/// Why a browser's offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    #[error("the offer is not valid SDP: {0}")]
    Sdp(String),
    #[error("the offer was refused: {0}")]
    Refused(String),
    #[error("the offer has no audio in G.711 ({0})")]
    NoAudio(&'static str),
    #[error("the leg already has a session")]
    AlreadyAnswered,
}

/// What a browser leg reports to its room task.
#[derive(Debug, PartialEq, Eq)]
pub enum Note {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// The browser is gone (ICE consent lost, or the session failed).
    Lost,
}

/// The crypto backend and one DTLS certificate for every browser leg of this process: making a
/// key pair per call would cost more than the call's first seconds of media.
fn shared() -> Option<&'static (Arc<CryptoProvider>, DtlsCert)> {
    static SHARED: OnceLock<Option<(Arc<CryptoProvider>, DtlsCert)>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let provider = str0m::crypto::from_feature_flags();
            let cert = provider.dtls_provider.generate_certificate()?;
            Some((Arc::new(provider), cert))
        })
        .as_ref()
}

/// One browser leg's WebRTC session and socket.
pub struct BrowserMedia {
    pub socket: UdpSocket,
    /// The address the socket is bound to: our one host candidate.
    local: SocketAddr,
    /// The session, from the browser's offer on.
    rtc: Option<Rtc>,
    /// The audio m-line, and the payload types negotiated on it.
    mid: Option<Mid>,
    audio_pt: Option<Pt>,
    telephone_pt: Option<Pt>,
    /// The SSRC of the packets we hand the room for what the browser sends.
    ssrc: u32,
    /// When the session wants `handle_timeout`.
    timeout: Option<Instant>,
    connected: bool,
    /// Packets received from and sent to the browser (media only).
    pub received: u32,
    pub sent: u32,
}

impl BrowserMedia {
    pub fn new(socket: UdpSocket, local: SocketAddr, ssrc: u32) -> Self {
        BrowserMedia {
            socket,
            local,
            rtc: None,
            mid: None,
            audio_pt: None,
            telephone_pt: None,
            ssrc,
            timeout: None,
            connected: false,
            received: 0,
            sent: 0,
        }
    }

    /// Answers the browser's offer with ICE-lite, our host candidate, DTLS-SRTP and `law` only.
    /// Returns the answer's SDP and the negotiated telephone-event payload type, if any.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        sdp: &str,
        law: Codec,
    ) -> Result<(String, Option<u8>), WebRtcError> {
        if self.rtc.is_some() {
            return Err(WebRtcError::AlreadyAnswered);
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| WebRtcError::Sdp(e.to_string()))?;
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(law == Codec::Pcmu, false)
            .enable_pcma(law == Codec::Pcma, false)
            // No RTP header extensions (audio levels, transport-wide congestion control): a
            // G.711 call at a fixed rate uses none, and each costs work on every packet.
            .clear_extension_map()
            // The browser's own RTCP is enough for a call; str0m's statistics events are off.
            .set_stats_interval(None);
        if let Some((provider, cert)) = shared() {
            config = config
                .set_crypto_provider(provider.clone())
                .set_dtls_cert(cert.clone());
        }
        config.codec_config().add_config(
            TELEPHONE_EVENT_PT.into(),
            None,
            RtcCodec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(now);
        let candidate =
            Candidate::host(self.local, "udp").map_err(|e| WebRtcError::Refused(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Refused(e.to_string()))?;
        // The answer names the audio m-line; MediaAdded comes out once the session is polled
        // for events, which an input (here the clock) asks for.
        if rtc.handle_input(Input::Timeout(now)).is_err() {
            return Err(WebRtcError::Refused("the session did not start".into()));
        }
        self.rtc = Some(rtc);
        self.poll(now, &mut |_| {}, &mut |_| {});
        let answer = answer.to_sdp_string();
        // The m-line's mid is also in the answer itself, should the event not have come yet.
        let named = answer
            .lines()
            .find_map(|line| line.strip_prefix("a=mid:"))
            .map(|mid| Mid::from(mid.trim()));
        let Some(mid) = self.mid.or(named) else {
            tracing::debug!(%answer, "an answer without audio");
            self.rtc = None;
            return Err(WebRtcError::NoAudio("no audio m-line"));
        };
        self.mid = Some(mid);
        let rtc = self.rtc.as_mut().expect("set just above");
        let writer = rtc.writer(mid).ok_or(WebRtcError::NoAudio("no sender"))?;
        for params in writer.payload_params() {
            let spec = params.spec();
            match spec.codec {
                RtcCodec::PCMU | RtcCodec::PCMA => self.audio_pt = Some(params.pt()),
                RtcCodec::Tele if spec.clock_rate == Frequency::EIGHT_KHZ => {
                    self.telephone_pt = Some(params.pt())
                }
                _ => {}
            }
        }
        if self.audio_pt.is_none() {
            tracing::debug!(%answer, "an answer without G.711");
            self.rtc = None;
            return Err(WebRtcError::NoAudio("PCMU or PCMA needed"));
        }
        Ok((answer, self.telephone_pt.map(|pt| *pt)))
    }

    /// When the session wants `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timeout
    }

    /// A datagram from the browser: STUN, DTLS or SRTP. Media packets come out through
    /// `to_room` as RTP, notes through `note`.
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        to_room: &mut dyn FnMut(&mut [u8]),
        note: &mut dyn FnMut(Note),
    ) {
        let Some(rtc) = self.rtc.as_mut() else {
            return;
        };
        let Ok(contents) = datagram.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.local,
                contents,
            },
        );
        if rtc.accepts(&input) && rtc.handle_input(input).is_err() {
            note(Note::Lost);
        }
        self.poll(now, to_room, note);
    }

    /// The session's timers (DTLS retransmits, RTCP, ICE consent).
    pub fn handle_timeout(&mut self, now: Instant, note: &mut dyn FnMut(Note)) {
        let Some(rtc) = self.rtc.as_mut() else {
            return;
        };
        if rtc.handle_input(Input::Timeout(now)).is_err() {
            note(Note::Lost);
        }
        self.poll(now, &mut |_| {}, note);
    }

    /// A packet the room sends to the browser: written as a frame with its own timestamp.
    /// Telephone-events are not passed on (the agent does not need to hear the caller's keys).
    pub fn send(&mut self, now: Instant, packet: &[u8]) {
        let (Some(rtc), Some(mid), Some(pt)) = (self.rtc.as_mut(), self.mid, self.audio_pt) else {
            return;
        };
        if !self.connected {
            return;
        }
        let Some(header) = rtp::parse(packet) else {
            return;
        };
        if header.payload_type != *pt {
            return;
        }
        let Some(writer) = rtc.writer(mid) else {
            return;
        };
        let time = MediaTime::new(u64::from(header.timestamp), Frequency::EIGHT_KHZ);
        let payload = &packet[header.payload_start..header.payload_end];
        if writer.write(pt, now, time, payload).is_ok() {
            self.sent = self.sent.wrapping_add(1);
        }
        self.poll(now, &mut |_| {}, &mut |_| {});
    }

    /// Drains the session: datagrams to the socket, frames to the room, until it says when it
    /// wants to be woken.
    fn poll(
        &mut self,
        now: Instant,
        to_room: &mut dyn FnMut(&mut [u8]),
        note: &mut dyn FnMut(Note),
    ) {
        let mut packet = [0u8; 1500];
        loop {
            let Some(rtc) = self.rtc.as_mut() else {
                return;
            };
            let output = match rtc.poll_output() {
                Ok(output) => output,
                Err(error) => {
                    tracing::debug!(%error, "browser session failed");
                    self.timeout = None;
                    note(Note::Lost);
                    return;
                }
            };
            match output {
                Output::Timeout(at) => {
                    self.timeout = Some(at.max(now));
                    return;
                }
                Output::Transmit(transmit) => {
                    if let Err(error) = self
                        .socket
                        .try_send_to(&transmit.contents, transmit.destination)
                    {
                        tracing::trace!(%error, "WebRTC datagram not sent");
                    }
                }
                Output::Event(event) => match event {
                    Event::MediaAdded(added) if added.kind == MediaKind::Audio => {
                        self.mid.get_or_insert(added.mid);
                    }
                    Event::Connected => {
                        self.connected = true;
                        note(Note::Connected);
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        note(Note::Lost);
                    }
                    Event::MediaData(data) => {
                        let length = 12 + data.data.len();
                        if length > packet.len() {
                            continue;
                        }
                        packet[0] = 0x80;
                        packet[1] = *data.pt & 0x7f;
                        packet[2..4]
                            .copy_from_slice(&(**data.seq_range.end() as u16).to_be_bytes());
                        packet[4..8].copy_from_slice(&(data.time.numer() as u32).to_be_bytes());
                        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
                        packet[12..length].copy_from_slice(&data.data);
                        self.received = self.received.wrapping_add(1);
                        to_room(&mut packet[..length]);
                    }
                    _ => {}
                },
            }
        }
    }
}
