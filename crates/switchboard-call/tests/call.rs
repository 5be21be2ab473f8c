//! The call engine's stories, run in virtual time through the in-memory harness: the menu, the
//! queue, ringing agents, talking, hang-ups from either side, abandons, the CANCEL/200 race,
//! transfers, hold by API and by re-INVITE, the media timeout, SIP INFO with a late offer.
//! Each runs in milliseconds.

mod after_hours;
mod browser;
mod callback;
mod emergency;
mod harness;
mod monitor;
mod outbound;
mod recording;
mod security;
mod voicemail;
mod whisper;

use harness::media::{decode, share_of, Tone};
use harness::peers::{sdp, Outgoing, Peer};
use harness::{addr, Center, CARRIER, CARRIER_OUT, NUMBER};
use std::time::Duration;
use switchboard_call::{
    CallControl, CallError, CallMetric, Input, LegId, MediaEvent, RoutingRefusal, Sound, TransferTo,
};
use switchboard_core::voice::Disposition;
use switchboard_sip::{Message, Method, Request};

const PHONE1: &str = "203.0.113.1:5060";
const PHONE2: &str = "203.0.113.2:5060";

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A center with both agents' phones registered.
fn center() -> (Center, Peer, Peer) {
    let mut center = Center::new();
    let (phone1, phone2) = (Peer::at(PHONE1), Peer::at(PHONE2));
    center.register("agent1", &phone1);
    center.register("agent2", &phone2);
    (center, phone1, phone2)
}

/// The carrier calls the center's number; the engine answers at once.
pub(crate) fn call_in(center: &mut Center, carrier: &Peer, port: u16) -> Outgoing {
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), port, "0 8", "sendrecv")));
    center.deliver(carrier.peer, call.invite());
    let ok = carrier.expect_response(center, 200);
    call.answered(&ok);
    center.deliver(carrier.peer, call.ack(""));
    call
}

/// The customer leg of the call whose media goes to `port` of the carrier.
pub(crate) fn customer_leg(center: &Center, port: u16) -> LegId {
    let remote = addr(&format!("198.51.100.10:{port}"));
    center
        .media
        .leg_to(remote)
        .expect("the caller's media leg")
        .0
}

pub(crate) fn press(center: &mut Center, leg: LegId, digit: char) {
    center.input(Input::Media(MediaEvent::Dtmf { leg, digit }));
}

/// The call reaches Sales (digit 1) and rings `phone`: returns the INVITE it got.
fn to_sales(center: &mut Center, carrier: &Peer, port: u16, phone: &Peer) -> (Outgoing, Request) {
    let call = call_in(center, carrier, port);
    let leg = customer_leg(center, port);
    press(center, leg, '1');
    let invite = phone.expect_request(center, Method::Invite);
    (call, invite)
}

#[test]
fn a_call_walks_the_menu_and_talks_to_an_agent() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    // The caller hears the top-level menu's choices, in position order.
    let menu = c.renders.last().expect("the menu is rendered");
    assert_eq!(menu.0, leg);
    assert_eq!(
        menu.1,
        vec![Sound::Menu {
            node: None,
            language: None,
            choices: vec!["Sales".into(), "Support".into()],
        }]
    );
    assert!(c.media.legs[&leg].playing.is_some());
    press(&mut c, leg, '1');
    // Queued in Sales with hold music; routing picks agent1, whose phone rings.
    let invite = phone1.expect_request(&mut c, Method::Invite);
    assert_eq!(c.the_call().queue, Some(c.queues.sales));
    assert_eq!(c.the_call().ivr_path, "1");
    assert!(matches!(
        c.renders.last().map(|r| &r.2),
        Some(Some(Sound::Hold(Some(q)))) if *q == c.queues.sales
    ));
    assert!(String::from_utf8_lossy(&invite.body).contains("m=audio"));
    phone1.ring(&mut c, &invite);
    c.advance(Duration::from_millis(1500));
    phone1.pick_up(&mut c, &invite, 7000);
    let agent_leg = c
        .media
        .leg_to(addr("203.0.113.1:7000"))
        .expect("the agent's media leg")
        .0;
    // Bridged both ways; the hold music stopped.
    assert_eq!(c.media.legs[&leg].hears, vec![agent_leg]);
    assert_eq!(c.media.legs[&agent_leg].hears, vec![leg]);
    assert_eq!(c.media.legs[&leg].playing, None);
    let record = c.the_call().clone();
    assert_eq!(record.agent, Some(c.agents.agent1));
    assert_eq!(record.wait_ms(), Some(1500));
    c.advance(seconds(10));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.ended_by.as_deref(), Some("caller"));
    assert_eq!(record.talk_ms(), Some(10_000));
    let contact = record.contact.expect("the call had a contact");
    assert_eq!(c.routing.ended, vec![(contact, "caller hung up")]);
    assert!(c.engine.live().is_empty());
    assert!(c.media.open_legs(record.id).is_empty());
    assert_eq!(
        c.metrics,
        vec![
            CallMetric::Started,
            CallMetric::Queued,
            CallMetric::LeftQueue,
            CallMetric::Answered {
                wait_ms: Some(1500)
            },
            CallMetric::Ended {
                disposition: Disposition::Answered
            },
        ]
    );
    // Every transaction and leg is gone once the retransmission windows pass.
    c.advance(seconds(40));
    assert_eq!(c.engine.sizes(), (0, 0, 0));
}

#[test]
fn the_agent_hangs_up_first() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    c.advance(seconds(3));
    c.deliver(phone1.peer, phone1.in_dialog(&invite, "BYE", 2, ""));
    phone1.expect_response(&mut c, 200);
    let bye = carrier.expect_request(&mut c, Method::Bye);
    assert_eq!(bye.headers.get("Call-ID"), Some(call.call_id.as_str()));
    c.deliver(carrier.peer, carrier.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.ended_by.as_deref(), Some("agent"));
    assert_eq!(record.disposition, Disposition::Answered);
    let contact = record.contact.expect("a contact");
    assert_eq!(c.routing.ended, vec![(contact, "agent hung up")]);
}

#[test]
fn an_unanswered_phone_passes_the_call_to_the_next_agent() {
    let (mut c, phone1, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    c.deliver(phone1.peer, phone1.answer(&invite, 180, None));
    // The ring time (2 s here) passes: agent1's phone gets CANCEL and agent1 is not ready.
    c.advance(seconds(2));
    let cancel = phone1.expect_request(&mut c, Method::Cancel);
    c.deliver(phone1.peer, phone1.ok(&cancel));
    c.deliver(phone1.peer, phone1.answer(&invite, 487, None));
    phone1.expect_request(&mut c, Method::Ack);
    assert_eq!(c.routing.not_ready, vec![c.agents.agent1]);
    // agent2's phone rings and answers.
    let invite2 = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &invite2, 7002);
    let record = c.the_call();
    assert_eq!(record.agent, Some(c.agents.agent2));
    assert_eq!(record.wait_ms(), Some(2000));
    assert!(record.answered_at.is_some());
}

#[test]
fn a_caller_abandons_in_the_queue_and_while_ringing() {
    // Nobody is free: the caller waits, then hangs up.
    let mut c = Center::new();
    let now = c.wall_now();
    c.routing.unavailable(c.agents.agent2, now);
    let carrier = Peer::at(CARRIER);
    let call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '2');
    c.advance(seconds(31));
    // The position was announced with the hold music after 30 s.
    assert!(c
        .renders
        .iter()
        .any(|(_, sounds, _)| sounds == &vec![Sound::Position(1)]));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Abandoned);
    assert_eq!(record.ended_by.as_deref(), Some("caller"));
    assert_eq!(record.queue, Some(c.queues.support));
    assert!(c.metrics.contains(&CallMetric::LeftQueue));

    // While agent1's phone rings: it gets CANCEL.
    let (mut c, phone1, _) = center();
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    c.deliver(phone1.peer, phone1.answer(&invite, 180, None));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let cancel = phone1.expect_request(&mut c, Method::Cancel);
    c.deliver(phone1.peer, phone1.ok(&cancel));
    c.deliver(phone1.peer, phone1.answer(&invite, 487, None));
    phone1.expect_request(&mut c, Method::Ack);
    assert_eq!(c.the_call().disposition, Disposition::Abandoned);
    assert!(c.routing.not_ready.is_empty());
}

#[test]
fn a_phone_that_answers_after_cancel_is_acknowledged_and_hung_up() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let cancel = phone1.expect_request(&mut c, Method::Cancel);
    // The phone's 200 crosses the CANCEL.
    c.deliver(
        phone1.peer,
        phone1.answer(
            &invite,
            200,
            Some(sdp("203.0.113.1", 7000, "0", "sendrecv")),
        ),
    );
    c.deliver(phone1.peer, phone1.ok(&cancel));
    phone1.expect_request(&mut c, Method::Ack);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    phone1.expect_nothing(&mut c);
    assert_eq!(c.the_call().disposition, Disposition::Abandoned);
    c.advance(seconds(40));
    assert_eq!(c.engine.sizes(), (0, 0, 0));
}

#[test]
fn a_call_that_cannot_be_answered_leaves_no_record() {
    // Cancelled while its media is still being opened: 200 to the CANCEL, 487 to the INVITE.
    let mut c = Center::new();
    c.media.slow = true;
    let carrier = Peer::at(CARRIER);
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6000, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 100);
    assert!(c.engine.live().is_empty());
    c.deliver(carrier.peer, call.cancel());
    carrier.expect_response(&mut c, 200);
    carrier.expect_response(&mut c, 487);
    // The media plane answers late; the leg is already gone and closed.
    c.media.slow = false;
    c.settle();
    carrier.expect_nothing(&mut c);
    assert!(c.records.is_empty());
    assert!(c.media.legs.values().all(|l| l.closed));
    // No media port is free: 503, and no record either.
    c.media.exhausted = true;
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6000, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 503);
    assert!(c.records.is_empty());
    assert!(c.engine.live().is_empty());
    c.advance(Duration::from_secs(40));
    assert_eq!(c.engine.sizes(), (0, 0, 0));
}

#[test]
fn a_call_is_transferred_to_another_queue() {
    let (mut c, phone1, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    // Hold and resume through the API first.
    let held = c.command(id, CallControl::Hold).expect("answered at once");
    assert!(held.is_ok());
    let leg = customer_leg(&c, 6000);
    assert!(c.media.legs[&leg].hears.is_empty());
    assert!(c.media.legs[&leg].playing.is_some());
    assert_eq!(
        c.command(id, CallControl::Hold),
        Some(Err(CallError::State(
            "only a call in conversation can be held"
        )))
    );
    assert!(c.command(id, CallControl::Resume).expect("at once").is_ok());
    assert_eq!(c.media.legs[&leg].hears.len(), 1);
    // A blind transfer to Support, which only agent2 serves.
    let answer = c.command(
        id,
        CallControl::Transfer {
            to: TransferTo::Queue(c.queues.support),
            attended: false,
        },
    );
    let record = answer
        .expect("routing answered in the same step")
        .expect("transferred");
    assert_eq!(
        record.transfers,
        vec![format!("queue:{}", c.queues.support)]
    );
    // agent1's phone is hung up; agent2 (free) rings and answers.
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    let invite2 = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &invite2, 7002);
    let record = c.record(id).expect("stored");
    assert_eq!(record.queue, Some(c.queues.support));
    assert_eq!(record.agent, Some(c.agents.agent2));
    // A transfer of a call that is not with an agent is refused.
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    assert_eq!(
        c.command(id, CallControl::HangUp),
        Some(Err(CallError::NotFound))
    );
}

#[test]
fn a_blind_transfer_waits_for_routing_in_either_order() {
    for answer_first in [false, true] {
        let (mut c, phone1, phone2) = center();
        c.routing.answer_first = answer_first;
        let carrier = Peer::at(CARRIER);
        let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
        phone1.pick_up(&mut c, &invite, 7000);
        let id = c.the_call().id;
        let answer = c.command(
            id,
            CallControl::Transfer {
                to: TransferTo::Agent(c.agents.agent2),
                attended: false,
            },
        );
        assert!(answer.expect("answered").is_ok());
        let bye = phone1.expect_request(&mut c, Method::Bye);
        c.deliver(phone1.peer, phone1.ok(&bye));
        let invite2 = phone2.expect_request(&mut c, Method::Invite);
        phone2.pick_up(&mut c, &invite2, 7002);
        assert_eq!(c.the_call().agent, Some(c.agents.agent2));
        // An agent cannot be handed a call they already have.
        let refused = c.command(
            id,
            CallControl::Transfer {
                to: TransferTo::Agent(c.agents.agent2),
                attended: false,
            },
        );
        assert_eq!(
            refused,
            Some(Err(CallError::Routing(RoutingRefusal::AgentUnavailable)))
        );
    }
}

#[test]
fn an_attended_transfer_to_a_number() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let carrier_out = Peer::at(CARRIER_OUT);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    let answer = c.command(
        id,
        CallControl::Transfer {
            to: TransferTo::Number("02079460000".into()),
            attended: true,
        },
    );
    assert!(answer.expect("at once").is_ok());
    // The dial rule turned 0… into +44…; the trunk's caller id is in From.
    let out = carrier_out.expect_request(&mut c, Method::Invite);
    assert_eq!(out.uri, "sip:+442079460000@carrier.example:5060");
    assert!(out
        .headers
        .get("From")
        .unwrap_or_default()
        .contains("sip:15550199@"));
    // The carrier asks for credentials; the INVITE is sent again with them.
    let mut challenge =
        switchboard_sip::Response::to(&out, 407, "Proxy Authentication Required", Some("x"));
    challenge.headers.push(
        "Proxy-Authenticate",
        "Digest realm=\"carrier\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"",
    );
    c.deliver(carrier_out.peer, Message::Response(challenge));
    carrier_out.expect_request(&mut c, Method::Ack);
    let retry = carrier_out.expect_request(&mut c, Method::Invite);
    let auth = retry
        .headers
        .get("Proxy-Authorization")
        .expect("credentials");
    assert!(auth.contains("username=\"center\"") && auth.contains("realm=\"carrier\""));
    assert_eq!(
        c.command(id, CallControl::CompleteTransfer),
        Some(Err(CallError::State(
            "the transfer target has not answered yet"
        )))
    );
    carrier_out.pick_up(&mut c, &retry, 8000);
    // The caller holds while the agent talks to the number.
    let leg = customer_leg(&c, 6000);
    let agent_leg = c.media.leg_to(addr("203.0.113.1:7000")).expect("agent").0;
    let number_leg = c
        .media
        .leg_to(addr("198.51.100.20:8000"))
        .expect("number")
        .0;
    assert!(c.media.legs[&leg].hears.is_empty());
    assert_eq!(c.media.legs[&agent_leg].hears, vec![number_leg]);
    assert_eq!(c.media.legs[&number_leg].hears, vec![agent_leg]);
    let done = c
        .command(id, CallControl::CompleteTransfer)
        .expect("at once");
    assert!(done.is_ok());
    // The agent leaves; the caller talks to the number; the contact has ended.
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    assert_eq!(c.media.legs[&leg].hears, vec![number_leg]);
    let contact = c.the_call().contact.expect("a contact");
    assert_eq!(c.routing.ended, vec![(contact, "transferred to a number")]);
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = carrier_out.expect_request(&mut c, Method::Bye);
    c.deliver(carrier_out.peer, carrier_out.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::TransferredOut);
    assert_eq!(record.transfers, vec!["number:02079460000".to_owned()]);
}

#[test]
fn an_attended_transfer_to_an_agent() {
    let (mut c, phone1, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    let answer = c.command(
        id,
        CallControl::Transfer {
            to: TransferTo::Agent(c.agents.agent2),
            attended: true,
        },
    );
    assert!(answer.expect("at once").is_ok());
    let consult = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &consult, 7002);
    let done = c.command(id, CallControl::CompleteTransfer);
    assert!(done.expect("routing answered").is_ok());
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    phone2.expect_nothing(&mut c);
    let leg = customer_leg(&c, 6000);
    let agent2_leg = c.media.leg_to(addr("203.0.113.2:7002")).expect("agent2").0;
    assert_eq!(c.media.legs[&leg].hears, vec![agent2_leg]);
    assert_eq!(c.media.legs[&agent2_leg].hears, vec![leg]);
    assert_eq!(c.the_call().agent, Some(c.agents.agent2));
    // Cancelling a transfer that is not being consulted is refused.
    assert_eq!(
        c.command(id, CallControl::CancelTransfer),
        Some(Err(CallError::State("no transfer is being consulted")))
    );
    // The new agent hangs up: the call ends, said by agent.
    c.deliver(phone2.peer, phone2.in_dialog(&consult, "BYE", 2, ""));
    phone2.expect_response(&mut c, 200);
    assert_eq!(c.the_call().ended_by.as_deref(), Some("agent"));
}

#[test]
fn the_agents_phone_holds_and_resumes_by_reinvite() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let leg = customer_leg(&c, 6000);
    let hold = phone1.in_dialog(
        &invite,
        "INVITE",
        2,
        &sdp("203.0.113.1", 7000, "0", "sendonly"),
    );
    c.deliver(phone1.peer, hold);
    let ok = phone1.expect_response(&mut c, 200);
    assert!(String::from_utf8_lossy(&ok.body).contains("a=recvonly"));
    assert!(c.media.legs[&leg].hears.is_empty());
    assert!(c.media.legs[&leg].playing.is_some());
    let resume = phone1.in_dialog(
        &invite,
        "INVITE",
        3,
        &sdp("203.0.113.1", 7000, "0", "sendrecv"),
    );
    c.deliver(phone1.peer, resume);
    phone1.expect_response(&mut c, 200);
    assert_eq!(c.media.legs[&leg].hears.len(), 1);
    assert_eq!(c.media.legs[&leg].playing, None);
    // The caller holding (sendonly from their side means they still send; inactive does
    // not): media silence is then expected.
    let id = c.the_call().id;
    assert!(c.engine.live().iter().any(|r| r.id == id));
    // An unknown dialog's re-INVITE gets 481.
    let mut stranger = phone1.in_dialog(&invite, "INVITE", 4, "");
    if let Message::Request(r) = &mut stranger {
        r.headers.set("Call-ID", "unknown@nowhere");
    }
    c.deliver(phone1.peer, stranger);
    phone1.expect_response(&mut c, 481);
}

/// The local media port of a leg.
fn port_of(center: &Center, leg: LegId) -> u16 {
    center.media.legs[&leg].port
}

#[test]
fn audio_flows_between_the_caller_and_the_agent_through_the_room() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    let customer = customer_leg(&c, 6000);
    let caller_media = addr("198.51.100.10:6000");
    // While the phone rings the caller hears the hold music (the harness renders 300 Hz).
    phone1.ring(&mut c, &invite);
    c.advance(Duration::from_millis(500));
    let waiting = decode(&c.media.take_sent(caller_media));
    assert!(
        waiting.len() >= 160 * 20,
        "{} samples of hold music",
        waiting.len()
    );
    assert!(share_of(&waiting, 300.0) > 0.8);
    // The agent's phone speaks A-law only: the caller's µ-law is converted on the way.
    let answer = phone1.answer(
        &invite,
        200,
        Some(sdp("203.0.113.1", 7000, "8", "sendrecv")),
    );
    c.deliver(phone1.peer, answer);
    phone1.expect_request(&mut c, Method::Ack);
    let agent = c
        .media
        .leg_to(addr("203.0.113.1:7000"))
        .expect("agent leg")
        .0;
    c.media.take_sent(caller_media);
    let mut caller_voice = Tone::new(400.0, 0, 1);
    let mut agent_voice = Tone::new(1000.0, 8, 2);
    let (caller_port, agent_port) = (port_of(&c, customer), port_of(&c, agent));
    c.talk(
        &mut [
            (caller_port, &mut caller_voice),
            (agent_port, &mut agent_voice),
        ],
        seconds(2),
    );
    let to_agent = c.media.take_sent(addr("203.0.113.1:7000"));
    let to_caller = c.media.take_sent(caller_media);
    // Forwarded packet for packet (no mixing, no delay): 100 each way, in the far end's law.
    assert_eq!(to_agent.len(), 100);
    assert_eq!(to_caller.len(), 100);
    assert!(to_agent.iter().all(|p| p[1] & 0x7f == 8));
    assert!(to_caller.iter().all(|p| p[1] & 0x7f == 0));
    assert!(share_of(&decode(&to_agent), 400.0) > 0.9);
    let heard = decode(&to_caller);
    assert!(share_of(&heard, 1000.0) > 0.9);
    assert!(
        share_of(&heard, 300.0) < 0.01,
        "no hold music over the conversation"
    );
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    // The record counts what the rooms counted.
    let rtp = c.the_call().rtp;
    assert_eq!(
        (rtp.from_caller, rtp.from_agent, rtp.to_agent),
        (100, 100, 100)
    );
    assert!(
        rtp.to_caller >= 125,
        "hold music and the agent: {}",
        rtp.to_caller
    );
}

#[test]
fn a_digit_sent_as_a_telephone_event_chooses_in_the_menu() {
    let (mut c, _, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let _call = call_in(&mut c, &carrier, 6000);
    let customer = customer_leg(&c, 6000);
    let port = port_of(&c, customer);
    // RFC 4733: digit 2, three packets of one event (the last ones marked as its end).
    for (n, end) in [(0u16, false), (1, false), (2, true)] {
        let mut packet = Vec::new();
        switchboard_media::rtp::write_header(&mut packet, n == 0, 101, 100 + n, 8000, 7);
        let duration = (160 * (n + 1)).to_be_bytes();
        packet.extend_from_slice(&[2, if end { 0x80 } else { 0 } | 10, duration[0], duration[1]]);
        c.rtp(port, packet);
    }
    phone2.expect_request(&mut c, Method::Invite);
    assert_eq!(c.the_call().ivr_path, "2");
}

#[test]
fn a_caller_who_holds_is_not_expected_to_send_and_one_who_vanishes_is_hung_up() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let leg = customer_leg(&c, 6000);
    let hold = call.request(
        "INVITE",
        &sdp("198.51.100.10", 6000, "0", "inactive"),
        "application/sdp",
    );
    c.deliver(carrier.peer, hold);
    let ok = carrier.expect_response(&mut c, 200);
    c.deliver(carrier.peer, call.ack_last());
    assert!(String::from_utf8_lossy(&ok.body).contains("a=inactive"));
    assert!(!c.media.legs[&leg].expects_media);
    let back = call.request(
        "INVITE",
        &sdp("198.51.100.10", 6000, "0", "sendrecv"),
        "application/sdp",
    );
    c.deliver(carrier.peer, back);
    carrier.expect_response(&mut c, 200);
    c.deliver(carrier.peer, call.ack_last());
    assert!(c.media.legs[&leg].expects_media);
    // The caller talks a moment, then vanishes without a BYE: once nothing came for the media
    // timeout (120 s), the call ends and both legs are hung up.
    let port = port_of(&c, leg);
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(1));
    c.advance(seconds(119));
    carrier.expect_nothing(&mut c);
    c.advance(seconds(1));
    carrier.expect_request(&mut c, Method::Bye);
    phone1.expect_request(&mut c, Method::Bye);
    let record = c.the_call();
    assert_eq!(record.ended_by.as_deref(), Some("system"));
    assert_eq!(record.disposition, Disposition::Answered);
}

#[test]
fn dtmf_by_sip_info_with_a_late_offer() {
    let (mut c, _, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let call = carrier.call(NUMBER, None);
    c.deliver(carrier.peer, call.invite());
    let ok = carrier.expect_response(&mut c, 200);
    // Our offer is in the 200: both laws and telephone-events.
    let offer = String::from_utf8_lossy(&ok.body).to_string();
    assert!(offer.contains("RTP/AVP 0 8 101"));
    call.answered(&ok);
    c.deliver(
        carrier.peer,
        call.ack(&sdp("198.51.100.10", 6100, "8", "sendrecv")),
    );
    let leg = customer_leg(&c, 6100);
    assert_eq!(c.media.legs[&leg].remote.map(|r| r.1), Some(8));
    let info = call.request(
        "INFO",
        "Signal=2\r\nDuration=160\r\n",
        "application/dtmf-relay",
    );
    c.deliver(carrier.peer, info);
    carrier.expect_response(&mut c, 200);
    let invite = phone2.expect_request(&mut c, Method::Invite);
    // The agent is offered the caller's law first.
    assert!(String::from_utf8_lossy(&invite.body).contains("RTP/AVP 8 0 101"));
    assert_eq!(c.the_call().queue, Some(c.queues.support));
}

#[test]
fn the_menu_times_out_and_a_wrong_digit_repeats_it() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    let _call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '7');
    assert!(matches!(
        c.renders.last().map(|r| &r.1[0]),
        Some(Sound::Invalid)
    ));
    c.advance(seconds(59));
    assert_eq!(c.engine.live().len(), 1);
    c.advance(seconds(1));
    carrier.expect_request(&mut c, Method::Bye);
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::LeftInMenu);
    assert_eq!(record.ended_by.as_deref(), Some("system"));
}

#[test]
fn a_call_routing_refuses_ends_as_failed() {
    let mut c = Center::new();
    c.routing.refuse = Some(RoutingRefusal::Unavailable("store down".into()));
    let carrier = Peer::at(CARRIER);
    let _call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '1');
    carrier.expect_request(&mut c, Method::Bye);
    assert_eq!(c.the_call().disposition, Disposition::Failed);
}

#[test]
fn a_caller_who_never_acknowledges_is_let_go_and_its_media_freed() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6000, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 200);
    c.advance(seconds(7));
    let id = c.the_call().id;
    assert_eq!(c.engine.live().len(), 1);
    // Eight seconds without an ACK: the call ends (no BYE: the dialog was never confirmed)
    // and its RTP ports are free, long before the 2xx retransmissions give up at 32 s.
    c.advance(seconds(1));
    assert!(c.engine.live().is_empty());
    assert!(c.media.open_legs(id).is_empty());
    assert_eq!(c.the_call().disposition, Disposition::Failed);
    c.advance(seconds(30));
    let messages: Vec<_> = std::iter::from_fn(|| c.take(CARRIER)).collect();
    assert!(messages
        .iter()
        .all(|m| matches!(m, Message::Response(r) if r.status == 200)));
    assert!(
        messages.len() >= 5,
        "{} retransmissions of the 200",
        messages.len()
    );
    c.advance(seconds(40));
    assert_eq!(c.engine.sizes(), (0, 0, 0));
}

#[test]
fn a_trunk_over_its_limits_gets_503_with_retry_after() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    // The default: 100 new calls a second from one trunk.
    let mut statuses = Vec::new();
    for n in 0..101 {
        let call = carrier.call(
            NUMBER,
            Some(sdp(&carrier.ip(), 6000 + n * 2, "0", "sendrecv")),
        );
        c.deliver(carrier.peer, call.invite());
        let answer = loop {
            match c.take(CARRIER) {
                Some(Message::Response(r)) if r.status >= 200 => break r,
                Some(_) => continue,
                None => panic!("no answer to call {n}"),
            }
        };
        call.answered(&answer);
        if answer.status == 200 {
            c.deliver(carrier.peer, call.ack(""));
        } else {
            c.deliver(carrier.peer, call.ack_refusal());
        }
        statuses.push((
            answer.status,
            answer.headers.get("Retry-After").map(str::to_owned),
        ));
    }
    assert!(statuses[..100].iter().all(|(s, _)| *s == 200));
    assert_eq!(statuses[100], (503, Some("1".to_owned())));
    // A second later there is room again.
    c.advance(Duration::from_millis(1001));
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 9000, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 200);
    assert_eq!(c.engine.live().len(), 101);
}

#[test]
fn requests_the_engine_does_not_take_get_their_answers() {
    let mut c = Center::new();
    let carrier = Peer::at(CARRIER);
    let stranger = Peer::at("192.0.2.99:5060");
    // Not from a trunk's address: asked for a trunk's credentials.
    let call = stranger.call(NUMBER, Some(sdp(&stranger.ip(), 6000, "0", "sendrecv")));
    c.deliver(stranger.peer, call.invite());
    stranger.expect_response(&mut c, 401);
    assert!(c.engine.live().is_empty());
    // An unknown number.
    let call = carrier.call("15559999", Some(sdp(&carrier.ip(), 6000, "0", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 404);
    // No G.711 offered.
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6000, "18", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    carrier.expect_response(&mut c, 488);
    // A BYE for no dialog.
    let call = carrier.call(NUMBER, None);
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 481);
    // A wrong phone password is refused.
    let phone = Peer::at(PHONE1);
    c.deliver(phone.peer, phone.register("agent1", None));
    let challenge = phone.expect_response(&mut c, 401);
    let header = challenge
        .headers
        .get("WWW-Authenticate")
        .expect("challenge")
        .to_owned();
    let (realm, nonce) = switchboard_sip::digest::parse_challenge(&header).expect("digest");
    let wrong = switchboard_sip::digest::answer(
        "agent1",
        "wrong",
        &realm,
        &nonce,
        "REGISTER",
        "sip:192.0.2.1:5060",
        "1",
    );
    c.deliver(phone.peer, phone.register("agent1", Some(&wrong)));
    phone.expect_response(&mut c, 403);
    assert!(c.engine.registrations(c.now).is_empty());
    // A nonce from before the restart of time (six minutes old) is stale.
    c.advance(seconds(360));
    let late = switchboard_sip::digest::answer(
        "agent1",
        harness::PASSWORD,
        &realm,
        &nonce,
        "REGISTER",
        "sip:192.0.2.1:5060",
        "1",
    );
    c.deliver(phone.peer, phone.register("agent1", Some(&late)));
    let stale = phone.expect_response(&mut c, 401);
    assert!(stale
        .headers
        .get("WWW-Authenticate")
        .unwrap_or_default()
        .contains("stale=true"));
}

/// RDP-2: the trunk's header flags put the caller's profile flags on the call, and the Apps
/// API replaces them during the call; both reach the stored record.
#[test]
fn caller_flags_come_from_sip_headers_and_the_api() {
    let (mut c, _phone1, _phone2) = center();
    let carrier = Peer::at(CARRIER);
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6000, "0", "sendrecv")));
    let mut invite = call.invite();
    if let Message::Request(request) = &mut invite {
        request.headers.push("x-verified-customer", "true");
        request.headers.push("X-Fraud-Risk", "no");
        request.headers.push("X-Unmapped", "true");
    }
    c.deliver(carrier.peer, invite);
    let ok = carrier.expect_response(&mut c, 200);
    call.answered(&ok);
    c.deliver(carrier.peer, call.ack(""));
    let record = c.the_call().clone();
    assert_eq!(
        record.properties.pairs(),
        [
            ("reserved_verified_customer", true),
            ("reserved_bad_actor", false)
        ]
    );
    // An update sets what it names and keeps the rest.
    let update = switchboard_core::chat::ReservedProperties {
        repeat_customer: Some(true),
        ..Default::default()
    };
    let answer = c
        .command(record.id, CallControl::UpdateProperties(update))
        .expect("answered at once")
        .expect("the call is live");
    let mut changed = record.properties;
    changed.repeat_customer = Some(true);
    assert_eq!(answer.properties, changed);
    assert_eq!(c.record(record.id).unwrap().properties, changed);
    // A call from elsewhere with no flags carries none.
    let other = carrier.call(NUMBER, Some(sdp(&carrier.ip(), 6002, "0", "sendrecv")));
    c.deliver(carrier.peer, other.invite());
    carrier.expect_response(&mut c, 200);
    assert!(c.records.last().unwrap().properties.pairs().is_empty());
}
