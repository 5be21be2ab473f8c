//! Agents' browser phones: a call rings the browser and the SIP phone at once and the first to
//! answer wins; a browser declines, hangs up, or goes away; the call logic treats a browser
//! leg like any other.

use crate::harness::peers::{sdp, Peer};
use crate::harness::{addr, Center, CARRIER, NUMBER};
use switchboard_call::{BrowserEvent, BrowserOp, Input, LegId, MediaEvent, SessionId};
use switchboard_core::voice::Disposition;
use switchboard_sip::Method;

const PHONE1: &str = "203.0.113.1:5060";

fn online(c: &mut Center, session: u64) -> SessionId {
    let session = SessionId(session);
    let agent = c.agents.agent1;
    c.input(Input::Browser(BrowserEvent::Online { session, agent }));
    session
}

/// A call to Sales (agent1's queue); returns the browser leg that rings.
fn call_to_sales(c: &mut Center, carrier: &Peer) -> (crate::harness::peers::Outgoing, LegId) {
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6000, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    let ok = carrier.expect_response(c, 200);
    call.answered(&ok);
    c.deliver(carrier.peer, call.ack(""));
    let customer = c
        .media
        .leg_to(addr("198.51.100.10:6000"))
        .expect("caller")
        .0;
    c.input(Input::Media(MediaEvent::Dtmf {
        leg: customer,
        digit: '1',
    }));
    let ring = c
        .browser
        .iter()
        .rev()
        .find_map(|op| match op {
            BrowserOp::Ring { leg, call, .. } => Some((*leg, call.clone())),
            _ => None,
        })
        .expect("the browser rings");
    assert_eq!(ring.1.caller, "5551234");
    (call, ring.0)
}

#[test]
fn the_browser_and_the_phone_ring_and_the_browser_answers_first() {
    let mut c = Center::new();
    let phone = Peer::at(PHONE1);
    c.register("agent1", &phone);
    online(&mut c, 1);
    let carrier = Peer::at(CARRIER);
    let (call, leg) = call_to_sales(&mut c, &carrier);
    let invite = phone.expect_request(&mut c, Method::Invite);
    phone.ring(&mut c, &invite);
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    // The phone stops ringing; the caller is bridged with the browser leg.
    let cancel = phone.expect_request(&mut c, Method::Cancel);
    c.deliver(phone.peer, phone.ok(&cancel));
    c.deliver(phone.peer, phone.answer(&invite, 487, None));
    phone.expect_request(&mut c, Method::Ack);
    let customer = c
        .media
        .leg_to(addr("198.51.100.10:6000"))
        .expect("caller")
        .0;
    assert_eq!(c.media.legs[&customer].hears, vec![leg]);
    assert_eq!(c.media.legs[&leg].hears, vec![customer]);
    assert_eq!(c.the_call().agent, Some(c.agents.agent1));
    // The agent hangs up in the browser.
    c.input(Input::Browser(BrowserEvent::HungUp { leg }));
    carrier.expect_request(&mut c, Method::Bye);
    let record = c.the_call();
    assert_eq!(record.ended_by.as_deref(), Some("agent"));
    assert_eq!(record.disposition, Disposition::Answered);
    drop(call);
}

#[test]
fn the_phone_answers_first_and_the_browser_stops_ringing() {
    let mut c = Center::new();
    let phone = Peer::at(PHONE1);
    c.register("agent1", &phone);
    let session = online(&mut c, 1);
    let carrier = Peer::at(CARRIER);
    let (call, leg) = call_to_sales(&mut c, &carrier);
    let invite = phone.expect_request(&mut c, Method::Invite);
    phone.pick_up(&mut c, &invite, 7000);
    assert!(c.browser.contains(&BrowserOp::Stop { session, leg }));
    // A late answer from the browser changes nothing.
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    let agent = c
        .media
        .leg_to(addr("203.0.113.1:7000"))
        .expect("phone leg")
        .0;
    let customer = c
        .media
        .leg_to(addr("198.51.100.10:6000"))
        .expect("caller")
        .0;
    assert_eq!(c.media.legs[&customer].hears, vec![agent]);
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = phone.expect_request(&mut c, Method::Bye);
    c.deliver(phone.peer, phone.ok(&bye));
}

#[test]
fn a_declining_browser_leaves_the_phone_ringing_until_the_ring_time_ends() {
    let mut c = Center::new();
    let phone = Peer::at(PHONE1);
    c.register("agent1", &phone);
    online(&mut c, 1);
    let carrier = Peer::at(CARRIER);
    let (_call, leg) = call_to_sales(&mut c, &carrier);
    let invite = phone.expect_request(&mut c, Method::Invite);
    phone.ring(&mut c, &invite);
    c.input(Input::Browser(BrowserEvent::Declined { leg }));
    // The phone still rings: the agent has not missed the call yet.
    assert!(c.routing.not_ready.is_empty());
    phone.expect_nothing(&mut c);
    c.advance(std::time::Duration::from_secs(2));
    let cancel = phone.expect_request(&mut c, Method::Cancel);
    c.deliver(phone.peer, phone.ok(&cancel));
    // agent1 missed it (and agent2, who has no device to ring, next).
    assert_eq!(c.routing.not_ready.first(), Some(&c.agents.agent1));
}

#[test]
fn a_browser_that_goes_away_hangs_up_its_call_and_no_longer_rings() {
    let mut c = Center::new();
    let session = online(&mut c, 7);
    let carrier = Peer::at(CARRIER);
    let (_call, leg) = call_to_sales(&mut c, &carrier);
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    assert_eq!(c.the_call().agent, Some(c.agents.agent1));
    c.input(Input::Browser(BrowserEvent::Offline { session }));
    carrier.expect_request(&mut c, Method::Bye);
    assert_eq!(c.the_call().ended_by.as_deref(), Some("agent"));
    // With no phone and no browser the next call for agent1 is missed at once.
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6100, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    let ok = carrier.expect_response(&mut c, 200);
    call.answered(&ok);
    let customer = c
        .media
        .leg_to(addr("198.51.100.10:6100"))
        .expect("caller")
        .0;
    c.input(Input::Media(MediaEvent::Dtmf {
        leg: customer,
        digit: '1',
    }));
    assert_eq!(c.routing.not_ready.first(), Some(&c.agents.agent1));
    let rings = c
        .browser
        .iter()
        .filter(|op| matches!(op, BrowserOp::Ring { .. }))
        .count();
    assert_eq!(rings, 1);
}
