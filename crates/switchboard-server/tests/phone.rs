//! The browser phone end to end without a browser: the agent's adapter WebSocket carries the
//! signalling (docs/browser-phone.md), a str0m client plays the browser's part (offer,
//! ICE, DTLS-SRTP, G.711 frames), and sipp is the caller, echoing what it hears so that the
//! client hears its own frames back only if they reached the caller.

use crate::events::EventStream;
use crate::webrtc::Client;
use crate::{Backend, Server};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

use crate::voice::{available, ended_call, free_port, scenario, Sipp, DTMF_1};

/// The echoing caller: dials the demo number, presses 1 (Sales), waits for our BYE.
pub(crate) fn caller(sip: std::net::SocketAddr) -> tokio::process::Child {
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

/// Drives the client until the agent's live call is answered (the caller connected, once the
/// whisper is over); returns the packets the client had received by then.
pub(crate) async fn until_connected(client: &mut Client, agent: &crate::Session) -> u64 {
    for round in 0..1500 {
        let now = Instant::now();
        client.drive(now);
        client.send_frame(now);
        if round % 5 == 0 {
            let live = agent.get("/api/v1/calls/live").await;
            if live[0]["answered_at"].is_string() {
                return client.received;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the caller was never connected");
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

    // First the whisper (the demo's "Inbound call from Sales"), to the browser alone: it hears
    // sound while the caller is not yet connected.
    let whisper = until_connected(&mut client, &agent1).await;
    assert!(
        whisper >= 10,
        "the browser heard {whisper} packets of whisper"
    );
    // Then our frames reach the caller, whose echo is all the client can hear.
    talk(&mut client, |c| c.received >= whisper + 100).await;
    assert_eq!(client.received_pts, vec![8]);

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

/// The dialer: the agent calls a number from the adapter. Only that adapter rings and answers
/// at once; then the number is called through the outbound trunk. The carrier (a sipp UAS)
/// insists on the dial rule's result (9 for an outside line dropped) and the trunk's caller id,
/// answers and talks; the agent hears it and hangs up. Refusals say why before anything rings.
#[tokio::test]
async fn an_agent_dials_a_number_from_the_adapter() {
    let carrier_port = free_port();
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.demo_carrier = std::net::SocketAddr::from(([127, 0, 0, 1], carrier_port));
    })
    .await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");
    desk.send(json!({"type": "phone_ready"})).await;
    let ready = desk.until(|e| e["type"] == "phone_ready").await.0;
    let session = ready["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();

    // What cannot be dialled is refused with a reason, and nothing rings.
    let supervisor = server.login("supervisor").await;
    let refusals = [
        (&agent1, "call me", StatusCode::BAD_REQUEST, "invalid_field"),
        (
            &agent1,
            "9011 44 20 7946 0000",
            StatusCode::FORBIDDEN,
            "dial_refused",
        ),
        (
            &supervisor,
            "95551234",
            StatusCode::FORBIDDEN,
            "voice_outbound_not_allowed",
        ),
    ];
    for (who, number, status, code) in refusals {
        let body = json!({"number": number, "session_id": session});
        let refused = who
            .expect(status, Method::POST, "/api/v1/calls", body)
            .await;
        assert_eq!(refused["code"], code, "{number}: {refused}");
    }

    let carrier = Sipp::start(
        "carrier_out",
        &[
            "-sf",
            &scenario("carrier_out"),
            "-p",
            &carrier_port.to_string(),
        ],
    );
    let dial = |status, number: &str| {
        let body = json!({"number": number, "session_id": session});
        agent1.expect(status, Method::POST, "/api/v1/calls", body)
    };
    let placed = dial(StatusCode::CREATED, "9 555-1234").await;
    assert_eq!(placed["direction"], "outbound", "{placed}");
    assert_eq!(placed["did"], "95551234");
    assert_eq!(placed["caller"], "+15550100");
    // A second call while this one is up is refused.
    let busy = dial(StatusCode::CONFLICT, "95551234").await;
    assert!(
        busy["message"]
            .as_str()
            .unwrap()
            .contains("already on a call"),
        "{busy}"
    );

    let ring = desk.until(|e| e["type"] == "call_ring").await.0;
    assert_eq!(ring["direction"], "outbound", "{ring}");
    assert_eq!(ring["call_id"], placed["id"]);
    assert_eq!(ring["number"], "95551234");
    let leg = ring["leg_id"].as_str().unwrap().to_owned();
    let (mut client, offer) = Client::offer(Instant::now());
    desk.send(json!({"type": "call_answer", "leg_id": leg, "sdp": offer}))
        .await;
    let answer = desk.until(|e| e["type"] == "call_sdp").await.0;
    client.answer(Instant::now(), answer["sdp"].as_str().unwrap());
    // Ringback, then the carrier answers and plays speech; the browser hears it.
    let ringback = until_connected(&mut client, &agent1).await;
    talk(&mut client, |c| c.received >= ringback + 40).await;
    let id = placed["id"].as_str().unwrap();
    let live = agent1.get(&format!("/api/v1/calls/{id}")).await;
    assert!(live["answered_at"].is_string(), "{live}");
    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
    carrier.succeeds().await;

    let call = ended_call(&admin).await;
    assert_eq!(call["id"], placed["id"]);
    assert_eq!(call["disposition"], "answered", "{call}");
    assert_eq!(call["ended_by"], "agent");
    assert_eq!(call["agent_id"], agent1.user_id.as_str());
    // The number's speech reached Switchboard and went on to the browser.
    assert!(call["rtp"]["from_caller"].as_u64().unwrap() >= 30, "{call}");
    // The call's contact was the agent's, and ended with it: the wrap-up goes there.
    let contact = call["contact_id"].as_str().expect("an outbound contact");
    agent1
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/contacts/{contact}/wrap-up"),
            json!({"disposition": "Resolved", "note": "Called back about the order"}),
        )
        .await;
    // Refusals were audited.
    let audit = admin.get("/api/v1/audit?action=dial_refused").await;
    assert!(audit.as_array().unwrap().len() >= 2, "{audit}");
}
