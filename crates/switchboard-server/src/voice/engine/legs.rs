//! The legs of a call: ringing agents and numbers, their answers and failures, hang-ups from
//! either side, and hold by re-INVITE.

use super::*;

impl Engine {
    pub(super) async fn ring_agent(&mut self, call: u64, agent: UserId) {
        let Some((uri, peer, username)) = self.phone_target(agent) else {
            tracing::info!(%agent, "the agent has no registered phone; trying the next agent");
            self.missed(call, agent);
            return;
        };
        let Some(state) = self.calls.get(&call) else {
            return;
        };
        let caller = state.record.caller.clone();
        let codec = state.caller.media.codec();
        let target = (uri, peer, username);
        let leg = self
            .call_phone(call, Side::Other, agent, target, &caller, codec)
            .await;
        let Some(leg) = leg else {
            self.missed(call, agent);
            return;
        };
        let ring = Duration::from_secs(self.app.config.voice.ring_seconds);
        self.schedule(Instant::now() + ring, Timer::Ring { call, leg });
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = State::Ringing;
            state.record.agent = Some(agent);
            if state.record.ringing_at.is_none() {
                state.record.ringing_at = Some(Utc::now());
            }
        }
        self.save(call);
    }

    /// Rings an agent's registered phone (`target` from `phone_target`) as the call's `side` leg.
    pub(super) async fn call_phone(
        &mut self,
        call: u64,
        side: Side,
        agent: UserId,
        (uri, peer, username): (String, Peer, String),
        caller: &str,
        codec: u8,
    ) -> Option<u64> {
        let to = format!("<sip:{username}@{}>", self.ip);
        let party = Party::Agent(agent);
        self.place_call(call, side, party, uri, peer, caller, to, codec, None)
            .await
    }

    /// Sends an INVITE for a new leg and files it under `side`. Returns the leg's id.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn place_call(
        &mut self,
        call: u64,
        side: Side,
        party: Party,
        uri: String,
        peer: Peer,
        caller: &str,
        to: String,
        codec: u8,
        trunk: Option<Trunk>,
    ) -> Option<u64> {
        let leg_id = self.id() * 4 + if side == Side::Consult { 2 } else { 1 };
        let media = Leg::open(&self.ports, self.ip, leg_id, self.media_events.clone()).await?;
        let call_id = format!("{}@{}", random(), self.ip);
        let mut headers = Headers::default();
        headers.push("Via", &self.via(peer));
        headers.push("Max-Forwards", "70");
        let from_user = trunk
            .as_ref()
            .and_then(|t| t.caller_id.as_ref())
            .map(|c| c.as_str().to_owned())
            .unwrap_or_else(|| caller.to_owned());
        headers.push(
            "From",
            &format!(
                "\"{caller}\" <sip:{from_user}@{}>;tag={}",
                self.ip,
                random()
            ),
        );
        headers.push("To", &to);
        headers.push("Call-ID", &call_id);
        headers.push("CSeq", "1 INVITE");
        headers.push("Contact", &self.contact_header(peer));
        headers.push("Allow", ALLOW);
        headers.push("Content-Type", "application/sdp");
        let codecs = if codec == sdp::PCMA {
            [sdp::PCMA, sdp::PCMU]
        } else {
            [sdp::PCMU, sdp::PCMA]
        };
        let request = Request {
            method: Method::Invite,
            uri,
            headers,
            body: sdp::write(
                leg_id,
                1,
                self.ip,
                media.port,
                &codecs,
                Some(sdp::TELEPHONE_EVENT),
                sdp::Direction::SendRecv,
            ),
        };
        let key = self.tx.send_request(Instant::now(), request.clone(), peer);
        if let Some(key) = &key {
            self.clients.insert(key.clone(), (call, side));
        }
        self.dialogs.insert(call_id, (call, side));
        self.by_leg.insert(leg_id, (call, side));
        let leg = OtherLeg {
            id: leg_id,
            party,
            invite: request,
            invite_key: key,
            dialog: None,
            peer,
            media,
            answered: false,
            trunk,
            auth_tried: false,
        };
        let state = self.calls.get_mut(&call)?;
        match side {
            Side::Consult => state.consult = Some(leg),
            _ => state.other = Some(leg),
        }
        Some(leg_id)
    }

    pub(super) async fn on_response(&mut self, response: Response, key: Key) {
        let status = response.status;
        if let Some((request, peer)) = self.orphans.get(&key).cloned() {
            if status >= 200 {
                self.orphans.remove(&key);
                self.clients.remove(&key);
            }
            if (200..300).contains(&status) {
                let mut dialog = Dialog::as_uac(&request, &response);
                let number = fields::cseq(&response.headers).map_or(1, |(n, _)| n);
                let ack = dialog.ack(number, &self.via(peer));
                self.tx.send_stateless(Message::Request(ack), peer);
                let bye = dialog.request(Method::Bye, &self.via(peer));
                self.tx.send_request(Instant::now(), bye, peer);
            }
            return;
        }
        let Some((call, side)) = self.clients.get(&key).copied() else {
            return;
        };
        if status >= 200 && (key.method != Method::Invite || status >= 300) {
            self.clients.remove(&key);
        }
        if key.method != Method::Invite || status < 200 {
            return;
        }
        let Some(leg) = self.leg_mut(call, side) else {
            return;
        };
        if leg.invite_key.as_ref() != Some(&key) {
            return;
        }
        if status >= 300 {
            if (status == 401 || status == 407) && !leg.auth_tried {
                if let Some(retry) = authorize(leg, &response) {
                    leg.auth_tried = true;
                    let peer = leg.peer;
                    leg.invite = retry.clone();
                    let new_key = self.tx.send_request(Instant::now(), retry, peer);
                    if let Some(new_key) = &new_key {
                        self.clients.insert(new_key.clone(), (call, side));
                    }
                    if let Some(leg) = self.leg_mut(call, side) {
                        leg.invite_key = new_key;
                    }
                    return;
                }
            }
            self.leg_failed(call, side, status).await;
            return;
        }
        // A 2xx: confirm the dialog with an ACK (again, for a retransmitted 2xx).
        let dialog = leg
            .dialog
            .get_or_insert_with(|| Dialog::as_uac(&leg.invite, &response))
            .clone();
        let number = fields::cseq(&response.headers).map_or(1, |(n, _)| n);
        let peer = leg.peer;
        let ack = dialog.ack(number, &self.via(peer));
        self.tx.send_stateless(Message::Request(ack), peer);
        let Some(leg) = self.leg_mut(call, side) else {
            return;
        };
        if leg.answered {
            return;
        }
        leg.answered = true;
        if let Ok(answer) = sdp::parse(&response.body) {
            let codec = sdp::choose_codec(&answer).unwrap_or(sdp::PCMU);
            leg.media.set_remote(
                SocketAddr::new(answer.address, answer.port),
                codec,
                answer.telephone_event,
            );
        }
        self.leg_answered(call, side);
    }

    pub(super) fn leg_mut(&mut self, call: u64, side: Side) -> Option<&mut OtherLeg> {
        let state = self.calls.get_mut(&call)?;
        match side {
            Side::Other => state.other.as_mut(),
            Side::Consult => state.consult.as_mut(),
            Side::Caller => None,
        }
    }

    pub(super) fn take_leg(&mut self, call: u64, side: Side) -> Option<OtherLeg> {
        let state = self.calls.get_mut(&call)?;
        let leg = match side {
            Side::Other => state.other.take(),
            Side::Consult => state.consult.take(),
            Side::Caller => None,
        }?;
        if side == Side::Other {
            let (received, sent) = leg.media.counts();
            state.record.rtp.from_agent += received;
            state.record.rtp.to_agent += sent;
        }
        self.by_leg.remove(&leg.id);
        if let Some(dialog) = &leg.dialog {
            self.dialogs.remove(&dialog.call_id);
        } else if let Some(id) = leg.invite.headers.get("Call-ID") {
            self.dialogs.remove(id);
        }
        Some(leg)
    }

    pub(super) fn leg_answered(&mut self, call: u64, side: Side) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        match side {
            Side::Other => {
                let Some(other) = &state.other else { return };
                state.caller.media.stop();
                state.caller.media.bridge(&other.media);
                other.media.bridge(&state.caller.media);
                let first = state.record.answered_at.is_none();
                if first {
                    state.record.answered_at = Some(Utc::now());
                }
                if let Party::Agent(agent) = other.party {
                    state.record.agent = Some(agent);
                }
                let was_queued = matches!(state.state, State::Ringing | State::Queued);
                if state.state != State::TransferringOut {
                    state.state = State::Talking;
                }
                if was_queued && first {
                    self.app.services.metrics.calls_queued.dec();
                }
                if first {
                    if let Some(wait) = state.record.wait_ms() {
                        self.app
                            .services
                            .metrics
                            .call_wait_seconds
                            .observe(wait as f64 / 1000.0);
                    }
                }
                self.save(call);
            }
            Side::Consult => {
                let (Some(other), Some(consult)) = (&state.other, &state.consult) else {
                    return;
                };
                other.media.bridge(&consult.media);
                consult.media.bridge(&other.media);
            }
            Side::Caller => {}
        }
    }

    pub(super) async fn leg_failed(&mut self, call: u64, side: Side, status: u16) {
        let Some(leg) = self.take_leg(call, side) else {
            return;
        };
        tracing::info!(status, "a call leg was not answered");
        match (side, &leg.party) {
            (Side::Other, Party::Agent(agent)) => self.missed(call, *agent),
            (Side::Other, Party::Number(_)) => {
                // A blind transfer out failed: back to the queue the caller came from.
                let queue = self.calls.get(&call).and_then(|c| c.record.queue);
                match queue {
                    Some(queue) => self.enqueue(call, queue),
                    None => {
                        self.end_call(call, "system", Some(Disposition::Failed), None)
                            .await
                    }
                }
            }
            (Side::Consult, _) => self.rejoin(call),
            (Side::Caller, _) => {}
        }
    }

    /// The agent did not answer: they become not ready and the call goes back to the queue.
    pub(super) fn missed(&mut self, call: u64, agent: UserId) {
        self.drop_other(call, Some(&Party::Agent(agent)));
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        state.state = State::Queued;
        state.record.agent = None;
        let Some(contact) = state.record.contact else {
            return;
        };
        let app = self.app.clone();
        tokio::spawn(async move {
            if let Err(error) = app.services.contacts.mark_not_ready(agent).await {
                tracing::warn!(%error, "could not set the agent not ready");
            }
            if let Err(error) = app.services.contacts.return_to_queue(contact).await {
                tracing::warn!(%error, "could not return the call to its queue");
            }
        });
    }

    pub(super) async fn on_bye(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let Some((call, side)) = self.dialog_of(&request) else {
            self.reply(&request, &key, peer, 481);
            return;
        };
        self.reply(&request, &key, peer, 200);
        match side {
            Side::Caller => {
                self.end_call(call, "caller", None, Some(Side::Caller))
                    .await
            }
            Side::Other => {
                let leg = self.take_leg(call, Side::Other);
                let by = match leg.map(|l| l.party) {
                    Some(Party::Number(_)) => "number",
                    _ => "agent",
                };
                self.end_call(call, by, None, None).await;
            }
            Side::Consult => {
                self.take_leg(call, Side::Consult);
                self.rejoin(call);
            }
        }
    }

    pub(super) async fn on_cancel(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let invite_key = key.as_ref().map(|k| Key {
            branch: k.branch.clone(),
            method: Method::Invite,
        });
        let call = invite_key
            .as_ref()
            .and_then(|k| self.invites.get(k))
            .copied();
        match (call, invite_key) {
            (Some(call), Some(invite_key)) => {
                self.reply(&request, &key, peer, 200);
                if self.tx.is_pending(&invite_key) {
                    self.end_call(call, "caller", None, Some(Side::Caller))
                        .await;
                }
            }
            _ => self.reply(&request, &key, peer, 481),
        }
    }

    /// Hangs up a leg of ours: BYE when answered, CANCEL while its INVITE is pending (a 2xx
    /// that still arrives gets ACK and BYE).
    pub(super) fn hang_up_leg(&mut self, call: u64, side: Side) {
        let Some(mut leg) = self.take_leg(call, side) else {
            return;
        };
        let peer = leg.peer;
        if leg.answered {
            if let Some(dialog) = leg.dialog.as_mut() {
                let bye = dialog.request(Method::Bye, &self.via(peer));
                self.tx.send_request(Instant::now(), bye, peer);
            }
        } else if let Some(key) = leg.invite_key.take() {
            let cancel = cancel_for(&leg.invite);
            self.tx.send_request(Instant::now(), cancel, peer);
            self.orphans.insert(key, (leg.invite.clone(), peer));
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.caller.media.unbridge();
        }
    }

    /// Drops the other leg (only if it is `party`, when given).
    pub(super) fn drop_other(&mut self, call: u64, party: Option<&Party>) {
        let matches = self
            .calls
            .get(&call)
            .and_then(|c| c.other.as_ref())
            .is_some_and(|o| party.is_none_or(|p| *p == o.party));
        if matches {
            self.hang_up_leg(call, Side::Other);
        }
        if let Some(state) = self.calls.get_mut(&call) {
            state.caller.media.unbridge();
        }
    }

    /// Ends a call: hangs up every leg (except `gone`, which hung up), ends its contact, and
    /// closes its record.
    pub(super) async fn end_call(
        &mut self,
        call: u64,
        by: &str,
        disposition: Option<Disposition>,
        gone: Option<Side>,
    ) {
        self.hang_up_leg(call, Side::Consult);
        self.hang_up_leg(call, Side::Other);
        let Some(mut state) = self.calls.remove(&call) else {
            return;
        };
        let (received, sent) = state.caller.media.counts();
        state.record.rtp.from_caller = received;
        state.record.rtp.to_caller = sent;
        if gone != Some(Side::Caller) {
            // The caller's INVITE was answered at once, so the caller is always in a dialog.
            let peer = state.caller.peer;
            let bye = state.caller.dialog.request(Method::Bye, &self.via(peer));
            self.tx.send_request(Instant::now(), bye, peer);
        }
        if let Some(key) = &state.caller.invite {
            self.invites.remove(key);
        }
        self.dialogs.remove(&state.caller.dialog.call_id);
        self.by_leg.remove(&(call * 4));
        let transferred_out = state.state == State::TransferringOut;
        let was_waiting = matches!(state.state, State::Queued | State::Ringing);
        if was_waiting {
            self.app.services.metrics.calls_queued.dec();
        }
        let disposition = disposition.or(transferred_out.then_some(Disposition::TransferredOut));
        state.record.end(Utc::now(), by, disposition);
        self.app.services.metrics.calls_in_progress.dec();
        self.app
            .services
            .metrics
            .count_call(state.record.disposition.as_str());
        if let Some(contact) = state.record.contact {
            if self.by_contact.remove(&contact).is_some() && !transferred_out {
                let app = self.app.clone();
                let reason = match by {
                    "caller" => "caller hung up",
                    "agent" => "agent hung up",
                    _ => "call ended",
                };
                tokio::spawn(async move {
                    if let Err(error) = app.services.contacts.end(contact, reason.into()).await {
                        tracing::debug!(%error, "the call's contact had already ended");
                    }
                });
            }
        }
        self.publish(&state.record);
        let _ = self.records.send(state.record.clone());
    }

    /// Puts the caller back with their agent after a consultation ends.
    pub(super) fn rejoin(&mut self, call: u64) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(other) = &state.other {
            other.media.unbridge();
            state.caller.media.stop();
            state.caller.media.bridge(&other.media);
            other.media.bridge(&state.caller.media);
            state.state = State::Talking;
        }
    }

    pub(super) fn on_reinvite(&mut self, request: Request, peer: Peer, key: Option<Key>) {
        let Some((call, side)) = self.dialog_of(&request) else {
            self.reply(&request, &key, peer, 481);
            return;
        };
        let offer = if request.body.is_empty() {
            None
        } else {
            match sdp::parse(&request.body) {
                Ok(offer) if sdp::choose_codec(&offer).is_some() => Some(offer),
                _ => {
                    self.reply(&request, &key, peer, 488);
                    return;
                }
            }
        };
        let (ip, contact) = (self.ip, self.contact_header(peer));
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        let (media, dialog_tag) = match side {
            Side::Caller => (&state.caller.media, state.caller.dialog.local_tag.clone()),
            Side::Other | Side::Consult => {
                let leg = if side == Side::Other {
                    state.other.as_ref()
                } else {
                    state.consult.as_ref()
                };
                let Some(leg) = leg else { return };
                (
                    &leg.media,
                    leg.dialog
                        .as_ref()
                        .map(|d| d.local_tag.clone())
                        .unwrap_or_default(),
                )
            }
        };
        let direction = offer
            .as_ref()
            .map_or(sdp::Direction::SendRecv, |o| o.direction);
        let codec = offer
            .as_ref()
            .and_then(sdp::choose_codec)
            .unwrap_or(media.codec());
        if let Some(offer) = &offer {
            if !offer.address.is_unspecified() {
                media.set_remote(
                    SocketAddr::new(offer.address, offer.port),
                    codec,
                    offer.telephone_event,
                );
            }
        }
        let body = sdp::write(
            call,
            2 + state.play_token,
            ip,
            media.port,
            &[codec],
            offer.as_ref().and_then(|o| o.telephone_event),
            direction.answer(),
        );
        let current = state.state;
        if side == Side::Caller {
            state.caller_sends = matches!(
                direction,
                sdp::Direction::SendRecv | sdp::Direction::SendOnly
            );
        }
        let mut response = Response::to(&request, 200, "OK", Some(&dialog_tag));
        response.headers.push("Contact", &contact);
        response.headers.push("Content-Type", "application/sdp");
        response.body = body;
        self.respond(&key, peer, response);
        // The agent's phone put the caller on hold, or took them off it.
        if side == Side::Other {
            if direction.is_hold() && current == State::Talking {
                self.hold(call);
            } else if !direction.is_hold() && current == State::Held {
                self.resume(call);
            }
        }
    }

    pub(super) fn hold(&mut self, call: u64) {
        let Some(state) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(other) = &state.other {
            other.media.unbridge();
        }
        state.caller.media.unbridge();
        state.state = State::Held;
        self.hold_music(call, None);
    }

    pub(super) fn resume(&mut self, call: u64) {
        if let Some(state) = self.calls.get_mut(&call) {
            state.play_token += 1;
        }
        self.rejoin(call);
    }
}

/// The INVITE again with credentials for a trunk's challenge, if the trunk has them.
fn authorize(leg: &OtherLeg, response: &Response) -> Option<Request> {
    let trunk = leg.trunk.as_ref()?;
    let (username, password) = (trunk.username.as_ref()?, trunk.secret.as_ref()?);
    let (header, answer_header) = match response.status {
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => ("WWW-Authenticate", "Authorization"),
    };
    let (realm, nonce) = digest::parse_challenge(response.headers.get(header)?)?;
    let mut retry = leg.invite.clone();
    let number = fields::cseq(&retry.headers).map_or(1, |(n, _)| n) + 1;
    retry.headers.set("CSeq", &format!("{number} INVITE"));
    let via = retry.headers.get("Via")?.to_owned();
    let fresh = fields::with_param(&via, "branch", &format!("z9hG4bK{}", random()));
    retry.headers.set("Via", &fresh);
    let answer = digest::answer(
        username,
        password,
        &realm,
        &nonce,
        "INVITE",
        &retry.uri,
        &random()[..16],
    );
    retry.headers.push(answer_header, &answer);
    Some(retry)
}
