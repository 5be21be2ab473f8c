//! Voice end to end with real SIP peers: sipp as the carrier and as agent phones, baresip as
//! an agent phone, and raw sockets for malformed messages.

use crate::{find, Backend, Server, Session, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::{Child, Command};

pub(crate) const DTMF_1: &str = "/usr/share/sip-tester/dtmf_2833_1.pcap";
pub(crate) const DTMF_2: &str = "/usr/share/sip-tester/dtmf_2833_2.pcap";

pub(crate) fn scenario(name: &str) -> String {
    format!("{}/tests/sipp/{name}.xml", env!("CARGO_MANIFEST_DIR"))
}

/// A free even UDP port with the next three free too (sipp binds an audio and a video pair).
pub(crate) fn free_port() -> u16 {
    loop {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        // sipp's media port is followed by its RTCP, then its video RTP and RTCP.
        if port % 2 == 0
            && port < 65000
            && (1..4).all(|n| std::net::UdpSocket::bind(("127.0.0.1", port + n)).is_ok())
        {
            return port;
        }
    }
}

/// A sipp process with its own working directory for its logs.
pub(crate) struct Sipp {
    child: Child,
    dir: PathBuf,
    name: String,
}

impl Sipp {
    pub(crate) fn start(name: &str, args: &[&str]) -> Sipp {
        let dir = std::env::temp_dir().join(format!("switchboard-sipp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let media = free_port().to_string();
        let mut all = vec![
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "40",
            "-timeout_error",
            "-trace_err",
            "-mp",
            &media,
            "-i",
            "127.0.0.1",
        ];
        all.extend_from_slice(args);
        let child = Command::new("sipp")
            .args(&all)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sipp is installed (package sip-tester)");
        Sipp {
            child,
            dir,
            name: name.to_owned(),
        }
    }

    /// Waits for sipp to finish and insists every call of its scenario succeeded.
    pub(crate) async fn succeeds(self) {
        self.succeeds_with_trace().await;
    }

    /// As `succeeds`, returning the messages sipp exchanged (started with `-trace_msg`).
    pub(crate) async fn succeeds_with_trace(mut self) -> String {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("sipp {} did not finish", self.name))
            .unwrap();
        if !status.success() {
            let mut errors = String::new();
            for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
                errors.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
            panic!("sipp {} failed ({status}):\n{errors}", self.name);
        }
        let mut trace = String::new();
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with("_messages.log")
            {
                trace.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        std::fs::remove_dir_all(&self.dir).ok();
        trace
    }
}

/// Registers a user's phone with digest authentication; calls for them go to `contact_port`.
pub(crate) async fn register(sip: SocketAddr, username: &str, contact_port: u16) {
    let dir = std::env::temp_dir().join(format!("switchboard-reg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users.csv");
    std::fs::write(&users, format!("SEQUENTIAL\n{username};{contact_port}\n")).unwrap();
    let port = free_port().to_string();
    let target = sip.to_string();
    Sipp::start(
        "register",
        &[
            "-sf",
            &scenario("register"),
            "-inf",
            users.to_str().unwrap(),
            "-au",
            username,
            "-ap",
            PASSWORD,
            "-p",
            &port,
            &target,
        ],
    )
    .succeeds()
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

/// An agent phone (sipp as UAS) on a fresh port, registered for `username`.
pub(crate) async fn agent_phone(sip: SocketAddr, username: &str, behaviour: &str) -> Sipp {
    let port = free_port();
    let phone = Sipp::start(
        behaviour,
        &["-sf", &scenario(behaviour), "-p", &port.to_string()],
    );
    register(sip, username, port).await;
    phone
}

/// A sipp caller who picks Support (digit 2) and talks for `talk_ms` before hanging up.
pub(crate) fn caller_to_support(sip: SocketAddr, talk_ms: u32) -> Sipp {
    caller(sip, "caller", DTMF_2, talk_ms)
}

pub(crate) fn caller(sip: SocketAddr, scenario_name: &str, dtmf: &str, talk_ms: u32) -> Sipp {
    let port = free_port().to_string();
    let target = sip.to_string();
    let talk = talk_ms.to_string();
    Sipp::start(
        scenario_name,
        &[
            "-sf",
            &scenario(scenario_name),
            "-s",
            "15550100",
            "-key",
            "dtmf",
            dtmf,
            "-d",
            &talk,
            "-p",
            &port,
            &target,
        ],
    )
}

pub(crate) async fn available(session: &Session) {
    session
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", session.user_id),
            json!({"presence": "available"}),
        )
        .await;
}

async fn queue_id(admin: &Session, name: &str) -> String {
    let queues = admin.get("/api/v1/queues").await;
    let queue = queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name && q["channel"] == "voice")
        .unwrap_or_else(|| panic!("no voice queue {name}"));
    queue["id"].as_str().unwrap().to_owned()
}

/// Waits until a call's stored record shows its end (records are written just after).
async fn ended(admin: &Session, id: &str) -> Value {
    for _ in 0..200 {
        let record = admin.get(&format!("/api/v1/calls/{id}")).await;
        if record["ended_at"].is_string() {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("call {id} did not end");
}

/// Waits until the newest call has ended, and returns its record.
pub(crate) async fn ended_call(admin: &Session) -> Value {
    for _ in 0..300 {
        let calls = admin.get("/api/v1/calls?limit=1").await;
        if let Some(call) = calls.as_array().and_then(|c| c.first()) {
            if !call["ended_at"].is_null() {
                return call.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no call ended");
}

pub(crate) async fn metric(server: &Server, name: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the agent's live call is answered, and returns its id.
pub(crate) async fn answered_call(agent: &Session) -> String {
    let mut live = Value::Null;
    for _ in 0..200 {
        live = agent.get("/api/v1/calls/live").await;
        if let Some(call) = live.as_array().and_then(|l| l.first()) {
            if call["answered_at"].is_string() {
                return call["id"].as_str().unwrap().to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no answered call: {live}");
}

/// VOI: a carrier call reaches the number, picks sales with DTMF 1 (RFC 4733), waits in the
/// queue, rings agent1's registered phone, talks with audio both ways, and the caller hangs up.
#[tokio::test]
async fn a_call_walks_the_menu_and_talks_to_an_agent() {
    for backend in crate::backends() {
        let server = Server::start(backend).await;
        let sip = server.sip().await;
        let admin = server.login("admin").await;
        let agent1 = server.login("agent1").await;
        available(&agent1).await;
        let phone = agent_phone(sip, "agent1", "agent").await;
        let registrations = admin.get("/api/v1/voice/registrations").await;
        find(&registrations, "user_id", &agent1.user_id);

        caller(sip, "caller", DTMF_1, 3000).succeeds().await;
        phone.succeeds().await;
        let call = ended_call(&admin).await;
        assert_eq!(call["did"], "15550100", "{backend:?} {call}");
        assert_eq!(call["caller"], "15551234567");
        assert_eq!(call["ivr_path"], "1");
        assert_eq!(call["queue_id"], queue_id(&admin, "Sales").await.as_str());
        assert_eq!(call["agent_id"], agent1.user_id.as_str());
        assert_eq!(call["disposition"], "answered");
        assert_eq!(call["ended_by"], "caller");
        for field in ["queued_at", "ringing_at", "answered_at"] {
            assert!(call[field].is_string(), "{field}: {call}");
        }
        assert!(call["wait_ms"].as_i64().unwrap() >= 0);
        assert!(call["talk_ms"].as_i64().unwrap() >= 3000, "{call}");
        // Audio went both ways: most of the caller's pcap (236 packets; sipp's playback may lag
        // on a busy machine) reached the agent, and the agent's reached the caller, relayed
        // packet for packet.
        let rtp = &call["rtp"];
        assert!(rtp["from_caller"].as_u64().unwrap() >= 150, "{call}");
        assert!(rtp["to_agent"].as_u64().unwrap() >= 150, "{call}");
        assert!(rtp["from_agent"].as_u64().unwrap() >= 150, "{call}");
        assert!(rtp["to_caller"].as_u64().unwrap() >= 150, "{call}");
        // The same record comes from the store by id, and the metrics counted it.
        let id = call["id"].as_str().unwrap();
        assert_eq!(admin.get(&format!("/api/v1/calls/{id}")).await, call);
        assert_eq!(
            metric(&server, "switchboard_calls_total{outcome=\"answered\"}").await,
            1.0
        );
        assert_eq!(metric(&server, "switchboard_calls_in_progress").await, 0.0);
        assert_eq!(metric(&server, "switchboard_calls_queued").await, 0.0);
        assert_eq!(
            metric(&server, "switchboard_call_wait_seconds_count").await,
            1.0
        );
        // The agent sees their own call; another agent does not.
        assert_eq!(
            agent1.get("/api/v1/calls").await.as_array().unwrap().len(),
            1
        );
        let agent2 = server.login("agent2").await;
        assert_eq!(
            agent2.get("/api/v1/calls").await.as_array().unwrap().len(),
            0
        );
        // The agent is free for the next call: the contact ended with the call.
        let contacts = admin.get("/api/v1/contacts").await;
        assert!(
            contacts
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["status"] != "assigned"),
            "{contacts}"
        );
    }
}

/// The agent hangs up first; the caller hears BYE. Over TCP signalling for the caller.
#[tokio::test]
async fn the_agent_hangs_up_first() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let supervisor = server.login("supervisor").await;
    let (mut events, _) = crate::events::EventStream::open(&server, &supervisor).await;
    let agent2 = server.login("agent2").await;
    available(&agent2).await;
    let phone = agent_phone(sip, "agent2", "agent_hangs_up").await;
    let port = free_port().to_string();
    let target = sip.to_string();
    let caller = Sipp::start(
        "caller_waits",
        &[
            "-sf",
            &scenario("caller_waits"),
            "-s",
            "15550100",
            "-key",
            "dtmf",
            DTMF_2,
            "-t",
            "t1",
            "-p",
            &port,
            &target,
        ],
    );
    caller.succeeds().await;
    phone.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["ivr_path"], "2");
    assert_eq!(call["queue_id"], queue_id(&admin, "Support").await.as_str());
    assert_eq!(call["agent_id"], agent2.user_id.as_str());
    assert_eq!(call["disposition"], "answered");
    assert_eq!(call["ended_by"], "agent");
    // A supervisor watched the call move on the live event stream, to its end.
    let (ended, before) = events
        .until(|e| e["type"] == "call_updated" && e["call"]["ended_at"].is_string())
        .await;
    assert_eq!(ended["call"]["id"], call["id"]);
    let steps: Vec<&Value> = before
        .iter()
        .filter(|e| e["type"] == "call_updated")
        .map(|e| &e["call"])
        .collect();
    assert!(
        steps
            .iter()
            .any(|c| c["queued_at"].is_string() && c["answered_at"].is_null()),
        "queued: {steps:?}"
    );
    assert!(
        steps.iter().any(|c| c["answered_at"].is_string()),
        "answered: {steps:?}"
    );
    // The agent answered PCMU first while the caller speaks PCMA: relayed, converted byte by
    // byte (about three seconds each way before the agent hangs up).
    assert!(call["rtp"]["to_agent"].as_u64().unwrap() >= 100, "{call}");
    assert!(call["rtp"]["to_caller"].as_u64().unwrap() >= 100, "{call}");
}

/// A caller who hangs up while waiting is an abandoned call, and leaves nothing behind. The
/// text-to-speech engine configured here is not installed on test machines (espeak-ng), so the
/// menu is tones: the call goes on regardless.
#[tokio::test]
async fn a_caller_abandons_in_the_queue() {
    let server =
        Server::start_configured(Backend::Sqlite, |c| c.voice.tts = "espeak-ng".into()).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    // Nobody is available: the caller waits with hold music, then gives up.
    caller(sip, "caller", DTMF_1, 2500).succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["disposition"], "abandoned", "{call}");
    assert_eq!(call["ended_by"], "caller");
    assert!(call["agent_id"].is_null());
    assert!(call["answered_at"].is_null());
    assert!(call["wait_ms"].as_i64().unwrap() >= 2000, "{call}");
    // The caller heard the menu prompt and hold music.
    assert!(call["rtp"]["to_caller"].as_u64().unwrap() >= 100, "{call}");
    assert_eq!(
        metric(
            &server,
            "switchboard_contacts_total{channel=\"voice\",event=\"abandoned\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(&server, "switchboard_calls_total{outcome=\"abandoned\"}").await,
        1.0
    );
    assert_eq!(metric(&server, "switchboard_calls_queued").await, 0.0);
    assert_eq!(metric(&server, "switchboard_calls_in_progress").await, 0.0);
}

/// An agent who does not answer in time is set not ready, and the next agent gets the call.
#[tokio::test]
async fn an_unanswered_phone_passes_the_call_to_the_next_agent() {
    let server = Server::start_configured(Backend::Sqlite, |c| c.voice.ring_seconds = 2).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let sales = queue_id(&admin, "Sales").await;
    let agent1 = server.login("agent1").await;
    let agent2 = server.login("agent2").await;
    let user2 = admin
        .get(&format!("/api/v1/users/{}", agent2.user_id))
        .await;
    let mut queues = user2["queues"].as_array().unwrap().clone();
    queues.push(json!(sales));
    admin
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &format!("/api/v1/users/{}", agent2.user_id),
            json!({"queues": queues}),
        )
        .await;
    // agent1 has waited longest, so is offered the call first.
    available(&agent1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    available(&agent2).await;
    let silent = agent_phone(sip, "agent1", "agent_ignores").await;
    let answering = agent_phone(sip, "agent2", "agent").await;
    caller(sip, "caller", DTMF_1, 2000).succeeds().await;
    silent.succeeds().await;
    answering.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["agent_id"], agent2.user_id.as_str(), "{call}");
    assert_eq!(call["disposition"], "answered");
    assert!(
        call["wait_ms"].as_i64().unwrap() >= 2000,
        "rang agent1 first: {call}"
    );
    let agents = admin.get("/api/v1/agents").await;
    assert_eq!(
        find(&agents, "user_id", &agent1.user_id)["presence"],
        "custom:Missed call"
    );
    assert_eq!(
        find(&agents, "user_id", &agent2.user_id)["presence"],
        "available"
    );
}

/// A blind transfer to another queue: the first agent's phone is hung up and the caller
/// reaches an agent of the new queue.
#[tokio::test]
async fn a_call_is_transferred_to_another_queue() {
    let server = Server::start_in_hours(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let support = queue_id(&admin, "Support").await;
    let agent1 = server.login("agent1").await;
    let agent2 = server.login("agent2").await;
    available(&agent1).await;
    available(&agent2).await;
    let first = agent_phone(sip, "agent1", "agent").await;
    let second = agent_phone(sip, "agent2", "agent").await;
    let call = caller(sip, "caller", DTMF_1, 6000);
    // Once agent1 talks to the caller, they transfer the call to support.
    let id = answered_call(&agent1).await;
    // Bad transfers are refused with clear errors and change nothing.
    agent1
        .expect(
            StatusCode::BAD_REQUEST,
            Method::POST,
            &format!("/api/v1/calls/{id}/transfer"),
            json!({}),
        )
        .await;
    agent2
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            &format!("/api/v1/calls/{id}/transfer"),
            json!({"queue_id": support}),
        )
        .await;
    agent1
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            &format!("/api/v1/calls/{id}/resume"),
            json!({}),
        )
        .await;
    let moved = agent1
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/calls/{id}/transfer"),
            json!({"queue_id": support}),
        )
        .await;
    assert_eq!(moved["transfers"], json!([format!("queue:{support}")]));
    first.succeeds().await;
    call.succeeds().await;
    second.succeeds().await;
    let record = ended(&admin, &id).await;
    assert_eq!(record["agent_id"], agent2.user_id.as_str(), "{record}");
    assert_eq!(record["queue_id"], support.as_str());
    assert_eq!(record["disposition"], "answered");
    assert_eq!(record["transfers"], json!([format!("queue:{support}")]));
}

/// An attended transfer to a number: the caller holds while the agent talks to the number
/// through the outbound trunk (dial rules applied), then the caller is joined to it and the
/// agent's phone is released.
#[tokio::test]
async fn an_attended_transfer_to_a_number() {
    // The demo's outbound trunk (9 for an outside line, caller id +15550100) sends to the
    // carrier named by SWITCHBOARD_DEMO_CARRIER: here, a sipp UAS.
    let carrier_port = free_port();
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.demo_carrier = std::net::SocketAddr::from(([127, 0, 0, 1], carrier_port));
    })
    .await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let carrier = Sipp::start(
        "carrier_out",
        &[
            "-sf",
            &scenario("carrier_out"),
            "-p",
            &carrier_port.to_string(),
        ],
    );
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    let call = caller(sip, "caller", DTMF_1, 8000);
    let id = answered_call(&agent1).await;
    // Nothing to complete yet.
    agent1
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            &format!("/api/v1/calls/{id}/complete-transfer"),
            json!({}),
        )
        .await;
    agent1
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/calls/{id}/transfer"),
            json!({"number": "95551234", "attended": true}),
        )
        .await;
    // Once the number answers, the agent completes the transfer.
    let mut completed = false;
    for _ in 0..200 {
        let (status, body) = agent1
            .call(
                Method::POST,
                &format!("/api/v1/calls/{id}/complete-transfer"),
                Some(json!({})),
            )
            .await;
        if status == StatusCode::OK {
            completed = true;
            break;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(completed, "the number never answered");
    phone.succeeds().await;
    call.succeeds().await;
    carrier.succeeds().await;
    let record = ended(&admin, &id).await;
    assert_eq!(record["transfers"], json!(["number:95551234"]), "{record}");
    assert_eq!(record["disposition"], "transferred_out");
    assert_eq!(record["ended_by"], "caller");
    assert_eq!(record["agent_id"], agent1.user_id.as_str());
    // The agent is free again: their contact ended with the transfer.
    let contact = record["contact_id"].as_str().unwrap();
    let contacts = admin.get("/api/v1/contacts").await;
    assert!(
        contacts
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != contact),
        "{contacts}"
    );
}

/// baresip, a real softphone, registers with digest authentication and auto-answers as
/// agent2; the caller's audio reaches it (it records what it heard).
#[tokio::test]
async fn baresip_answers_as_an_agent_phone() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let agent2 = server.login("agent2").await;
    available(&agent2).await;
    let dir = std::env::temp_dir().join(format!("switchboard-baresip-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // Its microphone: twenty seconds of a 440 Hz tone (baresip hangs up when it runs out).
    let speech = dir.join("speech.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&speech, spec).unwrap();
    for n in 0..160_000 {
        let t = n as f32 / 8000.0;
        writer
            .write_sample(((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method poll\nsip_listen 127.0.0.1:{port}\nsip_trans_def udp\naudio_source aufile,{}\naudio_player aubridge,nil\n\
             audio_alert aubridge,nil\nrtp_ports {}-{}\nmodule_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n\
             module aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\nsnd_path {}\n",
            speech.display(),
            port + 2,
            port + 40,
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:agent2@{sip};transport=udp>;auth_pass={PASSWORD};answermode=auto;regint=600\n"
        ),
    )
    .unwrap();
    let mut baresip = Command::new("baresip")
        .args(["-f", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip is installed");
    let mut registered = false;
    for _ in 0..200 {
        let list = admin.get("/api/v1/voice/registrations").await;
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["user_id"] == agent2.user_id.as_str())
        {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(registered, "baresip did not register");
    caller(sip, "caller", DTMF_2, 3000).succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["agent_id"], agent2.user_id.as_str(), "{call}");
    assert_eq!(call["disposition"], "answered");
    assert!(
        call["rtp"]["from_agent"].as_u64().unwrap() >= 50,
        "baresip sent audio: {call}"
    );
    // What baresip decoded: the caller's speech, not silence. It writes the recording out once
    // it has taken the hang-up, so wait for that before stopping it.
    let mut samples: Vec<i16> = Vec::new();
    for _ in 0..100 {
        let heard = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"));
        if let Some(reader) = heard.and_then(|p| hound::WavReader::open(p).ok()) {
            samples = reader.into_samples().filter_map(Result::ok).collect();
            if samples.len() >= 8000 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    baresip.kill().await.ok();
    assert!(
        samples.len() >= 8000,
        "at least a second heard: {}",
        samples.len()
    );
    let energy = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
    assert!(
        energy.sqrt() > 300.0,
        "baresip heard silence (rms {})",
        energy.sqrt()
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A restart with a call up (its media and signalling lived in the process that stopped): the
/// next process closes the call's record as interrupted and ends its contact before routing
/// starts, so the agent is not left busy with a ghost call.
#[tokio::test]
async fn a_restart_closes_the_calls_it_interrupted() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    let call = caller(sip, "caller", DTMF_1, 30_000);
    let id = answered_call(&agent1).await;
    let me = find(
        &agent1.get("/api/v1/agents").await,
        "user_id",
        &agent1.user_id,
    )
    .clone();
    assert_eq!(me["calls"], 1, "{me}");
    let (config, database) = server.stop().await;
    drop((phone, call));
    let server = Server::start_with(config, database).await;
    let admin = server.login("admin").await;
    let record = admin.get(&format!("/api/v1/calls/{id}")).await;
    assert_eq!(record["disposition"], "interrupted", "{record}");
    assert_eq!(record["ended_by"], "system");
    assert!(record["ended_at"].is_string());
    let contact = admin
        .get(&format!(
            "/api/v1/contacts/{}",
            record["contact_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(contact["status"], "ended", "{contact}");
    let me = find(
        &admin.get("/api/v1/agents").await,
        "user_id",
        &agent1.user_id,
    )
    .clone();
    assert_eq!(me["calls"], 0, "no ghost call holds the agent: {me}");
    assert!(admin
        .get("/api/v1/calls/live")
        .await
        .as_array()
        .unwrap()
        .is_empty());
}

/// Calls follow the scope rules of chats and users, on the API and the event stream alike: a
/// manager of the sales team sees, reads and acts on the sales agents' calls only, and the
/// events of a support agent's call do not reach them once it has an agent.
#[tokio::test]
async fn a_managers_reach_over_calls_is_their_teams() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let teams = admin.get("/api/v1/teams").await;
    let sales = teams
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Sales team")
        .unwrap()["id"]
        .clone();
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/users",
            json!({"username": "mgr", "role": "manager", "password": PASSWORD, "managed_teams": [sales]}),
        )
        .await;
    let manager = server.login("mgr").await;
    let supervisor = server.login("supervisor").await;
    let (mut manager_events, _) = crate::events::EventStream::open(&server, &manager).await;
    let (mut supervisor_events, _) = crate::events::EventStream::open(&server, &supervisor).await;
    let agent2 = server.login("agent2").await;
    available(&agent2).await;
    let phone = agent_phone(sip, "agent2", "agent").await;
    let call = caller(sip, "caller", DTMF_2, 3000);
    let id = answered_call(&agent2).await;
    // The support agent's live call: not listed for the sales manager, not readable, not theirs
    // to hold; the supervisor has it.
    let live = manager.get("/api/v1/calls/live").await;
    assert!(live.as_array().unwrap().is_empty(), "{live}");
    manager
        .expect(
            StatusCode::NOT_FOUND,
            Method::GET,
            &format!("/api/v1/calls/{id}"),
            Value::Null,
        )
        .await;
    manager
        .expect(
            StatusCode::FORBIDDEN,
            Method::POST,
            &format!("/api/v1/calls/{id}/hold"),
            json!({}),
        )
        .await;
    let seen = supervisor.get("/api/v1/calls/live").await;
    assert_eq!(seen.as_array().unwrap().len(), 1, "{seen}");
    call.succeeds().await;
    drop(phone);
    let record = ended(&admin, &id).await;
    assert_eq!(record["agent_id"], agent2.user_id.as_str());
    assert!(manager
        .get("/api/v1/calls")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    // A marker the manager does see: the sales agent's presence.
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let (_, before) = manager_events
        .until(|e| e["type"] == "presence_changed" && e["user_id"] == agent1.user_id.as_str())
        .await;
    assert!(
        !before.iter().any(
            |e| e["type"] == "call_updated" && e["call"]["agent_id"] == agent2.user_id.as_str()
        ),
        "the support agent's call reached the sales manager: {before:?}"
    );
    let (with_agent, _) = supervisor_events
        .until(|e| e["type"] == "call_updated" && e["call"]["agent_id"] == agent2.user_id.as_str())
        .await;
    assert_eq!(with_agent["call"]["id"], id.as_str());
}

/// Class of service: an agent cannot transfer a call to a satellite or premium-rate number;
/// the refusal is a 403 with a stable code and is in the audit log; a policy for the agent's
/// role can allow it, and the adapter can ask before it dials.
#[tokio::test]
async fn toll_fraud_destinations_are_refused_and_audited() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    let call = caller(sip, "caller", DTMF_1, 4000);
    let id = answered_call(&agent1).await;
    // Also through the outside-line prefix: `9` + `011…` reaches the carrier as `011…`.
    for number in [
        "+88213000123",
        "19005550100",
        "+442079460000",
        "9011442079460000",
        "919005550100",
    ] {
        let (status, body) = agent1
            .call(
                Method::POST,
                &format!("/api/v1/calls/{id}/transfer"),
                Some(json!({ "number": number })),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{number}: {body}");
        assert_eq!(body["code"], "dial_refused", "{body}");
    }
    let audit = admin.get("/api/v1/audit?action=dial_refused").await;
    let numbers: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [
            "919005550100",
            "9011442079460000",
            "+442079460000",
            "19005550100",
            "+88213000123"
        ]
    );
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_id"] == agent1.user_id.as_str()));
    // The call is untouched by the refusals.
    let live = agent1.get("/api/v1/calls/live").await;
    assert!(
        live[0]["transfers"].as_array().unwrap().is_empty(),
        "{live}"
    );
    let check = agent1
        .get("/api/v1/dialing/check?number=%2B442079460000")
        .await;
    assert_eq!(
        (check["kind"].as_str(), check["allowed"].as_bool()),
        (Some("international"), Some(false))
    );
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/dialing/policies/role:agent",
            json!({"allowed": ["national"], "allow": ["+44"]}),
        )
        .await;
    let check = agent1
        .get("/api/v1/dialing/check?number=%2B442079460000")
        .await;
    assert_eq!(check["allowed"], true, "{check}");
    let check = agent1.get("/api/v1/dialing/check?number=911").await;
    assert_eq!(
        (check["kind"].as_str(), check["allowed"].as_bool()),
        (Some("emergency"), Some(true))
    );
    // Bad policies are refused and change nothing; agents cannot set them.
    for bad in [
        json!({"allowed": ["cheap"]}),
        json!({"allowed": [], "allow": ["+44x"]}),
    ] {
        admin
            .expect(
                StatusCode::BAD_REQUEST,
                Method::PUT,
                "/api/v1/dialing/policies/center",
                bad,
            )
            .await;
    }
    admin
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/api/v1/dialing/policies/nowhere",
            json!({"allowed": []}),
        )
        .await;
    agent1
        .expect(
            StatusCode::FORBIDDEN,
            Method::PUT,
            "/api/v1/dialing/policies/center",
            json!({"allowed": ["international"]}),
        )
        .await;
    assert_eq!(
        admin
            .get("/api/v1/dialing/policies")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    call.succeeds().await;
    drop(phone);
}

/// What the server answers to one message, if anything, within a second.
async fn udp_exchange(sip: SocketAddr, message: &[u8]) -> Option<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(message, sip).await.unwrap();
    let mut buffer = vec![0u8; 65536];
    match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buffer)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        _ => None,
    }
}

/// Sends a message and returns the final answer (provisional ones skipped), if one comes.
async fn udp_final(sip: SocketAddr, message: &[u8]) -> Option<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(message, sip).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), final_response(&socket))
        .await
        .ok()
}

/// The next final response on a socket, within three seconds.
async fn next_answer(socket: &UdpSocket) -> String {
    tokio::time::timeout(Duration::from_secs(3), final_response(socket))
        .await
        .expect("an answer")
}

/// The next final response on a socket (provisional ones skipped).
async fn final_response(socket: &UdpSocket) -> String {
    let mut buffer = vec![0u8; 65536];
    loop {
        let n = socket.recv(&mut buffer).await.unwrap();
        let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

fn request(method: &str, uri: &str, extra: &str, body: &str) -> Vec<u8> {
    let branch = uuid::Uuid::new_v4().simple();
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:torture@127.0.0.1>;tag=t1\r\nTo: <{uri}>\r\nCall-ID: {branch}@torture\r\nCSeq: 1 {method}\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status(answer: &Option<String>) -> Option<u16> {
    answer.as_ref()?.split_whitespace().nth(1)?.parse().ok()
}

/// RFC 3261 §18.3 and RFC 4475: every malformed or unsupported message gets the answer the
/// case requires (or none, where no response can be built), over UDP and TCP, and the server
/// keeps serving.
#[tokio::test]
async fn malformed_and_unsupported_messages_get_the_right_answers() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let uri = format!("sip:15550100@{sip}");
    let sdp_no_g711 = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
    let cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        (
            "OPTIONS is answered",
            request("OPTIONS", &uri, "", ""),
            Some(200),
        ),
        (
            "garbage is dropped",
            b"\x00\x01hello\r\n\r\n".to_vec(),
            None,
        ),
        (
            "SIP/7.0",
            String::from_utf8(request("OPTIONS", &uri, "", ""))
                .unwrap()
                .replacen("SIP/2.0", "SIP/7.0", 1)
                .into_bytes(),
            Some(505),
        ),
        (
            "bad CSeq",
            String::from_utf8(request("OPTIONS", &uri, "", ""))
                .unwrap()
                .replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS")
                .into_bytes(),
            Some(400),
        ),
        (
            "CSeq method differs",
            String::from_utf8(request("OPTIONS", &uri, "", ""))
                .unwrap()
                .replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")
                .into_bytes(),
            Some(400),
        ),
        // No response can be built without a Call-ID (§18.3): dropped.
        (
            "missing Call-ID",
            String::from_utf8(request("OPTIONS", &uri, "", ""))
                .unwrap()
                .replace("Call-ID", "X-Call-Id")
                .into_bytes(),
            None,
        ),
        (
            "Content-Length beyond the datagram",
            String::from_utf8(request("OPTIONS", &uri, "", ""))
                .unwrap()
                .replace("Content-Length: 0", "Content-Length: 500")
                .into_bytes(),
            Some(400),
        ),
        (
            "unknown URI scheme",
            request("OPTIONS", "http://example.com/", "", ""),
            Some(416),
        ),
        (
            "unknown method",
            request("FROBNICATE", &uri, "", ""),
            Some(501),
        ),
        (
            "unsupported extension",
            request("OPTIONS", &uri, "Require: nonexistent\r\n", ""),
            Some(420),
        ),
        (
            "no hops left",
            request("INVITE", &uri, "", "").pipe_replace("Max-Forwards: 70", "Max-Forwards: 0"),
            Some(483),
        ),
        (
            "BYE outside a dialog",
            request("BYE", &uri, "", "")
                .pipe_replace(&format!("To: <{uri}>"), &format!("To: <{uri}>;tag=nope")),
            Some(481),
        ),
        (
            "unknown number",
            request("INVITE", &format!("sip:19999@{sip}"), "", ""),
            Some(404),
        ),
        (
            "a body that is not SDP",
            request("INVITE", &uri, "Content-Type: text/plain\r\n", "hello"),
            Some(415),
        ),
        (
            "no G.711 on offer",
            request(
                "INVITE",
                &uri,
                "Content-Type: application/sdp\r\n",
                sdp_no_g711,
            ),
            Some(488),
        ),
        (
            "REGISTER without credentials",
            request(
                "REGISTER",
                &format!("sip:{sip}"),
                "Contact: <sip:agent1@127.0.0.1:5999>\r\n",
                "",
            )
            .pipe_replace("To: <sip:", "To: <sip:agent1@"),
            Some(401),
        ),
        (
            "CANCEL of nothing",
            request("CANCEL", &uri, "", ""),
            Some(481),
        ),
    ];
    for (name, message, expected) in &cases {
        let answer = if message.starts_with(b"INVITE") {
            udp_final(sip, message).await
        } else {
            udp_exchange(sip, message).await
        };
        assert_eq!(status(&answer), *expected, "UDP, {name}: {answer:?}");
    }
    // Over TCP the same answers come back on the connection.
    // (Not the short body: on a stream, a longer Content-Length means more bytes to come.)
    let stream_cases = cases.iter().filter(|(name, m, e)| {
        e.is_some() && !m.starts_with(b"INVITE") && !name.starts_with("Content-Length")
    });
    for (name, message, expected) in stream_cases {
        let mut stream = TcpStream::connect(sip).await.unwrap();
        // A new transaction: a fresh branch on the other transport.
        let message = String::from_utf8_lossy(message)
            .replace("SIP/2.0/UDP", "SIP/2.0/TCP")
            .replace("branch=z9hG4bK", "branch=z9hG4bKtcp");
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut buffer = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("TCP, {name}: no answer"))
            .unwrap();
        let answer = Some(String::from_utf8_lossy(&buffer[..n]).into_owned());
        assert_eq!(status(&answer), *expected, "TCP, {name}: {answer:?}");
    }
    // A stream message without Content-Length cannot be framed: 400, then the stream closes.
    let mut stream = TcpStream::connect(sip).await.unwrap();
    let unframed = String::from_utf8(request("OPTIONS", &uri, "", ""))
        .unwrap()
        .replace("Content-Length: 0\r\n", "");
    stream.write_all(unframed.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status(&Some(String::from_utf8_lossy(&all).into_owned())),
        Some(400),
        "{}",
        String::from_utf8_lossy(&all)
    );
    // A stale nonce is challenged again; a wrong password, answered to a fresh challenge, is
    // refused outright.
    let register = |authorization: String| {
        request(
            "REGISTER",
            &format!("sip:{sip}"),
            &format!("Contact: <sip:agent1@127.0.0.1:5999>\r\n{authorization}"),
            "",
        )
        .pipe_replace("To: <sip:", "To: <sip:agent1@")
    };
    let stale = register("Authorization: Digest username=\"agent1\", realm=\"switchboard\", nonce=\"0.0\", uri=\"sip:x\", response=\"00\"\r\n".into());
    assert_eq!(status(&udp_exchange(sip, &stale).await), Some(401));
    let challenge = udp_exchange(sip, &register(String::new())).await.unwrap();
    let header = challenge
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .unwrap();
    let (realm, nonce) = switchboard_sip::digest::parse_challenge(header).unwrap();
    let uri_register = format!("sip:{sip}");
    let answer = switchboard_sip::digest::answer(
        "agent1",
        "wrong-password",
        &realm,
        &nonce,
        "REGISTER",
        &uri_register,
        "abcdef",
    );
    let wrong = register(format!("Authorization: {answer}\r\n"));
    assert_eq!(status(&udp_exchange(sip, &wrong).await), Some(403));
    // Still serving: a real call works after all that.
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    caller(sip, "caller", DTMF_1, 1000).succeeds().await;
    phone.succeeds().await;
    let admin = server.login("admin").await;
    assert_eq!(ended_call(&admin).await["disposition"], "answered");
}

/// Voice configuration over the API: trunks, numbers, SIP phones and audio, with bad input
/// refused.
#[tokio::test]
async fn voice_configuration_is_checked() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let trunks = admin.get("/api/v1/voice/trunks").await;
    assert_eq!(
        find(&trunks, "name", "Demo carrier")["addresses"],
        json!(["127.0.0.1", "::1"])
    );
    let created = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/voice/trunks",
            json!({"name": "Carrier out", "direction": "outbound", "host": "127.0.0.1", "port": 5090,
                   "username": "acct", "password": "s3cret", "caller_id": "+15550100",
                   "dial_rules": [{"prefix": "9", "strip": 1, "prepend": "+1"}]}),
        )
        .await;
    assert_eq!(created["has_password"], true);
    assert!(created.get("password").is_none());
    for bad in [
        json!({"name": "x", "direction": "sideways", "host": "h"}),
        json!({"name": "x", "direction": "inbound"}),
        json!({"name": "x", "direction": "outbound"}),
        json!({"name": "x", "direction": "inbound", "addresses": ["not-an-ip"]}),
        json!({"name": "x", "direction": "inbound", "addresses": ["10.0.0.0/99"]}),
        json!({"name": "x", "direction": "outbound", "host": "h", "dial_rules": [{"prefix": "abc"}]}),
        json!({"name": "x", "direction": "outbound", "host": "h", "caller_id": "call me"}),
        json!({"name": "x", "direction": "outbound", "host": "h", "username": "u"}),
        json!({"name": "x", "direction": "outbound", "host": "h", "transport": "sctp"}),
    ] {
        let (status, body) = admin
            .call(Method::POST, "/api/v1/voice/trunks", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["code"].is_string());
    }
    // The demo's inbound and outbound carriers, and the new one.
    assert_eq!(
        admin
            .get("/api/v1/voice/trunks")
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let sales = queue_id(&admin, "Sales").await;
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/voice/numbers/+15550199",
            json!({"entry_queue_id": sales, "language": "en"}),
        )
        .await;
    let chat_queue = admin.get("/api/v1/queues").await;
    let web = chat_queue
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["channel"] == "web")
        .unwrap()["id"]
        .clone();
    admin
        .expect(
            StatusCode::CONFLICT,
            Method::PUT,
            "/api/v1/voice/numbers/15550200",
            json!({"entry_queue_id": web}),
        )
        .await;
    admin
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/api/v1/voice/numbers/not-a-number",
            json!({}),
        )
        .await;
    let numbers = admin.get("/api/v1/voice/numbers").await;
    // The demo's number, its ten callback numbers, and the one added.
    assert_eq!(numbers.as_array().unwrap().len(), 12, "{numbers}");
    // SIP phone passwords: the user themself, or an admin; too short is refused.
    let agent1 = server.login("agent1").await;
    agent1
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            &format!("/api/v1/users/{}/sip-phone", agent1.user_id),
            json!({"password": "short"}),
        )
        .await;
    let (status, _) = agent1
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/sip-phone", agent1.user_id),
            Some(json!({"password": "a-new-phone-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let agent2 = server.login("agent2").await;
    agent2
        .expect(
            StatusCode::FORBIDDEN,
            Method::PUT,
            &format!("/api/v1/users/{}/sip-phone", agent1.user_id),
            json!({"password": "a-new-phone-password"}),
        )
        .await;
    // Audio uploads must be WAV and name a real key.
    let client = reqwest::Client::new();
    let not_wav = client
        .put(server.url("/api/v1/voice/audio/hold:default"))
        .header("cookie", admin.cookie_pair())
        .body("not audio")
        .send()
        .await
        .unwrap();
    assert_eq!(not_wav.status(), StatusCode::BAD_REQUEST);
    let mut wav = std::io::Cursor::new(Vec::new());
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::new(&mut wav, spec).unwrap();
        for n in 0..32_000 {
            writer.write_sample(((n % 40) as i16 - 20) * 500).unwrap();
        }
        writer.finalize().unwrap();
    }
    let wav = wav.into_inner();
    for (key, expected) in [
        ("hold:default", StatusCode::NO_CONTENT),
        ("menu:main:en", StatusCode::NO_CONTENT),
        ("menu:nowhere", StatusCode::BAD_REQUEST),
        ("other:thing", StatusCode::BAD_REQUEST),
    ] {
        let response = client
            .put(server.url(&format!("/api/v1/voice/audio/{key}")))
            .header("cookie", admin.cookie_pair())
            .body(wav.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{key}");
    }
    let (status, _) = agent1.call(Method::GET, "/api/v1/voice/trunks", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A caller without sipp: DTMF by SIP INFO picks the menu choice, the caller is queued, and
/// hangs up while waiting (an abandoned call); the INVITE carried no offer (Switchboard offers
/// in its 200 and takes the answer from the ACK).
#[tokio::test]
async fn dtmf_by_sip_info_and_a_late_offer() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let uri = format!("sip:15550100@{sip}");
    let head = |method: &str, cseq: u32, to_tag: &str, extra: &str, body: &str| {
        let to_tag = if to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={to_tag}")
        };
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
             From: <sip:15559876543@127.0.0.1>;tag=info\r\nTo: <{uri}>{to_tag}\r\nCall-ID: info-test\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{local}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            uuid::Uuid::new_v4().simple(),
            body.len()
        )
    };
    socket
        .send_to(head("INVITE", 1, "", "", "").as_bytes(), sip)
        .await
        .unwrap();
    let ok = next_answer(&socket).await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("m=audio ") && ok.contains("telephone-event"),
        "our offer: {ok}"
    );
    let tag = ok
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .and_then(|to| to.split(";tag=").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let answer = format!(
        "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
        media.local_addr().unwrap().port()
    );
    socket
        .send_to(
            head("ACK", 1, &tag, "Content-Type: application/sdp\r\n", &answer).as_bytes(),
            sip,
        )
        .await
        .unwrap();
    // The menu prompt arrives at the address the ACK's answer gave.
    let n = tokio::time::timeout(Duration::from_secs(5), media.recv(&mut vec![0u8; 2048]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 172, "a 20 ms PCMU packet");
    let info = head(
        "INFO",
        2,
        &tag,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=2\r\nDuration=160\r\n",
    );
    socket.send_to(info.as_bytes(), sip).await.unwrap();
    assert!(next_answer(&socket).await.starts_with("SIP/2.0 200"));
    let support = queue_id(&admin, "Support").await;
    let mut live = Value::Null;
    for _ in 0..100 {
        live = admin.get("/api/v1/calls/live").await;
        if live[0]["queue_id"] == support.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live[0]["ivr_path"], "2", "{live}");
    assert_eq!(live[0]["queue_id"], support.as_str(), "{live}");
    // A BYE for another dialog is refused; ours ends the call.
    socket
        .send_to(head("BYE", 3, "not-ours", "", "").as_bytes(), sip)
        .await
        .unwrap();
    assert!(next_answer(&socket).await.starts_with("SIP/2.0 481"));
    socket
        .send_to(head("BYE", 3, &tag, "", "").as_bytes(), sip)
        .await
        .unwrap();
    assert!(next_answer(&socket).await.starts_with("SIP/2.0 200"));
    let call = ended_call(&admin).await;
    assert_eq!(call["disposition"], "abandoned");
    assert_eq!(call["caller"], "15559876543");
}

/// A caller whose media stops (a vanished phone that never sent BYE) is hung up once the media
/// timeout passes, and the call record says the system ended it.
#[tokio::test]
async fn a_silent_caller_is_hung_up_after_the_media_timeout() {
    let server =
        Server::start_configured(Backend::Sqlite, |c| c.voice.media_timeout_seconds = 2).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let sdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let invite = String::from_utf8(request(
        "INVITE",
        &format!("sip:15550100@{sip}"),
        "Content-Type: application/sdp\r\n",
        sdp,
    ))
    .unwrap()
    .replace("127.0.0.1:5999", &local.to_string());
    socket.send_to(invite.as_bytes(), sip).await.unwrap();
    let ok = next_answer(&socket).await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let to = ok
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap()
        .to_owned();
    let ack = invite
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(&format!("To: <sip:15550100@{sip}>"), &format!("To: {to}"));
    let ack = ack.split("\r\n\r\n").next().unwrap().replace(
        &format!("Content-Length: {}", sdp.len()),
        "Content-Length: 0",
    ) + "\r\n\r\n";
    socket.send_to(ack.as_bytes(), sip).await.unwrap();
    // No RTP ever comes from this caller: within a few seconds Switchboard sends BYE.
    let mut buffer = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buffer))
        .await
        .expect("a BYE")
        .unwrap();
    let bye = String::from_utf8_lossy(&buffer[..n]).into_owned();
    assert!(bye.starts_with("BYE "), "{bye}");
    let call = ended_call(&admin).await;
    assert_eq!(call["ended_by"], "system", "{call}");
    assert_eq!(call["disposition"], "left_in_menu");
    assert_eq!(call["rtp"]["from_caller"], 0);
    assert_eq!(metric(&server, "switchboard_calls_in_progress").await, 0.0);
}

/// Byte-level replacement for building malformed messages.
trait PipeReplace {
    fn pipe_replace(self, from: &str, to: &str) -> Vec<u8>;
}

impl PipeReplace for Vec<u8> {
    fn pipe_replace(self, from: &str, to: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replacen(from, to, 1)
            .into_bytes()
    }
}

/// RDP-2: a trunk maps SIP headers onto the caller's profile flags; they show on the live call
/// and its record, and the Apps API reads and sets them while the call lasts.
#[tokio::test]
async fn caller_flags_come_from_sip_headers() {
    use crate::sip_hardening::{status, Link, Message, Transport};
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let trunks = admin.get("/api/v1/voice/trunks").await;
    let carrier = find(&trunks, "name", "Demo carrier");
    let mut input = json!({"name": "Demo carrier", "direction": "inbound",
        "addresses": carrier["addresses"].clone(),
        "header_flags": [{"header": "X-Verified-Customer", "property": "reserved_verified_customer"},
                         {"header": "X-Fraud-Risk", "property": "reserved_bad_actor"}]});
    let path = format!("/api/v1/voice/trunks/{}", carrier["id"].as_str().unwrap());
    let updated = admin
        .expect(StatusCode::OK, Method::PUT, &path, input.clone())
        .await;
    assert_eq!(updated["header_flags"][1]["header"], "X-Fraud-Risk");
    input["header_flags"] = json!([{"header": "X-Vip", "property": "reserved_vip"}]);
    let (status_code, body) = admin.call(Method::PUT, &path, Some(input)).await;
    assert_eq!(status_code, StatusCode::BAD_REQUEST, "{body}");

    let mut link = Link::open(Transport::Udp, "127.0.0.1", sip).await;
    let mut invite = Message::invite(&format!("sip:15550100@{sip}"));
    invite
        .extra
        .push_str("X-Verified-Customer: true\r\nX-Fraud-Risk: no\r\n");
    link.send(&invite).await;
    let answer = link.answer(&invite.call_id).await;
    assert_eq!(status(&answer), 200, "{answer}");
    link.send(&invite.ack(&answer)).await;
    let live = admin.get("/api/v1/calls/live").await;
    let call = &live[0];
    assert_eq!(
        call["properties"]["reserved_verified_customer"], true,
        "{call}"
    );
    assert_eq!(call["properties"]["reserved_bad_actor"], false, "{call}");
    assert!(call["properties"]["reserved_repeat_customer"].is_null());
    let properties = format!(
        "/apps/api/v1/calls/{}/properties",
        call["id"].as_str().unwrap()
    );
    let (code, flags) = server.apps(Method::GET, &properties, None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(flags["reserved_verified_customer"], true);
    let (code, flags) = server
        .apps(
            Method::PATCH,
            &properties,
            Some(json!({"reserved_repeat_customer": true})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{flags}");
    assert_eq!(flags["reserved_repeat_customer"], true);
    assert_eq!(flags["reserved_verified_customer"], true);
    for bad in [
        json!({"reserved_vip": true}),
        json!({"reserved_bad_actor": "yes"}),
    ] {
        let (code, body) = server.apps(Method::PATCH, &properties, Some(bad)).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    }
    let bye = invite.in_dialog("BYE", &answer, 2);
    link.send(&bye).await;
    assert_eq!(status(&link.answer(&bye.call_id).await), 200);
    let record = ended_call(&admin).await;
    assert_eq!(
        record["properties"]["reserved_repeat_customer"], true,
        "{record}"
    );
    assert_eq!(
        record["properties"]["reserved_bad_actor"], false,
        "{record}"
    );
    // Once the call has ended its flags are read, not changed.
    let (code, _) = server
        .apps(
            Method::PATCH,
            &properties,
            Some(json!({"reserved_bad_actor": true})),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    let (code, _) = server
        .apps(
            Method::GET,
            "/apps/api/v1/calls/not-a-call/properties",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}
