//! A WebRTC client for tests and the browser-leg benchmark: str0m as a browser would use it
//! (full ICE, the offering side, DTLS-SRTP, G.711 with telephone-events), over one
//! non-blocking UDP socket on 127.0.0.1. It is driven by calling `drive` now and then; it
//! sends a 20 ms G.711 frame each time `send_frame` is called and counts what it receives.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// One client session.
pub struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    pt: Option<Pt>,
    /// When the session wants to be woken next.
    timeout: Instant,
    /// RTP timestamp of the next frame we send.
    timestamp: u64,
    pub connected: bool,
    pub lost: bool,
    /// Audio frames received from the server, and their payload types.
    pub received: u64,
    pub received_pts: Vec<u8>,
    /// What the received audio frames decode to, in order (8 kHz samples).
    pub heard: Vec<i16>,
    pub sent: u64,
    /// The frequency of the tone `send_frame` sends, if set (else a quiet buzz).
    pub tone: Option<f64>,
    buffer: Vec<u8>,
}

impl Client {
    /// A new session and its SDP offer.
    pub fn offer(now: Instant) -> (Client, String) {
        let mut config = RtcConfig::new()
            .clear_codecs()
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .set_stats_interval(None);
        config.codec_config().add_config(
            101.into(),
            None,
            Codec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(now);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a local UDP port");
        socket.set_nonblocking(true).expect("non-blocking");
        let local = socket.local_addr().expect("bound");
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("loopback candidate"));
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().expect("an offer with one m-line");
        let client = Client {
            rtc,
            socket,
            local,
            mid,
            pending: Some(pending),
            pt: None,
            timeout: now,
            timestamp: 0,
            connected: false,
            lost: false,
            received: 0,
            received_pts: Vec::new(),
            heard: Vec::new(),
            sent: 0,
            tone: None,
            buffer: vec![0; 2000],
        };
        (client, offer.to_sdp_string())
    }

    /// The server's answer.
    pub fn answer(&mut self, now: Instant, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).expect("the server's answer parses");
        let pending = self.pending.take().expect("an offer is pending");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("the answer fits the offer");
        let writer = self.rtc.writer(self.mid).expect("the audio m-line");
        self.pt = writer
            .payload_params()
            .find(|p| matches!(p.spec().codec, Codec::PCMU | Codec::PCMA))
            .map(|p| p.pt());
        self.poll(now);
    }

    /// The audio payload type the answer chose (0 PCMU, 8 PCMA).
    pub fn payload_type(&self) -> Option<u8> {
        self.pt.map(|pt| *pt)
    }

    /// Reads what arrived, runs timers that are due, and sends what the session has to send.
    pub fn drive(&mut self, now: Instant) {
        while let Ok((length, from)) = self.socket.recv_from(&mut self.buffer) {
            let Ok(contents) = self.buffer[..length].try_into() else {
                continue;
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
            if self.rtc.handle_input(input).is_err() {
                self.lost = true;
            }
            self.poll(now);
        }
        if now >= self.timeout {
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.lost = true;
            }
            self.poll(now);
        }
    }

    /// One 20 ms G.711 frame (a quiet buzz, or the client's tone), once connected.
    pub fn send_frame(&mut self, now: Instant) {
        let Some(pt) = self.pt.filter(|_| self.connected) else {
            return;
        };
        let mut payload = Vec::with_capacity(160);
        if let Some(frequency) = self.tone {
            let samples: Vec<i16> = (self.timestamp..self.timestamp + 160)
                .map(|n| {
                    let t = n as f64 / 8000.0;
                    ((t * frequency * std::f64::consts::TAU).sin() * 6000.0) as i16
                })
                .collect();
            switchboard_media::rtp::encode(*pt, &samples, &mut payload);
        } else {
            // Alternating codes around silence: energy in the band, cheap to make.
            payload.extend((0..160).map(|i| if (i / 4) % 2 == 0 { 0x9A } else { 0x1A }));
        }
        let time = MediaTime::new(self.timestamp, Frequency::EIGHT_KHZ);
        self.timestamp += 160;
        if let Some(writer) = self.rtc.writer(self.mid) {
            if writer.write(pt, now, time, &payload[..]).is_ok() {
                self.sent += 1;
            }
        }
        self.poll(now);
    }

    fn poll(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.timeout = at.max(now);
                    return;
                }
                Ok(Output::Transmit(transmit)) => {
                    let _ = self
                        .socket
                        .send_to(&transmit.contents, transmit.destination);
                }
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(Event::MediaData(data))) => {
                    self.received += 1;
                    if !self.received_pts.contains(&*data.pt) {
                        self.received_pts.push(*data.pt);
                    }
                    if matches!(*data.pt, 0 | 8) {
                        switchboard_media::rtp::decode(*data.pt, &data.data, &mut self.heard);
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => {
                    self.lost = true;
                    return;
                }
            }
        }
    }
}
