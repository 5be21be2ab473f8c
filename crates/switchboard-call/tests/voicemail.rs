//! Voicemail stories (AHD-7), in virtual time: a caller of a closed queue whose rule takes
//! voicemail hears the greeting and the tone, then only they are recorded until `#` (an RFC
//! 4733 event or SIP INFO), the longest length, or their hang-up; a message that ended by `#`
//! or the length is followed by the goodbye and the end. The harness renders every sound as a
//! second of 300 Hz, so the greeting and the tone take two seconds.

use crate::after_hours::close_sales;
use crate::harness::media::{share_of, Tone};
use crate::harness::peers::Peer;
use crate::harness::{Center, CARRIER};
use crate::{call_in, center, customer_leg, port_of, press};
use std::time::Duration;
use switchboard_call::{LegId, RecordingOp, Sound, GOODBYE};
use switchboard_core::after_hours::AfterHoursAction;
use switchboard_core::voice::Disposition;
use switchboard_core::CallId;
use switchboard_sip::Method;

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The recording operations the media plane got for `call`.
fn ops(c: &Center, call: CallId) -> Vec<RecordingOp> {
    c.media
        .recording_ops
        .iter()
        .filter(|(id, _)| *id == call)
        .map(|(_, op)| op.clone())
        .collect()
}

/// One channel (0 left, 1 right) of interleaved stereo samples.
fn channel(samples: &[i16], side: usize) -> Vec<i16> {
    samples.iter().skip(side).step_by(2).copied().collect()
}

/// A caller reaches Sales, closed with voicemail of at most `max_seconds`; returns the
/// carrier, its dialog, the caller's leg and media port.
fn to_voicemail(
    c: &mut Center,
    max_seconds: u32,
) -> (Peer, crate::harness::peers::Outgoing, LegId, u16) {
    close_sales(c, AfterHoursAction::Voicemail { max_seconds }, true);
    let carrier = Peer::at(CARRIER);
    let call = call_in(c, &carrier, 6000);
    let leg = customer_leg(c, 6000);
    press(c, leg, '1');
    let port = port_of(c, leg);
    (carrier, call, leg, port)
}

#[test]
fn the_caller_hears_the_greeting_and_the_tone_then_is_recorded_until_hash() {
    let (mut c, phone1, _) = center();
    let (carrier, _call, leg, port) = to_voicemail(&mut c, 60);
    let id = c.the_call().id;
    let (played_to, sounds, then) = c.renders.last().expect("the greeting").clone();
    assert_eq!(played_to, leg);
    assert_eq!(
        sounds,
        vec![
            Sound::AfterHours {
                queue: c.queues.sales,
                language: None,
                text: "We are closed today.".into(),
            },
            Sound::Beep,
        ]
    );
    assert_eq!(then, None);
    // Nothing is recorded while the greeting plays, and `#` does nothing yet.
    press(&mut c, leg, '#');
    c.advance(Duration::from_millis(1900));
    assert!(ops(&c, id).is_empty());
    // Once the tone has played, the caller alone is recorded.
    c.advance(Duration::from_millis(200));
    let [RecordingOp::Start {
        left, right, agent, ..
    }] = ops(&c, id)[..]
    else {
        panic!("one recording started: {:?}", ops(&c, id));
    };
    assert_eq!((left, right, agent), (leg, leg, None));
    // The caller speaks for three seconds; other digits change nothing; `#` ends it.
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(2));
    press(&mut c, leg, '5');
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(1));
    assert!(c.voicemails.is_empty());
    press(&mut c, leg, '#');
    assert_eq!(ops(&c, id)[1..], [RecordingOp::Stop { discard: false }]);
    let [ref left_vm] = c.voicemails[..] else {
        panic!("one voicemail: {:?}", c.voicemails);
    };
    assert_eq!(left_vm.call, id);
    assert_eq!(left_vm.queue, c.queues.sales);
    assert_eq!(left_vm.caller, c.the_call().caller);
    assert!(
        (2900..=3100).contains(&left_vm.duration_ms),
        "{} ms",
        left_vm.duration_ms
    );
    // The file holds the caller's tone on the left and silence on the right.
    let samples = &c.media.recorded[&id];
    let (caller, other) = (channel(samples, 0), channel(samples, 1));
    assert!(share_of(&caller, 400.0) > 0.5, "the caller is in the file");
    assert!(other.iter().all(|s| *s == 0), "nobody else is");
    // The goodbye, then the end.
    let (_, sounds, _) = c.renders.last().expect("the goodbye").clone();
    assert_eq!(
        sounds,
        vec![Sound::Speak {
            text: GOODBYE.into(),
            speed: 100
        }]
    );
    phone1.expect_nothing(&mut c);
    c.advance(seconds(1));
    let bye = carrier.expect_request(&mut c, Method::Bye);
    c.deliver(carrier.peer, carrier.ok(&bye));
    let record = c.the_call();
    assert_eq!(record.disposition, Disposition::Unanswered);
    assert_eq!(record.ended_by.as_deref(), Some("system"));
    assert_eq!(record.contact, None, "the call itself opens no contact");
    assert_eq!(c.voicemails.len(), 1);
    assert!(c.engine.live().is_empty());
}

#[test]
fn the_longest_length_ends_the_recording() {
    let (mut c, _, _) = center();
    let (carrier, _call, leg, port) = to_voicemail(&mut c, 5);
    let id = c.the_call().id;
    c.advance(seconds(2));
    // The caller goes on talking past the limit.
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(4));
    assert!(c.voicemails.is_empty());
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(2));
    let [ref left_vm] = c.voicemails[..] else {
        panic!("one voicemail: {:?}", c.voicemails);
    };
    assert_eq!(left_vm.duration_ms, 5000);
    assert_eq!(ops(&c, id)[1..], [RecordingOp::Stop { discard: false }]);
    let finished = &c.media.finished[&id];
    assert!(
        (4900..=5100).contains(&finished[0].0),
        "the file is as long as the limit: {finished:?}"
    );
    // A late `#` changes nothing; the goodbye plays and the caller is hung up.
    press(&mut c, leg, '#');
    assert_eq!(c.voicemails.len(), 1);
    c.advance(seconds(1));
    carrier.expect_request(&mut c, Method::Bye);
    assert_eq!(c.the_call().disposition, Disposition::Unanswered);
}

#[test]
fn hanging_up_ends_the_message_and_keeps_it() {
    let (mut c, _, _) = center();
    let (carrier, call, _leg, port) = to_voicemail(&mut c, 60);
    let id = c.the_call().id;
    c.advance(seconds(2));
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(2));
    let renders = c.renders.len();
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let [ref left_vm] = c.voicemails[..] else {
        panic!("one voicemail: {:?}", c.voicemails);
    };
    assert!((1900..=2100).contains(&left_vm.duration_ms));
    assert_eq!(ops(&c, id)[1..], [RecordingOp::Stop { discard: false }]);
    assert_eq!(c.renders.len(), renders, "no goodbye to a caller who left");
    let record = c.the_call();
    assert_eq!(record.ended_by.as_deref(), Some("caller"));
    assert_eq!(record.disposition, Disposition::Unanswered);
}

#[test]
fn hanging_up_during_the_greeting_leaves_nothing() {
    let (mut c, _, _) = center();
    let (carrier, call, _leg, _port) = to_voicemail(&mut c, 60);
    let id = c.the_call().id;
    c.advance(seconds(1));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    c.advance(seconds(5));
    assert!(c.voicemails.is_empty());
    assert!(ops(&c, id).is_empty(), "nothing was recorded");
}

#[test]
fn hash_by_sip_info_ends_the_message() {
    let (mut c, _, _) = center();
    let (carrier, call, _leg, port) = to_voicemail(&mut c, 60);
    c.advance(seconds(2));
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(1));
    let info = call.request(
        "INFO",
        "Signal=#\r\nDuration=160\r\n",
        "application/dtmf-relay",
    );
    c.deliver(carrier.peer, info);
    carrier.expect_response(&mut c, 200);
    assert_eq!(c.voicemails.len(), 1);
    c.advance(seconds(1));
    carrier.expect_request(&mut c, Method::Bye);
}

/// A call transferred blind to a closed queue that takes voicemail: the agent leaves, the
/// caller hears that queue's greeting and leaves a message there.
#[test]
fn a_call_transferred_to_a_closed_queue_leaves_a_voicemail_there() {
    let (mut c, phone1, _) = center();
    let support = c.queues.support;
    crate::after_hours::close(
        &mut c,
        support,
        AfterHoursAction::Voicemail { max_seconds: 60 },
        true,
    );
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = crate::to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    c.command(
        id,
        switchboard_call::CallControl::Transfer {
            to: switchboard_call::TransferTo::Queue(support),
            attended: false,
        },
    )
    .expect("answered at once")
    .expect("transferred");
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    let leg = customer_leg(&c, 6000);
    let (played_to, sounds, _) = c.renders.last().expect("the greeting").clone();
    assert_eq!(played_to, leg);
    assert!(
        matches!(&sounds[..], [Sound::AfterHours { queue, .. }, Sound::Beep] if *queue == support),
        "{sounds:?}"
    );
    c.advance(seconds(2));
    let port = port_of(&c, leg);
    c.talk(&mut [(port, &mut Tone::new(400.0, 0, 9))], seconds(1));
    press(&mut c, leg, '#');
    let [ref left_vm] = c.voicemails[..] else {
        panic!("one voicemail: {:?}", c.voicemails);
    };
    assert_eq!(left_vm.queue, support);
    c.advance(seconds(1));
    carrier.expect_request(&mut c, Method::Bye);
    assert_eq!(
        c.the_call().disposition,
        Disposition::Answered,
        "agent1 answered it first"
    );
}
