//! Monitoring stories (MON-1, MON-2): a supervisor listens on their SIP phone and hears both
//! parties while neither gets any sign (no SIP message, nothing new on the call's record, no
//! change in what they hear); coach is heard by the agent only, barge by both; one leg
//! switches among the modes; several listen at once; the call's end takes the monitors along.

use crate::harness::media::{decode, share_of, Tone};
use crate::harness::peers::Peer;
use crate::harness::{addr, Center, CARRIER};
use crate::{center, customer_leg, to_sales, PHONE1, PHONE2};
use std::time::Duration;
use switchboard_call::{BrowserEvent, CallControl, CallError, Input, LegId, SessionId};
use switchboard_core::{MonitorMode, UserId};
use switchboard_sip::Method;

const CALLER_AT: &str = "198.51.100.10:6000";
const AGENT_AT: &str = "203.0.113.1:7000";
const MONITOR_AT: &str = "203.0.113.2:8000";

fn leg_at(c: &Center, at: &str) -> LegId {
    c.media.leg_to(addr(at)).expect("a media leg").0
}

/// Drops the SIP messages waiting for `to`, returning how many there were.
fn drain(c: &mut Center, to: &str) -> usize {
    std::iter::from_fn(|| c.take(to)).count()
}

/// What each far end heard over `ms` of everyone talking: caller 440 Hz, agent 1000 Hz, the
/// monitor 700 Hz; as (caller, agent, monitor) samples.
fn talk(c: &mut Center, monitor: Option<LegId>, ms: u64) -> [Vec<i16>; 3] {
    let (mut caller, mut agent, mut coach) = (
        Tone::new(440.0, 0, 1),
        Tone::new(1000.0, 0, 2),
        Tone::new(700.0, 0, 3),
    );
    let port = |c: &Center, at: &str| c.media.legs[&leg_at(c, at)].port;
    let (a, b) = (port(c, CALLER_AT), port(c, AGENT_AT));
    for at in [CALLER_AT, AGENT_AT, MONITOR_AT] {
        c.media.take_sent(addr(at));
    }
    match monitor {
        Some(leg) => {
            let m = c.media.legs[&leg].port;
            c.talk(
                &mut [(a, &mut caller), (b, &mut agent), (m, &mut coach)],
                Duration::from_millis(ms),
            );
        }
        None => c.talk(
            &mut [(a, &mut caller), (b, &mut agent)],
            Duration::from_millis(ms),
        ),
    }
    [CALLER_AT, AGENT_AT, MONITOR_AT].map(|at| {
        let samples = decode(&c.media.take_sent(addr(at)));
        // The first 100 ms fill the jitter buffers.
        samples.get(800..).unwrap_or_default().to_vec()
    })
}

fn hears(samples: &[i16], frequency: f32) -> bool {
    share_of(samples, frequency) > 0.2
}

fn silent_on(samples: &[i16], frequency: f32) -> bool {
    share_of(samples, frequency) < 0.01
}

fn monitor(
    c: &mut Center,
    call: switchboard_core::CallId,
    user: UserId,
    mode: MonitorMode,
    session: Option<SessionId>,
) -> Result<(), CallError> {
    c.command(
        call,
        CallControl::Monitor {
            user,
            mode,
            session,
        },
    )
    .expect("answered at once")
    .map(|_| ())
}

fn switch(
    c: &mut Center,
    call: switchboard_core::CallId,
    user: UserId,
    mode: MonitorMode,
) -> Result<(), CallError> {
    c.command(call, CallControl::SwitchMonitor { user, mode })
        .expect("answered at once")
        .map(|_| ())
}

#[test]
fn a_supervisor_listens_coaches_and_barges_and_the_parties_get_no_sign() {
    let (mut c, phone1, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    let id = c.the_call().id;
    let supervisor = c.agents.agent2;
    // A call still waiting for its agent cannot be monitored.
    assert!(matches!(
        monitor(&mut c, id, supervisor, MonitorMode::Listen, None),
        Err(CallError::State(_))
    ));
    phone1.pick_up(&mut c, &invite, 7000);
    let (customer, agent) = (customer_leg(&c, 6000), leg_at(&c, AGENT_AT));
    let [to_caller, to_agent, _] = talk(&mut c, None, 600);
    drain(&mut c, CARRIER);
    drain(&mut c, PHONE1);
    let records = c.records.len();

    // The agent cannot monitor their own call.
    let own = c.agents.agent1;
    assert!(matches!(
        monitor(&mut c, id, own, MonitorMode::Listen, None),
        Err(CallError::State(_))
    ));
    // Listen, on the supervisor's SIP phone.
    monitor(&mut c, id, supervisor, MonitorMode::Listen, None).expect("listening");
    let ring = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &ring, 8000);
    let watcher = leg_at(&c, MONITOR_AT);
    assert_eq!(c.media.legs[&watcher].hears, vec![customer, agent]);
    assert_eq!(c.media.legs[&customer].hears, vec![agent]);
    assert_eq!(c.media.legs[&agent].hears, vec![customer]);
    let [caller_heard, agent_heard, monitor_heard] = talk(&mut c, Some(watcher), 600);
    assert!(
        hears(&monitor_heard, 440.0) && hears(&monitor_heard, 1000.0),
        "both sides, mixed"
    );
    // What the parties get is what they got before: byte for byte the other's stream.
    assert_eq!(caller_heard, to_caller);
    assert_eq!(agent_heard, to_agent);
    assert_eq!(
        drain(&mut c, CARRIER) + drain(&mut c, PHONE1),
        0,
        "no SIP message to either party"
    );
    assert_eq!(c.records.len(), records, "nothing new on the call's record");

    // Coach: the agent hears the supervisor, the caller does not.
    assert!(
        matches!(
            monitor(&mut c, id, supervisor, MonitorMode::Coach, None),
            Err(CallError::State(_))
        ),
        "one monitoring leg per user and call"
    );
    switch(&mut c, id, supervisor, MonitorMode::Coach).expect("coaching");
    assert_eq!(
        c.take(PHONE2).map(|_| ()),
        None,
        "the same leg: no new INVITE"
    );
    let [caller_heard, agent_heard, monitor_heard] = talk(&mut c, Some(watcher), 600);
    assert!(hears(&agent_heard, 700.0) && hears(&agent_heard, 440.0));
    assert!(silent_on(&caller_heard, 700.0));
    assert!(hears(&monitor_heard, 440.0) && hears(&monitor_heard, 1000.0));
    assert!(
        silent_on(&monitor_heard, 700.0),
        "the supervisor does not hear themselves"
    );

    // Barge: both hear the supervisor.
    switch(&mut c, id, supervisor, MonitorMode::Barge).expect("barging");
    let [caller_heard, agent_heard, _] = talk(&mut c, Some(watcher), 600);
    assert!(hears(&caller_heard, 700.0) && hears(&caller_heard, 1000.0));
    assert!(hears(&agent_heard, 700.0) && hears(&agent_heard, 440.0));
    assert_eq!(
        drain(&mut c, CARRIER) + drain(&mut c, PHONE1),
        0,
        "still no SIP to the parties"
    );

    // Stop: the supervisor's phone gets its BYE and the parties are as before.
    c.command(id, CallControl::StopMonitor { user: supervisor })
        .expect("answered at once")
        .expect("stopped");
    phone2.expect_request(&mut c, Method::Bye);
    assert_eq!(c.media.legs[&customer].hears, vec![agent]);
    assert_eq!(c.media.legs[&agent].hears, vec![customer]);
    assert_eq!(
        c.command(id, CallControl::StopMonitor { user: supervisor }),
        Some(Err(CallError::State("you are not monitoring this call")))
    );
    assert_eq!(drain(&mut c, CARRIER) + drain(&mut c, PHONE1), 0);
    assert_eq!(c.records.len(), records);
    drop(call);
}

#[test]
fn two_listen_at_once_and_the_calls_end_takes_them_along() {
    let (mut c, phone1, phone2) = center();
    let carrier = Peer::at(CARRIER);
    let (call, invite) = to_sales(&mut c, &carrier, 6000, &phone1);
    let id = c.the_call().id;
    phone1.pick_up(&mut c, &invite, 7000);
    let (customer, agent) = (customer_leg(&c, 6000), leg_at(&c, AGENT_AT));
    // One supervisor on their phone, another in the portal's browser phone.
    let first_supervisor = c.agents.agent2;
    monitor(&mut c, id, first_supervisor, MonitorMode::Listen, None).expect("first");
    let ring = phone2.expect_request(&mut c, Method::Invite);
    phone2.pick_up(&mut c, &ring, 8000);
    let supervisor = UserId::from_uuid(uuid::Uuid::from_u128(77));
    let session = SessionId(9);
    // A session that is not the supervisor's is refused.
    assert!(matches!(
        monitor(&mut c, id, supervisor, MonitorMode::Listen, Some(session)),
        Err(CallError::State(_))
    ));
    c.input(Input::Browser(BrowserEvent::Online {
        session,
        agent: supervisor,
    }));
    monitor(&mut c, id, supervisor, MonitorMode::Listen, Some(session)).expect("second");
    // The portal's phone is offered the monitor leg.
    let browser_leg = crate::outbound::rung(&c, session);
    c.input(Input::Browser(BrowserEvent::Answered { leg: browser_leg }));
    let first = leg_at(&c, MONITOR_AT);
    assert_eq!(c.media.legs[&first].hears, vec![customer, agent]);
    assert_eq!(c.media.legs[&browser_leg].hears, vec![customer, agent]);
    assert_eq!(c.media.legs[&customer].hears, vec![agent]);
    let [_, _, heard] = talk(&mut c, Some(first), 600);
    assert!(hears(&heard, 440.0) && hears(&heard, 1000.0));
    // One stops from their page (hangs up); the other goes on.
    c.input(Input::Browser(BrowserEvent::HungUp { leg: browser_leg }));
    assert!(c.media.legs[&first].hears == vec![customer, agent]);
    assert_eq!(
        c.the_call().ended_at,
        None,
        "a monitor hanging up ends nothing"
    );
    // The caller hangs up: the remaining monitor's phone gets its BYE too.
    c.deliver(carrier.peer, call.bye());
    phone1.expect_request(&mut c, Method::Bye);
    phone2.expect_request(&mut c, Method::Bye);
    assert_eq!(c.the_call().ended_by.as_deref(), Some("caller"));
}
