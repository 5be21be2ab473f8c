//! Monitoring through the API (MON-1, MON-2, MON-6): who may listen, coach and barge on
//! whose call (every role, a manager inside and outside the agent's team, a custom role, the
//! call's own agent), and a supervisor phone (sipp) that is offered the monitor leg, switches
//! mode and stops, each step in the audit log; the caller and the agent go on undisturbed.
//! The call details (MON-5): their fields while the call lasts and after, who may read them,
//! and monitors shown only to those who may monitor the call; on both backends.

use crate::voice::{agent_phone, answered_call, available, caller_to_support, ended_call, metric};
use crate::{backends, Backend};
use crate::{Server, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn team_id(admin: &crate::Session, name: &str) -> Value {
    let teams = admin.get("/api/v1/teams").await;
    teams
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no team {name}: {teams}"))["id"]
        .clone()
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
    let supervisor = server.login("supervisor").await;
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/sip-phone", supervisor.user_id),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let monitor_phone = agent_phone(sip, "supervisor", "agent").await;
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
    let supervisor = server.login("supervisor").await;
    let (status, _) = admin
        .call(
            Method::PUT,
            &format!("/api/v1/users/{}/sip-phone", supervisor.user_id),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let monitor_phone = agent_phone(sip, "supervisor", "agent").await;
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
