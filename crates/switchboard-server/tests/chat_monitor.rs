//! Watching chats and ending stuck contacts (MON-3, MON-5, MON-7): who may watch and end whose
//! chat (every role, a manager inside and outside the agent's team), two watchers reading both
//! sides live while the consumer and the agent receive exactly what they receive without
//! them, a stuck queued chat and a stuck connected call (sipp on both sides) ended by a user
//! whom the records name.

use crate::chat::{queue_path, Consumer};
use crate::events::EventStream;
use crate::monitor::team_id;
use crate::voice::{agent_phone, answered_call, available, caller, ended_call, DTMF_2};
use crate::{backends, Backend, Server, Session, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OK: StatusCode = StatusCode::OK;
const REFUSED: StatusCode = StatusCode::FORBIDDEN;
const UNSEEN: StatusCode = StatusCode::NOT_FOUND;

fn watch_path(chat: &str) -> String {
    format!("/api/v1/chats/{chat}/watch")
}

/// A manager of agent1's team (Sales) and one of the other (Support).
async fn managers(admin: &Session) {
    let (sales, support) = (
        team_id(admin, "Sales team").await,
        team_id(admin, "Support team").await,
    );
    for (username, name, managed) in [
        ("mgr-in", "Mia Manager", sales),
        ("mgr-out", "Otto Manager", support),
    ] {
        admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/users",
                json!({"username": username, "display_name": name, "role": "manager", "password": PASSWORD, "managed_teams": [managed]}),
            )
            .await;
    }
}

/// An agent's adapter, open, once it has been told the agent is available (so no late
/// presence event lands among the frames a test compares).
async fn desk_of(server: &Server, agent: &Session) -> EventStream {
    let mut desk =
        EventStream::connect(server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");
    available(agent).await;
    desk.until(|e| e["type"] == "presence" && e["presence"] == "available")
        .await;
    desk
}

/// A consumer starts a chat in the queue with this path; returns them and the chat's id.
async fn start_chat(server: &Server, path: &str) -> (Consumer, String) {
    let queue = queue_path(server, path).await;
    let (mut consumer, _) = Consumer::new(server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": "s1", "queue_id": queue}))
        .await;
    let started = consumer.expect("chat_started").await;
    let chat = started["chat"]["chat_id"].as_str().unwrap().to_owned();
    (consumer, chat)
}

/// The agent accepts the chat routing offered them; both sides see the note that they joined.
async fn accept(desk: &mut EventStream, consumer: &mut Consumer, chat: &str) {
    desk.until(|e| e["type"] == "chat_assigned" && e["chat"]["chat_id"] == chat)
        .await;
    desk.send(json!({"type": "accept", "chat_id": chat})).await;
    desk.until(|e| e["type"] == "accepted").await;
    consumer.expect("agent_joined").await;
    let joined = |e: &Value| e["type"] == "message" && e["message"]["from"] == "system";
    desk.until(joined).await;
    consumer.socket.until(joined).await;
}

async fn audit_entries(admin: &Session, subject: &str) -> Vec<Value> {
    let audit = admin.get("/api/v1/audit?limit=200").await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == subject)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_watch_and_end_a_chat_and_a_stuck_queued_chat_ends() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let admin = server.login("admin").await;
        managers(&admin).await;
        let agent1 = server.login("agent1").await;
        let mut desk = desk_of(&server, &agent1).await;
        // A chat with agent1 (Sales team), and one waiting in Technical support (agent2's
        // queue; agent2 is offline).
        let (mut talking, connected) = start_chat(&server, "Billing > Refunds").await;
        accept(&mut desk, &mut talking, &connected).await;
        let (mut waiting, queued) = start_chat(&server, "Technical support").await;

        // Watching: allowed, refused (403), or not even seen (404). The socket checks the same
        // before it opens.
        let matrix = [
            ("admin", [OK, OK]),
            ("supervisor", [OK, OK]),
            ("mgr-in", [OK, REFUSED]),
            ("mgr-out", [UNSEEN, REFUSED]),
            ("agent1", [REFUSED, UNSEEN]),
            ("agent2", [UNSEEN, REFUSED]),
        ];
        for (username, expected) in matrix {
            let user = server.login(username).await;
            for (chat, status) in [&connected, &queued].into_iter().zip(expected) {
                let (got, answer) = user.call(Method::GET, &watch_path(chat), None).await;
                assert_eq!(
                    got, status,
                    "{backend:?} {username} watches {chat}: {answer}"
                );
                if status != OK {
                    let code = if status == REFUSED {
                        "forbidden"
                    } else {
                        "not_found"
                    };
                    assert_eq!(answer["code"], code, "{username}: {answer}");
                }
                let socket = EventStream::try_connect(
                    &server,
                    &format!("{}/ws", watch_path(chat)),
                    Some(user.cookie_pair()),
                )
                .await;
                match socket {
                    Ok(stream) => {
                        assert_eq!(status, OK, "{username}'s socket opened on {chat}");
                        stream.close().await;
                    }
                    Err((got, body)) => assert_eq!(got, status, "{username} socket: {body}"),
                }
            }
        }
        for id in [uuid::Uuid::now_v7().to_string(), "not-a-chat".to_owned()] {
            let (status, answer) = admin.call(Method::GET, &watch_path(&id), None).await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (UNSEEN, Some("not_found"))
            );
        }

        // Ending someone else's chat needs monitor_chats_edit over its agent: refusals first.
        let end = |chat: &str| format!("/api/v1/contacts/{chat}/end");
        for (username, expected) in [
            ("supervisor", [REFUSED, REFUSED]),
            ("mgr-out", [UNSEEN, REFUSED]),
            ("agent2", [UNSEEN, REFUSED]),
        ] {
            let user = server.login(username).await;
            for (chat, status) in [&connected, &queued].into_iter().zip(expected) {
                user.expect(status, Method::POST, &end(chat), json!({}))
                    .await;
            }
        }
        let mgr_in = server.login("mgr-in").await;
        mgr_in
            .expect(REFUSED, Method::POST, &end(&queued), json!({}))
            .await;

        // The manager of agent1's team ends the connected chat; both sides are told.
        let ended = mgr_in
            .expect(OK, Method::POST, &end(&connected), json!({}))
            .await;
        assert_eq!(ended["end_reason"], "ended_by_supervisor");
        assert_eq!(
            ended["ended_by"],
            json!({"user_id": mgr_in.user_id, "name": "Mia Manager"})
        );
        let told = talking.expect("chat_ended").await;
        assert_eq!(told["reason"], "ended_by_supervisor");
        desk.until(|e| e["type"] == "chat_ended" && e["chat_id"] == connected.as_str())
            .await;

        // The admin ends the stuck queued chat; its consumer is told, and the stored record
        // names the admin.
        let ended = admin
            .expect(OK, Method::POST, &end(&queued), json!({}))
            .await;
        assert_eq!(ended["end_reason"], "ended_by_supervisor");
        assert_eq!(
            waiting.expect("chat_ended").await["reason"],
            "ended_by_supervisor"
        );
        let stored = admin.get(&format!("/api/v1/contacts/{queued}")).await;
        assert_eq!(
            (stored["status"].as_str(), &stored["ended_by"]),
            (
                Some("abandoned"),
                &json!({"user_id": admin.user_id, "name": "Ada Admin"})
            ),
            "{backend:?}: {stored}"
        );
        for (chat, user) in [(&connected, &mgr_in), (&queued, &admin)] {
            let entries = audit_entries(&admin, &format!("chat:{chat}")).await;
            let entry = entries
                .iter()
                .find(|e| e["action"] == "contact_ended")
                .unwrap_or_else(|| panic!("no contact_ended for {chat}: {entries:?}"));
            assert_eq!(entry["actor_id"], user.user_id.as_str());
        }

        // An ended chat is neither watched nor ended again.
        let (status, answer) = admin.call(Method::GET, &watch_path(&queued), None).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::CONFLICT, Some("chat_ended"))
        );
        admin
            .expect(StatusCode::CONFLICT, Method::POST, &end(&queued), json!({}))
            .await;
    }
}

/// The frames a side received, as its user sees them: ids, sequence numbers and times aside.
fn seen(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["type"].as_str().unwrap_or(""),
                f["message"]["from"].as_str().unwrap_or(""),
                f["message"]["text"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The consumer asks and the agent answers; returns every frame each side received, up to a
/// barrier: the other side's typing, which reaches a connection through the same outbox after
/// everything sent to it before.
async fn round(
    consumer: &mut Consumer,
    desk: &mut EventStream,
    chat: &str,
    n: u32,
) -> (Vec<String>, Vec<String>) {
    let (mut to_consumer, mut to_desk) = (Vec::new(), Vec::new());
    consumer.socket.send(json!({"type": "message", "chat_id": chat, "client_id": format!("c{n}"), "text": "Where is my refund?"})).await;
    let (ack, before) = consumer.socket.until(|e| e["type"] == "ack").await;
    to_consumer.extend(before);
    to_consumer.push(ack);
    // The consumer's message reaches the agent before the agent answers, so both rounds see
    // the same order whatever the timing.
    let (message, before) = desk.until(|e| e["type"] == "message").await;
    to_desk.extend(before);
    to_desk.push(message);
    desk.send(json!({"type": "message", "chat_id": chat, "client_id": format!("a{n}"), "text": "It left today."}))
        .await;
    let (ack, before) = desk.until(|e| e["type"] == "ack").await;
    to_desk.extend(before);
    to_desk.push(ack);
    consumer
        .socket
        .send(json!({"type": "typing", "chat_id": chat, "active": true}))
        .await;
    to_desk.extend(desk.until(|e| e["type"] == "typing").await.1);
    desk.send(json!({"type": "typing", "chat_id": chat, "active": true}))
        .await;
    to_consumer.extend(consumer.socket.until(|e| e["type"] == "typing").await.1);
    (seen(&to_consumer), seen(&to_desk))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_watchers_read_both_sides_live_and_neither_side_can_tell() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let supervisor = server.login("supervisor").await;
    let agent1 = server.login("agent1").await;
    let mut desk = desk_of(&server, &agent1).await;
    let (mut consumer, chat) = start_chat(&server, "Billing > Refunds").await;
    accept(&mut desk, &mut consumer, &chat).await;
    let unwatched = round(&mut consumer, &mut desk, &chat, 1).await;
    assert_eq!(
        unwatched.0,
        ["ack  ", "message agent It left today."],
        "the consumer's round"
    );

    // The CRM knows the chat's ticket as "T 42" and says where it shows records.
    let mut settings = admin.get("/api/v1/integrations").await;
    settings["crm_record_url"] = json!("https://crm.example.com/tickets/{external_id}");
    admin
        .expect(OK, Method::PUT, "/api/v1/integrations", settings)
        .await;
    let store = &server.app.services.store;
    let session = store
        .get_chat(switchboard_core::ContactId::parse(&chat).unwrap())
        .await
        .unwrap();
    let mut ticket = store.get_ticket(session.ticket).await.unwrap();
    ticket.external_id = Some("T 42".into());
    store.update_ticket(&ticket).await.unwrap();

    // Two watchers: each gets the chat, then its history.
    let mut watchers = Vec::new();
    for user in [&supervisor, &admin] {
        let mut watcher = EventStream::connect(
            &server,
            &format!("{}/ws", watch_path(&chat)),
            Some(user.cookie_pair()),
        )
        .await;
        let watching = watcher.next().await;
        assert_eq!(watching["type"], "watching", "{watching}");
        let details = &watching["chat"];
        assert_eq!(
            (
                details["agent"]["name"].as_str(),
                details["issue"].as_str(),
                details["status"].as_str(),
                details["crm"]["url"].as_str(),
            ),
            (
                Some("Alex Agent"),
                Some("Billing > Refunds"),
                Some("assigned"),
                Some("https://crm.example.com/tickets/T%2042")
            ),
            "{details}"
        );
        assert!(details["customer"]["name"]
            .as_str()
            .unwrap()
            .starts_with("Web User - "));
        let history = watcher.next().await;
        assert_eq!(history["type"], "history");
        let texts: Vec<&str> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "Alex Agent joined the chat",
                "Where is my refund?",
                "It left today."
            ]
        );
        // A watcher says nothing to the chat.
        watcher
            .send(json!({"type": "message", "chat_id": chat, "client_id": "w1", "text": "hello"}))
            .await;
        assert_eq!(watcher.next().await["code"], "read_only");
        watchers.push(watcher);
    }
    assert_eq!(
        round(&mut consumer, &mut desk, &chat, 2).await,
        unwatched,
        "the consumer and the agent receive the same with two watchers as without"
    );
    for watcher in &mut watchers {
        for (from, text) in [
            ("consumer", "Where is my refund?"),
            ("agent", "It left today."),
        ] {
            let (live, _) = watcher
                .until(|e| e["type"] == "message" && e["message"]["from"] == from)
                .await;
            assert_eq!(live["message"]["text"], text);
        }
    }

    // The agent completes the chat: the watchers are told, and their sockets close.
    desk.send(json!({"type": "end", "chat_id": chat})).await;
    for watcher in &mut watchers {
        let rest = watcher.until_closed().await;
        assert!(
            rest.iter()
                .any(|e| e["type"] == "chat_ended" && e["reason"] == "completed"),
            "{rest:?}"
        );
    }
    // Each watching was audited from start to end (the end is written as the socket closes).
    let subject = format!("chat:{chat}");
    let mut actions = Vec::new();
    // Polled with a deadline that only keeps a broken test from hanging.
    for _ in 0..800 {
        actions = audit_entries(&admin, &subject)
            .await
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["actor_id"].as_str().unwrap_or(""),
                    e["action"].as_str().unwrap_or("")
                )
            })
            .collect();
        actions.sort();
        if actions.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let mut expected: Vec<String> = [&supervisor, &admin]
        .iter()
        .flat_map(|u| {
            ["chat_watch_ended", "chat_watch_started"].map(|a| format!("{} {a}", u.user_id))
        })
        .collect();
    expected.sort();
    assert_eq!(actions, expected);
}

#[tokio::test]
async fn an_admin_ends_a_stuck_call_and_both_parties_get_a_bye() {
    let server = Server::start(Backend::Sqlite).await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let agent2 = server.login("agent2").await;
    available(&agent2).await;
    // Both stay on the call until Switchboard hangs them up.
    let phone = agent_phone(sip, "agent2", "agent").await;
    let call = caller(sip, "caller_waits", DTMF_2, 0);
    let id = answered_call(&agent2).await;
    let path = format!("/api/v1/calls/{id}/end");
    for username in ["supervisor", "agent2"] {
        server
            .login(username)
            .await
            .expect(REFUSED, Method::POST, &path, json!({}))
            .await;
    }
    admin
        .expect(StatusCode::NO_CONTENT, Method::POST, &path, json!({}))
        .await;
    // Each sipp ends well only after a BYE that it answered.
    call.succeeds().await;
    phone.succeeds().await;
    let record = ended_call(&admin).await;
    assert_eq!(
        (record["id"].as_str(), record["ended_by"].as_str()),
        (Some(id.as_str()), Some("supervisor"))
    );
    let contact = admin
        .get(&format!(
            "/api/v1/contacts/{}",
            record["contact_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(contact["end_reason"], "ended_by_supervisor");
    assert_eq!(
        contact["ended_by"],
        json!({"user_id": admin.user_id, "name": "Ada Admin"})
    );
    let entries = audit_entries(&admin, &format!("call:{id}")).await;
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "contact_ended" && e["actor_id"] == admin.user_id.as_str()),
        "{entries:?}"
    );
    let (status, answer) = admin.call(Method::POST, &path, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("call_ended"))
    );
}
