//! Voicemail end to end (AHD-7), with the server's wall clock on a Sunday (the demo center is
//! closed): a sipp caller picks Sales, hears the greeting and the tone, speaks a 440 Hz tone
//! and presses `#`; the voicemail reaches agent1 (who serves Sales) over the agent protocol
//! (on both databases),
//! its WAV has the caller's tone on the left and silence on the right, Done ends it and the
//! call's ticket gets the audio. On a root queue nobody is assigned to, the voicemail goes
//! straight to the webhook CRM as the call's ticket with the WAV attached. The mobile SDK's
//! phone options say where voicemail is available.

use crate::crm_calls::{fake_crm, use_webhook};
use crate::events::EventStream;
use crate::recording::tone_pcap;
use crate::voice::{available, free_port, scenario, Sipp, DTMF_1};
use crate::{Backend, Server, Session};
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use switchboard::config::WallClock;

const POUND: &str = "/usr/share/sip-tester/dtmf_2833_pound.pcap";
const DTMF_3: &str = "/usr/share/sip-tester/dtmf_2833_3.pcap";

/// Sunday 2026-01-04 10:00 in New York: the demo center is closed all day.
fn sunday() -> WallClock {
    WallClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 4, 15, 0, 0).unwrap())
}

/// A server closed for the day; its sipp callers' RTP ports are 64000-64999.
async fn start(backend: Backend) -> Server {
    Server::start_configured(backend, |config| {
        config.wall_clock = sunday();
        config.voice.rtp_ports = (64000, 64999);
    })
    .await
}

/// Every voice queue after hours takes voicemail with a short greeting.
async fn voicemail_everywhere(admin: &Session) {
    let rule = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/after-hours/rules/center/voice",
            json!({"enabled": true, "action": "voicemail", "max_seconds": 30,
                "messages": [{"text": "Leave a message."}]}),
        )
        .await;
    assert_eq!(
        (rule["action"].as_str(), rule["max_seconds"].as_u64()),
        (Some("voicemail"), Some(30)),
        "{rule}"
    );
}

/// A sipp caller who presses `dtmf`, speaks a 440 Hz tone for three seconds after the
/// greeting, then presses `#` and listens until hung up.
fn caller(sip: SocketAddr, folder: &Path, dtmf: &str) -> Sipp {
    let tone = folder.join("voicemail-caller.pcap");
    tone_pcap(&tone, 440.0, 3);
    let port = free_port().to_string();
    let target = sip.to_string();
    Sipp::start(
        "caller_voicemail",
        &[
            "-sf",
            &scenario("caller_voicemail"),
            "-s",
            "15550100",
            "-key",
            "dtmf",
            dtmf,
            "-key",
            "tone",
            tone.to_str().unwrap(),
            "-key",
            "pound",
            POUND,
            "-p",
            &port,
            &target,
        ],
    )
}

/// Waits (bounded) until the call's ticket is as `done` says. A recording's upload first looks
/// for the ticket as soon as the file is complete and tries again ten seconds later (the upload
/// policy), so this waits longer than that.
async fn ticket_of(admin: &Session, call: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let tickets = admin.get("/api/v1/tickets").await;
        if let Some(ticket) = tickets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["call_id"] == call)
        {
            if done(ticket) {
                return ticket.clone();
            }
            last = ticket.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the call's ticket never got there: {last}");
}

/// Mean absolute sample of one channel of interleaved stereo over `frames`.
fn energy(samples: &[i16], channel: usize, frames: std::ops::Range<usize>) -> f64 {
    let len = frames.len().max(1) as f64;
    frames
        .map(|i| f64::from(samples[2 * i + channel]).abs())
        .sum::<f64>()
        / len
}

/// The loudest half second of the left channel, and the right channel's loudest sample.
fn loudness(wav: &[u8]) -> (f64, i16) {
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).expect("a WAV file");
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8000)
    );
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let frames = samples.len() / 2;
    let loudest = (0..frames.saturating_sub(4000))
        .step_by(800)
        .map(|start| energy(&samples, 0, start..start + 4000))
        .fold(0.0, f64::max);
    let right = (0..frames)
        .map(|i| samples[2 * i + 1].abs())
        .max()
        .unwrap_or(0);
    (loudest, right)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_reaches_the_queues_agent_who_plays_it_and_is_done() {
    for backend in crate::backends() {
        agent_story(backend).await;
    }
}

/// The voicemail to agent1, on one backend.
async fn agent_story(backend: Backend) {
    let server = start(backend).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    voicemail_everywhere(&admin).await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");
    let folder = server.data_dir.join("tones");
    std::fs::create_dir_all(&folder).unwrap();
    caller(sip, &folder, DTMF_1).succeeds().await;

    // agent1 serves Sales: the voicemail is routed to them like a contact.
    let offered = desk.until(|e| e["type"] == "voicemail_offered").await.0;
    assert_eq!(offered["caller"], "15551234567", "{offered}");
    assert_eq!(offered["queue_path"], "Sales", "{offered}");
    let duration = offered["duration_ms"].as_u64().unwrap();
    assert!((2000..=9000).contains(&duration), "{offered}");
    let id = offered["voicemail_id"].as_str().unwrap().to_owned();
    let mine = agent1.get("/api/v1/me/voicemails").await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["voicemail_id"], id.as_str());

    // Its audio is the caller alone: their tone on the left, silence on the right. The file
    // may still be finishing for a moment after the call.
    let url = server.url(offered["audio_url"].as_str().unwrap());
    let mut wav = Vec::new();
    for _ in 0..100 {
        let response = agent1.client.get(&url).send().await.unwrap();
        if response.status() == StatusCode::OK {
            assert_eq!(response.headers()["content-type"], "audio/wav");
            wav = response.bytes().await.unwrap().to_vec();
            break;
        }
        assert_eq!(response.status(), StatusCode::CONFLICT);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (caller_level, right) = loudness(&wav);
    assert!(
        caller_level > 1000.0,
        "the caller speaks in it: {caller_level}"
    );
    assert_eq!(right, 0, "nobody else is in it");
    // Nobody else hears it: agent2 (not theirs, no recordings access) is told it is not there.
    let agent2 = server.login("agent2").await;
    let (status, body) = agent2
        .call(Method::GET, &format!("/api/v1/voicemails/{id}/audio"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = agent2
        .call(Method::POST, &format!("/api/v1/voicemails/{id}/done"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Done ends it: the adapter hears it is gone, a second Done is a conflict, and the call's
    // ticket is made with the voicemail's recording on it.
    let (status, _) = agent1
        .call(Method::POST, &format!("/api/v1/voicemails/{id}/done"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = desk.until(|e| e["type"] == "voicemail_gone").await.0;
    assert_eq!(gone["contact_id"], offered["contact_id"]);
    let (status, body) = agent1
        .call(Method::POST, &format!("/api/v1/voicemails/{id}/done"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_ended"))
    );
    assert_eq!(agent1.get("/api/v1/me/voicemails").await, json!([]));
    let call = admin.get("/api/v1/calls").await;
    let call_id = call
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["disposition"] == "unanswered")
        .unwrap_or_else(|| panic!("the voicemail's call: {call}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = ticket_of(&admin, &call_id, |t| {
        t["recordings"][0]["recording_id"] == id.as_str()
    })
    .await;
    assert_eq!(ticket["phone"], "15551234567", "{ticket}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_on_a_queue_nobody_serves_goes_to_the_crm_with_its_audio() {
    let server = start(Backend::Sqlite).await;
    let (url, crm) = fake_crm().await;
    use_webhook(&server.app.services.store, &url).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    voicemail_everywhere(&admin).await;
    // A root queue, third in the IVR, that no agent is assigned to.
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/queues",
            json!({"channel": "voice", "name": "Night line", "kind": "leaf", "position": 3}),
        )
        .await;
    let folder = server.data_dir.join("tones");
    std::fs::create_dir_all(&folder).unwrap();
    caller(sip, &folder, DTMF_3).succeeds().await;
    let calls = admin.get("/api/v1/calls").await;
    let call = calls[0]["id"].as_str().unwrap().to_owned();
    let ticket = ticket_of(&admin, &call, |t| t["recordings"][0]["state"] == "uploaded").await;
    assert_eq!(ticket["phone"], "15551234567", "{ticket}");
    // No contact was opened for it: nobody could take it.
    assert!(admin
        .get("/api/v1/contacts")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let crm = crm.lock().unwrap();
    assert!(
        crm.events
            .iter()
            .any(|e| e["event"] == "ticket.created" && e["ticket"]["call_id"] == call.as_str()),
        "{:?}",
        crm.events
    );
    let [part] = &crm.parts[..] else {
        panic!("one part: {:?}", crm.parts);
    };
    assert_eq!(part.ticket, ticket["id"].as_str().unwrap());
    let (caller_level, right) = loudness(part.bytes.as_ref().unwrap());
    assert!(
        caller_level > 1000.0,
        "the caller speaks in it: {caller_level}"
    );
    assert_eq!(right, 0);
}

#[tokio::test]
async fn mobile_clients_see_where_voicemail_is_available() {
    let server = start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let anonymous = reqwest::Client::new();
    let options = |channel: &'static str| {
        let anonymous = anonymous.clone();
        let url = server.url(&format!("/chat/v1/phone-options?channel={channel}"));
        async move {
            let response = anonymous.get(url).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, before) = options("web").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert!(
        before
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["voicemail"] == false),
        "no rule, no voicemail: {before}"
    );
    voicemail_everywhere(&admin).await;
    // A web queue named as a voice queue ("Sales") reaches it by phone.
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/queues",
            json!({"channel": "web", "name": "Sales", "kind": "leaf"}),
        )
        .await;
    let (_, after) = options("web").await;
    let sales = crate::find(&after, "path", "Sales");
    assert_eq!(sales["open"], false, "{after}");
    assert_eq!(sales["voicemail"], true, "{after}");
    assert!(sales["phone_number"].is_string(), "{after}");
    // A rule without a length takes the default two minutes.
    let sales_voice = crate::find(
        &admin.get("/api/v1/queues?channel=voice").await,
        "name",
        "Sales",
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rule = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/after-hours/rules/{sales_voice}/voice"),
            json!({"enabled": true, "action": "voicemail"}),
        )
        .await;
    assert_eq!(rule["max_seconds"], 120, "{rule}");
    let (status, body) = options("voice").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
}
