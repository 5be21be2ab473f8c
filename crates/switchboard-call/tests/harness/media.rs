//! The media plane as the call logic sees it: ports handed out at once (or refused when the
//! test says the pool is empty), and each leg's mix-matrix row, playback and remote address
//! kept so a story can check who hears whom.

use std::collections::HashMap;
use std::net::SocketAddr;
use switchboard_call::{LegId, MediaEvent, MediaOp};
use switchboard_core::CallId;

#[derive(Debug, Default, Clone)]
pub struct Leg {
    pub call: Option<CallId>,
    pub remote: Option<(SocketAddr, u8)>,
    pub hears: Vec<LegId>,
    /// The token of what it plays, if anything.
    pub playing: Option<u64>,
    pub expects_media: bool,
    pub closed: bool,
}

#[derive(Default)]
pub struct Media {
    next_port: u16,
    pub legs: HashMap<LegId, Leg>,
    /// No port pair is free.
    pub exhausted: bool,
    /// Opening media takes a while: `Ready` answers wait in `held` until this is cleared.
    pub slow: bool,
    pub held: Vec<MediaEvent>,
}

impl Media {
    pub fn apply(&mut self, op: MediaOp) -> Option<MediaEvent> {
        match op {
            MediaOp::Open { call, leg } => {
                if self.exhausted {
                    return Some(MediaEvent::Unavailable { leg });
                }
                self.next_port += 2;
                let port = 40_000 + self.next_port;
                self.legs.insert(
                    leg,
                    Leg {
                        call: Some(call),
                        expects_media: true,
                        ..Leg::default()
                    },
                );
                let ready = MediaEvent::Ready { leg, port };
                if self.slow {
                    self.held.push(ready);
                    return None;
                }
                Some(ready)
            }
            MediaOp::Remote {
                leg,
                addr,
                payload_type,
                ..
            } => {
                self.leg(leg).remote = Some((addr, payload_type));
                None
            }
            MediaOp::Hears { leg, sources } => {
                self.leg(leg).hears = sources;
                None
            }
            MediaOp::Play { leg, token, .. } => {
                self.leg(leg).playing = Some(token);
                None
            }
            MediaOp::StopPlaying { leg } => {
                self.leg(leg).playing = None;
                None
            }
            MediaOp::ExpectMedia { leg, expect } => {
                self.leg(leg).expects_media = expect;
                None
            }
            MediaOp::Close { leg } => {
                let state = self.leg(leg);
                state.closed = true;
                Some(MediaEvent::Closed {
                    leg,
                    received: 0,
                    sent: 0,
                })
            }
        }
    }

    fn leg(&mut self, leg: LegId) -> &mut Leg {
        self.legs.entry(leg).or_default()
    }

    /// The open legs of a call.
    pub fn open_legs(&self, call: CallId) -> Vec<(LegId, &Leg)> {
        let mut legs: Vec<_> = self
            .legs
            .iter()
            .filter(|(_, l)| l.call == Some(call) && !l.closed)
            .map(|(id, l)| (*id, l))
            .collect();
        legs.sort_by_key(|(id, _)| *id);
        legs
    }

    /// The leg whose far end is at `addr`.
    pub fn leg_to(&self, addr: SocketAddr) -> Option<(LegId, &Leg)> {
        self.legs
            .iter()
            .find(|(_, l)| !l.closed && l.remote.map(|(a, _)| a) == Some(addr))
            .map(|(id, l)| (*id, l))
    }
}
