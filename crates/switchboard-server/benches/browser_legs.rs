//! Browser-leg media benchmark (issue 9: the CPU per call per second of SIP callers bridged to
//! DTLS-SRTP browser legs at 500 concurrent calls; target under 1.5 ms).
//!
//! The server's media plane (`voice::media`: a room task per call, str0m for the browser leg)
//! runs alone on one thread (a current-thread runtime), whose CPU time is what is measured
//! (`/proc/thread-self/schedstat`). The load runs on another thread: per call, a plain UDP
//! socket plays the SIP caller (a 20 ms PCMA packet every 20 ms to the caller leg) and a str0m
//! client plays the browser (full ICE, DTLS-SRTP, a 20 ms frame every 20 ms). Each call's room
//! bridges the two both ways, which is the forward route (no mixing, no transcoding: the
//! browser is answered with the caller's law). The same run with a plain RTP socket in place
//! of the browser gives the baseline, so the report says what WebRTC adds.
//!
//! Run: `cargo bench -p switchboard --bench browser_legs` (env `BENCH_CALLS`, default 500;
//! `BENCH_SECONDS`, default 20). On a machine with two cores the media thread and the load
//! thread each get about one.

#[path = "../tests/support/webrtc.rs"]
mod client;

use client::Client;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use switchboard::voice::media::{MediaPlane, Ports};
use switchboard_call::{BrowserEvent, Input, LegId, MediaEvent, MediaKind, MediaOp, SessionId};
use switchboard_core::CallId;
use switchboard_media::RoomConfig;
use tokio::sync::{mpsc, oneshot};

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The far side of one call, in the load thread.
struct Far {
    caller: UdpSocket,
    /// Where the caller sends (the caller leg's port), once set up.
    caller_to: Option<SocketAddr>,
    agent: Agent,
    caller_received: u64,
}

enum Agent {
    Browser(Box<Client>),
    Rtp {
        socket: UdpSocket,
        to: Option<SocketAddr>,
        received: u64,
    },
}

fn udp() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    socket.set_nonblocking(true).expect("non-blocking");
    socket
}

/// A 20 ms PCMA packet.
fn rtp_packet(seq: u16, timestamp: u32, ssrc: u32) -> [u8; 172] {
    let mut packet = [0xD5u8; 172];
    packet[0] = 0x80;
    packet[1] = 8;
    packet[2..4].copy_from_slice(&seq.to_be_bytes());
    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for (i, byte) in packet[12..].iter_mut().enumerate() {
        *byte = if (i / 4) % 2 == 0 { 0xA5 } else { 0x25 };
    }
    packet
}

/// What the load thread asks the server thread to set up for one call.
struct Setup {
    caller: SocketAddr,
    /// The browser's offer, or the address of the plain RTP agent.
    agent: Result<String, SocketAddr>,
}

/// What the server thread answers: the ports of the two legs and the browser's answer.
struct Opened {
    caller_port: u16,
    agent_port: u16,
    answer: Option<String>,
}

struct Outcome {
    cpu: Duration,
    seconds: f64,
    calls: usize,
    /// Packets the far ends received during the measured span, and what 50 a second would be.
    received: u64,
    expected: u64,
}

/// Runs `calls` bridged calls for `seconds` after a warm-up; `browser` chooses the agent leg.
fn run(calls: usize, seconds: u64, browser: bool) -> Outcome {
    let (setup_tx, setup_rx) = std_mpsc::channel::<Vec<Setup>>();
    let (opened_tx, opened_rx) = std_mpsc::channel::<Vec<Opened>>();
    let (go_tx, go_rx) = std_mpsc::channel::<()>();
    let warmup = Duration::from_secs(3);
    let span = Duration::from_secs(seconds);

    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let (events_tx, mut events) = mpsc::unbounded_channel::<Input>();
            let mut plane = MediaPlane::new(
                Ports::new(30000, 40000),
                "127.0.0.1".parse().unwrap(),
                RoomConfig::default(),
                7,
                events_tx,
            );
            let setups = setup_rx.recv().expect("the load's setup");
            let mut opened = Vec::new();
            let mut replies = Vec::new();
            for (index, setup) in setups.into_iter().enumerate() {
                let call = CallId::from_uuid(uuid::Uuid::now_v7());
                let caller = LegId(2 * index as u64 + 1);
                let agent = LegId(2 * index as u64 + 2);
                let port = |event| match event {
                    Some(MediaEvent::Ready { port, .. }) => port,
                    _ => panic!("media ports for the benchmark"),
                };
                let caller_port = port(plane.apply(MediaOp::Open {
                    call,
                    leg: caller,
                    kind: MediaKind::Rtp,
                }));
                let kind = match setup.agent {
                    Ok(_) => MediaKind::Browser {
                        session: SessionId(index as u64),
                    },
                    Err(_) => MediaKind::Rtp,
                };
                let agent_port = port(plane.apply(MediaOp::Open {
                    call,
                    leg: agent,
                    kind,
                }));
                plane.apply(MediaOp::Remote {
                    leg: caller,
                    addr: setup.caller,
                    payload_type: 8,
                    dtmf: Some(101),
                });
                match setup.agent {
                    Ok(offer) => {
                        let (reply, answer) = oneshot::channel();
                        plane.offer(agent, offer, reply);
                        replies.push(Some(answer));
                    }
                    Err(addr) => {
                        plane.apply(MediaOp::Remote {
                            leg: agent,
                            addr,
                            payload_type: 8,
                            dtmf: Some(101),
                        });
                        replies.push(None);
                    }
                }
                plane.apply(MediaOp::Hears {
                    leg: caller,
                    sources: vec![agent],
                });
                plane.apply(MediaOp::Hears {
                    leg: agent,
                    sources: vec![caller],
                });
                opened.push(Opened {
                    caller_port,
                    agent_port,
                    answer: None,
                });
            }
            for (slot, reply) in opened.iter_mut().zip(replies) {
                if let Some(answer) = reply {
                    let sdp = answer.await.expect("the room answers").expect("an answer");
                    slot.answer = Some(sdp);
                }
            }
            opened_tx.send(opened).expect("the load waits");
            // Count the browsers whose media came up, then measure a quiet span of full load.
            let mut connected = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while browser && connected < calls {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(Input::Browser(BrowserEvent::Answered { .. }))) => connected += 1,
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            assert_eq!(
                connected,
                if browser { calls } else { 0 },
                "every browser connects"
            );
            go_tx.send(()).expect("the load waits");
            tokio::time::sleep(warmup).await;
            let start = thread_cpu();
            let started = Instant::now();
            tokio::time::sleep(span).await;
            let cpu = thread_cpu() - start;
            let seconds = started.elapsed().as_secs_f64();
            // Keep the plane (and its rooms) alive until measured.
            drop(plane);
            (cpu, seconds)
        })
    });

    // The load: make the far ends, hand their addresses over, then drive them every 20 ms.
    let now = Instant::now();
    let mut fars = Vec::with_capacity(calls);
    let mut setups = Vec::with_capacity(calls);
    for _ in 0..calls {
        let caller = udp();
        let caller_addr = caller.local_addr().unwrap();
        let (agent, setup_agent) = if browser {
            let (client, offer) = Client::offer(now);
            (Agent::Browser(Box::new(client)), Ok(offer))
        } else {
            let socket = udp();
            let addr = socket.local_addr().unwrap();
            (
                Agent::Rtp {
                    socket,
                    to: None,
                    received: 0,
                },
                Err(addr),
            )
        };
        fars.push(Far {
            caller,
            caller_to: None,
            agent,
            caller_received: 0,
        });
        setups.push(Setup {
            caller: caller_addr,
            agent: setup_agent,
        });
    }
    setup_tx.send(setups).expect("the server thread runs");
    let opened = opened_rx.recv().expect("the server set up the calls");
    for (far, opened) in fars.iter_mut().zip(opened) {
        far.caller_to = Some(SocketAddr::from(([127, 0, 0, 1], opened.caller_port)));
        match &mut far.agent {
            Agent::Browser(client) => {
                client.answer(Instant::now(), opened.answer.as_deref().expect("an answer"))
            }
            Agent::Rtp { to, .. } => {
                *to = Some(SocketAddr::from(([127, 0, 0, 1], opened.agent_port)))
            }
        }
    }
    let mut buffer = [0u8; 2048];
    let mut tick: u32 = 0;
    let mut next = Instant::now();
    let mut measuring: Option<(Instant, u64)> = None;
    let measured: Option<u64>;
    let mut go = false;
    let total = |fars: &[Far]| -> u64 {
        fars.iter()
            .map(|f| {
                f.caller_received
                    + match &f.agent {
                        Agent::Browser(client) => client.received,
                        Agent::Rtp { received, .. } => *received,
                    }
            })
            .sum()
    };
    // Ends with the measured span's packet count.
    loop {
        let now = Instant::now();
        if !go && go_rx.try_recv().is_ok() {
            go = true;
            measuring = Some((now + warmup, 0));
        }
        if let Some((at, start)) = measuring.as_mut() {
            if *start == 0 && now >= *at {
                *start = total(&fars).max(1);
            }
            if *start > 0 && now >= *at + span {
                measured = Some(total(&fars) - *start);
                break;
            }
        }
        for (index, far) in fars.iter_mut().enumerate() {
            while far.caller.recv_from(&mut buffer).is_ok() {
                far.caller_received += 1;
            }
            if let Some(to) = far.caller_to {
                let packet = rtp_packet(tick as u16, tick.wrapping_mul(160), index as u32 + 1);
                let _ = far.caller.send_to(&packet, to);
            }
            match &mut far.agent {
                Agent::Browser(client) => {
                    client.drive(now);
                    client.send_frame(now);
                }
                Agent::Rtp {
                    socket,
                    to,
                    received,
                } => {
                    while socket.recv_from(&mut buffer).is_ok() {
                        *received += 1;
                    }
                    if let Some(to) = to {
                        let packet =
                            rtp_packet(tick as u16, tick.wrapping_mul(160), 0x8000 + index as u32);
                        let _ = socket.send_to(&packet, *to);
                    }
                }
            }
        }
        tick = tick.wrapping_add(1);
        next += Duration::from_millis(20);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Behind: the load thread is saturated; go on at once (the report shows losses).
            next = now;
        }
    }
    let (cpu, seconds) = server.join().expect("the server thread");
    let expected = (calls as f64 * 2.0 * 50.0 * span.as_secs_f64()) as u64;
    Outcome {
        cpu,
        seconds,
        calls,
        received: measured.unwrap_or(0),
        expected,
    }
}

fn report(name: &str, outcome: &Outcome) -> f64 {
    let per_call_second =
        outcome.cpu.as_secs_f64() * 1000.0 / (outcome.calls as f64 * outcome.seconds);
    println!(
        "{name}: {} calls for {:.1} s: media thread CPU {:.2} s = {:.3} ms per call-second ({:.1}% of a core); far ends received {} of {} packets ({:.1}%)",
        outcome.calls,
        outcome.seconds,
        outcome.cpu.as_secs_f64(),
        per_call_second,
        100.0 * outcome.cpu.as_secs_f64() / outcome.seconds,
        outcome.received,
        outcome.expected,
        100.0 * outcome.received as f64 / outcome.expected.max(1) as f64,
    );
    per_call_second
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let calls = env_number("BENCH_CALLS", 500) as usize;
    let seconds = env_number("BENCH_SECONDS", 20);
    let rtp = run(calls, seconds, false);
    let baseline = report("RTP to RTP (baseline)", &rtp);
    let webrtc = run(calls, seconds, true);
    let browser = report("RTP to browser (DTLS-SRTP)", &webrtc);
    println!(
        "browser leg: {:.3} ms CPU per call-second, {:.2}x the RTP relay",
        browser,
        browser / baseline.max(f64::MIN_POSITIVE)
    );
}
