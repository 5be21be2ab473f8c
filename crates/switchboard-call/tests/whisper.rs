//! The whisper and the countdown (NTF-1, NTF-2, NTF-5): the agent who answers hears them
//! alone while the caller goes on hearing hold music; the caller is connected when they end,
//! and the time counts as waiting.

use crate::harness::peers::Peer;
use crate::harness::{addr, Center, CARRIER};
use crate::{center, customer_leg, to_sales};
use std::time::Duration;
use switchboard_call::{CallMetric, Sound};
use switchboard_core::voice::Disposition;
use switchboard_core::whisper::{Whisper, WhisperMessage, WhisperOverride, COUNTDOWN};
use switchboard_sip::Method;

fn whisper_everywhere(c: &mut Center, countdown: bool) {
    c.configure(|d| {
        d.whisper = Whisper {
            message: WhisperMessage::CallType,
            speed: 130,
            countdown,
        }
    });
}

#[test]
fn the_agent_hears_the_whisper_and_countdown_before_the_caller_is_connected() {
    let (mut c, phone1, _) = center();
    whisper_everywhere(&mut c, true);
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    let customer = customer_leg(&c, 6000);
    c.advance(Duration::from_millis(300));
    phone1.pick_up(&mut c, &invite, 7000);
    let agent = c
        .media
        .leg_to(addr("203.0.113.1:7000"))
        .expect("the agent's leg")
        .0;
    // What the agent's leg is played: the whisper at its speed, then the countdown.
    let (leg, sounds, then) = c.renders.last().expect("the whisper is rendered").clone();
    assert_eq!(leg, agent);
    assert_eq!(
        sounds,
        vec![
            Sound::Speak {
                text: "Inbound call from Sales".into(),
                speed: 130
            },
            Sound::Speak {
                text: COUNTDOWN.into(),
                speed: 130
            },
        ]
    );
    assert_eq!(then, None);
    // Nobody hears anybody yet; the caller still has their hold music.
    assert!(c.media.legs[&customer].hears.is_empty());
    assert!(c.media.legs[&agent].hears.is_empty());
    assert!(c.media.legs[&customer].playing.is_some());
    assert!(c.media.legs[&agent].playing.is_some());
    assert_eq!(c.the_call().answered_at, None);
    // The two parts play a second each; then the two are connected.
    c.advance(Duration::from_millis(1900));
    assert!(c.media.legs[&customer].hears.is_empty());
    c.advance(Duration::from_millis(200));
    assert_eq!(c.media.legs[&customer].hears, vec![agent]);
    assert_eq!(c.media.legs[&agent].hears, vec![customer]);
    assert_eq!(c.media.legs[&customer].playing, None);
    let record = c.the_call().clone();
    let whisper = record
        .whisper_ms
        .expect("the whisper's length is on the record");
    assert!((2000..=2100).contains(&whisper), "{whisper} ms");
    // The whisper counts as waiting: the ringing and the whisper.
    let wait = record.wait_ms().expect("a wait");
    assert_eq!(wait, 300 + i64::from(whisper));
    assert!(c.metrics.contains(&CallMetric::Answered {
        wait_ms: Some(wait)
    }));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    assert_eq!(c.the_call().disposition, Disposition::Answered);
}

#[test]
fn a_queue_of_its_own_changes_the_whisper_or_turns_it_off() {
    let (mut c, phone1, _) = center();
    whisper_everywhere(&mut c, false);
    let sales = c.queues.sales;
    c.configure(|d| {
        d.queue_whispers.insert(
            sales,
            WhisperOverride {
                message: Some(WhisperMessage::Recording),
                speed: Some(80),
                countdown: None,
            },
        );
    });
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    assert_eq!(
        c.renders.last().map(|r| r.1.clone()),
        Some(vec![Sound::WhisperRecording {
            queue: sales,
            fallback: "Sales".into(),
            speed: 80
        }])
    );
    // Off for the queue: the next caller is connected at once.
    c.configure(|d| {
        d.queue_whispers.insert(
            sales,
            WhisperOverride {
                message: Some(WhisperMessage::Off),
                ..WhisperOverride::default()
            },
        );
    });
    let (mut c2, phone, _) = center();
    c2.configure(|d| *d = c.directory.clone());
    let (_call, invite) = to_sales(&mut c2, &carrier, 6002, &phone);
    phone.pick_up(&mut c2, &invite, 7002);
    let customer = customer_leg(&c2, 6002);
    assert_eq!(c2.media.legs[&customer].hears.len(), 1);
    assert_eq!(c2.the_call().whisper_ms, None);
}

#[test]
fn a_caller_who_hangs_up_during_the_whisper_abandoned_the_queue() {
    let (mut c, phone1, _) = center();
    whisper_everywhere(&mut c, false);
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    c.advance(Duration::from_millis(300));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Abandoned);
    assert_eq!(record.answered_at, None);
    let queued = c
        .metrics
        .iter()
        .filter(|m| **m == CallMetric::Queued)
        .count();
    let left = c
        .metrics
        .iter()
        .filter(|m| **m == CallMetric::LeftQueue)
        .count();
    assert_eq!((queued, left), (1, 1));
}

#[test]
fn a_whisper_that_never_finishes_does_not_keep_the_caller_waiting() {
    let (mut c, phone1, _) = center();
    whisper_everywhere(&mut c, false);
    c.media.drop_playback_done = true;
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let customer = customer_leg(&c, 6000);
    c.advance(Duration::from_secs(19));
    assert!(c.media.legs[&customer].hears.is_empty());
    c.advance(Duration::from_secs(2));
    assert_eq!(c.media.legs[&customer].hears.len(), 1);
}
