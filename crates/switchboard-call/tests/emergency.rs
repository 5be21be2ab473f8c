//! Emergency calls made by agents (EMG-1..9) in the engine: the number is called at once while
//! the agent's device rings, through the trunk the shell chose, from the callback number with
//! P-Asserted-Identity and the location by value (RFC 6442); the call is confidential (no
//! contact, no recording, no monitoring); and the emergency service's callback on a leased
//! number rings the agent's devices at once, past routing, until the lease expires.

use crate::harness::peers::{sdp, Peer};
use crate::harness::{addr, Center, CARRIER, CARRIER_OUT, NUMBER};
use crate::outbound::rung;
use crate::{center, seconds};
use chrono::Duration as Span;
use switchboard_call::{
    BrowserEvent, CallControl, CallError, EmergencyDial, Input, SessionId, Sound,
};
use switchboard_core::emergency::Lease;
use switchboard_core::voice::{Emergency, TrunkDirection};
use switchboard_core::{MonitorMode, UserId};
use switchboard_sip::{Method, Request};

const PIDF: &str = "<?xml version=\"1.0\"?><presence entity=\"pres:agent1@center\"><ca:A3>Springfield</ca:A3></presence>";

fn emergency(c: &Center, callback: Option<&str>, location: bool) -> EmergencyDial {
    let trunk = c
        .directory
        .trunks
        .iter()
        .find(|t| t.direction == TrunkDirection::Outbound)
        .expect("an outbound trunk")
        .id;
    EmergencyDial {
        number: "911".into(),
        trunk,
        callback: callback.map(str::to_owned),
        location: location.then(|| PIDF.to_owned()),
    }
}

fn online(c: &mut Center, session: u64) -> SessionId {
    let session = SessionId(session);
    let agent = c.agents.agent1;
    c.input(Input::Browser(BrowserEvent::Online { session, agent }));
    session
}

/// The body part of `invite` with this content type.
fn part<'a>(invite: &'a Request, content_type: &str) -> Option<&'a str> {
    let header = invite.headers.get("Content-Type")?;
    let boundary = header.split("boundary=").nth(1)?.trim_matches('"');
    let body = std::str::from_utf8(&invite.body).ok()?;
    body.split(&format!("--{boundary}"))
        .find(|p| p.contains(&format!("Content-Type: {content_type}")))
        .and_then(|p| p.split_once("\r\n\r\n"))
        .map(|(_, content)| content.trim_end_matches("\r\n"))
}

#[test]
fn an_emergency_call_leaves_at_once_from_the_callback_number_with_the_location() {
    let mut c = Center::new();
    let session = online(&mut c, 1);
    let agent1 = c.agents.agent1;
    let dial = emergency(&c, Some("15550190"), true);
    let record = c
        .dial_with(agent1, "9-911", Some(session), Some(dial))
        .expect("dialled");
    assert_eq!(record.emergency, Some(Emergency::Outgoing));
    assert_eq!(record.did, "911");
    assert_eq!(
        record.caller, "15550190",
        "the callback number is presented"
    );
    assert_eq!(
        record.contact, None,
        "no contact: nothing for history or the CRM"
    );
    assert!(c.routing.outbound.is_empty(), "routing never hears of it");
    // The INVITE leaves before the agent's adapter has answered.
    let leg = rung(&c, session);
    let carrier = Peer::at(CARRIER_OUT);
    let invite = carrier.expect_request(&mut c, Method::Invite);
    assert_eq!(
        invite.uri, "sip:911@carrier.example:5060",
        "no dial rule applies"
    );
    let header = |name| invite.headers.get(name).unwrap_or_default().to_owned();
    assert!(
        header("From").contains("<sip:15550190@"),
        "{}",
        header("From")
    );
    assert!(header("P-Asserted-Identity").starts_with("<sip:15550190@"));
    assert_eq!(header("Priority"), "emergency");
    assert_eq!(header("Geolocation-Routing"), "yes");
    let cid = header("Geolocation")
        .strip_prefix("<cid:")
        .and_then(|g| g.strip_suffix('>'))
        .expect("Geolocation names a body part")
        .to_owned();
    assert!(header("Content-Type").starts_with("multipart/mixed;boundary="));
    let body = std::str::from_utf8(&invite.body).expect("text");
    assert!(body.contains(&format!("Content-ID: <{cid}>")));
    assert_eq!(part(&invite, "application/pidf+xml"), Some(PIDF));
    let offer = part(&invite, "application/sdp").expect("an SDP part");
    assert!(offer.starts_with("v=0") && offer.contains("m=audio"));
    // The agent's adapter answers: ringback until the service answers, then they talk.
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    assert!(matches!(
        c.renders.last(),
        Some((l, sounds, Some(Sound::Ringback))) if *l == leg && sounds.is_empty()
    ));
    carrier.pick_up(&mut c, &invite, 9000);
    let service = c
        .media
        .leg_to(addr("198.51.100.20:9000"))
        .expect("the service's leg")
        .0;
    assert_eq!(c.media.legs[&service].hears, vec![leg]);
    assert_eq!(c.media.legs[&leg].hears, vec![service]);
    c.advance(seconds(5));
    assert!(c.media.recording_ops.is_empty(), "never recorded");
    // Nobody may monitor it.
    let supervisor = UserId::from_uuid(uuid::Uuid::from_u128(99));
    assert!(matches!(
        c.command(
            record.id,
            CallControl::Monitor {
                user: supervisor,
                mode: MonitorMode::Listen,
                session: None,
            },
        ),
        Some(Err(CallError::Confidential))
    ));
    c.input(Input::Browser(BrowserEvent::HungUp { leg }));
    let bye = carrier.expect_request(&mut c, Method::Bye);
    c.deliver(carrier.peer, carrier.ok(&bye));
    let ended = c.the_call();
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.emergency, Some(Emergency::Outgoing));
}

#[test]
fn the_service_answering_before_the_agent_waits_for_them_and_a_pool_without_numbers_sends_the_trunk_caller_id(
) {
    let mut c = Center::new();
    let session = online(&mut c, 1);
    let agent1 = c.agents.agent1;
    let dial = emergency(&c, None, false);
    c.dial_with(agent1, "911", Some(session), Some(dial))
        .expect("dialled");
    let leg = rung(&c, session);
    let carrier = Peer::at(CARRIER_OUT);
    let invite = carrier.expect_request(&mut c, Method::Invite);
    assert!(invite
        .headers
        .get("From")
        .is_some_and(|f| f.contains("<sip:15550199@")));
    assert_eq!(invite.headers.get("Content-Type"), Some("application/sdp"));
    assert_eq!(invite.headers.get("Geolocation"), None);
    carrier.pick_up(&mut c, &invite, 9000);
    assert!(c.the_call().answered_at.is_some());
    c.input(Input::Browser(BrowserEvent::Answered { leg }));
    let service = c
        .media
        .leg_to(addr("198.51.100.20:9000"))
        .expect("the service's leg")
        .0;
    assert_eq!(c.media.legs[&leg].hears, vec![service]);
    assert_eq!(c.media.legs[&service].hears, vec![leg]);
}

#[test]
fn an_agent_who_never_picks_up_their_emergency_call_ends_it() {
    let mut c = Center::new();
    let session = online(&mut c, 1);
    let agent1 = c.agents.agent1;
    let dial = emergency(&c, Some("15550190"), false);
    c.dial_with(agent1, "911", Some(session), Some(dial))
        .expect("dialled");
    let carrier = Peer::at(CARRIER_OUT);
    let invite = carrier.expect_request(&mut c, Method::Invite);
    carrier.ring(&mut c, &invite);
    c.advance(seconds(3));
    carrier.expect_request(&mut c, Method::Cancel);
    assert!(c.the_call().ended_at.is_some());
    assert!(c.routing.not_ready.is_empty());
}

fn lease(c: &Center, number: &str, minutes: i64) -> Lease {
    Lease {
        number: number.into(),
        agent: c.agents.agent1,
        leased_at: c.wall_now(),
        expires_at: c.wall_now() + Span::minutes(minutes),
    }
}

#[test]
fn the_callback_rings_the_agent_at_once_past_routing_until_the_lease_expires() {
    let (mut c, phone1, _) = center();
    let session = online(&mut c, 1);
    // Agent 1 is not available to routing (Do Not Disturb) and a caller already waits.
    c.routing.unavailable(c.agents.agent1, c.wall_now());
    let waiting = Peer::at(CARRIER);
    let queued = waiting.call(NUMBER, Some(sdp(&waiting.ip(), 4000, "0", "sendrecv")));
    c.deliver(waiting.peer, queued.invite());
    waiting.expect_response(&mut c, 200);
    let leased = lease(&c, "15550190", 60);
    c.input(Input::Callbacks(vec![leased]));
    let service = Peer::at("198.51.100.11:5060");
    let call = service.call("15550190", Some(sdp(&service.ip(), 4002, "0", "sendrecv")));
    c.deliver(service.peer, call.invite());
    let ok = service.expect_response(&mut c, 200);
    call.answered(&ok);
    c.deliver(service.peer, call.ack(""));
    // Both of the agent's devices ring at once.
    let invite = phone1.expect_request(&mut c, Method::Invite);
    phone1.ring(&mut c, &invite);
    let browser_leg = rung(&c, session);
    let record = c
        .records
        .iter()
        .rev()
        .find(|r| r.did == "15550190")
        .expect("the callback's record")
        .clone();
    assert_eq!(record.emergency, Some(Emergency::Callback));
    assert_eq!(record.contact, None);
    assert_eq!(record.agent, Some(c.agents.agent1));
    // The agent misses it: it rings again, never to another agent.
    c.advance(seconds(3));
    phone1.expect_request(&mut c, Method::Cancel);
    assert!(c.routing.not_ready.is_empty());
    let again = phone1.expect_request(&mut c, Method::Invite);
    phone1.ring(&mut c, &again);
    assert_ne!(again.headers.get("Call-ID"), invite.headers.get("Call-ID"));
    let browser_again = rung(&c, session);
    assert_ne!(browser_again, browser_leg);
    c.input(Input::Browser(BrowserEvent::Answered {
        leg: browser_again,
    }));
    phone1.expect_request(&mut c, Method::Cancel);
    let service_leg = c
        .media
        .leg_to(addr("198.51.100.11:4002"))
        .expect("the service's leg")
        .0;
    assert_eq!(c.media.legs[&service_leg].hears, vec![browser_again]);
    c.advance(seconds(2));
    assert!(
        c.media.recording_ops.is_empty(),
        "a callback is never recorded"
    );
}

#[test]
fn after_the_lease_a_callback_number_routes_as_configured() {
    let (mut c, _, _) = center();
    let leased = lease(&c, NUMBER, 60);
    c.input(Input::Callbacks(vec![leased]));
    c.advance(seconds(61 * 60));
    let service = Peer::at("198.51.100.11:5060");
    let call = service.call(NUMBER, Some(sdp(&service.ip(), 4002, "0", "sendrecv")));
    c.deliver(service.peer, call.invite());
    let ok = service.expect_response(&mut c, 200);
    call.answered(&ok);
    c.deliver(service.peer, call.ack(""));
    let record = c.the_call();
    assert_eq!(record.emergency, None, "an ordinary call again");
    // A number that is only a callback number is unknown once its lease is over.
    let service = Peer::at("198.51.100.12:5060");
    let other = service.call("15550191", None);
    let leased = Lease {
        number: "15550191".into(),
        ..lease(&c, "15550191", 60)
    };
    c.input(Input::Callbacks(vec![leased]));
    c.advance(seconds(60 * 60));
    c.deliver(service.peer, other.invite());
    service.expect_response(&mut c, 404);
}

/// Agent 1's phone dials `number`: challenged, then authorized; returns the call as the
/// phone sees it, with the decision the engine waits for.
fn phone_dials(
    c: &mut Center,
    phone: &Peer,
    number: &str,
) -> (crate::harness::peers::Outgoing, switchboard_core::CallId) {
    let call = phone.dial(
        "agent1",
        number,
        Some(sdp(&phone.ip(), 7000, "8 0", "sendrecv")),
    );
    c.deliver(phone.peer, call.invite());
    let challenge = phone.expect_response(c, 401);
    call.answered(&challenge);
    c.deliver(phone.peer, call.ack_refusal());
    let header = challenge
        .headers
        .get("WWW-Authenticate")
        .expect("a challenge")
        .to_owned();
    let (realm, nonce) =
        switchboard_sip::digest::parse_challenge(&header).expect("a digest challenge");
    let answer = switchboard_sip::digest::answer(
        "agent1",
        crate::harness::PASSWORD,
        &realm,
        &nonce,
        "INVITE",
        &format!("sip:{number}@{}", crate::harness::ENGINE),
        "0a4f113b",
    );
    *call.to_tag.borrow_mut() = None;
    c.deliver(phone.peer, call.invite_authorized(&answer));
    let (id, agent, dialled) = c
        .phone_dials
        .last()
        .cloned()
        .expect("the engine asks the shell");
    assert_eq!((agent, dialled.as_str()), (c.agents.agent1, number));
    // Only Trying until the shell has decided.
    phone.expect_response(c, 100);
    phone.expect_nothing(c);
    (call, id)
}

#[test]
fn a_registered_phone_dials_an_emergency_number_directly() {
    let (mut c, phone1, _) = center();
    let (call, id) = phone_dials(&mut c, &phone1, "9911");
    let dial = emergency(&c, Some("15550190"), true);
    c.input(Input::PhoneDialed {
        call: id,
        decision: Ok(Some(Box::new(dial))),
    });
    // The service is called at once; the phone is answered and hears ringback.
    let carrier = Peer::at(CARRIER_OUT);
    let invite = carrier.expect_request(&mut c, Method::Invite);
    assert_eq!(invite.uri, "sip:911@carrier.example:5060");
    assert!(invite
        .headers
        .get("P-Asserted-Identity")
        .is_some_and(|p| p.contains("15550190")));
    assert_eq!(part(&invite, "application/pidf+xml"), Some(PIDF));
    let ok = phone1.expect_response(&mut c, 200);
    call.answered(&ok);
    c.deliver(phone1.peer, call.ack_authorized());
    let phone_leg = c
        .media
        .leg_to(addr("203.0.113.1:7000"))
        .expect("the phone's media")
        .0;
    assert!(matches!(
        c.renders.last(),
        Some((l, _, Some(Sound::Ringback))) if *l == phone_leg
    ));
    carrier.pick_up(&mut c, &invite, 9000);
    let service = c
        .media
        .leg_to(addr("198.51.100.20:9000"))
        .expect("the service's leg")
        .0;
    assert_eq!(c.media.legs[&phone_leg].hears, vec![service]);
    assert_eq!(c.media.legs[&service].hears, vec![phone_leg]);
    let record = c.the_call();
    assert_eq!(record.emergency, Some(Emergency::Outgoing));
    assert_eq!(record.contact, None);
    assert!(c.routing.outbound.is_empty());
}

#[test]
fn a_phone_refused_hears_why_and_an_ordinary_number_goes_out_after_the_phone_is_answered() {
    let (mut c, phone1, _) = center();
    let (call, id) = phone_dials(&mut c, &phone1, "911");
    c.input(Input::PhoneDialed {
        call: id,
        decision: Err(switchboard_call::PhoneRefusal {
            status: 403,
            warning: "your location is not set".into(),
        }),
    });
    let refused = phone1.expect_response(&mut c, 403);
    assert_eq!(
        refused.headers.get("Warning"),
        Some("399 switchboard \"your location is not set\"")
    );
    call.answered(&refused);
    c.deliver(phone1.peer, call.ack_authorized_refusal());
    assert!(c.records.is_empty(), "a refused call leaves no record");
    Peer::at(CARRIER_OUT).expect_nothing(&mut c);

    let (call, id) = phone_dials(&mut c, &phone1, "5551000");
    c.input(Input::PhoneDialed {
        call: id,
        decision: Ok(None),
    });
    let ok = phone1.expect_response(&mut c, 200);
    call.answered(&ok);
    c.deliver(phone1.peer, call.ack_authorized());
    let carrier = Peer::at(CARRIER_OUT);
    let invite = carrier.expect_request(&mut c, Method::Invite);
    assert_eq!(invite.uri, "sip:5551000@carrier.example:5060");
    let record = c.the_call();
    assert_eq!(record.emergency, None);
    let contact = record.contact.expect("an outbound contact");
    assert_eq!(c.routing.outbound, vec![(contact, c.agents.agent1)]);
}

#[test]
fn a_phone_with_a_wrong_password_cannot_dial() {
    let (mut c, phone1, _) = center();
    let call = phone1.dial(
        "agent1",
        "911",
        Some(sdp(&phone1.ip(), 7000, "0", "sendrecv")),
    );
    c.deliver(phone1.peer, call.invite());
    let challenge = phone1.expect_response(&mut c, 401);
    let header = challenge
        .headers
        .get("WWW-Authenticate")
        .unwrap()
        .to_owned();
    let (realm, nonce) = switchboard_sip::digest::parse_challenge(&header).unwrap();
    let wrong = switchboard_sip::digest::answer(
        "agent1",
        "not-the-password",
        &realm,
        &nonce,
        "INVITE",
        &format!("sip:911@{}", crate::harness::ENGINE),
        "0a4f113b",
    );
    c.deliver(phone1.peer, call.invite_authorized(&wrong));
    phone1.expect_response(&mut c, 403);
    assert!(c.phone_dials.is_empty());
}
