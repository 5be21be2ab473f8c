//! The browser phone end to end without a browser: the agent's adapter WebSocket carries the
//! signalling (docs/browser-phone.md), a str0m client plays the browser's part (offer,
//! ICE, DTLS-SRTP, G.711 frames), and sipp is the caller, echoing what it hears so that the
//! client hears its own frames back only if they reached the caller.

use crate::events::EventStream;
use crate::webrtc::Client;
use crate::{Backend, Server};
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

use crate::voice::{available, ended_call, free_port, DTMF_1};

/// The echoing caller: dials the demo number, presses 1 (Sales), waits for our BYE.
fn caller(sip: std::net::SocketAddr) -> tokio::process::Child {
    let scenario = format!("{}/tests/sipp/caller_echo.xml", env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("switchboard-sipp-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    Command::new("sipp")
        .args([
            "-sf",
            &scenario,
            "-s",
            "15550100",
            "-key",
            "dtmf",
            DTMF_1,
            "-rtp_echo",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "40",
            "-timeout_error",
            "-default_behaviors",
            "none,abortunexp",
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-mp",
            &free_port().to_string(),
            &sip.to_string(),
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (package sip-tester)")
}

/// Drives the client every 20 ms (a frame each time) until `done` says so. The bound only
/// keeps a broken test from hanging.
async fn talk(client: &mut Client, done: impl Fn(&Client) -> bool) {
    for _ in 0..1500 {
        let now = Instant::now();
        client.drive(now);
        client.send_frame(now);
        if done(client) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the media did not get there: connected {}, sent {}, received {}",
        client.connected, client.sent, client.received
    );
}

/// The agent's SIP phone and their browser ring together; the browser answers first, so the
/// phone is cancelled (its scenario insists on the CANCEL) and the call talks on the browser.
#[tokio::test]
async fn the_browser_answers_first_and_the_sip_phone_stops_ringing() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = crate::voice::agent_phone(sip, "agent1", "agent_ignores").await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");
    desk.send(json!({"type": "phone_ready"})).await;
    desk.until(|e| e["type"] == "phone_ready").await;

    let mut sipp = caller(sip);
    let ring = desk.until(|e| e["type"] == "call_ring").await.0;
    let leg = ring["leg_id"].as_str().unwrap().to_owned();
    let (mut client, offer) = Client::offer(Instant::now());
    desk.send(json!({"type": "call_answer", "leg_id": leg, "sdp": offer}))
        .await;
    let answer = desk.until(|e| e["type"] == "call_sdp").await.0;
    client.answer(Instant::now(), answer["sdp"].as_str().unwrap());
    talk(&mut client, |c| c.connected && c.received >= 50).await;
    // The phone got its CANCEL and finished its scenario.
    phone.succeeds().await;
    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
    let status = tokio::time::timeout(Duration::from_secs(30), sipp.wait())
        .await
        .expect("sipp finishes")
        .unwrap();
    assert!(status.success(), "the caller got our BYE: {status}");
}

/// PLT-6: a call rings on the adapter, the browser answers over WebRTC with the caller's law,
/// audio goes both ways through the room, the agent hangs up, and the record says so.
#[tokio::test]
async fn a_call_rings_in_the_browser_and_talks_over_webrtc() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");
    // A leg named before the phone is on is nobody's.
    desk.send(json!({"type": "call_answer", "leg_id": "1", "sdp": "v=0"}))
        .await;
    let refused = desk.until(|e| e["type"] == "error").await.0;
    assert_eq!(refused["code"], "not_found", "{refused}");
    assert_eq!(refused["ref"], "1");
    desk.send(json!({"type": "phone_ready"})).await;
    desk.until(|e| e["type"] == "phone_ready").await;

    let mut sipp = caller(sip);
    let ring = desk.until(|e| e["type"] == "call_ring").await.0;
    assert_eq!(ring["caller"], "15557654321", "{ring}");
    assert_eq!(ring["queue"], "Sales");
    let leg = ring["leg_id"].as_str().unwrap().to_owned();

    let (mut client, offer) = Client::offer(Instant::now());
    desk.send(json!({"type": "call_answer", "leg_id": leg, "sdp": offer}))
        .await;
    let answer = desk
        .until(|e| e["type"] == "call_sdp" || e["type"] == "error")
        .await
        .0;
    assert_eq!(answer["type"], "call_sdp", "{answer}");
    assert_eq!(answer["leg_id"], leg.as_str());
    let sdp = answer["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=ice-lite"), "{sdp}");
    assert!(sdp.contains("typ host"), "{sdp}");
    client.answer(Instant::now(), sdp);
    // The caller offered PCMA only: the browser is answered with PCMA, nothing transcoded.
    assert_eq!(client.payload_type(), Some(8));

    // Our frames reach the caller, whose echo is all the client can hear.
    talk(&mut client, |c| c.connected && c.received >= 100).await;
    assert_eq!(client.received_pts, vec![8]);
    let live = agent1.get("/api/v1/calls/live").await;
    assert!(live[0]["answered_at"].is_string(), "{live}");

    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
    let status = tokio::time::timeout(Duration::from_secs(30), sipp.wait())
        .await
        .expect("sipp finishes")
        .unwrap();
    assert!(status.success(), "the caller got our BYE: {status}");

    let call = ended_call(&admin).await;
    assert_eq!(call["disposition"], "answered", "{call}");
    assert_eq!(call["ended_by"], "agent");
    assert_eq!(call["agent_id"], agent1.user_id.as_str());
    let rtp = &call["rtp"];
    for field in ["from_agent", "to_agent", "from_caller", "to_caller"] {
        assert!(rtp[field].as_u64().unwrap() >= 100, "{field}: {call}");
    }
    // After the call the leg is gone: hanging it up again names nothing.
    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
}
