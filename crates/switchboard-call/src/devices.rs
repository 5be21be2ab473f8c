//! Where legs go and how they end, whatever carries them: an agent's devices (a registered
//! SIP phone and any open browser sessions, all rung at once, the first to answer taking the
//! call), a number through an outbound trunk, and the generic steps every leg shares: its
//! media opening, ringing once that is done, and hanging it up.

use crate::engine::Engine;
use crate::ids::{LegId, SessionId};
use crate::interface::{BrowserOp, MediaKind, MediaOp, Output};
use crate::legs::{BrowserLeg, Leg, LegRole, Opening, Party, Signalling, SipLeg};
use std::time::Instant;
use switchboard_core::voice::Trunk;
use switchboard_core::{CallId, UserId};
use switchboard_sip::sdp;
use switchboard_sip::transaction::{cancel_for, Peer};
use switchboard_sip::Method;

/// Where a new leg goes. Short-lived (a leg is placed at once), so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Device {
    /// A SIP endpoint (an agent's phone, a number through a trunk), with the INVITE to send.
    Sip {
        peer: Peer,
        opening: Opening,
        trunk: Option<Trunk>,
    },
    /// An agent's browser session.
    Browser { session: SessionId },
}

impl Engine {
    /// Every device of an agent that can ring now: their registered phone and their open
    /// browser sessions.
    pub(crate) fn devices_of(&mut self, now: Instant, call: CallId, agent: UserId) -> Vec<Device> {
        // What the phone shows: who calls, or for the agent's own call, whom they call.
        let caller = self
            .calls
            .get(&call)
            .map(|c| match c.record.direction {
                switchboard_core::voice::CallDirection::Outbound => c.record.did.clone(),
                switchboard_core::voice::CallDirection::Inbound => c.record.caller.clone(),
            })
            .unwrap_or_default();
        let mut devices = Vec::new();
        if let Some(target) = self.registrar.target(now, agent) {
            devices.push(Device::Sip {
                peer: target.peer,
                opening: Opening::Invite {
                    uri: target.uri,
                    to: format!("<sip:{}@{}>", target.username, self.config.media_ip),
                    from_user: caller.clone(),
                    display: caller,
                    emergency: None,
                },
                trunk: None,
            });
        }
        for session in self.browsers.get(&agent).into_iter().flatten() {
            devices.push(Device::Browser { session: *session });
        }
        devices
    }

    /// Creates a leg of `call` on `device` and opens its media; the device is rung (or sent its
    /// INVITE) once the media plane is ready. Returns the leg.
    pub(crate) fn place_leg(
        &mut self,
        call: CallId,
        role: LegRole,
        party: Party,
        device: Device,
    ) -> LegId {
        let leg = LegId(self.next_id());
        let codec = self
            .calls
            .get(&call)
            .and_then(|c| self.legs.get(c.customer))
            .map_or(sdp::PCMU, |l| l.codec);
        let (signalling, opening, kind) = match device {
            Device::Sip {
                peer,
                opening,
                trunk,
            } => {
                let call_id = format!("{}@{}", self.token(), self.config.media_ip);
                let sip = SipLeg {
                    peer,
                    call_id,
                    dialog: None,
                    invite: None,
                    invite_key: None,
                    outbound: true,
                    offer: None,
                    late_offer: false,
                    trunk,
                    auth_tried: false,
                    acked: false,
                };
                (Signalling::Sip(Box::new(sip)), opening, MediaKind::Rtp)
            }
            Device::Browser { session } => (
                Signalling::Browser(BrowserLeg { session }),
                Opening::Ring,
                MediaKind::Browser { session },
            ),
        };
        self.legs.insert(Leg {
            id: leg,
            call,
            role,
            party,
            signalling,
            port: None,
            codec,
            answered: false,
            opening: Some(opening),
        });
        if let Some(state) = self.calls.get_mut(&call) {
            match role {
                LegRole::Consult => state.consult = Some(leg),
                LegRole::Agent => state.ringing.push(leg),
                LegRole::Customer | LegRole::Monitor => {}
            }
        }
        self.media(MediaOp::Open { call, leg, kind });
        leg
    }

    /// The media plane opened a leg: answer, send or ring what waited for it.
    pub(crate) fn media_ready(&mut self, now: Instant, leg: LegId, port: u16) {
        let Some(state) = self.legs.get_mut(leg) else {
            return;
        };
        state.port = Some(port);
        match state.opening.take() {
            Some(Opening::Answer) => self.answer_caller(now, leg),
            Some(invite @ Opening::Invite { .. }) => self.send_invite(now, leg, invite),
            Some(Opening::Ring) => {
                let (call, session) = match (state.browser(), state.call) {
                    (Some(browser), call) => (call, browser.session),
                    _ => return,
                };
                if let Some(record) = self.calls.get(&call).map(|c| c.record.clone()) {
                    self.output(Output::Browser(BrowserOp::Ring {
                        session,
                        leg,
                        call: Box::new(record),
                    }));
                }
            }
            None => {}
        }
    }

    pub(crate) fn media_unavailable(&mut self, now: Instant, leg: LegId) {
        let Some(state) = self.legs.get(leg) else {
            return;
        };
        let ours = !matches!(state.party, Party::Caller);
        match state.role {
            // The number an agent dials: their call fails like an unanswered one.
            LegRole::Customer if ours => self.leg_failed(now, leg, 503),
            LegRole::Customer => {
                tracing::warn!("no free RTP ports; refusing a call");
                let call = state.call;
                if let Some(taken) = self.legs.remove(leg) {
                    if let Some(sip) = taken.sip() {
                        if let Some(invite) = &sip.invite {
                            self.reply(now, invite, &sip.invite_key.clone(), sip.peer, 503);
                        }
                    }
                }
                if let Some(state) = self.calls.remove(&call) {
                    if let Some(load) = state.trunk.and_then(|t| self.trunk_use.get_mut(&t)) {
                        load.calls = load.calls.saturating_sub(1);
                    }
                }
            }
            LegRole::Agent | LegRole::Consult | LegRole::Monitor => self.leg_failed(now, leg, 503),
        }
    }

    /// Hangs up a leg of ours, then closes its media. SIP: BYE when answered, CANCEL while our
    /// INVITE is pending (a 2xx that still arrives gets ACK and BYE), a final refusal for an
    /// unanswered INVITE of theirs. A browser session is told the leg is over.
    pub(crate) fn hang_up_leg(&mut self, now: Instant, leg: LegId) {
        let Some(mut taken) = self.take_leg(leg) else {
            return;
        };
        let answered = taken.answered;
        match &mut taken.signalling {
            Signalling::Browser(browser) => {
                self.output(Output::Browser(BrowserOp::Stop {
                    session: browser.session,
                    leg,
                }));
            }
            Signalling::Sip(sip) => {
                let peer = sip.peer;
                if answered {
                    if let Some(dialog) = sip.dialog.as_mut() {
                        let via = self.via(peer);
                        let bye = dialog.request(Method::Bye, &via);
                        self.tx.send_request(now, bye, peer);
                    }
                } else if sip.outbound {
                    if let (Some(key), Some(invite)) = (sip.invite_key.take(), sip.invite.as_ref())
                    {
                        let cancel = cancel_for(invite);
                        self.tx.send_request(now, cancel, peer);
                        self.orphans.insert(key, (invite.clone(), peer));
                    }
                } else if let Some(invite) = sip.invite.clone() {
                    let key = sip.invite_key.clone();
                    self.reply(now, &invite, &key, peer, 480);
                }
            }
        }
    }
}
