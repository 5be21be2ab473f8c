//! Call legs and the one table that finds them. A leg is one party's connection to a call
//! (the customer, an agent, a consult target), whatever carries it: a SIP dialog, or an
//! agent's browser session (WebRTC, negotiated by the shell over the agent's WebSocket). The
//! call logic asks a leg to ring, answer or hang up and hears that it answered, failed or hung
//! up, without caring which. `Legs` keeps the indices that find a leg from a SIP message
//! (Call-ID, INVITE transactions) and is the only place that changes them, so they cannot
//! drift apart.

use crate::ids::{LegId, SessionId};
use std::collections::HashMap;
use switchboard_core::voice::Trunk;
use switchboard_core::{CallId, UserId};
use switchboard_sip::dialog::Dialog;
use switchboard_sip::transaction::{Key, Peer};
use switchboard_sip::{sdp, Request};

/// What a leg is to its call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LegRole {
    /// Whoever called in: the call exists for them.
    Customer,
    /// The agent (or number) the customer talks to, or whose phone rings for them.
    Agent,
    /// A transfer target the agent talks to before handing the customer over.
    Consult,
    /// A supervisor listening, coaching or barging in.
    Monitor,
}

/// Who is on the far end of a leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Party {
    Caller,
    Agent(UserId),
    Number(String),
}

/// What carries a leg.
#[derive(Debug)]
pub enum Signalling {
    Sip(Box<SipLeg>),
    Browser(BrowserLeg),
}

/// A leg carried by an agent's browser session.
#[derive(Debug)]
pub struct BrowserLeg {
    pub session: SessionId,
}

/// A leg carried by a SIP dialog, in either direction.
#[derive(Debug)]
pub struct SipLeg {
    pub peer: Peer,
    pub call_id: String,
    /// Set when the leg is answered (ours for an inbound leg, theirs for an outbound one).
    pub dialog: Option<Dialog>,
    /// The INVITE: the caller's (inbound, until answered) or ours (outbound: for CANCEL and an
    /// authentication retry).
    pub invite: Option<Request>,
    /// Inbound: the INVITE's server transaction while unanswered. Outbound: our INVITE's client
    /// transaction.
    pub invite_key: Option<Key>,
    pub outbound: bool,
    /// Inbound: the offer in the INVITE, until it is answered.
    pub offer: Option<sdp::Audio>,
    /// The INVITE had no offer: ours went in the 200 and the answer comes in the ACK.
    pub late_offer: bool,
    /// The outbound trunk the leg goes through (its credentials answer a challenge).
    pub trunk: Option<Trunk>,
    pub auth_tried: bool,
    /// Inbound: the caller acknowledged our answer.
    pub acked: bool,
}

impl SipLeg {
    /// The leg of an INVITE that reached us (a caller's, or an agent's phone dialling out),
    /// until it is answered.
    pub fn answering(
        peer: Peer,
        call_id: String,
        invite: Request,
        invite_key: Option<Key>,
        offer: Option<sdp::Audio>,
    ) -> Self {
        SipLeg {
            peer,
            call_id,
            dialog: None,
            late_offer: offer.is_none(),
            offer,
            invite: Some(invite),
            invite_key,
            outbound: false,
            trunk: None,
            auth_tried: false,
            acked: false,
        }
    }
}

/// What happens once a leg's media is open.
#[derive(Debug, Clone)]
pub enum Opening {
    /// Answer the caller's INVITE.
    Answer,
    /// Ring the browser session.
    Ring,
    /// Send our INVITE to `uri` with `to` as the To header (and ring for `ring` when an agent).
    Invite {
        uri: String,
        to: String,
        from_user: String,
        display: String,
        /// An emergency call's INVITE: the callback number and the location it carries.
        emergency: Option<Box<crate::interface::EmergencyDial>>,
    },
}

#[derive(Debug)]
pub struct Leg {
    pub id: LegId,
    pub call: CallId,
    pub role: LegRole,
    pub party: Party,
    pub signalling: Signalling,
    /// The local RTP port, once the media plane opened it.
    pub port: Option<u16>,
    /// The payload type (PCMU or PCMA) spoken with the far end.
    pub codec: u8,
    pub answered: bool,
    /// Waiting for media before this can happen.
    pub opening: Option<Opening>,
}

impl Leg {
    pub fn sip(&self) -> Option<&SipLeg> {
        match &self.signalling {
            Signalling::Sip(sip) => Some(sip),
            Signalling::Browser(_) => None,
        }
    }

    pub fn sip_mut(&mut self) -> Option<&mut SipLeg> {
        match &mut self.signalling {
            Signalling::Sip(sip) => Some(sip),
            Signalling::Browser(_) => None,
        }
    }

    pub fn browser(&self) -> Option<&BrowserLeg> {
        match &self.signalling {
            Signalling::Browser(browser) => Some(browser),
            Signalling::Sip(_) => None,
        }
    }
}

#[derive(Default)]
pub struct Legs {
    legs: HashMap<LegId, Leg>,
    by_call_id: HashMap<String, LegId>,
    by_server_invite: HashMap<Key, LegId>,
    by_client_invite: HashMap<Key, LegId>,
}

impl Legs {
    pub fn insert(&mut self, leg: Leg) {
        if let Some(sip) = leg.sip() {
            self.by_call_id.insert(sip.call_id.clone(), leg.id);
            if let Some(key) = &sip.invite_key {
                if sip.outbound {
                    self.by_client_invite.insert(key.clone(), leg.id);
                } else {
                    self.by_server_invite.insert(key.clone(), leg.id);
                }
            }
        }
        self.legs.insert(leg.id, leg);
    }

    /// Takes a leg out, with every index entry that points at it.
    pub fn remove(&mut self, id: LegId) -> Option<Leg> {
        let leg = self.legs.remove(&id)?;
        let Some(sip) = leg.sip() else {
            return Some(leg);
        };
        if self.by_call_id.get(&sip.call_id) == Some(&id) {
            self.by_call_id.remove(&sip.call_id);
        }
        if let Some(key) = &sip.invite_key {
            let index = if sip.outbound {
                &mut self.by_client_invite
            } else {
                &mut self.by_server_invite
            };
            if index.get(key) == Some(&id) {
                index.remove(key);
            }
        }
        Some(leg)
    }

    pub fn get(&self, id: LegId) -> Option<&Leg> {
        self.legs.get(&id)
    }

    pub fn get_mut(&mut self, id: LegId) -> Option<&mut Leg> {
        self.legs.get_mut(&id)
    }

    /// Replaces the INVITE transaction key of a leg (an outbound retry with credentials, or an
    /// inbound INVITE that got its final answer: `None`).
    pub fn set_invite_key(&mut self, id: LegId, key: Option<Key>) {
        let Some(sip) = self.legs.get_mut(&id).and_then(Leg::sip_mut) else {
            return;
        };
        let index = if sip.outbound {
            &mut self.by_client_invite
        } else {
            &mut self.by_server_invite
        };
        if let Some(old) = sip.invite_key.take() {
            index.remove(&old);
        }
        if let Some(key) = &key {
            index.insert(key.clone(), id);
        }
        sip.invite_key = key;
    }

    /// The leg a request within a dialog belongs to: its Call-ID and both tags must match.
    pub fn of_dialog(&self, request: &Request) -> Option<LegId> {
        let id = *self.by_call_id.get(request.headers.get("Call-ID")?)?;
        let dialog = self.legs.get(&id)?.sip()?.dialog.as_ref()?;
        dialog.matches(request).then_some(id)
    }

    /// The leg with this SIP Call-ID, dialog or not.
    pub fn of_call_id(&self, call_id: &str) -> Option<LegId> {
        self.by_call_id.get(call_id).copied()
    }

    pub fn of_server_invite(&self, key: &Key) -> Option<LegId> {
        self.by_server_invite.get(key).copied()
    }

    pub fn of_client_invite(&self, key: &Key) -> Option<LegId> {
        self.by_client_invite.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    /// The legs a browser session carries.
    pub fn of_session(&self, session: SessionId) -> Vec<LegId> {
        let mut legs: Vec<LegId> = self
            .legs
            .values()
            .filter(|l| l.browser().is_some_and(|b| b.session == session))
            .map(|l| l.id)
            .collect();
        legs.sort();
        legs
    }
}
