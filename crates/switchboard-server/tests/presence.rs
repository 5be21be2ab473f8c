//! Presence that tells the truth, over the real protocols: an agent whose adapter is cut goes
//! offline after the grace and their chats go back to the queue in their places; sign-out;
//! the adapter hears its real status; a waiting chat whose consumer left is abandoned.
//! The grace periods are set to a second: these tests wait for the real timer, by polling
//! with a deadline, and assert no timing.

use crate::chat::{queue_path, Consumer};
use crate::events::EventStream;
use crate::{find, Backend, Server, Session};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Polls until `done` holds, for at most 20 seconds.
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn presence_of(admin: &Session, agent: &str) -> String {
    let agents = admin.get("/api/v1/agents").await;
    find(&agents, "user_id", agent)["presence"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_presence(session: &Session, agent: &str, presence: &str) -> Value {
    session
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{agent}/presence"),
            json!({"presence": presence}),
        )
        .await
}

async fn start_chat(server: &Server, queue: &str, client_id: &str) -> (Consumer, String) {
    let (mut consumer, _) = Consumer::new(server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": client_id, "queue_id": queue}))
        .await;
    let chat = consumer.expect("chat_started").await["chat"]["chat_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (consumer, chat)
}

async fn say(consumer: &mut Consumer, chat: &str, client_id: &str, text: &str) {
    consumer
        .socket
        .send(json!({"type": "message", "chat_id": chat, "client_id": client_id, "text": text}))
        .await;
    let ack = consumer.expect("ack").await;
    assert_eq!(ack["client_id"], client_id);
}

async fn next_position(consumer: &mut Consumer) -> Value {
    consumer.expect("queue_position").await
}

/// Reads a consumer's events until their chat is back in the queue: `chat_queued`, the system
/// note that says why, and the chat's new position (in whatever order they come). Returns the
/// position and the note.
async fn back_in_queue(consumer: &mut Consumer) -> (Value, String) {
    let (mut queued, mut note, mut position) = (false, None, None);
    while !(queued && note.is_some() && position.is_some()) {
        let event = consumer.socket.next().await;
        match event["type"].as_str() {
            Some("chat_queued") => queued = true,
            Some("queue_position") if queued => position = Some(event["position"].clone()),
            Some("message") if event["message"]["from"] == "system" && queued => {
                note = event["message"]["text"].as_str().map(str::to_owned)
            }
            _ => {}
        }
    }
    (position.unwrap_or_default(), note.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_adapter_sends_its_agent_offline_and_their_chats_back_in_their_places() {
    let server =
        Server::start_configured(Backend::Sqlite, |config| config.presence_grace_seconds = 1).await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    let agent2 = server.login("agent2").await;
    let refunds = queue_path(&server, "Billing > Refunds").await;
    // Bea serves Refunds too, but is not available yet.
    admin
        .expect(
            StatusCode::OK,
            Method::PATCH,
            &format!("/api/v1/users/{}", agent2.user_id),
            json!({"queues": [refunds]}),
        )
        .await;
    set_presence(&agent1, &agent1.user_id, "available").await;
    let mut desk1 =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    let welcome = desk1.next().await;
    assert_eq!(welcome["presence"], "available", "{welcome}");

    // Alex takes three chats (their capacity); the fourth waits, first in line.
    let mut consumers = Vec::new();
    for n in 0..3 {
        let (consumer, chat) = start_chat(&server, &refunds, &format!("s{n}")).await;
        let offered = desk1.until(|e| e["type"] == "chat_assigned").await.0;
        assert_eq!(offered["chat"]["chat_id"], chat.as_str());
        consumers.push((consumer, chat));
    }
    let first = consumers[0].1.clone();
    desk1
        .send(json!({"type": "accept", "chat_id": first}))
        .await;
    desk1.until(|e| e["type"] == "accepted").await;
    assert_eq!(
        consumers[0].0.expect("agent_joined").await["agent_name"],
        "Alex Agent"
    );
    let (mut last, last_chat) = start_chat(&server, &refunds, "s3").await;
    assert_eq!(next_position(&mut last).await["position"], 1);
    for (n, (consumer, chat)) in consumers.iter_mut().enumerate() {
        say(consumer, chat, &format!("m{n}"), &format!("hello from {n}")).await;
    }

    // The adapter's connection is cut: no close frame. While Alex is away the consumers go on
    // writing, and it is all stored.
    desk1.cut();
    let (consumer, chat) = &mut consumers[0];
    say(consumer, chat, "m0b", "are you still there?").await;

    // After the grace Alex is offline, and the three chats wait again ahead of the fourth, in
    // the order they arrived.
    eventually("Alex goes offline", async || {
        (presence_of(&admin, &agent1.user_id).await == "offline").then_some(())
    })
    .await;
    for (n, (consumer, _)) in consumers.iter_mut().enumerate() {
        let (position, note) = back_in_queue(consumer).await;
        assert_eq!(position, n + 1);
        assert!(note.contains("Alex Agent went offline"), "{note}");
    }
    last.socket
        .until(|e| e["type"] == "queue_position" && e["position"] == 4)
        .await;
    let (_, contact) = server
        .apps(Method::GET, &format!("/apps/api/v1/contacts/{first}"), None)
        .await;
    assert_eq!(
        (contact["status"].as_str(), contact["agent_id"].as_str()),
        (Some("queued"), None)
    );

    // Bea becomes available: she gets the three in their places; the fourth still waits, now
    // with an estimate from the queue's pace.
    let mut desk2 =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent2.cookie_pair())).await;
    desk2.next().await;
    set_presence(&agent2, &agent2.user_id, "available").await;
    let mut offered = Vec::new();
    for _ in 0..3 {
        let chat = desk2.until(|e| e["type"] == "chat_assigned").await.0;
        assert_eq!(chat["chat"]["accepted"], false, "{chat}");
        offered.push(chat["chat"]["chat_id"].as_str().unwrap().to_owned());
    }
    let arrived: Vec<String> = consumers.iter().map(|(_, chat)| chat.clone()).collect();
    assert_eq!(offered, arrived);
    let standing = last
        .socket
        .until(|e| e["type"] == "queue_position" && e["position"] == 1)
        .await
        .0;
    assert!(
        standing["estimated_wait_seconds"].is_u64(),
        "six hand-offs make a pace: {standing}"
    );
    assert_eq!(
        last_chat,
        standing["chat_id"].as_str().unwrap(),
        "the fourth chat"
    );

    // Bea accepts the first: its consumer sees her join, and she has everything they wrote.
    desk2
        .send(json!({"type": "accept", "chat_id": first}))
        .await;
    assert_eq!(
        consumers[0].0.expect("agent_joined").await["agent_name"],
        "Bea Agent"
    );
    desk2
        .send(json!({"type": "history", "chat_id": first, "after_seq": 0}))
        .await;
    let history = desk2.until(|e| e["type"] == "history").await.0;
    let said: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == "consumer")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(said, ["hello from 0", "are you still there?"]);

    // Alex comes back: the adapter says offline, as the server holds it.
    let mut desk1 =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    let welcome = desk1.next().await;
    assert_eq!(
        (welcome["presence"].as_str(), &welcome["agent_chats"]),
        (Some("offline"), &json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_hears_its_real_status_and_signing_out_ends_the_session_and_the_work() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let agent1 = server.login("agent1").await;
    let refunds = queue_path(&server, "Billing > Refunds").await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent1.cookie_pair())).await;
    assert_eq!(desk.next().await["presence"], "offline");

    // Whoever changes the status, the adapter hears it: a custom one set by a supervisor,
    // then the agent's own choice of available, which clears it.
    admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/custom-statuses",
            json!({"name": "Missed call"}),
        )
        .await;
    set_presence(&admin, &agent1.user_id, "custom:Missed call").await;
    let heard = desk.until(|e| e["type"] == "presence").await.0;
    assert_eq!(heard["presence"], "custom:Missed call");
    assert!(heard["since"].is_string());
    assert_eq!(
        set_presence(&agent1, &agent1.user_id, "available").await["presence"],
        "available"
    );
    assert_eq!(
        desk.until(|e| e["type"] == "presence").await.0["presence"],
        "available"
    );

    // With a chat routed to them, the agent signs out.
    let (mut consumer, chat) = start_chat(&server, &refunds, "s1").await;
    desk.until(|e| e["type"] == "chat_assigned").await;
    say(&mut consumer, &chat, "m1", "before the sign-out").await;
    let (status, _) = agent1.call(Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The session is deleted on the server, not only forgotten by the browser.
    let (status, body) = crate::read(
        reqwest::Client::new()
            .get(server.url("/api/v1/auth/me"))
            .header("cookie", agent1.cookie_pair())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(presence_of(&admin, &agent1.user_id).await, "offline");
    let (removed, _) = desk.until(|e| e["type"] == "chat_removed").await;
    assert_eq!(
        (removed["chat_id"].as_str(), removed["reason"].as_str()),
        (Some(chat.as_str()), Some("agent_offline"))
    );
    consumer.expect("chat_queued").await;
    assert_eq!(next_position(&mut consumer).await["position"], 1);
    let (_, contact) = server
        .apps(Method::GET, &format!("/apps/api/v1/contacts/{chat}"), None)
        .await;
    assert_eq!(contact["status"], "queued");
    // Signing out again without a session is refused plainly.
    let (status, body) = agent1.call(Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_chat_whose_consumer_left_is_abandoned_and_one_who_stays_is_not() {
    let server =
        Server::start_configured(Backend::Sqlite, |config| config.chat_abandon_seconds = 1).await;
    let agent2 = server.login("agent2").await;
    let tech = queue_path(&server, "Technical support").await;
    // Nobody is available: both chats wait.
    let (gone, left_chat) = start_chat(&server, &tech, "s1").await;
    let (mut staying, staying_chat) = start_chat(&server, &tech, "s2").await;
    say(&mut staying, &staying_chat, "m1", "I will wait").await;
    gone.socket.cut();

    let ended = eventually("the left chat is abandoned", async || {
        let (_, contact) = server
            .apps(
                Method::GET,
                &format!("/apps/api/v1/contacts/{left_chat}"),
                None,
            )
            .await;
        (contact["status"] == "abandoned").then_some(contact)
    })
    .await;
    assert_eq!(ended["end_reason"], "consumer_left");
    // The one who stayed moves up and reaches the agent; the left one never does.
    assert_eq!(
        staying
            .socket
            .until(|e| e["type"] == "queue_position" && e["position"] == 1)
            .await
            .0["chat_id"],
        staying_chat.as_str()
    );
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent2.cookie_pair())).await;
    desk.next().await;
    set_presence(&agent2, &agent2.user_id, "available").await;
    let offered = desk.until(|e| e["type"] == "chat_assigned").await.0;
    assert_eq!(offered["chat"]["chat_id"], staying_chat.as_str());
    let (_, contact) = server
        .apps(
            Method::GET,
            &format!("/apps/api/v1/contacts/{staying_chat}"),
            None,
        )
        .await;
    assert_eq!(contact["status"], "assigned");
}
