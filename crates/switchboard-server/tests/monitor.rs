//! Monitoring through the API (MON-1, MON-2, MON-6): who may listen, coach and barge on
//! whose call (every role, a manager inside and outside the agent's team, a custom role, the
//! call's own agent), and a supervisor phone (sipp) that is offered the monitor leg, switches
//! mode and stops, each step in the audit log; the caller and the agent go on undisturbed.
//! The call details (MON-5): their fields while the call lasts and after, who may read them,
//! and monitors shown only to those who may monitor the call; on both backends.

use crate::events::EventStream;
use crate::voice::{agent_phone, answered_call, available, caller_to_support, ended_call, metric};
use crate::webrtc::Client;
use crate::{backends, Backend};
use crate::{Server, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(crate) async fn team_id(admin: &crate::Session, name: &str) -> Value {
    let teams = admin.get("/api/v1/teams").await;
    teams
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no team {name}: {teams}"))["id"]
        .clone()
}

/// The supervisor signed in, with a SIP phone password set by the admin and the phone (sipp
/// answering whatever it is offered) registered.
async fn supervisor_with_phone(
    server: &Server,
    admin: &crate::Session,
    sip: std::net::SocketAddr,
) -> (crate::Session, crate::voice::Sipp) {
    let supervisor = server.login("supervisor").await;
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/sip-phone", supervisor.user_id),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let phone = agent_phone(sip, "supervisor", "agent").await;
    (supervisor, phone)
}

#[tokio::test]
async fn who_may_listen_coach_and_barge_and_a_supervisor_phone_does() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let (sales, support) = (
        team_id(&admin, "Sales team").await,
        team_id(&admin, "Support team").await,
    );
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/roles",
            json!({"key": "coach", "name": "Coach", "permissions": ["monitor_calls_coach", "monitor_chats_view"]}),
        )
        .await;
    for (username, role, managed) in [
        ("mgr-in", "manager", json!([support])),
        ("mgr-out", "manager", json!([sales])),
        ("trainee1", "trainee", json!([])),
        ("coach1", "coach", json!([])),
    ] {
        admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/users",
                json!({"username": username, "role": role, "password": PASSWORD, "managed_teams": managed}),
            )
            .await;
    }
    // agent2 (Support team) answers a call on their phone.
    let agent2 = server.login("agent2").await;
    available(&agent2).await;
    let phone = agent_phone(sip, "agent2", "agent").await;
    let call = caller_to_support(sip, 12_000);
    let id = answered_call(&agent2).await;
    let path = format!("/api/v1/calls/{id}/monitor");

    // Allowed means the API went as far as looking for the user's phone (none is registered:
    // 409); refused is a 403, or a 404 for a call the user may not even see.
    const ALLOWED: StatusCode = StatusCode::CONFLICT;
    const REFUSED: StatusCode = StatusCode::FORBIDDEN;
    const UNSEEN: StatusCode = StatusCode::NOT_FOUND;
    let matrix = [
        ("admin", [ALLOWED, ALLOWED, ALLOWED]),
        ("supervisor", [ALLOWED, ALLOWED, ALLOWED]),
        ("mgr-in", [ALLOWED, ALLOWED, ALLOWED]),
        ("mgr-out", [UNSEEN, UNSEEN, UNSEEN]),
        ("trainee1", [ALLOWED, REFUSED, REFUSED]),
        ("coach1", [REFUSED, ALLOWED, REFUSED]),
        ("agent1", [UNSEEN, UNSEEN, UNSEEN]),
        ("agent2", [REFUSED, REFUSED, REFUSED]),
    ];
    for (username, expected) in matrix {
        let user = server.login(username).await;
        for (mode, status) in ["listen", "coach", "barge"].into_iter().zip(expected) {
            let (got, answer) = user
                .call(Method::POST, &path, Some(json!({"mode": mode})))
                .await;
            assert_eq!(got, status, "{username} {mode}: {answer}");
            if status == ALLOWED {
                assert!(
                    answer["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("SIP phone"),
                    "{username} {mode}: {answer}"
                );
            }
        }
    }
    // Bad input: an unknown mode, an unknown field, a session id that is no number.
    for body in [
        json!({"mode": "whisper"}),
        json!({"mode": "listen", "x": 1}),
        json!({"mode": "listen", "session_id": "tab"}),
    ] {
        admin
            .expect(StatusCode::BAD_REQUEST, Method::POST, &path, body)
            .await;
    }

    // The supervisor's SIP phone (sipp answering) is offered the leg; switch; stop.
    let (supervisor, monitor_phone) = supervisor_with_phone(&server, &admin, sip).await;
    supervisor
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &path,
            json!({"mode": "listen"}),
        )
        .await;
    // Its phone answers (after ringing a moment): one monitor on the center's gauge.
    let mut answered = false;
    for _ in 0..200 {
        if metric(&server, "switchboard_call_monitors").await == 1.0 {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        answered,
        "the supervisor's phone did not answer the monitor leg"
    );
    supervisor
        .expect(
            StatusCode::CONFLICT,
            Method::POST,
            &path,
            json!({"mode": "listen"}),
        )
        .await;
    supervisor
        .expect(StatusCode::OK, Method::PUT, &path, json!({"mode": "barge"}))
        .await;
    // The trainee may listen but not barge, so may not switch anyone's call to barge either.
    let trainee = server.login("trainee1").await;
    trainee
        .expect(
            StatusCode::FORBIDDEN,
            Method::PUT,
            &path,
            json!({"mode": "barge"}),
        )
        .await;
    let (status, _) = supervisor.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(metric(&server, "switchboard_call_monitors").await, 0.0);
    let (status, answer) = supervisor.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    monitor_phone.succeeds().await;

    let audit = admin.get("/api/v1/audit?limit=50").await;
    let mut actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == format!("call:{id}").as_str())
        .filter(|e| e["actor_id"] == supervisor.user_id.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        ["monitor_started", "monitor_stopped", "monitor_switched"],
        "{audit}"
    );
    // The call went on to its natural end between the caller and the agent.
    call.succeeds().await;
    drop(phone);
    let record = ended_call(&admin).await;
    assert_eq!(record["ended_by"], "caller", "{record}");
    assert_eq!(record["agent_id"], agent2.user_id.as_str());
}

/// Polls the call's details until `done` holds for the answer (the voice task applies API
/// commands and SIP answers as they come), and returns it.
async fn details_until(
    user: &crate::Session,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut details = Value::Null;
    for _ in 0..200 {
        details = user.get(path).await;
        if done(&details) {
            return details;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{what}: {details}");
}

fn roles(details: &Value) -> Vec<&str> {
    details["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["role"].as_str())
        .collect()
}

#[tokio::test]
async fn call_details_show_a_call_to_those_in_reach_and_monitors_to_supervisors_only() {
    for backend in backends() {
        call_details(backend).await;
    }
}

async fn call_details(backend: Backend) {
    let server = Server::start(backend).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let (sales, support) = (
        team_id(&admin, "Sales team").await,
        team_id(&admin, "Support team").await,
    );
    for (username, managed) in [("mgr-in", support), ("mgr-out", sales)] {
        admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/users",
                json!({"username": username, "role": "manager", "password": PASSWORD, "managed_teams": [managed]}),
            )
            .await;
    }
    let agent2 = server.login("agent2").await;
    available(&agent2).await;
    let phone = agent_phone(sip, "agent2", "agent").await;
    let call = caller_to_support(sip, 12_000);
    let id = answered_call(&agent2).await;
    let path = format!("/api/v1/calls/{id}/details");

    let details = admin.get(&path).await;
    assert_eq!(details["live"], true, "{details}");
    assert_eq!(details["state"], "talking", "{details}");
    assert_eq!(details["call"]["id"], id.as_str());
    assert_eq!(details["queue_path"], "Support", "{details}");
    assert!(details["times"]["wait_ms"].is_i64(), "{details}");
    assert!(details["times"]["ring_ms"].is_i64(), "{details}");
    assert!(details["times"]["talk_ms"].is_i64(), "{details}");
    assert_eq!(details["times"]["hold_ms"], 0, "{details}");
    assert!(details["times"]["held_since"].is_null(), "{details}");
    assert_eq!(details["transfers"], json!([]));
    assert!(details["call"]["properties"].is_object(), "{details}");
    assert_eq!(details["may_monitor"], json!(["listen", "coach", "barge"]));
    assert!(details["monitoring"].is_null());
    assert_eq!(details["sip_phone"], false);
    assert_eq!(roles(&details), ["caller", "agent"], "{details}");
    let agent = &details["participants"][1];
    assert_eq!(agent["user_id"], agent2.user_id.as_str(), "{details}");
    assert_eq!(agent["answered"], true);
    assert_eq!(agent["device"], "sip");
    assert_eq!(
        details["participants"][0]["name"],
        details["call"]["caller"]
    );

    // The supervisor listens on their SIP phone: a monitor, seen by those who may monitor.
    let (supervisor, monitor_phone) = supervisor_with_phone(&server, &admin, sip).await;
    supervisor
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/api/v1/calls/{id}/monitor"),
            json!({"mode": "listen"}),
        )
        .await;
    let seen = details_until(&admin, &path, "no answered monitor", |d| {
        d["participants"].as_array().is_some_and(|p| {
            p.iter()
                .any(|p| p["role"] == "monitor" && p["answered"] == true)
        })
    })
    .await;
    let monitor = &seen["participants"][2];
    assert_eq!(monitor["user_id"], supervisor.user_id.as_str(), "{seen}");
    assert_eq!(monitor["mode"], "listen");
    let own = supervisor.get(&path).await;
    assert_eq!(own["monitoring"], "listen", "{own}");
    assert_eq!(own["sip_phone"], true, "{own}");
    let manager = server.login("mgr-in").await.get(&path).await;
    assert_eq!(roles(&manager), ["caller", "agent", "monitor"], "{manager}");
    // The call's agent sees their call, never who listens, and may monitor nothing.
    let theirs = agent2.get(&path).await;
    assert_eq!(roles(&theirs), ["caller", "agent"], "{theirs}");
    assert_eq!(theirs["may_monitor"], json!([]));
    assert_eq!(theirs["sip_phone"], false);
    // Outside one's reach: 403; no such call: 404; not an id: 400.
    for (username, status, code) in [
        ("mgr-out", StatusCode::FORBIDDEN, "forbidden"),
        ("agent1", StatusCode::FORBIDDEN, "forbidden"),
    ] {
        let (got, answer) = server
            .login(username)
            .await
            .call(Method::GET, &path, None)
            .await;
        assert_eq!(got, status, "{username}: {answer}");
        assert_eq!(answer["code"], code, "{username}: {answer}");
    }
    let unknown = "/api/v1/calls/01890000-0000-7000-8000-000000000000/details";
    let (got, answer) = admin.call(Method::GET, unknown, None).await;
    assert_eq!(got, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["code"], "not_found");
    let (got, answer) = admin
        .call(Method::GET, "/api/v1/calls/nope/details", None)
        .await;
    assert_eq!(got, StatusCode::BAD_REQUEST, "{answer}");

    // Hold: the running hold shows while it lasts, and its time stays after.
    agent2
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/calls/{id}/hold"),
            json!({}),
        )
        .await;
    let held = details_until(&admin, &path, "not held", |d| d["state"] == "held").await;
    assert!(held["times"]["held_since"].is_string(), "{held}");
    agent2
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/calls/{id}/resume"),
            json!({}),
        )
        .await;
    let resumed = details_until(&admin, &path, "not resumed", |d| d["state"] == "talking").await;
    assert!(resumed["times"]["held_since"].is_null(), "{resumed}");
    assert!(
        resumed["times"]["hold_ms"].as_i64() >= held["times"]["hold_ms"].as_i64(),
        "{held} then {resumed}"
    );
    let (status, answer) = supervisor
        .call(Method::DELETE, &format!("/api/v1/calls/{id}/monitor"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    monitor_phone.succeeds().await;

    // After the end: the stored record, in the same shape.
    call.succeeds().await;
    drop(phone);
    ended_call(&admin).await;
    let ended = details_until(&admin, &path, "still live", |d| d["live"] == false).await;
    assert_eq!(ended["state"], "ended", "{ended}");
    assert_eq!(ended["participants"], json!([]));
    assert_eq!(ended["may_monitor"], json!([]));
    assert!(ended["call"]["ended_at"].is_string(), "{ended}");
    assert!(ended["times"]["talk_ms"].is_i64(), "{ended}");
}

/// The amplitude of the `frequency` component of 8 kHz `samples` (Goertzel): about the peak
/// of a tone at that frequency, near zero without one.
fn tone(samples: &[i16], frequency: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coefficient = 2.0 * (std::f64::consts::TAU * frequency / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for sample in samples {
        let s0 = f64::from(*sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coefficient * s1 * s2).max(0.0);
    2.0 * power.sqrt() / samples.len() as f64
}

/// The last half second a client heard.
fn recent(client: &Client) -> &[i16] {
    &client.heard[client.heard.len().saturating_sub(4000)..]
}

/// A tone this loud is heard; one this quiet is not there (the tones are sent at 6000–8000).
const HEARD: f64 = 1000.0;
const ABSENT: f64 = 300.0;

/// Drives the clients every 20 ms (each sends a frame) until `done` holds; the bound only
/// keeps a broken test from hanging.
async fn drive_until(
    clients: &mut [&mut Client],
    what: &str,
    done: impl Fn(&[&mut Client]) -> bool,
) {
    for _ in 0..1000 {
        let now = Instant::now();
        for client in clients.iter_mut() {
            client.drive(now);
            client.send_frame(now);
        }
        if done(clients) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let heard: Vec<String> = clients
        .iter()
        .map(|c| {
            format!(
                "connected {} sent {} received {}",
                c.connected, c.sent, c.received
            )
        })
        .collect();
    panic!("{what}: {heard:?}");
}

/// The supervisor's portal phone (`/api/v1/monitor/ws`) starts monitoring `call` in `mode`;
/// its str0m client answers the monitor leg that rings on it.
async fn browser_monitor(
    server: &Server,
    supervisor: &crate::Session,
    call: &str,
    mode: &str,
) -> (EventStream, Client) {
    let mut portal =
        EventStream::connect(server, "/api/v1/monitor/ws", Some(supervisor.cookie_pair())).await;
    portal.send(json!({"type": "phone_ready"})).await;
    let ready = portal.until(|e| e["type"] == "phone_ready").await.0;
    let session = ready["session_id"]
        .as_str()
        .expect("a session id")
        .to_owned();
    supervisor
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/api/v1/calls/{call}/monitor"),
            json!({"mode": mode, "session_id": session}),
        )
        .await;
    let ring = portal.until(|e| e["type"] == "call_ring").await.0;
    assert_eq!(ring["call_id"], call, "{ring}");
    let leg = ring["leg_id"].as_str().unwrap().to_owned();
    let (mut client, offer) = Client::offer(Instant::now());
    portal
        .send(json!({"type": "call_answer", "leg_id": leg, "sdp": offer}))
        .await;
    let answer = portal
        .until(|e| e["type"] == "call_sdp" || e["type"] == "error")
        .await
        .0;
    assert_eq!(answer["type"], "call_sdp", "{answer}");
    client.answer(Instant::now(), answer["sdp"].as_str().unwrap());
    (portal, client)
}

/// MON-1: what a monitor hears. A caller (a 440 Hz tone) talks to agent1's SIP phone (1000 Hz);
/// the supervisor listens on the portal's browser phone (a str0m client) and hears both
/// parties mixed into the one stream the room sends it, in the caller's law.
#[tokio::test]
async fn a_browser_monitor_hears_the_caller_and_the_agent() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let folder = server.data_dir.join("tones");
    std::fs::create_dir_all(&folder).unwrap();
    let (caller, phone) = crate::recording::talking_call(sip, &folder).await;
    let id = answered_call(&agent1).await;

    let supervisor = server.login("supervisor").await;
    let (_portal, mut client) = browser_monitor(&server, &supervisor, &id, "listen").await;
    assert_eq!(client.payload_type(), Some(8));
    drive_until(&mut [&mut client], "the monitor heard both parties", |c| {
        let heard = recent(c[0]);
        heard.len() == 4000 && tone(heard, 440.0) > HEARD && tone(heard, 1000.0) > HEARD
    })
    .await;
    assert_eq!(client.received_pts, vec![8]);

    agent1
        .expect(
            StatusCode::OK,
            Method::POST,
            &format!("/api/v1/calls/{id}/hangup"),
            json!({}),
        )
        .await;
    caller.succeeds().await;
    phone.succeeds().await;
}

/// MON-2 by ear: the caller (sipp) echoes what it hears; the agent talks on the browser phone
/// (1000 Hz) and the supervisor monitors on theirs (1800 Hz). Listening, the agent hears no
/// supervisor; coaching, the agent hears them and the caller does not (no 1800 Hz comes back
/// in the caller's echo); barging, the caller hears them too (their echo carries it).
#[tokio::test]
async fn coach_is_heard_by_the_agent_alone_and_barge_by_both() {
    const AGENT: f64 = 1000.0;
    const SUPERVISOR: f64 = 1800.0;
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    desk.send(json!({"type": "phone_ready"})).await;
    desk.until(|e| e["type"] == "phone_ready").await;
    let mut sipp = crate::phone::caller(sip);
    let ring = desk.until(|e| e["type"] == "call_ring").await.0;
    let id = ring["call_id"].as_str().unwrap().to_owned();
    let leg = ring["leg_id"].as_str().unwrap().to_owned();
    let (mut agent, offer) = Client::offer(Instant::now());
    agent.tone = Some(AGENT);
    desk.send(json!({"type": "call_answer", "leg_id": leg, "sdp": offer}))
        .await;
    let answer = desk.until(|e| e["type"] == "call_sdp").await.0;
    agent.answer(Instant::now(), answer["sdp"].as_str().unwrap());
    crate::phone::until_connected(&mut agent, &agent1).await;

    let supervisor = server.login("supervisor").await;
    let (_portal, mut monitor) = browser_monitor(&server, &supervisor, &id, "listen").await;
    monitor.tone = Some(SUPERVISOR);
    let path = format!("/api/v1/calls/{id}/monitor");

    // Listen: the supervisor hears the call (the agent, and the caller's echo of them) for a
    // second; all that while the agent hears no supervisor.
    drive_until(
        &mut [&mut agent, &mut monitor],
        "listening, the supervisor heard the call",
        |c| c[1].heard.len() >= 8000 && tone(recent(c[1]), AGENT) > HEARD,
    )
    .await;
    assert!(
        tone(recent(&agent), SUPERVISOR) < ABSENT,
        "listening, the agent heard the supervisor"
    );

    // Coach: the agent hears the supervisor; the caller does not, so for as long as the
    // agent has heard them, nothing of them came back to the supervisor.
    supervisor
        .expect(StatusCode::OK, Method::PUT, &path, json!({"mode": "coach"}))
        .await;
    drive_until(
        &mut [&mut agent, &mut monitor],
        "coaching, the agent heard the supervisor",
        |c| tone(recent(c[0]), SUPERVISOR) > HEARD,
    )
    .await;
    let mark = monitor.heard.len();
    drive_until(
        &mut [&mut agent, &mut monitor],
        "coaching, the supervisor heard on",
        |c| c[1].heard.len() >= mark + 8000,
    )
    .await;
    assert!(
        tone(recent(&agent), SUPERVISOR) > HEARD,
        "coaching, the agent stopped hearing the supervisor"
    );
    assert!(
        tone(recent(&monitor), SUPERVISOR) < ABSENT,
        "coaching, the caller heard the supervisor"
    );

    // Barge: the caller hears the supervisor too (it comes back in their echo).
    supervisor
        .expect(StatusCode::OK, Method::PUT, &path, json!({"mode": "barge"}))
        .await;
    drive_until(
        &mut [&mut agent, &mut monitor],
        "barging, the caller heard the supervisor",
        |c| tone(recent(c[1]), SUPERVISOR) > HEARD && tone(recent(c[0]), SUPERVISOR) > HEARD,
    )
    .await;

    desk.send(json!({"type": "call_hangup", "leg_id": leg}))
        .await;
    let status = tokio::time::timeout(Duration::from_secs(30), sipp.wait())
        .await
        .expect("sipp finishes")
        .unwrap();
    assert!(status.success(), "the caller got our BYE: {status}");
}
