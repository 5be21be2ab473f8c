//! Scheduled callbacks: the agent routing picked is rung first, hears the callback whisper
//! alone, then the consumer's number is called through the outbound trunk while the agent
//! hears ringback, and they talk; a number that does not answer ends the call unanswered (the
//! shell retries the callback by its policy).

use crate::harness::peers::Peer;
use crate::harness::{addr, CARRIER_OUT};
use crate::harness::{Center, CARRIER};
use crate::{call_in, center, customer_leg, press, seconds};
use std::time::Duration;
use switchboard_call::{Sound, CALLBACK_CONFIRMATION};
use switchboard_core::voice::{CallDirection, Disposition};
use switchboard_core::whisper::{Whisper, WhisperMessage};
use switchboard_core::ContactId;
use switchboard_sip::Method;

#[test]
fn the_agent_hears_the_callback_whisper_then_the_consumer_is_dialled_and_they_talk() {
    let (mut c, phone1, _) = center();
    c.configure(|d| {
        d.whisper = Whisper {
            message: WhisperMessage::CallType,
            speed: 100,
            countdown: false,
        }
    });
    let (agent1, sales) = (c.agents.agent1, c.queues.sales);
    let contact = ContactId::from_uuid(uuid::Uuid::from_u128(77));
    let record = c
        .callback_dial(contact, agent1, "5551000", sales)
        .expect("dialled");
    assert_eq!(record.contact, Some(contact));
    assert_eq!(record.queue, Some(sales));
    assert_eq!(record.direction, CallDirection::Outbound);
    // The agent's phone rings first; the carrier hears nothing yet.
    let invite = phone1.expect_request(&mut c, Method::Invite);
    let carrier = Peer::at(CARRIER_OUT);
    carrier.expect_nothing(&mut c);
    phone1.pick_up(&mut c, &invite, 7000);
    let agent = c
        .media
        .leg_to(addr("203.0.113.1:7000"))
        .expect("the agent's leg")
        .0;
    // The whisper, to the agent alone, before anyone is dialled.
    let (leg, sounds, then) = c.renders.last().expect("the whisper").clone();
    assert_eq!(leg, agent);
    assert_eq!(
        sounds,
        vec![Sound::Speak {
            text: "Callback from Sales".into(),
            speed: 100
        }]
    );
    assert_eq!(then, None);
    carrier.expect_nothing(&mut c);
    // Once it has played, the number is called and the agent hears ringback.
    c.advance(Duration::from_millis(1200));
    let out = carrier.expect_request(&mut c, Method::Invite);
    assert!(out.uri.contains("5551000"), "{}", out.uri);
    assert!(matches!(
        c.renders.last(),
        Some((l, sounds, Some(Sound::Ringback))) if *l == agent && sounds.is_empty()
    ));
    carrier.pick_up(&mut c, &out, 9000);
    let number = c
        .media
        .leg_to(addr("198.51.100.20:9000"))
        .expect("the number's leg")
        .0;
    assert_eq!(c.media.legs[&number].hears, vec![agent]);
    assert_eq!(c.media.legs[&agent].hears, vec![number]);
    let talking = c.the_call().clone();
    assert!(talking.answered_at.is_some());
    assert!(talking.whisper_ms.is_some_and(|ms| ms >= 1000));
    c.advance(seconds(4));
    c.deliver(phone1.peer, phone1.in_dialog(&invite, "BYE", 2, ""));
    let bye = carrier.expect_request(&mut c, Method::Bye);
    c.deliver(carrier.peer, carrier.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.contact, Some(contact));
    assert!(c.routing.ended.iter().any(|(id, _)| *id == contact));
}

#[test]
fn a_callback_the_number_does_not_answer_ends_unanswered() {
    let (mut c, phone1, _) = center();
    let (agent1, sales) = (c.agents.agent1, c.queues.sales);
    let contact = ContactId::from_uuid(uuid::Uuid::from_u128(78));
    c.callback_dial(contact, agent1, "5551000", sales)
        .expect("dialled");
    let invite = phone1.expect_request(&mut c, Method::Invite);
    phone1.pick_up(&mut c, &invite, 7000);
    // No whisper configured: the number is called at once.
    let carrier = Peer::at(CARRIER_OUT);
    let out = carrier.expect_request(&mut c, Method::Invite);
    c.deliver(carrier.peer, carrier.answer(&out, 480, None));
    carrier.expect_request(&mut c, Method::Ack);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Unanswered);
    assert_eq!(record.answered_at, None);
    assert_eq!(record.contact, Some(contact));
    assert!(c.engine.live().is_empty());
}

/// A caller waiting in Support presses `*`: the shell is told to store the callback with the
/// caller's number and their contact (whose place it keeps), the caller hears the
/// confirmation and is hung up; a queue that does not allow it ignores the key.
#[test]
fn a_waiting_caller_presses_star_to_be_called_back() {
    for allowed in [true, false] {
        let mut c = Center::new();
        let now = c.wall_now();
        c.routing.unavailable(c.agents.agent2, now);
        let support = c.queues.support;
        if !allowed {
            c.configure(|d| {
                d.no_queue_callbacks = std::sync::Arc::new([support].into_iter().collect());
            });
        }
        let carrier = Peer::at(CARRIER);
        let call = call_in(&mut c, &carrier, 6000);
        let leg = customer_leg(&c, 6000);
        press(&mut c, leg, '2');
        c.advance(seconds(2));
        let contact = c.the_call().contact.expect("waiting as a contact");
        press(&mut c, leg, '*');
        if !allowed {
            assert!(c.callbacks_asked.is_empty());
            assert!(c.engine.live().len() == 1, "still waiting");
            continue;
        }
        let caller = c.the_call().caller.clone();
        assert_eq!(c.callbacks_asked, vec![(contact, support, caller)]);
        let (_, sounds, _) = c.renders.last().expect("the confirmation").clone();
        assert_eq!(
            sounds,
            vec![Sound::Speak {
                text: CALLBACK_CONFIRMATION.into(),
                speed: 100
            }]
        );
        // Once it has played, the caller is hung up and the contact ends.
        c.advance(seconds(2));
        let bye = carrier.expect_request(&mut c, Method::Bye);
        c.deliver(carrier.peer, carrier.ok(&bye));
        let _ = call;
        let record = c.the_call();
        assert_eq!(record.disposition, Disposition::Unanswered);
        assert_eq!(record.ended_by.as_deref(), Some("caller"));
        assert!(c.routing.ended.iter().any(|(id, _)| *id == contact));
    }
}
