//! After hours (AHD-2): a caller who reaches a closed leaf queue that deflects is sent to
//! another queue, forwarded to a number through the outbound trunk, or played the message and
//! hung up; in hours, or without an enabled rule, they wait as ever. The harness's wall clock
//! starts on Monday 2026-03-02 09:00 UTC.

use crate::harness::peers::Peer;
use crate::harness::{Center, CARRIER, CARRIER_OUT};
use crate::{call_in, center, customer_leg, press, to_sales};
use std::sync::Arc;
use std::time::Duration;
use switchboard_call::{CallControl, Sound, TransferTo};
use switchboard_core::after_hours::{
    AfterHours, AfterHoursAction, AfterHoursMessage, DeflectionRule,
};
use switchboard_core::hours::{parse_time_zone, Closure, HoursScope, Schedule, WeeklyPeriod};
use switchboard_core::voice::{Disposition, PhoneNumber};
use switchboard_core::Channel;
use switchboard_sip::Method;

/// Sales is closed today by a closure; Support keeps the global hours (open all day).
pub(crate) fn close_sales(c: &mut Center, action: AfterHoursAction, enabled: bool) {
    let sales = c.queues.sales;
    close(c, sales, action, enabled);
}

/// `queue` is closed today by a closure and deflects with `action`; the others are open.
pub(crate) fn close(
    c: &mut Center,
    queue: switchboard_core::QueueId,
    action: AfterHoursAction,
    enabled: bool,
) {
    let all_day = |closures: Vec<Closure>| {
        Schedule::new(
            parse_time_zone("UTC").unwrap(),
            ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .map(|d| WeeklyPeriod::parse(&format!("{d} 00:00-00:00")).unwrap())
                .collect(),
            vec![],
            closures,
        )
        .unwrap()
    };
    let schedules = vec![
        (HoursScope::default(), all_day(vec![])),
        (
            HoursScope {
                queue: Some(queue),
                ..HoursScope::default()
            },
            all_day(vec![Closure::parse(
                "2026-03-02T00:00:00Z/2026-03-03T00:00:00Z",
            )
            .unwrap()]),
        ),
    ];
    let nodes = c.directory.nodes.clone();
    let rule = DeflectionRule::new(
        Some(queue),
        Channel::Voice,
        enabled,
        action,
        vec![AfterHoursMessage::new(None, "We are closed today.").unwrap()],
        &nodes,
    )
    .unwrap();
    c.configure(|d| d.after_hours = Arc::new(AfterHours::new(schedules, vec![rule])));
}

#[test]
fn a_caller_of_a_closed_queue_is_sent_to_another_queue() {
    let (mut c, phone1, phone2) = center();
    let support = c.queues.support;
    close_sales(&mut c, AfterHoursAction::Queue(support), true);
    let carrier = Peer::at(CARRIER);
    let _call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '1');
    // agent2 serves Support; agent1 (Sales only) is never rung.
    let invite = phone2.expect_request(&mut c, Method::Invite);
    assert_eq!(c.the_call().queue, Some(c.queues.support));
    phone1.expect_nothing(&mut c);
    phone2.pick_up(&mut c, &invite, 7000);
    assert_eq!(c.the_call().agent, Some(c.agents.agent2));
}

#[test]
fn a_caller_of_a_closed_queue_is_forwarded_to_a_number() {
    let (mut c, phone1, _) = center();
    let number = PhoneNumber::parse("number", "02079460000").unwrap();
    close_sales(&mut c, AfterHoursAction::Forward(number), true);
    let carrier = Peer::at(CARRIER);
    let carrier_out = Peer::at(CARRIER_OUT);
    let call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '1');
    // Through the outbound trunk, its dial rule applied; nobody's phone rings.
    let out = carrier_out.expect_request(&mut c, Method::Invite);
    assert_eq!(out.uri, "sip:+442079460000@carrier.example:5060");
    phone1.expect_nothing(&mut c);
    assert_eq!(c.the_call().contact, None, "no contact is opened");
    carrier_out.pick_up(&mut c, &out, 8000);
    c.advance(Duration::from_secs(5));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = carrier_out.expect_request(&mut c, Method::Bye);
    c.deliver(carrier_out.peer, carrier_out.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::TransferredOut);
    assert_eq!(record.queue, Some(c.queues.sales));
}

#[test]
fn a_caller_of_a_closed_queue_hears_the_message_and_is_hung_up() {
    let (mut c, phone1, _) = center();
    close_sales(&mut c, AfterHoursAction::Message, true);
    let carrier = Peer::at(CARRIER);
    let _call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '1');
    let (played_to, sounds, then) = c.renders.last().expect("the message is rendered").clone();
    assert_eq!(played_to, leg);
    assert_eq!(
        sounds,
        vec![Sound::AfterHours {
            queue: c.queues.sales,
            language: None,
            text: "We are closed today.".into(),
        }]
    );
    assert_eq!(then, None, "played once, not looped");
    // Digits change nothing while it plays.
    press(&mut c, leg, '2');
    phone1.expect_nothing(&mut c);
    // Once it has played, the caller gets BYE.
    c.advance(Duration::from_secs(2));
    let bye = carrier.expect_request(&mut c, Method::Bye);
    c.deliver(carrier.peer, carrier.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Unanswered);
    assert_eq!(record.ended_by.as_deref(), Some("system"));
    assert_eq!(record.contact, None);
    assert!(c.engine.live().is_empty());
}

#[test]
fn without_an_enabled_rule_or_in_hours_the_caller_waits_as_ever() {
    for (enabled, close) in [(false, true), (true, false)] {
        let (mut c, phone1, _) = center();
        if close {
            close_sales(&mut c, AfterHoursAction::Message, enabled);
        } else {
            // Deflection enabled, but Sales is open (no closure today).
            let nodes = c.directory.nodes.clone();
            let rule = DeflectionRule::new(
                None,
                Channel::Voice,
                enabled,
                AfterHoursAction::Message,
                vec![],
                &nodes,
            )
            .unwrap();
            c.configure(|d| d.after_hours = Arc::new(AfterHours::new(vec![], vec![rule])));
        }
        let carrier = Peer::at(CARRIER);
        let _call = call_in(&mut c, &carrier, 6000);
        let leg = customer_leg(&c, 6000);
        press(&mut c, leg, '1');
        phone1.expect_request(&mut c, Method::Invite);
        assert_eq!(c.the_call().queue, Some(c.queues.sales));
    }
}

/// A call transferred to a closed queue gets that queue's after-hours treatment: here its
/// message, after which the caller is hung up; the agent is free at once.
#[test]
fn a_call_transferred_to_a_closed_queue_hears_its_message() {
    let (mut c, phone1, phone2) = center();
    let support = c.queues.support;
    close(&mut c, support, AfterHoursAction::Message, true);
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    let contact = c.the_call().contact.expect("a contact");
    let record = c
        .command(
            id,
            CallControl::Transfer {
                to: TransferTo::Queue(support),
                attended: false,
            },
        )
        .expect("answered at once")
        .expect("transferred");
    assert_eq!(record.transfers, vec![format!("queue:{support}")]);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    assert!(c.routing.ended.iter().any(|(ended, _)| *ended == contact));
    let leg = customer_leg(&c, 6000);
    let (played_to, sounds, _) = c.renders.last().expect("the message").clone();
    assert_eq!(played_to, leg);
    assert!(matches!(&sounds[..], [Sound::AfterHours { queue, .. }] if *queue == support));
    c.advance(Duration::from_secs(2));
    let bye = carrier.expect_request(&mut c, Method::Bye);
    c.deliver(carrier.peer, carrier.ok(&bye));
    phone2.expect_nothing(&mut c);
    let record = c.the_call();
    assert_eq!(
        record.disposition,
        Disposition::Answered,
        "agent1 answered it first"
    );
    assert_eq!(record.queue, Some(support));
    assert!(c.engine.live().is_empty());
}

/// A transfer to a closed queue that sends its calls on goes where it says.
#[test]
fn a_call_transferred_to_a_closed_queue_goes_on_to_its_target() {
    let (mut c, phone1, phone2) = center();
    let (sales, support) = (c.queues.sales, c.queues.support);
    close(&mut c, sales, AfterHoursAction::Queue(support), true);
    let carrier = Peer::at(CARRIER);
    // Support is open: the caller reaches agent2 there, who transfers back to Sales.
    let _call = call_in(&mut c, &carrier, 6000);
    let leg = customer_leg(&c, 6000);
    press(&mut c, leg, '2');
    let invite = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    let record = c
        .command(
            id,
            CallControl::Transfer {
                to: TransferTo::Queue(sales),
                attended: false,
            },
        )
        .expect("answered at once")
        .expect("transferred");
    assert_eq!(record.transfers, vec![format!("queue:{sales}")]);
    // Sales is closed and sends to Support, where agent2 (now free) is rung again; agent1
    // (Sales only) never is.
    let bye = phone2.expect_request(&mut c, Method::Bye);
    c.deliver(phone2.peer, phone2.ok(&bye));
    phone2.expect_request(&mut c, Method::Invite);
    phone1.expect_nothing(&mut c);
    assert_eq!(c.the_call().queue, Some(support));
}
