//! Emergency calls made by agents, end to end (EMG-1..9): the demo center's agent dials 911
//! from the adapter (a str0m client plays the browser) and from a registered SIP phone (sipp);
//! sipp plays the emergency service behind the demo carrier and insists on the Request-URI,
//! the callback number in From and P-Asserted-Identity, Geolocation and a multipart body; the
//! PIDF-LO it received is read as XML against the agent's civic address. Presence goes to Do
//! Not Disturb and back, nothing reaches call history or the monitoring lists, and the
//! emergency service's callback reaches the agent past routing.

use crate::events::EventStream;
use crate::phone::until_connected;
use crate::voice::{free_port, scenario, Sipp};
use crate::webrtc::Client;
use crate::PASSWORD;
use crate::{Backend, Server, Session};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The emergency service: sipp as the demo carrier's UAS, tracing what it received.
fn emergency_service(port: u16) -> Sipp {
    Sipp::start(
        "emergency_service",
        &[
            "-sf",
            &scenario("emergency_service"),
            "-p",
            &port.to_string(),
            "-trace_msg",
        ],
    )
}

/// The INVITE in a sipp message trace, and its PIDF-LO body part.
fn received_invite(trace: &str) -> (String, String) {
    let start = trace.find("INVITE sip:").expect("an INVITE in the trace");
    let invite = &trace[start..];
    let invite = &invite[..invite.find("\n\n----").unwrap_or(invite.len())];
    let pidf_start = invite.find("<?xml").expect("an XML part in the INVITE");
    let pidf = &invite[pidf_start..];
    let pidf = &pidf[..pidf.find("</presence>").expect("a whole PIDF") + "</presence>".len()];
    (invite.to_owned(), pidf.to_owned())
}

/// The civic address in a PIDF-LO, as the emergency service reads it: element name to text.
fn civic_address(pidf: &str) -> Vec<(String, String)> {
    let document = roxmltree::Document::parse(pidf).expect("the PIDF-LO is well-formed XML");
    let ns = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr";
    let device = document
        .descendants()
        .find(|n| n.has_tag_name(("urn:ietf:params:xml:ns:pidf:data-model", "device")))
        .expect("the location is in a device element (RFC 5491)");
    let civic = device
        .descendants()
        .find(|n| n.has_tag_name((ns, "civicAddress")))
        .expect("a civic address");
    let method = device
        .descendants()
        .find(|n| n.has_tag_name(("urn:ietf:params:xml:ns:pidf:geopriv10", "method")))
        .and_then(|n| n.text())
        .expect("a method");
    assert_eq!(method, "Manual");
    civic
        .children()
        .filter(|n| n.is_element())
        .map(|n| {
            (
                n.tag_name().name().to_owned(),
                n.text().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn presence_of(supervisor: &Session, agent: &Session) -> String {
    let agents = supervisor.get("/api/v1/agents").await;
    agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user_id"] == agent.user_id.as_str())
        .map(|a| a["presence"].as_str().unwrap_or_default().to_owned())
        .expect("the agent is listed")
}

async fn presence_becomes(supervisor: &Session, agent: &Session, wanted: &str) {
    for _ in 0..200 {
        if presence_of(supervisor, agent).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "presence stayed {} instead of {wanted}",
        presence_of(supervisor, agent).await
    );
}

async fn adapter(server: &Server, agent: &Session) -> (EventStream, String) {
    let mut desk =
        EventStream::connect(server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");
    desk.send(json!({"type": "phone_ready"})).await;
    let ready = desk.until(|e| e["type"] == "phone_ready").await.0;
    let session = ready["session_id"].as_str().unwrap().to_owned();
    (desk, session)
}

/// Answers the call ringing on the adapter with a fresh browser client.
async fn answer(desk: &mut EventStream, ring: &Value) -> (Client, String) {
    let leg = ring["leg_id"].as_str().unwrap().to_owned();
    let (mut client, offer) = Client::offer(Instant::now());
    desk.send(json!({"type": "call_answer", "leg_id": leg, "sdp": offer}))
        .await;
    let answer = desk.until(|e| e["type"] == "call_sdp").await.0;
    client.answer(Instant::now(), answer["sdp"].as_str().unwrap());
    (client, leg)
}

fn demo_center(carrier_port: u16) -> impl FnOnce(&mut switchboard::config::Config) {
    move |config| {
        config.demo_carrier = SocketAddr::from(([127, 0, 0, 1], carrier_port));
    }
}

#[tokio::test]
async fn an_agent_dials_911_from_the_adapter_and_is_called_back() {
    let carrier_port = free_port();
    let server = Server::start_configured(Backend::Sqlite, demo_center(carrier_port)).await;
    let sip = server.sip().await;
    let (admin, supervisor, agent1) = (
        server.login("admin").await,
        server.login("supervisor").await,
        server.login("agent1").await,
    );
    crate::voice::available(&agent1).await;
    let (mut desk, session) = adapter(&server, &agent1).await;

    let service = emergency_service(carrier_port);
    let placed = agent1
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/calls",
            json!({"number": "9-911", "session_id": session}),
        )
        .await;
    assert_eq!(placed["emergency"], "outgoing", "{placed}");
    assert_eq!(placed["did"], "911");
    let callback = placed["caller"].as_str().unwrap().to_owned();
    assert!(callback.starts_with("1555019"), "{placed}");
    let id = placed["id"].as_str().unwrap().to_owned();

    let ring = desk.until(|e| e["type"] == "call_ring").await.0;
    assert_eq!(ring["emergency"], "outgoing", "{ring}");
    let (mut client, leg) = answer(&mut desk, &ring).await;
    until_connected(&mut client, &agent1).await;
    presence_becomes(&supervisor, &agent1, "do_not_disturb").await;

    // Confidential: not in the supervisors' lists, not monitorable.
    let live = supervisor.get("/api/v1/calls/live").await;
    assert!(
        !live
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "{live}"
    );
    let refused = supervisor
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            &format!("/api/v1/calls/{id}/monitor"),
            json!({"mode": "listen"}),
        )
        .await;
    assert_eq!(refused["code"], "emergency_call", "{refused}");

    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
    let trace = service.succeeds_with_trace().await;
    let (invite, pidf) = received_invite(&trace);
    assert!(invite.starts_with("INVITE sip:911@"), "{invite}");
    assert!(
        invite.contains(&format!("P-Asserted-Identity: <sip:{callback}@")),
        "{invite}"
    );
    let address = civic_address(&pidf);
    for (name, value) in [
        ("country", "US"),
        ("A1", "IL"),
        ("A3", "Springfield"),
        ("RD", "Main Street"),
        ("HNO", "100"),
        ("PC", "62701"),
    ] {
        assert!(
            address.iter().any(|(n, v)| n == name && v == value),
            "{name}={value} in {address:?}"
        );
    }
    presence_becomes(&supervisor, &agent1, "available").await;
    // The restricted log has it, for compliance, with what was sent.
    let mut logged = Value::Null;
    for _ in 0..100 {
        logged = admin.get("/api/v1/emergency/log").await[0].clone();
        if logged["ended_at"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(logged["call_id"], id.as_str(), "{logged}");
    assert_eq!(logged["dialled"], "9911");
    assert_eq!(logged["number"], "911");
    assert_eq!(logged["callback_number"], callback.as_str());
    assert!(
        logged["location"]
            .as_str()
            .unwrap()
            .contains("100 Main Street"),
        "{logged}"
    );
    assert!(logged["ended_at"].is_string(), "{logged}");
    // Never call history.
    let history = admin.get("/api/v1/calls?limit=50").await;
    assert!(
        !history
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "{history}"
    );

    // The emergency service calls back while the agent is in Do Not Disturb: it rings them,
    // on this adapter, as an emergency callback.
    agent1
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent1.user_id),
            json!({"presence": "do_not_disturb"}),
        )
        .await;
    let port = free_port().to_string();
    let back = Sipp::start(
        "caller_waits",
        &[
            "-sf",
            &scenario("caller_waits"),
            "-trace_msg",
            "-s",
            &callback,
            "-key",
            "dtmf",
            crate::voice::DTMF_1,
            "-p",
            &port,
            &sip.to_string(),
        ],
    );
    let ring = desk
        .until(|e| e["type"] == "call_ring" && e["emergency"] == "callback")
        .await
        .0;
    let (mut client, leg) = answer(&mut desk, &ring).await;
    let connected = until_connected(&mut client, &agent1).await;
    // The service's scenario speaks for a while before it waits for the hang-up; the agent
    // hears it meanwhile.
    for _ in 0..100 {
        let now = Instant::now();
        client.drive(now);
        client.send_frame(now);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        client.received > connected,
        "the agent hears the emergency service"
    );
    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
    back.succeeds().await;
}

/// An agent's registered SIP phone dials 999 directly, for an agent located in the United
/// Kingdom: the phone is challenged, then the service gets the call with the location.
#[tokio::test]
async fn a_sip_phone_dials_the_emergency_number_of_the_agents_country() {
    let carrier_port = free_port();
    let server = Server::start_configured(Backend::Sqlite, demo_center(carrier_port)).await;
    let sip = server.sip().await;
    let agent1 = server.login("agent1").await;
    let address = json!({
        "country": "GB", "city": "London", "street": "Whitehall", "number": "70",
        "postcode": "SW1A 2AS", "floor": "2"
    });
    agent1
        .expect(StatusCode::OK, Method::PUT, "/api/v1/me/address", address)
        .await;
    let service = emergency_service(carrier_port);
    let phone = phone_dials(sip, "agent1", "999", 2000);
    phone.succeeds().await;
    let trace = service.succeeds_with_trace().await;
    let (invite, pidf) = received_invite(&trace);
    assert!(invite.starts_with("INVITE sip:999@"), "{invite}");
    let address = civic_address(&pidf);
    for (name, value) in [
        ("country", "GB"),
        ("A3", "London"),
        ("RD", "Whitehall"),
        ("FLR", "2"),
    ] {
        assert!(
            address.iter().any(|(n, v)| n == name && v == value),
            "{name}={value} in {address:?}"
        );
    }
}

/// sipp as agent `username`'s SIP phone dialling `number` with its digest credentials,
/// talking for `talk_ms` and hanging up.
fn phone_dials(sip: SocketAddr, username: &str, number: &str, talk_ms: u32) -> Sipp {
    let dir = std::env::temp_dir().join(format!("switchboard-dial-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users.csv");
    std::fs::write(&users, format!("SEQUENTIAL\n{username};\n")).unwrap();
    let (port, talk) = (free_port().to_string(), talk_ms.to_string());
    // The digest's uri is the Request-URI, as a phone sends it (sipp's own is the server).
    let auth_uri = format!("{number}@{sip}");
    Sipp::start(
        "phone_dials",
        &[
            "-sf",
            &scenario("phone_dials"),
            "-trace_msg",
            "-inf",
            users.to_str().unwrap(),
            "-au",
            username,
            "-ap",
            PASSWORD,
            "-auth_uri",
            &auth_uri,
            "-s",
            number,
            "-d",
            &talk,
            "-p",
            &port,
            &sip.to_string(),
        ],
    )
}
