//! Monitoring through the API (MON-1, MON-2, MON-6): who may listen, coach and barge on
//! whose call (every role, a manager inside and outside the agent's team, a custom role, the
//! call's own agent), and a supervisor phone (sipp) that is offered the monitor leg, switches
//! mode and stops, each step in the audit log; the caller and the agent go on undisturbed.

use crate::voice::{agent_phone, answered_call, available, caller_to_support, ended_call, metric};
use crate::Backend;
use crate::{Server, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
