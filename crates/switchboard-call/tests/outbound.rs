//! Agents' own calls: the dialer rings the agent's device first (the adapter that dialled, or
//! their SIP phone), then calls the number through the outbound trunk with its caller id and
//! dial rules while the agent hears ringback; unanswered calls end as such without making the
//! agent not ready.

use crate::harness::peers::Peer;
use crate::harness::{addr, Center, CARRIER_OUT};
use crate::{center, seconds};
use switchboard_call::{BrowserEvent, BrowserOp, CallError, Input, SessionId, Sound};
use switchboard_core::voice::{CallDirection, Disposition};
use switchboard_sip::Method;

fn online(c: &mut Center, session: u64) -> SessionId {
    let session = SessionId(session);
    let agent = c.agents.agent1;
    c.input(Input::Browser(BrowserEvent::Online { session, agent }));
    session
}

pub(crate) fn rung(c: &Center, session: SessionId) -> switchboard_call::LegId {
    c.browser
        .iter()
        .rev()
        .find_map(|op| match op {
            BrowserOp::Ring {
                session: s, leg, ..
            } if *s == session => Some(*leg),
            _ => None,
        })
        .expect("the adapter rings")
}

#[test]
fn an_agent_dials_from_the_adapter_and_the_number_answers() {
    let mut c = Center::new();
    let session = online(&mut c, 1);
    let agent1 = c.agents.agent1;
    let record = c
        .dial(agent1, "02079460000", Some(session))
        .expect("dialled");
    assert_eq!(record.direction, CallDirection::Outbound);
    assert_eq!(record.did, "02079460000");
    assert_eq!(record.caller, "15550199", "the trunk's caller id");
    assert_eq!(record.agent, Some(agent1));
    let contact = record.contact.expect("an outbound contact");
    assert_eq!(c.routing.outbound, vec![(contact, agent1)]);
    // Only the adapter that dialled rings; nothing goes to the carrier before the agent is on.
    let leg = rung(&c, session);
    let carrier = Peer::at(CARRIER_OUT);
    carrier.expect_nothing(&mut c);
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    let invite = carrier.expect_request(&mut c, Method::Invite);
    // The dial rule made 0… into +44…; the caller id is the trunk's.
    assert_eq!(invite.uri, "sip:+442079460000@carrier.example:5060");
    assert!(invite
        .headers
        .get("From")
        .is_some_and(|f| f.contains("sip:15550199@")));
    // Ringback for the agent while the number rings.
    assert!(matches!(
        c.renders.last(),
        Some((l, sounds, Some(Sound::Ringback))) if *l == leg && sounds.is_empty()
    ));
    carrier.pick_up(&mut c, &invite, 9000);
    let number = c
        .media
        .leg_to(addr("198.51.100.20:9000"))
        .expect("the number's leg")
        .0;
    assert_eq!(c.media.legs[&number].hears, vec![leg]);
    assert_eq!(c.media.legs[&leg].hears, vec![number]);
    assert_eq!(c.media.legs[&leg].playing, None, "ringback stopped");
    assert!(c.the_call().answered_at.is_some());
    c.advance(seconds(5));
    c.input(Input::Browser(BrowserEvent::HungUp { leg }));
    let bye = carrier.expect_request(&mut c, Method::Bye);
    c.deliver(carrier.peer, carrier.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.ended_by.as_deref(), Some("agent"));
    assert_eq!(record.talk_ms(), Some(5000));
    assert!(c.routing.ended.iter().any(|(id, _)| *id == contact));
    assert!(c.routing.not_ready.is_empty());
}

#[test]
fn click_to_dial_rings_the_phone_and_a_busy_number_ends_unanswered() {
    let (mut c, phone1, _) = center();
    let agent1 = c.agents.agent1;
    c.dial(agent1, "5551000", None).expect("dialled");
    // The agent's phone rings, showing whom they call.
    let invite = phone1.expect_request(&mut c, Method::Invite);
    assert!(invite
        .headers
        .get("From")
        .is_some_and(|f| f.contains("5551000")));
    phone1.pick_up(&mut c, &invite, 7000);
    let carrier = Peer::at(CARRIER_OUT);
    let out = carrier.expect_request(&mut c, Method::Invite);
    c.deliver(carrier.peer, carrier.answer(&out, 486, None));
    carrier.expect_request(&mut c, Method::Ack);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Unanswered);
    assert_eq!(record.ended_by.as_deref(), Some("number"));
    assert!(c.routing.not_ready.is_empty());
    assert!(c.engine.live().is_empty());
}

#[test]
fn an_agent_who_does_not_pick_up_their_own_call_is_not_made_not_ready() {
    let mut c = Center::new();
    let session = online(&mut c, 1);
    let agent1 = c.agents.agent1;
    c.dial(agent1, "5551000", Some(session)).expect("dialled");
    let leg = rung(&c, session);
    c.advance(seconds(3));
    assert!(c.browser.contains(&BrowserOp::Stop { session, leg }));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Unanswered);
    assert_eq!(record.ended_by.as_deref(), Some("agent"));
    assert!(c.routing.not_ready.is_empty());
    Peer::at(CARRIER_OUT).expect_nothing(&mut c);
}

#[test]
fn an_agent_who_gives_up_while_the_number_rings_cancels_it() {
    let mut c = Center::new();
    let session = online(&mut c, 1);
    let agent1 = c.agents.agent1;
    c.dial(agent1, "5551000", Some(session)).expect("dialled");
    let leg = rung(&c, session);
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    let carrier = Peer::at(CARRIER_OUT);
    let invite = carrier.expect_request(&mut c, Method::Invite);
    carrier.ring(&mut c, &invite);
    c.input(Input::Browser(BrowserEvent::HungUp { leg }));
    let cancel = carrier.expect_request(&mut c, Method::Cancel);
    c.deliver(carrier.peer, carrier.ok(&cancel));
    c.deliver(carrier.peer, carrier.answer(&invite, 487, None));
    carrier.expect_request(&mut c, Method::Ack);
    assert_eq!(c.the_call().disposition, Disposition::Unanswered);
}

#[test]
fn the_dialer_refuses_what_it_cannot_place() {
    let mut c = Center::new();
    let agent1 = c.agents.agent1;
    // No phone and no adapter online.
    assert!(matches!(
        c.dial(agent1, "5551000", None),
        Err(CallError::State(m)) if m.contains("none of your phones")
    ));
    // An adapter session that is not theirs (or not on).
    assert!(matches!(
        c.dial(agent1, "5551000", Some(SessionId(9))),
        Err(CallError::State(m)) if m.contains("adapter's phone is not on")
    ));
    let session = online(&mut c, 1);
    c.dial(agent1, "5551000", Some(session)).expect("dialled");
    assert!(matches!(
        c.dial(agent1, "5551001", Some(session)),
        Err(CallError::State("you are already on a call"))
    ));
    // Without an outbound trunk.
    let mut c = Center::new();
    let session = online(&mut c, 1);
    c.configure(|d| d.trunks.retain(|t| t.name.as_str() != "carrier out"));
    assert!(matches!(
        c.dial(agent1, "5551000", Some(session)),
        Err(CallError::State("no outbound trunk is configured"))
    ));
    assert!(c.records.is_empty());
}
