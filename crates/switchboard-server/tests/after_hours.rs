//! After hours end to end, with the server's wall clock moved to a Sunday (the demo center is
//! open Monday to Friday 08:00-20:00 and Saturday 10:00-16:00, New York time): the rules'
//! checks over the API on both databases; real sipp calls deflected to another queue, forwarded
//! to a sipp UAS through the outbound trunk, and played the message then hung up; widget chats
//! told the queue is closed while a chat already open stays; and which queues agents may
//! transfer to, by every rule and the setting, with a transfer to a hidden queue refused.

use crate::chat::{queue_path, Consumer};
use crate::events::EventStream;
use crate::voice::{agent_phone, available, caller, ended_call, free_port, scenario, Sipp, DTMF_1};
use crate::{backends, Backend, Server, Session};
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard::config::WallClock;

/// Sunday 2026-01-04 10:00 in New York: the demo center is closed all day.
fn sunday() -> WallClock {
    WallClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 4, 15, 0, 0).unwrap())
}

/// Monday 2026-01-05 10:00 in New York: open.
fn monday() -> WallClock {
    WallClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 5, 15, 0, 0).unwrap())
}

/// A server whose wall clock reads `clock`. Its RTP ports sit above the system's ephemeral
/// range (and the default 20000-29999, which a voice benchmark on the same machine may hold),
/// so these calls always find media ports.
async fn start(backend: Backend, clock: WallClock) -> Server {
    Server::start_configured(backend, |config| configure(config, clock)).await
}

fn configure(config: &mut switchboard::config::Config, clock: WallClock) {
    config.wall_clock = clock;
    config.voice.rtp_ports = (61000, 61999);
}

async fn voice_queue(admin: &Session, name: &str) -> String {
    let queues = admin.get("/api/v1/queues?channel=voice").await;
    queues
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("no voice queue {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn put_rule(admin: &Session, scope: &str, channel: &str, rule: Value) -> Value {
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/after-hours/rules/{scope}/{channel}"),
            rule,
        )
        .await
}

/// A queue open around the clock: a business-hours override naming it.
async fn always_open(admin: &Session, queue: &str) {
    let periods: Vec<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| format!("{d} 00:00-00:00"))
        .collect();
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/business-hours",
            json!({"name": "Around the clock", "scope": {"queue_id": queue}, "periods": periods}),
        )
        .await;
}

#[tokio::test]
async fn rules_are_checked_stored_and_removed() {
    for backend in backends() {
        let server = start(backend, sunday()).await;
        let admin = server.login("admin").await;
        let sales = voice_queue(&admin, "Sales").await;
        let support = voice_queue(&admin, "Support").await;
        let refunds = queue_path(&server, "Billing > Refunds").await;
        assert_eq!(
            admin.get("/api/v1/after-hours").await,
            json!({"allow_transfers": false, "rules": []})
        );
        let bad = [
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "voicemail", "max_seconds": 3}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "voicemail", "max_seconds": 601}),
                "invalid_after_hours",
            ),
            (
                "center",
                "web",
                json!({"enabled": true, "action": "voicemail"}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "message", "max_seconds": 60}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "hang up"}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "queue"}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "forward"}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "forward", "number": "call me"}),
                "invalid_field",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "message", "number": "+15550100"}),
                "invalid_after_hours",
            ),
            (
                sales.as_str(),
                "voice",
                json!({"enabled": true, "action": "queue", "target_queue_id": sales}),
                "invalid_after_hours",
            ),
            (
                sales.as_str(),
                "voice",
                json!({"enabled": true, "action": "queue", "target_queue_id": refunds}),
                "invalid_after_hours",
            ),
            (
                sales.as_str(),
                "web",
                json!({"enabled": true, "action": "message"}),
                "invalid_after_hours",
            ),
            (
                "center",
                "web",
                json!({"enabled": true, "action": "forward", "number": "+15550100"}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "message", "messages": [{"text": "a"}, {"text": "b"}]}),
                "invalid_after_hours",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "message", "messages": [{"text": " "}]}),
                "invalid_field",
            ),
            (
                "center",
                "voice",
                json!({"enabled": true, "action": "message", "messages": [{"language": "not a tag", "text": "x"}]}),
                "invalid_field",
            ),
            (
                "center",
                "fax",
                json!({"enabled": true, "action": "message"}),
                "invalid_field",
            ),
            (
                "nowhere",
                "voice",
                json!({"enabled": true, "action": "message"}),
                "invalid_id",
            ),
        ];
        for (scope, channel, body, code) in bad {
            let (status, answer) = admin
                .call(
                    Method::PUT,
                    &format!("/api/v1/after-hours/rules/{scope}/{channel}"),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{backend:?} {body}: {answer}"
            );
            assert_eq!(answer["code"], code, "{backend:?} {body}: {answer}");
        }
        // Nothing refused was stored.
        assert_eq!(admin.get("/api/v1/after-hours").await["rules"], json!([]));
        let agent = server.login("agent1").await;
        agent
            .expect(
                StatusCode::FORBIDDEN,
                Method::PUT,
                "/api/v1/after-hours/rules/center/voice",
                json!({"enabled": true, "action": "message"}),
            )
            .await;
        let center = put_rule(
            &admin,
            "center",
            "voice",
            json!({"enabled": true, "action": "message", "messages": [
                {"text": "We are closed."}, {"language": "fr", "text": "Nous sommes fermés."}]}),
        )
        .await;
        let to_support = put_rule(
            &admin,
            &sales,
            "voice",
            json!({"enabled": true, "action": "queue", "target_queue_id": support}),
        )
        .await;
        assert_eq!(to_support["target_queue_id"], support.as_str());
        let listed = admin.get("/api/v1/after-hours").await;
        assert_eq!(listed["rules"], json!([center, to_support]), "{backend:?}");
        // Replacing keeps one rule per queue and channel.
        let forward = put_rule(
            &admin,
            &sales,
            "voice",
            json!({"enabled": false, "action": "forward", "number": "+15550199"}),
        )
        .await;
        assert_eq!(
            admin.get("/api/v1/after-hours").await["rules"],
            json!([center, forward])
        );
        admin
            .expect(
                StatusCode::NO_CONTENT,
                Method::DELETE,
                &format!("/api/v1/after-hours/rules/{sales}/voice"),
                Value::Null,
            )
            .await;
        admin
            .expect(
                StatusCode::NOT_FOUND,
                Method::DELETE,
                &format!("/api/v1/after-hours/rules/{sales}/voice"),
                Value::Null,
            )
            .await;
        admin
            .expect(
                StatusCode::OK,
                Method::PUT,
                "/api/v1/after-hours/settings",
                json!({"allow_transfers": true}),
            )
            .await;
        assert_eq!(
            admin.get("/api/v1/after-hours").await,
            json!({"allow_transfers": true, "rules": [center]})
        );
    }
}

/// Sales sends its callers to Support after hours; agent2 (Support) answers there.
#[tokio::test]
async fn an_after_hours_caller_is_sent_to_another_queue() {
    let server = start(Backend::Sqlite, sunday()).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let sales = voice_queue(&admin, "Sales").await;
    let support = voice_queue(&admin, "Support").await;
    put_rule(
        &admin,
        &sales,
        "voice",
        json!({"enabled": true, "action": "queue", "target_queue_id": support}),
    )
    .await;
    let agent1 = server.login("agent1").await;
    let agent2 = server.login("agent2").await;
    available(&agent1).await;
    available(&agent2).await;
    let phone = agent_phone(sip, "agent2", "agent").await;
    caller(sip, "caller", DTMF_1, 2000).succeeds().await;
    phone.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["ivr_path"], "1", "{call}");
    assert_eq!(call["queue_id"], support.as_str(), "{call}");
    assert_eq!(call["agent_id"], agent2.user_id.as_str(), "{call}");
    assert_eq!(call["disposition"], "answered", "{call}");
}

/// Sales forwards its callers to a number after hours: the carrier (a sipp UAS) gets the call
/// through the outbound trunk, with the trunk's dial rules applied, and they talk.
#[tokio::test]
async fn an_after_hours_caller_is_forwarded_through_the_outbound_trunk() {
    let carrier_port = free_port();
    let server = Server::start_configured(Backend::Sqlite, |config| {
        configure(config, sunday());
        config.demo_carrier = std::net::SocketAddr::from(([127, 0, 0, 1], carrier_port));
    })
    .await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let sales = voice_queue(&admin, "Sales").await;
    put_rule(
        &admin,
        &sales,
        "voice",
        json!({"enabled": true, "action": "forward", "number": "95551234"}),
    )
    .await;
    let carrier = Sipp::start(
        "carrier_out",
        &[
            "-sf",
            &scenario("carrier_out"),
            "-p",
            &carrier_port.to_string(),
        ],
    );
    // No agent is needed: nobody is available, yet the caller talks to the number.
    caller(sip, "caller", DTMF_1, 3000).succeeds().await;
    carrier.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["queue_id"], sales.as_str(), "{call}");
    assert_eq!(call["disposition"], "transferred_out", "{call}");
    assert!(call["agent_id"].is_null(), "{call}");
    assert!(
        call["contact_id"].is_null(),
        "no contact for a forwarded call: {call}"
    );
    let rtp = &call["rtp"];
    assert!(
        rtp["to_caller"].as_u64().unwrap() >= 100,
        "the number's speech: {call}"
    );
}

/// The IVR's rule plays the after-hours message and hangs up: the caller hears it (RTP), then
/// gets the BYE; nobody is routed anything.
#[tokio::test]
async fn an_after_hours_caller_hears_the_message_and_is_hung_up() {
    let server = start(Backend::Sqlite, sunday()).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    put_rule(
        &admin,
        "center",
        "voice",
        json!({"enabled": true, "action": "message", "messages": [
            {"text": "Thank you for calling. We are closed now. Please call again on Monday."}]}),
    )
    .await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    caller(sip, "caller_after_hours", DTMF_1, 0)
        .succeeds()
        .await;
    let call = ended_call(&admin).await;
    assert_eq!(call["disposition"], "unanswered", "{call}");
    assert_eq!(call["ended_by"], "system", "{call}");
    assert!(call["agent_id"].is_null(), "{call}");
    assert!(call["contact_id"].is_null(), "{call}");
    // The spoken message is a few seconds of audio: 20 ms packets, well over a second's worth.
    let to_caller = call["rtp"]["to_caller"].as_u64().unwrap();
    assert!(to_caller >= 100, "the message reached the caller: {call}");
    assert!(admin
        .get("/api/v1/contacts")
        .await
        .as_array()
        .unwrap()
        .is_empty());
}

/// In hours the same rule changes nothing: the call is routed to Sales' agent.
#[tokio::test]
async fn in_hours_a_deflecting_queue_routes_as_usual() {
    let server = start(Backend::Sqlite, monday()).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    put_rule(
        &admin,
        "center",
        "voice",
        json!({"enabled": true, "action": "message"}),
    )
    .await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    caller(sip, "caller", DTMF_1, 1000).succeeds().await;
    phone.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["agent_id"], agent1.user_id.as_str(), "{call}");
    assert_eq!(call["disposition"], "answered", "{call}");
}

/// A closed web queue that deflects chats starts none and says so with its message; a chat
/// the visitor already has stays theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_chats_are_told_the_queue_is_closed() {
    for backend in backends() {
        let server = start(backend, sunday()).await;
        let admin = server.login("admin").await;
        let refunds = queue_path(&server, "Billing > Refunds").await;
        // Closed, but no deflection yet: the chat waits in its queue as before.
        let (mut waiting, _) = Consumer::new(&server, None).await;
        waiting
            .socket
            .send(json!({"type": "start", "client_id": "w1", "queue_id": refunds}))
            .await;
        let started = waiting.expect("chat_started").await;
        let open_chat = started["chat"]["chat_id"].as_str().unwrap().to_owned();
        put_rule(
            &admin,
            "center",
            "web",
            json!({"enabled": true, "action": "message", "messages": [
                {"text": "We are closed. We answer chats on weekdays."},
                {"language": "fr", "text": "Nous sommes fermés."}]}),
        )
        .await;
        let (mut consumer, _) = Consumer::new(&server, None).await;
        consumer
            .socket
            .send(json!({"type": "start", "client_id": "s1", "queue_id": refunds}))
            .await;
        let closed = consumer.expect("queue_closed").await;
        assert_eq!(
            closed,
            json!({"type": "queue_closed", "client_id": "s1", "queue_id": refunds,
                   "message": "We are closed. We answer chats on weekdays.", "offers": []}),
            "{backend:?}"
        );
        consumer
            .socket
            .send(
                json!({"type": "start", "client_id": "s2", "queue_id": refunds, "language": "fr"}),
            )
            .await;
        assert_eq!(
            consumer.expect("queue_closed").await["message"],
            "Nous sommes fermés."
        );
        // Only the chat from before is a contact; it is still the first visitor's.
        let contacts = admin.get("/api/v1/contacts").await;
        let contacts = contacts.as_array().unwrap();
        assert_eq!(contacts.len(), 1, "{backend:?} {contacts:?}");
        assert_eq!(contacts[0]["id"], open_chat.as_str());
        waiting
            .socket
            .send(json!({"type": "start", "client_id": "w2", "queue_id": refunds}))
            .await;
        assert_eq!(
            waiting.expect("chat_started").await["chat"]["chat_id"],
            open_chat.as_str()
        );
        // A queue's disabled rule opts it out of the channel's.
        put_rule(
            &admin,
            &refunds,
            "web",
            json!({"enabled": false, "action": "message"}),
        )
        .await;
        consumer
            .socket
            .send(json!({"type": "start", "client_id": "s3", "queue_id": refunds}))
            .await;
        consumer.expect("chat_started").await;
    }
}

/// The targets' names and whether each is open, sorted by name.
fn names(targets: &Value) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["open"].as_bool().unwrap(),
            )
        })
        .collect();
    names.sort();
    names
}

fn listed(entries: &[(&str, bool)]) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> =
        entries.iter().map(|(n, o)| ((*n).to_owned(), *o)).collect();
    names.sort();
    names
}

/// AHD-6 through the API: in hours every queue; after hours only as the setting allows, and
/// then only queues that deflect or have agents online; a transfer elsewhere is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_targets_follow_the_hours_and_the_setting() {
    for backend in backends() {
        let open = start(backend, monday()).await;
        let agent = open.login("agent1").await;
        assert_eq!(
            names(&agent.get("/api/v1/transfer-targets?channel=voice").await),
            listed(&[("Sales", true), ("Support", true)]),
            "{backend:?}: in hours, every queue"
        );
        let (status, answer) = agent
            .call(Method::GET, "/api/v1/transfer-targets?channel=fax", None)
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_field"))
        );
        open.stop().await;

        let server = start(backend, sunday()).await;
        let admin = server.login("admin").await;
        let agent1 = server.login("agent1").await;
        let support = voice_queue(&admin, "Support").await;
        let tech = queue_path(&server, "Technical support").await;
        always_open(&admin, &support).await;
        let voice = || agent1.get("/api/v1/transfer-targets?channel=voice");
        // Not allowed: only the queue in its hours, even with deflection and agents online.
        put_rule(
            &admin,
            "center",
            "voice",
            json!({"enabled": true, "action": "message"}),
        )
        .await;
        available(&agent1).await;
        assert_eq!(
            names(&voice().await),
            listed(&[("Support", true)]),
            "{backend:?}"
        );
        admin
            .expect(
                StatusCode::OK,
                Method::PUT,
                "/api/v1/after-hours/settings",
                json!({"allow_transfers": true}),
            )
            .await;
        // Allowed: Sales deflects (the center's rule) and has agent1 online.
        assert_eq!(
            names(&voice().await),
            listed(&[("Sales", false), ("Support", true)]),
            "{backend:?}"
        );
        // Agents online alone keep it listed.
        admin
            .expect(
                StatusCode::NO_CONTENT,
                Method::DELETE,
                "/api/v1/after-hours/rules/center/voice",
                Value::Null,
            )
            .await;
        assert_eq!(
            names(&voice().await),
            listed(&[("Sales", false), ("Support", true)]),
            "{backend:?}"
        );
        // Nobody online and no deflection: hidden.
        agent1
            .expect(
                StatusCode::OK,
                Method::PUT,
                &format!("/api/v1/agents/{}/presence", agent1.user_id),
                json!({"presence": "offline"}),
            )
            .await;
        assert_eq!(
            names(&voice().await),
            listed(&[("Support", true)]),
            "{backend:?}"
        );
        // Deflection alone lists it again.
        put_rule(
            &admin,
            "center",
            "voice",
            json!({"enabled": true, "action": "message"}),
        )
        .await;
        assert_eq!(
            names(&voice().await),
            listed(&[("Sales", false), ("Support", true)]),
            "{backend:?}"
        );

        // A chat transfer to a hidden queue is refused with queue_closed, and the chat stays.
        // Refunds is open around the clock; Invoices is closed but has agent1 online;
        // Technical support is closed, has nobody online (agent2 stays offline) and does not
        // deflect.
        let refunds = queue_path(&server, "Billing > Refunds").await;
        always_open(&admin, &refunds).await;
        available(&agent1).await;
        let mut desk =
            EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
        desk.next().await;
        let (mut consumer, _) = Consumer::new(&server, None).await;
        consumer
            .socket
            .send(json!({"type": "start", "client_id": "c1", "queue_id": refunds}))
            .await;
        let chat = consumer.expect("chat_started").await["chat"]["chat_id"]
            .as_str()
            .unwrap()
            .to_owned();
        desk.until(|e| e["type"] == "chat_assigned").await;
        assert_eq!(
            names(&agent1.get("/api/v1/transfer-targets?channel=web").await),
            listed(&[("Refunds", true), ("Invoices", false)]),
            "{backend:?}"
        );
        desk.send(json!({"type": "transfer", "chat_id": chat, "queue_id": tech}))
            .await;
        let refused = desk.until(|e| e["type"] == "error").await.0;
        assert_eq!(refused["code"], "queue_closed", "{backend:?} {refused}");
        let contacts = admin.get("/api/v1/contacts").await;
        let mine = contacts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == chat.as_str())
            .unwrap();
        assert_eq!(
            mine["agent_id"],
            agent1.user_id.as_str(),
            "{backend:?} {mine}"
        );
        // Once the setting allows it and Technical support deflects chats, the transfer goes,
        // and the chat gets that queue's treatment: its message, then the end.
        put_rule(
            &admin,
            &tech,
            "web",
            json!({"enabled": true, "action": "message",
                   "messages": [{"text": "Technical support answers on weekdays."}]}),
        )
        .await;
        assert_eq!(
            names(&agent1.get("/api/v1/transfer-targets?channel=web").await),
            listed(&[
                ("Refunds", true),
                ("Invoices", false),
                ("Technical support", false)
            ]),
            "{backend:?}"
        );
        desk.send(json!({"type": "transfer", "chat_id": chat, "queue_id": tech}))
            .await;
        let ended = desk.until(|e| e["type"] == "chat_ended").await.0;
        assert_eq!(ended["chat_id"], chat.as_str(), "{backend:?} {ended}");
        assert_eq!(ended["reason"], "after_hours", "{backend:?} {ended}");
        let told = consumer.expect("message").await;
        assert_eq!(told["message"]["from"], "system", "{backend:?} {told}");
        assert_eq!(
            told["message"]["text"],
            "Technical support answers on weekdays."
        );
        assert_eq!(
            consumer.expect("chat_ended").await["reason"],
            "after_hours",
            "{backend:?}"
        );
        let contacts = admin.get("/api/v1/contacts").await;
        assert!(
            contacts
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != chat.as_str()),
            "{backend:?}: the chat waits nowhere: {contacts}"
        );
    }
}

/// The calls API refuses a transfer to a queue the agent may not see now, with
/// `queue_closed`, and the call goes on with its agent.
#[tokio::test]
async fn a_call_transfer_to_a_hidden_queue_is_refused() {
    let server = start(Backend::Sqlite, sunday()).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let sales = voice_queue(&admin, "Sales").await;
    let support = voice_queue(&admin, "Support").await;
    always_open(&admin, &sales).await;
    let agent1 = server.login("agent1").await;
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    let call = caller(sip, "caller", DTMF_1, 3000);
    let id = crate::voice::answered_call(&agent1).await;
    let (status, answer) = agent1
        .call(
            Method::POST,
            &format!("/api/v1/calls/{id}/transfer"),
            Some(json!({"queue_id": support})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "queue_closed", "{answer}");
    call.succeeds().await;
    phone.succeeds().await;
    let record = ended_call(&admin).await;
    assert_eq!(record["agent_id"], agent1.user_id.as_str(), "{record}");
    assert_eq!(record["transfers"], json!([]), "{record}");
    assert_eq!(record["disposition"], "answered");
}
