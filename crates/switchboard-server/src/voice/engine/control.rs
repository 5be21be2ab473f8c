//! What the API does to live calls: hold, resume, hang up, and transfers (blind or attended)
//! to a queue, an agent or a number through an outbound trunk.

use super::*;

impl Engine {
    pub(super) fn find(&self, id: CallId) -> Option<u64> {
        self.calls
            .values()
            .find(|c| c.record.id == id)
            .map(|c| c.key)
    }

    pub(super) async fn control(
        &mut self,
        id: CallId,
        control: CallControl,
    ) -> Result<CallRecord, VoiceError> {
        let call = self.find(id).ok_or(VoiceError::NotFound)?;
        let state = self
            .calls
            .get(&call)
            .map(|c| c.state)
            .ok_or(VoiceError::NotFound)?;
        match control {
            CallControl::HangUp => {
                let record = self.calls.get(&call).map(|c| c.record.clone());
                self.end_call(call, "system", None, None).await;
                let mut record = record.ok_or(VoiceError::NotFound)?;
                record.end(Utc::now(), "system", None);
                return Ok(record);
            }
            CallControl::Hold => {
                if state != State::Talking {
                    return Err(VoiceError::State("only a call in conversation can be held"));
                }
                self.hold(call);
            }
            CallControl::Resume => {
                if state != State::Held {
                    return Err(VoiceError::State("the call is not on hold"));
                }
                self.resume(call);
            }
            CallControl::Transfer { to, attended } => {
                if !matches!(state, State::Talking | State::Held) {
                    return Err(VoiceError::State(
                        "only a call with an agent can be transferred",
                    ));
                }
                let contact = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.record.contact)
                    .ok_or(VoiceError::NotFound)?;
                let description = match &to {
                    TransferTo::Queue(q) => format!("queue:{q}"),
                    TransferTo::Agent(a) => format!("agent:{a}"),
                    TransferTo::Number(n) => format!("number:{n}"),
                };
                if attended {
                    self.consult(call, to).await?;
                } else {
                    let target = match to {
                        TransferTo::Queue(queue) => Some(TransferTarget::Queue(queue)),
                        TransferTo::Agent(agent) => Some(TransferTarget::Agent(agent)),
                        TransferTo::Number(number) => {
                            self.transfer_out(call, &number).await?;
                            None
                        }
                    };
                    // Routing moves the contact; its change tells this engine what to ring.
                    if let Some(target) = target {
                        self.app.services.contacts.transfer(contact, target).await?;
                    }
                }
                if let Some(state) = self.calls.get_mut(&call) {
                    state.record.transfers.push(description);
                }
                self.save(call);
            }
            CallControl::CompleteTransfer => {
                if state != State::Consulting {
                    return Err(VoiceError::State("no transfer is being consulted"));
                }
                let answered = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.consult.as_ref())
                    .is_some_and(|l| l.answered);
                if !answered {
                    return Err(VoiceError::State(
                        "the transfer target has not answered yet",
                    ));
                }
                let party = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.consult.as_ref())
                    .map(|l| l.party.clone());
                let contact = self.calls.get(&call).and_then(|c| c.record.contact);
                if let (Some(Party::Agent(agent)), Some(contact)) = (&party, contact) {
                    // Routing must accept the new agent before the legs are swapped.
                    let agent = *agent;
                    let old = self.calls.get_mut(&call).and_then(|c| c.other.take());
                    let consult = self.calls.get_mut(&call).and_then(|c| c.consult.take());
                    if let Some(state) = self.calls.get_mut(&call) {
                        state.other = consult;
                    }
                    if let Err(error) = self
                        .app
                        .services
                        .contacts
                        .transfer(contact, TransferTarget::Agent(agent))
                        .await
                    {
                        let consult = self.calls.get_mut(&call).and_then(|c| c.other.take());
                        if let Some(state) = self.calls.get_mut(&call) {
                            state.other = old;
                            state.consult = consult;
                        }
                        return Err(VoiceError::from(error));
                    }
                    if let Some(mut old) = old {
                        self.by_leg.remove(&old.id);
                        if let Some(dialog) = old.dialog.as_mut() {
                            self.dialogs.remove(&dialog.call_id);
                            let bye = dialog.request(Method::Bye, &self.via(old.peer));
                            self.tx.send_request(Instant::now(), bye, old.peer);
                        }
                    }
                    if let Some(leg) = self
                        .calls
                        .get(&call)
                        .and_then(|c| c.other.as_ref())
                        .map(|l| l.id)
                    {
                        self.by_leg.insert(leg, (call, Side::Other));
                        let call_id = self
                            .calls
                            .get(&call)
                            .and_then(|c| c.other.as_ref())
                            .and_then(|l| l.dialog.as_ref())
                            .map(|d| d.call_id.clone());
                        if let Some(call_id) = call_id {
                            self.dialogs.insert(call_id, (call, Side::Other));
                        }
                    }
                    if let Some(state) = self.calls.get_mut(&call) {
                        state.record.agent = Some(agent);
                    }
                } else {
                    // To a number: the contact ends; the caller talks to the number.
                    self.hang_up_leg(call, Side::Other);
                    let consult = self.take_leg(call, Side::Consult);
                    if let Some(consult) = consult {
                        let (id, call_id) = (
                            consult.id,
                            consult.dialog.as_ref().map(|d| d.call_id.clone()),
                        );
                        if let Some(state) = self.calls.get_mut(&call) {
                            state.other = Some(consult);
                            state.state = State::TransferringOut;
                        }
                        self.by_leg.insert(id, (call, Side::Other));
                        if let Some(call_id) = call_id {
                            self.dialogs.insert(call_id, (call, Side::Other));
                        }
                    }
                    if let Some(contact) = contact {
                        self.by_contact.remove(&contact);
                        let app = self.app.clone();
                        tokio::spawn(async move {
                            let _ = app
                                .services
                                .contacts
                                .end(contact, "transferred to a number".into())
                                .await;
                        });
                    }
                }
                self.rejoin(call);
                if let Some(state) = self.calls.get_mut(&call) {
                    if party
                        .as_ref()
                        .is_some_and(|p| matches!(p, Party::Number(_)))
                    {
                        state.state = State::TransferringOut;
                    }
                }
                self.save(call);
            }
            CallControl::CancelTransfer => {
                if state != State::Consulting {
                    return Err(VoiceError::State("no transfer is being consulted"));
                }
                self.hang_up_leg(call, Side::Consult);
                self.rejoin(call);
            }
        }
        self.calls
            .get(&call)
            .map(|c| c.record.clone())
            .ok_or(VoiceError::NotFound)
    }

    /// An outbound trunk and the request URI for a number.
    pub(super) async fn route_number(
        &mut self,
        number: &str,
    ) -> Result<(Trunk, String, Peer), VoiceError> {
        self.load_directory().await;
        let trunk = self
            .directory
            .trunks
            .iter()
            .find(|t| t.direction == TrunkDirection::Outbound)
            .cloned()
            .ok_or(VoiceError::State("no outbound trunk is configured"))?;
        let host = trunk.host.clone().unwrap_or_default();
        let port = trunk.port.unwrap_or(5060);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or(VoiceError::State(
                "the outbound trunk's host does not resolve",
            ))?;
        let dialled = apply_dial_rules(&trunk.dial_rules, number);
        let uri = format!("sip:{dialled}@{host}:{port}");
        let peer = Peer {
            addr,
            transport: if trunk.tcp { Wire::Tcp } else { Wire::Udp },
        };
        Ok((trunk, uri, peer))
    }

    pub(super) async fn transfer_out(&mut self, call: u64, number: &str) -> Result<(), VoiceError> {
        let route = self.route_number(number).await?;
        let contact = self.calls.get(&call).and_then(|c| c.record.contact);
        self.drop_other(call, None);
        let Some(state) = self.calls.get_mut(&call) else {
            return Err(VoiceError::NotFound);
        };
        state.state = State::TransferringOut;
        let caller = state.record.caller.clone();
        let codec = state.caller.media.codec();
        self.hold_music(call, None);
        if let Some(contact) = contact {
            self.by_contact.remove(&contact);
            let app = self.app.clone();
            tokio::spawn(async move {
                let _ = app
                    .services
                    .contacts
                    .end(contact, "transferred to a number".into())
                    .await;
            });
        }
        self.call_number(call, Side::Other, number, route, &caller, codec)
            .await
            .ok_or(VoiceError::State("no free RTP ports"))?;
        Ok(())
    }

    /// Calls a number through an outbound trunk as the call's `side` leg.
    pub(super) async fn call_number(
        &mut self,
        call: u64,
        side: Side,
        number: &str,
        (trunk, uri, peer): (Trunk, String, Peer),
        caller: &str,
        codec: u8,
    ) -> Option<u64> {
        let to = format!("<{uri}>");
        let party = Party::Number(number.to_owned());
        self.place_call(call, side, party, uri, peer, caller, to, codec, Some(trunk))
            .await
    }

    pub(super) async fn consult(&mut self, call: u64, to: TransferTo) -> Result<(), VoiceError> {
        let caller = self
            .calls
            .get(&call)
            .map(|c| c.record.caller.clone())
            .unwrap_or_default();
        let codec = self
            .calls
            .get(&call)
            .and_then(|c| c.other.as_ref())
            .map_or(sdp::PCMU, |o| o.media.codec());
        let placed = match to {
            TransferTo::Queue(_) => {
                return Err(VoiceError::State(
                    "an attended transfer goes to an agent or a number",
                ))
            }
            TransferTo::Agent(agent) => {
                let target = self
                    .phone_target(agent)
                    .ok_or(VoiceError::State("that agent has no registered phone"))?;
                self.call_phone(call, Side::Consult, agent, target, &caller, codec)
                    .await
            }
            TransferTo::Number(number) => {
                let route = self.route_number(&number).await?;
                self.call_number(call, Side::Consult, &number, route, &caller, codec)
                    .await
            }
        };
        placed.ok_or(VoiceError::State("no free RTP ports"))?;
        self.hold(call);
        if let Some(state) = self.calls.get_mut(&call) {
            state.state = State::Consulting;
        }
        Ok(())
    }
}
