//! The call engine in memory: whole calls (INVITE, menu digit, queue, ring, answer, talk,
//! hang-up) through the engine and the in-memory harness, one after another in virtual time.
//! Prints calls per second of real time (median of runs) and the cost per call; it asserts
//! nothing about time. Run with `cargo bench -p switchboard-call --bench engine`.

// The benchmark drives calls with the tests' harness and uses only part of it.
#[allow(dead_code)]
#[path = "../tests/harness/mod.rs"]
mod harness;

use harness::peers::{sdp, Peer};
use harness::{Center, CARRIER, NUMBER};
use std::time::{Duration, Instant};
use switchboard_call::{Input, MediaEvent};
use switchboard_sip::Method;

const CALLS: usize = 5_000;
const RUNS: usize = 5;

fn one_call(c: &mut Center, carrier: &Peer, phone: &Peer, port: u16) {
    let call = carrier.call(NUMBER, Some(sdp(&carrier.ip(), port, "0 8", "sendrecv")));
    c.deliver(carrier.peer, call.invite());
    let ok = carrier.expect_response(c, 200);
    call.answered(&ok);
    c.deliver(carrier.peer, call.ack(""));
    let remote = harness::addr(&format!("198.51.100.10:{port}"));
    let leg = c.media.leg_to(remote).expect("the caller's leg").0;
    c.input(Input::Media(MediaEvent::Dtmf { leg, digit: '1' }));
    let invite = phone.expect_request(c, Method::Invite);
    phone.pick_up(c, &invite, 7000);
    c.advance(Duration::from_secs(1));
    c.deliver(carrier.peer, call.bye());
    carrier.expect_response(c, 200);
    let bye = phone.expect_request(c, Method::Bye);
    c.deliver(phone.peer, phone.ok(&bye));
    // The records and metrics the harness keeps are not part of the cost being measured.
    c.records.clear();
    c.metrics.clear();
    c.renders.clear();
}

fn main() {
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let mut c = Center::new();
        let (carrier, phone) = (Peer::at(CARRIER), Peer::at("203.0.113.1:5060"));
        c.register("agent1", &phone);
        let now = c.wall_now();
        c.routing.unavailable(c.agents.agent2, now);
        let started = Instant::now();
        for n in 0..CALLS {
            if n % 500 == 499 {
                // Phones re-register well before their binding (600 s here) expires.
                c.register("agent1", &phone);
            }
            one_call(&mut c, &carrier, &phone, 10_000 + (n % 20_000) as u16 * 2);
        }
        let elapsed = started.elapsed();
        rates.push(CALLS as f64 / elapsed.as_secs_f64());
        // Retransmission windows pass; nothing is left behind.
        c.advance(Duration::from_secs(40));
        assert_eq!(c.engine.sizes(), (0, 0, 0), "a call left state behind");
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates[RUNS / 2];
    println!("call engine in memory ({CALLS} whole calls per run, {RUNS} runs)");
    println!("| measure | median | min | max |");
    println!("|---|---|---|---|");
    println!(
        "| calls per second (engine + test peers, one thread) | {median:.0} | {:.0} | {:.0} |",
        rates[0],
        rates[RUNS - 1]
    );
    println!("| µs per whole call | {:.1} | | |", 1e6 / median);
}
