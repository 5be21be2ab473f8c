//! Recording stories (REC-7): an answered call is recorded with the caller left and the agent
//! right, the agent pauses and resumes it (silence in the file, the span in the metadata),
//! a call of a queue that does not record is never recorded, the Apps API's word for one call
//! wins over its queue's, and a transfer to another agent starts that agent's recording.

use crate::harness::media::Tone;
use crate::harness::peers::Peer;
use crate::harness::{Center, CARRIER};
use crate::{center, customer_leg, to_sales};
use std::time::Duration;
use switchboard_call::{CallControl, CallError, LegId, RecordingOp, TransferTo};
use switchboard_core::CallId;
use switchboard_sip::Method;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
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

/// The agent leg whose media goes to `port` of phone1.
fn agent_leg(c: &Center, port: u16) -> LegId {
    c.media
        .leg_to(crate::harness::addr(&format!("203.0.113.1:{port}")))
        .expect("the agent's media leg")
        .0
}

/// Mean absolute sample of one channel (0 left, 1 right) over stereo frames `from..to` ms.
fn energy(samples: &[i16], channel: usize, from_ms: u64, to_ms: u64) -> f64 {
    let (from, to) = (
        from_ms as usize * 8,
        (to_ms as usize * 8).min(samples.len() / 2),
    );
    let values: Vec<f64> = (from..to)
        .map(|i| f64::from(samples[2 * i + channel]).abs())
        .collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[test]
fn an_answered_call_is_recorded_and_the_agent_pauses_it() {
    let (mut c, phone1, _) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    let id = c.the_call().id;
    // Nothing is recorded before an agent answers.
    assert!(ops(&c, id).is_empty());
    phone1.pick_up(&mut c, &invite, 7000);
    let (customer, agent) = (customer_leg(&c, 6000), agent_leg(&c, 7000));
    let [RecordingOp::Start {
        recording,
        left,
        right,
        agent: who,
        ..
    }] = ops(&c, id)[..]
    else {
        panic!("one recording started: {:?}", ops(&c, id));
    };
    assert_eq!((left, right), (customer, agent));
    assert_eq!(who, Some(c.agents.agent1));
    let live = c
        .the_call()
        .recording
        .expect("the card shows the recording");
    assert_eq!((live.id, live.paused), (recording, false));

    let (mut caller, mut phone) = (Tone::new(440.0, 0, 1), Tone::new(1000.0, 0, 2));
    let streams = |c: &mut Center, caller: &mut Tone, phone: &mut Tone, for_ms| {
        let port_of = |leg: LegId| c.media.legs[&leg].port;
        let (a, b) = (port_of(customer), port_of(agent));
        c.talk(&mut [(a, caller), (b, phone)], ms(for_ms));
    };
    streams(&mut c, &mut caller, &mut phone, 1000);
    // Redact: pause, and the card says so; a second pause is refused and changes nothing.
    let paused = c
        .command(id, CallControl::PauseRecording)
        .expect("answered at once")
        .expect("paused");
    assert_eq!(paused.recording.map(|r| r.paused), Some(true));
    assert_eq!(c.the_call().recording.map(|r| r.paused), Some(true));
    assert_eq!(
        c.command(id, CallControl::PauseRecording),
        Some(Err(CallError::State("the recording is already paused")))
    );
    streams(&mut c, &mut caller, &mut phone, 1000);
    let resumed = c
        .command(id, CallControl::ResumeRecording)
        .expect("answered at once")
        .expect("resumed");
    assert_eq!(resumed.recording.map(|r| r.paused), Some(false));
    assert_eq!(
        c.command(id, CallControl::ResumeRecording),
        Some(Err(CallError::State("the recording is not paused")))
    );
    streams(&mut c, &mut caller, &mut phone, 1000);
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(&mut c, 200);
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    assert_eq!(
        ops(&c, id)[1..],
        [
            RecordingOp::Pause,
            RecordingOp::Resume,
            RecordingOp::Stop { discard: false }
        ]
    );
    // The room wrote three seconds, the middle one silent on both channels.
    let finished = &c.media.finished[&id];
    let [(duration, ref paused)] = finished[..] else {
        panic!("one recording finished: {finished:?}");
    };
    assert!((2900..=3100).contains(&duration), "{duration} ms");
    let [(start, end)] = paused[..] else {
        panic!("one paused span: {paused:?}");
    };
    assert!((950..=1050).contains(&start) && (1950..=2050).contains(&end));
    let samples = &c.media.recorded[&id];
    assert_eq!(samples.len() as u64, duration * 8 * 2);
    for channel in [0, 1] {
        assert!(energy(samples, channel, 200, start) > 1000.0);
        assert_eq!(energy(samples, channel, start, end), 0.0);
        assert!(energy(samples, channel, end + 100, duration) > 1000.0);
    }
    // The ended call's record shows no recording running.
    assert_eq!(c.the_call().recording, None);
}

#[test]
fn a_queue_that_does_not_record_never_opens_a_recorder() {
    let (mut c, phone1, _) = center();
    let sales = c.queues.sales;
    c.configure(|d| {
        d.unrecorded_queues.insert(sales);
    });
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    c.advance(ms(2000));
    assert!(ops(&c, id).is_empty());
    assert_eq!(c.the_call().recording, None);
    assert_eq!(
        c.command(id, CallControl::PauseRecording),
        Some(Err(CallError::State("the call is not being recorded")))
    );
    c.command(id, CallControl::Hold);
    c.command(id, CallControl::Resume);
    c.deliver(carrier.peer, call.bye());
    assert!(ops(&c, id).is_empty());
    assert!(!c.media.finished.contains_key(&id));
}

#[test]
fn the_apps_api_decides_for_one_call() {
    let (mut c, phone1, _) = center();
    let sales = c.queues.sales;
    c.configure(|d| {
        d.unrecorded_queues.insert(sales);
    });
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    let id = c.the_call().id;
    // Recorded although its queue does not record.
    assert!(c
        .command(id, CallControl::SetRecordable(true))
        .expect("at once")
        .is_ok());
    assert!(ops(&c, id).is_empty(), "nothing to record before an answer");
    phone1.pick_up(&mut c, &invite, 7000);
    assert!(matches!(ops(&c, id)[..], [RecordingOp::Start { .. }]));
    c.advance(ms(1000));
    // Then refused: the recording stops and is thrown away.
    let record = c
        .command(id, CallControl::SetRecordable(false))
        .expect("at once")
        .expect("accepted");
    assert_eq!(record.recording, None);
    assert_eq!(ops(&c, id)[1..], [RecordingOp::Stop { discard: true }]);
    c.advance(ms(1000));
    assert_eq!(ops(&c, id).len(), 2);
}

#[test]
fn a_transfer_to_another_agent_records_that_agent_anew() {
    let (mut c, phone1, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let (_call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    phone1.pick_up(&mut c, &invite, 7000);
    let id = c.the_call().id;
    let first = c.the_call().recording.expect("recorded").id;
    c.command(
        id,
        CallControl::Transfer {
            to: TransferTo::Queue(c.queues.support),
            attended: false,
        },
    );
    let bye = phone1.expect_request(&mut c, Method::Bye);
    c.deliver(phone1.peer, phone1.ok(&bye));
    // While agent2's phone rings nobody's conversation is recorded.
    assert_eq!(c.the_call().recording, None);
    let invite2 = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &invite2, 7002);
    let second = c.the_call().recording.expect("recorded again").id;
    assert_ne!(first, second);
    let ops = ops(&c, id);
    assert!(matches!(
        ops[..],
        [
            RecordingOp::Start { .. },
            RecordingOp::Stop { discard: false },
            RecordingOp::Start { agent: Some(a), .. }
        ] if a == c.agents.agent2
    ));
}
