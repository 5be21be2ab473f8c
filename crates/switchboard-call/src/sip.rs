//! SIP legs: accepting a caller's INVITE (trunk admission and limits, numbers, offers), the
//! INVITEs we send to phones and numbers, their answers, challenges and failures, BYE and
//! CANCEL from either side, hold by re-INVITE, DTMF by SIP INFO, and the ACK that carries a
//! late answer. What a leg's events mean for its call is `call.rs`'s business; this file only
//! speaks SIP.

use crate::call::{Call, CallState, EndReason};
use crate::engine::{reason, Engine, ALLOW};
use crate::ids::LegId;
use crate::interface::{CallMetric, MediaOp};
use crate::legs::{Leg, LegRole, Opening, Party, Signalling, SipLeg};
use crate::registrar::Admission;

use std::net::SocketAddr;
use std::time::Instant;
use switchboard_core::voice::{header_properties, CallRecord, Trunk};
use switchboard_core::CallId;
use switchboard_sip::dialog::Dialog;
use switchboard_sip::fields::{self, uri_of, user_of};
use switchboard_sip::transaction::{Key, Peer};
use switchboard_sip::{digest, sdp, Headers, Message, Method, Request, Response};

impl Engine {
    // ----- a caller's INVITE -----

    pub(crate) fn on_invite(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
        key: Option<Key>,
    ) {
        let tag = self.token();
        let wall = self.wall(now);
        let dialled = user_of(&request.uri)
            .or_else(|| request.headers.get("To").map(uri_of).and_then(user_of))
            .map(fields::unescape)
            .unwrap_or_default();
        let ours = self.directory.did(&dialled).is_some()
            || switchboard_core::emergency::holder(&self.callbacks, &dialled, wall).is_some();
        let trunk =
            match self
                .registrar
                .admit_trunk(wall, &request, peer, &self.directory, &tag, !ours)
            {
                Admission::Allowed(trunk) => trunk,
                Admission::Phone(agent) => {
                    self.on_phone_invite(now, request, peer, key, agent);
                    return;
                }
                Admission::Refused(answer) => {
                    self.answer(now, &key, peer, answer);
                    return;
                }
            };
        // A number leased to an agent after their emergency call goes to them (EMG-4), whether
        // or not it is also an entry point.
        let callback = switchboard_core::emergency::holder(&self.callbacks, &dialled, wall);
        let (number, language, entry) = match self.directory.did(&dialled) {
            Some(did) => (
                did.number.as_str().to_owned(),
                did.language.clone(),
                did.entry,
            ),
            None if callback.is_some() => (dialled.clone(), None, None),
            None => {
                self.reply(now, &request, &key, peer, 404);
                return;
            }
        };
        let Ok(offer) = self.read_offer(now, &request, &key, peer, &tag) else {
            return;
        };
        let Some(call_id) = request.headers.get("Call-ID").map(str::to_owned) else {
            self.reply(now, &request, &key, peer, 400);
            return;
        };
        if let Some(retry) = self.trunk_full(now, &trunk) {
            tracing::warn!(trunk = %trunk.name.as_str(), "a trunk is at its call limit; refusing a call");
            let mut response = Response::to(&request, 503, reason(503), Some(&tag));
            response.headers.push("Retry-After", &retry.to_string());
            self.respond(now, &key, peer, response);
            return;
        }
        let caller = request
            .headers
            .get("From")
            .map(uri_of)
            .and_then(user_of)
            .unwrap_or("anonymous")
            .to_owned();
        let properties = header_properties(&trunk.header_flags, |name| request.headers.get(name));
        let id = CallId::from_uuid(self.random.uuid_v7(wall));
        let leg = LegId(self.next_id());
        let codec = offer
            .as_ref()
            .and_then(sdp::choose_codec)
            .unwrap_or(sdp::PCMU);
        self.legs.insert(Leg {
            id: leg,
            call: id,
            role: LegRole::Customer,
            party: Party::Caller,
            signalling: Signalling::Sip(Box::new(SipLeg::answering(
                peer, call_id, request, key, offer,
            ))),
            port: None,
            codec,
            answered: false,
            opening: Some(Opening::Answer),
        });
        let record = CallRecord {
            properties,
            emergency: callback.map(|_| switchboard_core::voice::Emergency::Callback),
            ..CallRecord::new(id, caller, number, wall)
        };
        self.calls.insert(
            id,
            Call {
                language,
                menu: entry,
                trunk: Some(trunk.id),
                callback,
                ..Call::new(record, CallState::Answering, leg)
            },
        );
        self.trunk_use.entry(trunk.id).or_default().calls += 1;
        self.media(MediaOp::Open {
            call: id,
            leg,
            kind: crate::interface::MediaKind::Rtp,
        });
    }

    /// The offer an INVITE makes (`None` for a late offer), or the refusal already sent for
    /// it: an answer the sender cannot take, a body that is not SDP, no codec in common.
    pub(crate) fn read_offer(
        &mut self,
        now: Instant,
        request: &Request,
        key: &Option<Key>,
        peer: Peer,
        tag: &str,
    ) -> Result<Option<sdp::Audio>, ()> {
        if !accepts_sdp(request) {
            // RFC 3261 §21.4.7: our answer is SDP, which the caller says it cannot take.
            let mut response = Response::to(request, 406, reason(406), Some(tag));
            response.headers.push("Accept", "application/sdp");
            self.respond(now, key, peer, response);
            return Err(());
        }
        if request.body.is_empty() {
            return Ok(None);
        }
        let content_type = request.headers.get("Content-Type").unwrap_or_default();
        if !content_type
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/sdp")
        {
            let mut response = Response::to(request, 415, reason(415), Some(tag));
            response.headers.push("Accept", "application/sdp");
            self.respond(now, key, peer, response);
            return Err(());
        }
        match sdp::parse(&request.body) {
            Ok(audio) if sdp::choose_codec(&audio).is_some() => Ok(Some(audio)),
            _ => {
                self.reply(now, request, key, peer, 488);
                Err(())
            }
        }
    }

    pub(crate) fn answer_caller(&mut self, now: Instant, leg: LegId) {
        let local_tag = self.token();
        let version = self.next_id();
        let Some(state) = self.legs.get_mut(leg) else {
            return;
        };
        let (port, codec, call) = (state.port.unwrap_or(0), state.codec, state.call);
        let Some(sip) = state.sip_mut() else {
            return;
        };
        let Some(invite) = sip.invite.take() else {
            return;
        };
        let offer = sip.offer.take();
        let peer = sip.peer;
        let contact = if peer.transport == switchboard_sip::Transport::Tcp {
            format!("<sip:switchboard@{};transport=tcp>", self.config.local)
        } else {
            format!("<sip:switchboard@{}>", self.config.local)
        };
        let dialog = Dialog::as_uas(&invite, &local_tag, &contact);
        sip.dialog = Some(dialog);
        let key = sip.invite_key.clone();
        state.answered = true;
        let ip = self.config.media_ip;
        let body = match &offer {
            Some(offer) => sdp::write(
                leg.0,
                version,
                ip,
                port,
                &[codec],
                offer.telephone_event,
                sdp::Direction::SendRecv,
            ),
            None => sdp::write(
                leg.0,
                version,
                ip,
                port,
                &[sdp::PCMU, sdp::PCMA],
                Some(sdp::TELEPHONE_EVENT),
                sdp::Direction::SendRecv,
            ),
        };
        if let Some(offer) = &offer {
            self.media(MediaOp::Remote {
                leg,
                addr: SocketAddr::new(offer.address, offer.port),
                payload_type: codec,
                dtmf: offer.telephone_event,
            });
        }
        let mut response = Response::to(&invite, 200, "OK", Some(&local_tag));
        response.headers.push("Contact", &contact);
        response.headers.push("Allow", ALLOW);
        response.headers.push("Content-Type", "application/sdp");
        response.body = body;
        self.respond(now, &key, peer, response);
        if self.legs.get(leg).is_some_and(|l| l.role == LegRole::Agent) {
            // An agent's phone that dialled: answered, it takes its own call.
            self.leg_answered(now, leg);
            return;
        }
        let (entry, callback) = {
            let Some(call) = self.calls.get_mut(&call) else {
                return;
            };
            call.state = CallState::Menu;
            (call.menu, call.callback)
        };
        self.output(crate::interface::Output::Metric(CallMetric::Started));
        let at = now + self.config.ack_wait;
        self.schedule(at, crate::engine::Timer::AckWait { call });
        self.save(call);
        match callback {
            Some(agent) => {
                // Ahead of every waiting contact, past routing, capacity and presence.
                self.play(
                    call,
                    Vec::new(),
                    Some(crate::interface::Sound::Ringback),
                    false,
                );
                self.ring_agent(now, call, agent);
            }
            None => self.enter_node(now, call, entry),
        }
    }

    pub(crate) fn send_invite(&mut self, now: Instant, leg: LegId, opening: Opening) {
        let Opening::Invite {
            uri,
            to,
            from_user,
            display,
            emergency,
        } = opening
        else {
            return;
        };
        let Some(state) = self.legs.get(leg) else {
            return;
        };
        let (port, codec) = (state.port.unwrap_or(0), state.codec);
        let Some(sip) = state.sip() else {
            return;
        };
        let (peer, call_id) = (sip.peer, sip.call_id.clone());
        // An emergency call presents the callback number leased to the agent (EMG-3).
        let callback = emergency.as_ref().and_then(|e| e.callback.clone());
        let from_user = callback.unwrap_or_else(|| {
            sip.trunk
                .as_ref()
                .and_then(|t| t.caller_id.as_ref())
                .map_or(from_user, |c| c.as_str().to_owned())
        });
        let mut headers = Headers::default();
        headers.push("Via", &self.via(peer));
        headers.push("Max-Forwards", "70");
        let tag = self.token();
        let ip = self.config.media_ip;
        headers.push(
            "From",
            &format!("\"{display}\" <sip:{from_user}@{ip}>;tag={tag}"),
        );
        headers.push("To", &to);
        headers.push("Call-ID", &call_id);
        headers.push("CSeq", "1 INVITE");
        headers.push("Contact", &self.contact_header(peer));
        headers.push("Allow", ALLOW);
        let codecs = if codec == sdp::PCMA {
            [sdp::PCMA, sdp::PCMU]
        } else {
            [sdp::PCMU, sdp::PCMA]
        };
        let version = self.next_id();
        let offer = sdp::write(
            leg.0,
            version,
            ip,
            port,
            &codecs,
            Some(sdp::TELEPHONE_EVENT),
            sdp::Direction::SendRecv,
        );
        let body = match emergency {
            Some(emergency) => {
                headers.push("P-Asserted-Identity", &format!("<sip:{from_user}@{ip}>"));
                headers.push("Priority", "emergency");
                match &emergency.location {
                    // RFC 6442: the location by value, in a body part the header points to.
                    Some(pidf) => {
                        let cid = format!("{}@{ip}", self.token());
                        let boundary = format!("sb-{}", self.token());
                        headers.push("Geolocation", &format!("<cid:{cid}>"));
                        headers.push("Geolocation-Routing", "yes");
                        headers.push(
                            "Content-Type",
                            &format!("multipart/mixed;boundary={boundary}"),
                        );
                        multipart_with_location(&boundary, &offer, &cid, pidf)
                    }
                    None => {
                        headers.push("Content-Type", "application/sdp");
                        offer
                    }
                }
            }
            None => {
                headers.push("Content-Type", "application/sdp");
                offer
            }
        };
        let request = Request {
            method: Method::Invite,
            uri,
            headers,
            body,
        };
        let key = self.tx.send_request(now, request.clone(), peer);
        if let Some(state) = self.legs.get_mut(leg) {
            if let Some(sip) = state.sip_mut() {
                sip.invite = Some(request);
            }
        }
        self.legs.set_invite_key(leg, key);
    }

    pub(crate) fn on_response(&mut self, now: Instant, response: Response, key: Key) {
        let status = response.status;
        if let Some((request, peer)) = self.orphans.get(&key).cloned() {
            if status >= 200 {
                self.orphans.remove(&key);
            }
            if (200..300).contains(&status) {
                let mut dialog = Dialog::as_uac(&request, &response);
                let number = fields::cseq(&response.headers).map_or(1, |(n, _)| n);
                let via = self.via(peer);
                let ack = dialog.ack(number, &via);
                self.tx.send_stateless(Message::Request(ack), peer);
                let via = self.via(peer);
                let bye = dialog.request(Method::Bye, &via);
                self.tx.send_request(now, bye, peer);
            }
            return;
        }
        if key.method != Method::Invite || status < 200 {
            return;
        }
        let Some(leg) = self.legs.of_client_invite(&key) else {
            return;
        };
        if status >= 300 {
            if status == 401 || status == 407 {
                let random = self.token();
                let retry = self
                    .legs
                    .get(leg)
                    .and_then(|l| authorize(l, &response, random));
                if let (Some(retry), Some(state)) = (retry, self.legs.get_mut(leg)) {
                    let Some(sip) = state.sip_mut() else {
                        return;
                    };
                    sip.auth_tried = true;
                    sip.invite = Some(retry.clone());
                    let peer = sip.peer;
                    let new_key = self.tx.send_request(now, retry, peer);
                    self.legs.set_invite_key(leg, new_key);
                    return;
                }
            }
            self.leg_failed(now, leg, status);
            return;
        }
        // A 2xx: confirm the dialog with an ACK (again, for a retransmitted 2xx).
        let Some(state) = self.legs.get_mut(leg) else {
            return;
        };
        let Some(sip) = state.sip_mut() else {
            return;
        };
        let Some(invite) = sip.invite.as_ref() else {
            return;
        };
        let dialog = sip
            .dialog
            .get_or_insert_with(|| Dialog::as_uac(invite, &response))
            .clone();
        let peer = sip.peer;
        let number = fields::cseq(&response.headers).map_or(1, |(n, _)| n);
        let via = self.via(peer);
        let ack = dialog.ack(number, &via);
        self.tx.send_stateless(Message::Request(ack), peer);
        let Some(state) = self.legs.get_mut(leg) else {
            return;
        };
        if state.answered {
            return;
        }
        state.answered = true;
        if let Ok(answer) = sdp::parse(&response.body) {
            let codec = sdp::choose_codec(&answer).unwrap_or(sdp::PCMU);
            state.codec = codec;
            self.media(MediaOp::Remote {
                leg,
                addr: SocketAddr::new(answer.address, answer.port),
                payload_type: codec,
                dtmf: answer.telephone_event,
            });
        }
        self.leg_answered(now, leg);
    }

    // ----- requests within dialogs -----

    pub(crate) fn on_bye(&mut self, now: Instant, request: Request, peer: Peer, key: Option<Key>) {
        let Some(leg) = self.legs.of_dialog(&request) else {
            self.reply(now, &request, &key, peer, 481);
            return;
        };
        self.reply(now, &request, &key, peer, 200);
        self.remote_hung_up(now, leg);
    }

    pub(crate) fn on_cancel(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
        key: Option<Key>,
    ) {
        let invite_key = key.as_ref().map(Key::invite);
        let leg = invite_key
            .as_ref()
            .and_then(|k| self.legs.of_server_invite(k));
        let (Some(leg), Some(invite_key)) = (leg, invite_key) else {
            self.reply(now, &request, &key, peer, 481);
            return;
        };
        self.reply(now, &request, &key, peer, 200);
        if !self.tx.is_pending(&invite_key) {
            return;
        }
        // Not answered yet: the INVITE ends with 487 and the call never starts.
        let Some(state) = self.legs.get(leg) else {
            return;
        };
        let call = state.call;
        if let Some(invite) = state.sip().and_then(|s| s.invite.clone()) {
            self.reply(now, &invite, &Some(invite_key), peer, 487);
        }
        self.end_call(now, call, EndReason::CallerHungUp);
    }

    pub(crate) fn on_reinvite(
        &mut self,
        now: Instant,
        request: Request,
        peer: Peer,
        key: Option<Key>,
    ) {
        let Some(leg) = self.legs.of_dialog(&request) else {
            self.reply(now, &request, &key, peer, 481);
            return;
        };
        let offer = if request.body.is_empty() {
            None
        } else {
            match sdp::parse(&request.body) {
                Ok(offer) if sdp::choose_codec(&offer).is_some() => Some(offer),
                _ => {
                    self.reply(now, &request, &key, peer, 488);
                    return;
                }
            }
        };
        let contact = self.contact_header(peer);
        let version = self.next_id();
        let ip = self.config.media_ip;
        let Some(state) = self.legs.get_mut(leg) else {
            return;
        };
        let direction = offer
            .as_ref()
            .map_or(sdp::Direction::SendRecv, |o| o.direction);
        let codec = offer
            .as_ref()
            .and_then(sdp::choose_codec)
            .unwrap_or(state.codec);
        state.codec = codec;
        let (call, role, port) = (state.call, state.role, state.port.unwrap_or(0));
        let dialog_tag = state
            .sip()
            .and_then(|s| s.dialog.as_ref())
            .map(|d| d.local_tag.clone())
            .unwrap_or_default();
        if let Some(offer) = &offer {
            if !offer.address.is_unspecified() {
                self.media(MediaOp::Remote {
                    leg,
                    addr: SocketAddr::new(offer.address, offer.port),
                    payload_type: codec,
                    dtmf: offer.telephone_event,
                });
            }
        }
        let body = sdp::write(
            leg.0,
            version,
            ip,
            port,
            &[codec],
            offer.as_ref().and_then(|o| o.telephone_event),
            direction.answer(),
        );
        let mut response = Response::to(&request, 200, "OK", Some(&dialog_tag));
        response.headers.push("Contact", &contact);
        response.headers.push("Content-Type", "application/sdp");
        response.body = body;
        self.respond(now, &key, peer, response);
        let sends = matches!(
            direction,
            sdp::Direction::SendRecv | sdp::Direction::SendOnly
        );
        let current = self
            .calls
            .get(&call)
            .map(|c| (c.state, c.agent == Some(leg)));
        match (role, current) {
            (LegRole::Customer, _) => self.media(MediaOp::ExpectMedia { leg, expect: sends }),
            // The agent's phone put the caller on hold, or took them off it.
            (LegRole::Agent, Some((state, true))) => {
                if direction.is_hold() && state == CallState::Talking {
                    self.hold(call);
                } else if !direction.is_hold() && state == CallState::Held {
                    self.resume(call);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn on_info(&mut self, now: Instant, request: Request, peer: Peer, key: Option<Key>) {
        let Some(leg) = self.legs.of_dialog(&request) else {
            self.reply(now, &request, &key, peer, 481);
            return;
        };
        self.reply(now, &request, &key, peer, 200);
        let body = String::from_utf8_lossy(&request.body);
        let content_type = request
            .headers
            .get("Content-Type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let digit = if content_type.contains("dtmf-relay") {
            body.lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("Signal=")
                        .or(l.trim().strip_prefix("Signal ="))
                })
                .and_then(|s| s.trim().chars().next())
        } else if content_type.contains("application/dtmf") {
            body.trim().chars().next()
        } else {
            None
        };
        let customer = self
            .legs
            .get(leg)
            .filter(|l| l.role == LegRole::Customer)
            .map(|l| l.call);
        if let (Some(digit), Some(call)) = (digit, customer) {
            self.on_digit(now, call, digit);
        }
    }

    /// An ACK for our answer; after a late offer it carries the caller's answer.
    pub(crate) fn on_ack(&mut self, request: Request) {
        let Some(leg) = self.legs.of_dialog(&request) else {
            return;
        };
        let Some(state) = self.legs.get_mut(leg) else {
            return;
        };
        let customer = state.role == LegRole::Customer;
        let Some(sip) = state.sip_mut() else {
            return;
        };
        sip.acked = true;
        if !customer || !sip.late_offer || request.body.is_empty() {
            return;
        }
        if let Ok(answer) = sdp::parse(&request.body) {
            let codec = sdp::choose_codec(&answer).unwrap_or(sdp::PCMU);
            sip.late_offer = false;
            state.codec = codec;
            self.media(MediaOp::Remote {
                leg,
                addr: SocketAddr::new(answer.address, answer.port),
                payload_type: codec,
                dtmf: answer.telephone_event,
            });
        }
    }
}

impl Engine {
    /// `Some(seconds to wait)` when a new call would take the trunk over its limits; counts
    /// the call in the trunk's one-second window otherwise.
    fn trunk_full(&mut self, now: Instant, trunk: &Trunk) -> Option<u64> {
        let max_calls = trunk
            .max_calls
            .map_or(self.config.trunk_max_calls, |n| n as usize);
        let per_second = trunk
            .max_calls_per_second
            .unwrap_or(self.config.trunk_calls_per_second);
        let load = self.trunk_use.entry(trunk.id).or_default();
        if load.calls >= max_calls {
            return Some(5);
        }
        let window = load
            .window_start
            .filter(|start| now.duration_since(*start) < std::time::Duration::from_secs(1));
        if window.is_none() {
            load.window_start = Some(now);
            load.in_window = 0;
        }
        if load.in_window >= per_second {
            return Some(1);
        }
        load.in_window += 1;
        None
    }
}

/// Whether the request's Accept (if any) allows an SDP body in the answer.
fn accepts_sdp(request: &Request) -> bool {
    let accepts = request.headers.all("Accept");
    if accepts.is_empty() {
        return true;
    }
    accepts
        .iter()
        .flat_map(|value| value.split(','))
        .map(|range| {
            range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .any(|range| {
            range.is_empty()
                || range == "application/sdp"
                || range == "application/*"
                || range == "*/*"
        })
}

/// Our INVITE again with credentials for a trunk's challenge, once, if the trunk has them.
fn authorize(leg: &Leg, response: &Response, random: String) -> Option<Request> {
    let sip = leg.sip()?;
    if sip.auth_tried {
        return None;
    }
    let trunk = sip.trunk.as_ref()?;
    let (username, password) = (trunk.username.as_ref()?, trunk.secret.as_ref()?);
    let (header, answer_header) = match response.status {
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => ("WWW-Authenticate", "Authorization"),
    };
    let (realm, nonce) = digest::parse_challenge(response.headers.get(header)?)?;
    let mut retry = sip.invite.clone()?;
    let number = fields::cseq(&retry.headers).map_or(1, |(n, _)| n) + 1;
    retry.headers.set("CSeq", &format!("{number} INVITE"));
    let via = retry.headers.get("Via")?.to_owned();
    let fresh = fields::with_param(&via, "branch", &format!("z9hG4bK{random}"));
    retry.headers.set("Via", &fresh);
    let answer = digest::answer(
        username,
        password,
        &realm,
        &nonce,
        "INVITE",
        &retry.uri,
        &random[..16],
    );
    retry.headers.push(answer_header, &answer);
    Some(retry)
}

/// A multipart/mixed body (RFC 5621) of the SDP offer and the PIDF-LO (RFC 6442 §4.1).
fn multipart_with_location(boundary: &str, offer: &[u8], cid: &str, pidf: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(offer.len() + pidf.len() + 256);
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/sdp\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(offer);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pidf+xml\r\nContent-ID: <{cid}>\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(pidf.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}
