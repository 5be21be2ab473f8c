//! Web chat over the real protocols: a consumer socket and an agent socket, routing, acks and
//! resends, attachments, reserved properties, identity merge, transfer, tickets, restart, and
//! bad frames.

use crate::events::EventStream;
use crate::{find, Backend, Server};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// A consumer's widget, as the protocol document describes it.
pub struct Consumer {
    pub socket: EventStream,
    pub visitor_id: String,
    pub visitor_token: String,
}

impl Consumer {
    pub async fn new(server: &Server, identity: Option<&str>) -> (Consumer, Value) {
        let mut socket = EventStream::connect(server, "/chat/v1/ws", None).await;
        socket
            .send(json!({"type": "hello", "identity_token": identity}))
            .await;
        let welcome = socket.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let consumer = Consumer {
            visitor_id: welcome["visitor_id"].as_str().unwrap().to_owned(),
            visitor_token: welcome["visitor_token"].as_str().unwrap().to_owned(),
            socket,
        };
        (consumer, welcome)
    }

    /// Comes back as the same visitor (after a reload or a lost network).
    pub async fn reconnect(
        server: &Server,
        visitor_id: &str,
        visitor_token: &str,
    ) -> (Consumer, Value) {
        let mut socket = EventStream::connect(server, "/chat/v1/ws", None).await;
        socket
            .send(
                json!({"type": "hello", "visitor_id": visitor_id, "visitor_token": visitor_token}),
            )
            .await;
        let welcome = socket.next().await;
        (
            Consumer {
                socket,
                visitor_id: visitor_id.into(),
                visitor_token: visitor_token.into(),
            },
            welcome,
        )
    }

    pub async fn expect(&mut self, kind: &str) -> Value {
        self.socket.until(|e| e["type"] == kind).await.0
    }
}

pub async fn queue_path(server: &Server, path: &str) -> String {
    let menu: Value = reqwest::get(server.url("/chat/v1/menu"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    fn walk(nodes: &Value, path: &str) -> Option<String> {
        nodes.as_array()?.iter().find_map(|n| {
            if n["path"] == path {
                n["id"].as_str().map(str::to_owned)
            } else {
                walk(&n["children"], path)
            }
        })
    }
    walk(&menu, path).unwrap_or_else(|| panic!("no {path} in {menu}"))
}

async fn run_jobs_until(
    server: &Server,
    admin: &crate::Session,
    ticket: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    // The job worker runs in the background; wait (bounded) for it to finish the ticket.
    for _ in 0..200 {
        let ticket = admin.get(&format!("/api/v1/tickets/{ticket}")).await;
        if done(&ticket) {
            return ticket;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("ticket {ticket} never got there on {}", server.base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_and_an_agent_chat_with_nothing_lost() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let agent = server.login("agent1").await;
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent.user_id),
            json!({"presence": "available"}),
        )
        .await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
    let welcome = desk.next().await;
    assert_eq!(welcome["type"], "welcome");
    assert!(welcome["tones"]["new_chat"]
        .as_str()
        .unwrap()
        .starts_with("/api/v1/tones/"));

    // The consumer starts a chat in Billing > Refunds with a reserved property.
    let refunds = queue_path(&server, "Billing > Refunds").await;
    let (mut consumer, welcome) = Consumer::new(&server, None).await;
    assert_eq!(welcome["chats"], json!([]));
    consumer.socket.send(json!({"type": "start", "client_id": "s1", "queue_id": refunds, "properties": {"reserved_verified_customer": true, "plan": "gold"}})).await;
    let started = consumer.expect("chat_started").await;
    let chat_id = started["chat"]["chat_id"].as_str().unwrap().to_owned();
    assert_eq!(started["chat"]["issue"], "Billing > Refunds");
    let assigned = desk.until(|e| e["type"] == "chat_assigned").await.0;
    assert_eq!(assigned["chat"]["chat_id"], chat_id.as_str());
    assert_eq!(
        assigned["chat"]["properties"]["reserved_verified_customer"],
        true
    );
    assert!(
        assigned["chat"]["customer"]["name"]
            .as_str()
            .unwrap()
            .starts_with("Web User - "),
        "{assigned}"
    );

    // Messages: acknowledged once stored; a resend is the same message, shown once.
    consumer.socket.send(json!({"type": "message", "chat_id": chat_id, "client_id": "m1", "text": "My refund is late"})).await;
    // Routing offered the chat to the agent before this ack, but the agent has not accepted it:
    // the consumer has not been told anyone joined.
    let (ack, before_ack) = consumer.socket.until(|e| e["type"] == "ack").await;
    assert!(
        before_ack.iter().all(|e| e["type"] != "agent_joined"),
        "{before_ack:?}"
    );
    assert_eq!(ack["client_id"], "m1");
    let first = desk
        .until(|e| e["type"] == "message" && e["message"]["from"] == "consumer")
        .await
        .0;
    assert_eq!(first["message"]["text"], "My refund is late");
    consumer.socket.send(json!({"type": "message", "chat_id": chat_id, "client_id": "m1", "text": "My refund is late"})).await;
    let again = consumer.expect("ack").await;
    assert_eq!(
        (again["seq"].clone(), again["message_id"].clone()),
        (ack["seq"].clone(), ack["message_id"].clone())
    );

    // The agent accepts and replies; the consumer sees them join only now, then the reply.
    desk.send(json!({"type": "accept", "chat_id": chat_id}))
        .await;
    desk.until(|e| e["type"] == "accepted").await;
    assert_eq!(
        consumer.expect("agent_joined").await["agent_name"],
        "Alex Agent"
    );
    desk.send(
        json!({"type": "message", "chat_id": chat_id, "client_id": "r1", "text": "Let me check"}),
    )
    .await;
    desk.until(|e| e["type"] == "ack").await;
    let reply = consumer
        .socket
        .until(|e| e["type"] == "message" && e["message"]["from"] == "agent")
        .await
        .0;
    assert_eq!(
        (
            reply["message"]["text"].as_str(),
            reply["message"]["agent_name"].as_str()
        ),
        (Some("Let me check"), Some("Alex Agent"))
    );

    // Attachments: checked by content; the agent gets the very bytes.
    let upload = |content_type: &'static str, body: Vec<u8>| {
        let url = server.url(&format!(
            "/chat/v1/attachments?chat_id={chat_id}&name=receipt.png"
        ));
        Client::new()
            .post(url)
            .header("content-type", content_type)
            .header("x-visitor-id", &consumer.visitor_id)
            .header("x-visitor-token", &consumer.visitor_token)
            .body(body)
            .send()
    };
    let (status, body) = crate::read(upload("image/gif", b"GIF89a".to_vec()).await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_type"))
    );
    let (status, body) = crate::read(
        upload("image/png", b"MZ\x90\0 not a png".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("content_mismatch"))
    );
    let (status, file) = crate::read(upload("image/png", PNG.to_vec()).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let (status, _) = crate::read(
        Client::new()
            .post(server.url(&format!("/chat/v1/attachments?chat_id={chat_id}")))
            .header("content-type", "image/png")
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no visitor token, no upload"
    );
    consumer.socket.send(json!({"type": "message", "chat_id": chat_id, "client_id": "m2", "text": "", "attachment_id": file["id"]})).await;
    consumer.expect("ack").await;
    let with_file = desk
        .until(|e| e["type"] == "message" && e["message"]["attachment"].is_object())
        .await
        .0;
    let bytes = agent
        .client
        .get(server.url(&format!(
            "/api/v1/attachments/{}",
            file["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.headers()["content-type"], "image/png");
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(with_file["message"]["attachment"]["name"], "receipt.png");

    // Reserved properties through the Apps API show on the agent's desk at once.
    let path = format!("/apps/api/v1/chats/{chat_id}/properties");
    let (status, flags) = server
        .apps(
            Method::PATCH,
            &path,
            Some(json!({"reserved_bad_actor": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{flags}");
    let live = desk.until(|e| e["type"] == "properties").await.0;
    assert_eq!(live["properties"]["reserved_bad_actor"], true);
    let (status, body) = server
        .apps(Method::PATCH, &path, Some(json!({"reserved_vip": true})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    let (status, _) = server
        .apps(
            Method::PATCH,
            &path,
            Some(json!({"reserved_repeat_customer": "yes"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, read_back) = server.apps(Method::GET, &path, None).await;
    assert_eq!(
        read_back,
        json!({"reserved_verified_customer": true, "reserved_bad_actor": true, "reserved_repeat_customer": null})
    );

    // Bad frames get an error frame and the connection goes on.
    let mut other = Consumer::new(&server, None).await.0;
    for (frame, code) in [
        ("{not json".to_owned(), "invalid_json"),
        (json!({"type": "shout"}).to_string(), "unknown_type"),
        (json!({"type": "message", "chat_id": chat_id}).to_string(), "invalid_message"),
        (json!({"type": "message", "chat_id": chat_id, "client_id": "x1", "text": "hi"}).to_string(), "forbidden"),
        (json!({"type": "resume", "chat_id": chat_id, "after_seq": 0}).to_string(), "forbidden"),
        (json!({"type": "message", "chat_id": "nope", "client_id": "x2", "text": "hi"}).to_string(), "not_found"),
        (json!({"type": "start", "client_id": "s", "queue_id": queue_path(&server, "Billing").await}).to_string(), "invalid_field"),
        (json!({"type": "typing", "chat_id": chat_id, "active": true, "text": "x".repeat(70_000)}).to_string(), "frame_too_large"),
    ] {
        other.socket.send_text(frame).await;
        let error = other.expect("error").await;
        assert_eq!(error["code"], code, "{error}");
    }
    // A failed command's error names it by its client_id (the protocol's `ref`).
    other
        .socket
        .send(json!({"type": "message", "chat_id": chat_id, "client_id": "m9", "text": 5}))
        .await;
    let error = other.expect("error").await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("invalid_message"), Some("m9")),
        "{error}"
    );
    other.socket.send(json!({"type": "ping"})).await;
    other.expect("pong").await;
    desk.send(json!({"type": "end", "chat_id": "00000000-0000-0000-0000-000000000000"}))
        .await;
    assert_eq!(
        desk.until(|e| e["type"] == "error").await.0["code"],
        "not_found"
    );

    // A reload: the same visitor comes back, resumes, and has every message in order.
    let (mut back, welcome) =
        Consumer::reconnect(&server, &consumer.visitor_id, &consumer.visitor_token).await;
    assert_eq!(welcome["chats"][0]["chat_id"], chat_id.as_str());
    back.socket
        .send(json!({"type": "resume", "chat_id": chat_id, "after_seq": 0}))
        .await;
    let (resumed, replay) = back.socket.until(|e| e["type"] == "resumed").await;
    let seqs: Vec<i64> = replay
        .iter()
        .map(|e| e["message"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "in order, no gaps"
    );
    let texts: Vec<&str> = replay
        .iter()
        .map(|e| e["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| **t == "My refund is late").count(),
        1,
        "the resend was stored once: {texts:?}"
    );
    assert_eq!(resumed["last_seq"], seqs.len() as i64);
    let (status, _) = crate::read(
        Client::new()
            .get(server.url(&format!(
                "/chat/v1/attachments/{}",
                file["id"].as_str().unwrap()
            )))
            .header("x-visitor-id", &back.visitor_id)
            .header("x-visitor-token", "wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, refused) = Consumer::reconnect(&server, &consumer.visitor_id, "forged").await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("unauthorized"))
    );

    // Transfer to agent2, who is available: agent1 loses it, agent2 gets it.
    let agent2 = server.login("agent2").await;
    agent2
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent2.user_id),
            json!({"presence": "available"}),
        )
        .await;
    let mut desk2 =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent2.cookie_pair())).await;
    desk2.next().await;
    desk.send(json!({"type": "transfer", "chat_id": chat_id, "agent_id": agent2.user_id}))
        .await;
    assert_eq!(
        desk.until(|e| e["type"] == "chat_removed").await.0["reason"],
        "transferred"
    );
    let handed = desk2.until(|e| e["type"] == "chat_assigned").await.0;
    assert_eq!(handed["chat"]["chat_id"], chat_id.as_str());
    desk.send(
        json!({"type": "message", "chat_id": chat_id, "client_id": "r2", "text": "still mine?"}),
    )
    .await;
    assert_eq!(
        desk.until(|e| e["type"] == "error").await.0["code"],
        "forbidden",
        "no longer agent1's chat"
    );
    assert_eq!(
        handed["chat"]["accepted"], false,
        "the new agent accepts afresh"
    );
    desk2
        .send(json!({"type": "accept", "chat_id": chat_id}))
        .await;
    assert_eq!(back.expect("agent_joined").await["agent_name"], "Bea Agent");

    // agent2 ends it: the consumer is told, and the ticket gets the transcript and the file.
    desk2.send(json!({"type": "end", "chat_id": chat_id})).await;
    assert_eq!(back.expect("chat_ended").await["reason"], "completed");
    let ticket_id = assigned["chat"]["ticket_id"].as_str().unwrap();
    let ticket = run_jobs_until(&server, &admin, ticket_id, |t| t["status"] == "solved").await;
    let transcript = ticket["transcript"].as_str().unwrap();
    assert!(
        transcript.contains("My refund is late") && transcript.contains("Alex Agent: Let me check"),
        "{transcript}"
    );
    assert!(transcript.contains("[file: receipt.png"), "{transcript}");
    assert_eq!(ticket["attachments"][0]["name"], "receipt.png");
    assert!(ticket["name"].as_str().unwrap().starts_with("Web User - "));
    let (status, _) = server
        .apps(
            Method::GET,
            &format!("/apps/api/v1/tickets/{ticket_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let metrics = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("class=\"5xx\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_merges_anonymous_history_only_on_a_verified_token() {
    let server = Server::start(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    let secret = admin.get("/api/v1/integrations").await["identity_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = |sub: &str, secret: &str| {
        switchboard::identity::sign(
            &json!({"sub": sub, "email": format!("{sub}@example.org"), "exp": chrono::Utc::now().timestamp() + 300}),
            secret,
        )
    };

    let tech = queue_path(&server, "Technical support").await;
    let (mut consumer, _) = Consumer::new(&server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": "s1", "queue_id": tech}))
        .await;
    let chat = consumer.expect("chat_started").await["chat"]["chat_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A forged token is refused and merges nothing.
    consumer
        .socket
        .send(json!({"type": "identify", "identity_token": token("ann", "not-the-secret")}))
        .await;
    assert_eq!(consumer.expect("error").await["code"], "invalid_field");
    // The real one merges the anonymous ticket and chat.
    consumer
        .socket
        .send(json!({"type": "identify", "identity_token": token("ann", &secret)}))
        .await;
    let identified = consumer.expect("identified").await;
    assert_eq!(
        (
            identified["merged_tickets"].as_u64(),
            identified["merged_chats"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let tickets = admin.get("/api/v1/tickets").await;
    let ticket = find(&tickets, "chat_id", &chat);
    assert!(ticket["identity_id"].is_string(), "{ticket}");
    // A second identity never absorbs the first one's history.
    consumer
        .socket
        .send(json!({"type": "identify", "identity_token": token("bob", &secret)}))
        .await;
    assert_eq!(consumer.expect("error").await["code"], "invalid_field");
    let again = admin.get("/api/v1/tickets").await;
    assert_eq!(
        find(&again, "chat_id", &chat)["identity_id"],
        ticket["identity_id"]
    );
    // Identified from the start: the next chat is named after the identity.
    consumer
        .socket
        .send(json!({"type": "end", "chat_id": chat}))
        .await;
    consumer.expect("chat_ended").await;
    let (mut known, _) = Consumer::new(&server, Some(&token("carl", &secret))).await;
    assert_eq!(known.expect("identified").await["external_id"], "carl");
    known
        .socket
        .send(json!({"type": "start", "client_id": "s2", "queue_id": tech}))
        .await;
    let started = known.expect("chat_started").await;
    let tickets = admin.get("/api/v1/tickets").await;
    let named = find(
        &tickets,
        "chat_id",
        started["chat"]["chat_id"].as_str().unwrap(),
    );
    assert_eq!(named["name"], "carl@example.org (carl)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_chat_loses_no_acknowledged_message() {
    let server = Server::start(Backend::Sqlite).await;
    let refunds = queue_path(&server, "Billing > Refunds").await;
    let (mut consumer, _) = Consumer::new(&server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": "s1", "queue_id": refunds}))
        .await;
    let chat = consumer.expect("chat_started").await["chat"]["chat_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut acked = Vec::new();
    for n in 0..25 {
        consumer.socket.send(json!({"type": "message", "chat_id": chat, "client_id": format!("m{n}"), "text": format!("message {n}")})).await;
        let ack = consumer.expect("ack").await;
        acked.push(ack["message_id"].as_str().unwrap().to_owned());
    }
    let (visitor, token) = (consumer.visitor_id.clone(), consumer.visitor_token.clone());
    drop(consumer);
    let (config, database) = server.stop().await;
    let server = Server::start_with(config, database).await;
    let (mut back, welcome) = Consumer::reconnect(&server, &visitor, &token).await;
    assert_eq!(
        welcome["chats"][0]["status"], "queued",
        "still waiting after the restart"
    );
    back.socket
        .send(json!({"type": "resume", "chat_id": chat, "after_seq": 0}))
        .await;
    let (_, replay) = back.socket.until(|e| e["type"] == "resumed").await;
    let ids: Vec<String> = replay
        .iter()
        .map(|e| e["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, acked, "every acknowledged message, in order");
    // A message sent before the restart but never acknowledged is resent and stored once.
    back.socket
        .send(json!({"type": "message", "chat_id": chat, "client_id": "m24", "text": "message 24"}))
        .await;
    assert_eq!(back.expect("ack").await["message_id"], acked[24].as_str());
    // An agent coming online gets the chat from the queue.
    let agent = server.login("agent1").await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
    desk.next().await;
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent.user_id),
            json!({"presence": "available"}),
        )
        .await;
    assert_eq!(
        desk.until(|e| e["type"] == "chat_assigned").await.0["chat"]["chat_id"],
        chat.as_str()
    );
}

/// A CRM that receives the webhook: checks every signature, fails the first delivery, and
/// answers the rest with an external id. Records what it accepted.
async fn fake_crm(secret: &'static str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::http::HeaderMap;
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let log = received.clone();
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let log = log.clone();
        let calls = calls.clone();
        async move {
            let signature = headers
                .get("x-switchboard-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if signature != format!("sha256={}", switchboard::crm::signature(secret, &body)) {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"error": "bad signature"})),
                );
            }
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({"error": "try later"})),
                );
            }
            let event: Value = serde_json::from_slice(&body).unwrap();
            log.lock().unwrap().push(event);
            (
                StatusCode::OK,
                axum::Json(json!({"external_id": "CRM-1001"})),
            )
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/switchboard",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/hooks/switchboard", axum::routing::post(handler)),
        )
        .await
        .ok();
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_crm_gets_signed_events_and_retries_survive_failures() {
    // On PostgreSQL, where job claiming uses SKIP LOCKED (SQLite when PostgreSQL is left out).
    let server = Server::start(*crate::backends().last().unwrap()).await;
    let admin = server.login("admin").await;
    let (url, received) = fake_crm("crm-webhook-secret-123").await;
    let mut settings = admin.get("/api/v1/integrations").await;
    settings["crm_connector"] = json!("webhook");
    settings["crm_webhook_url"] = json!(url);
    settings["crm_webhook_secret"] = json!("crm-webhook-secret-123");
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/integrations",
            settings.clone(),
        )
        .await;
    settings["crm_webhook_url"] = json!("ftp://nowhere");
    admin
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/api/v1/integrations",
            settings,
        )
        .await;

    let tech = queue_path(&server, "Technical support").await;
    let (mut consumer, _) = Consumer::new(&server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": "s1", "queue_id": tech}))
        .await;
    let chat = consumer.expect("chat_started").await["chat"]["chat_id"]
        .as_str()
        .unwrap()
        .to_owned();
    consumer.socket.send(json!({"type": "message", "chat_id": chat, "client_id": "m1", "text": "Printer on fire"})).await;
    consumer.expect("ack").await;
    consumer
        .socket
        .send(json!({"type": "end", "chat_id": chat}))
        .await;
    consumer.expect("chat_ended").await;

    // The first delivery fails (503); the retry comes after the backoff and succeeds.
    let ticket = admin.get("/api/v1/tickets").await[0].clone();
    let ticket = run_jobs_until(&server, &admin, ticket["id"].as_str().unwrap(), |t| {
        t["external_id"] == "CRM-1001"
    })
    .await;
    assert_eq!(ticket["status"], "solved");
    for _ in 0..200 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let events = received.lock().unwrap().clone();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"ticket.created") && kinds.contains(&"ticket.closed"),
        "{kinds:?}"
    );
    let closed = events
        .iter()
        .find(|e| e["event"] == "ticket.closed")
        .unwrap();
    assert!(
        closed["transcript"]
            .as_str()
            .unwrap()
            .contains("Printer on fire"),
        "{closed}"
    );
    // The delivery reached the webhook just before its job is marked done: read until it is.
    let retried_done = |jobs: &serde_json::Value| {
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["attempts"].as_u64() >= Some(2) && j["state"] == "done")
    };
    let mut jobs = admin.get("/api/v1/jobs").await;
    for _ in 0..100 {
        if retried_done(&jobs) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        jobs = admin.get("/api/v1/jobs").await;
    }
    assert!(retried_done(&jobs), "a retried job: {jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_are_validated_chosen_and_transfers_to_a_queue_requeue() {
    let server = Server::start_in_hours(Backend::Sqlite).await;
    let admin = server.login("admin").await;
    // Uploaded tones must be MP3 audio; built-in ones are WAV.
    let upload = |body: Vec<u8>| {
        admin
            .client
            .post(server.url("/api/v1/tones?name=ding.mp3"))
            .header("content-type", "audio/mpeg")
            .body(body)
            .send()
    };
    let (status, body) = crate::read(
        upload(b"RIFF....WAVEfmt not an mp3".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_mp3"))
    );
    let (status, tone) = crate::read(
        upload(switchboard_core::audio::sample_mp3(8))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{tone}");
    let audio = admin
        .client
        .get(server.url(tone["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(audio.headers()["content-type"], "audio/mpeg");
    let chime = admin
        .client
        .get(server.url("/api/v1/tones/chime"))
        .send()
        .await
        .unwrap();
    assert_eq!(chime.headers()["content-type"], "audio/wav");
    assert!(chime.bytes().await.unwrap().starts_with(b"RIFF"));

    // An agent picks the uploaded tone for new chats, repeated every 3 seconds.
    let agent = server.login("agent1").await;
    agent
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/api/v1/agent/notifications",
            json!({"new_chat_tone": "nope", "new_message_tone": "pop", "repeat_seconds": 3}),
        )
        .await;
    agent
        .expect(
            StatusCode::BAD_REQUEST,
            Method::PUT,
            "/api/v1/agent/notifications",
            json!({"new_chat_tone": "chime", "new_message_tone": "pop", "repeat_seconds": 1}),
        )
        .await;
    // The incoming-call tone is checked the same way.
    for bad in [
        json!({"new_chat_tone": "chime", "new_message_tone": "pop", "repeat_seconds": 3, "new_call_tone": "nope"}),
        json!({"new_chat_tone": "chime", "new_message_tone": "pop", "repeat_seconds": 3, "call_repeat_seconds": 301}),
    ] {
        agent
            .expect(
                StatusCode::BAD_REQUEST,
                Method::PUT,
                "/api/v1/agent/notifications",
                bad,
            )
            .await;
    }
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/agent/notifications",
            json!({"new_chat_tone": tone["id"], "new_message_tone": "pop", "repeat_seconds": 3,
                   "new_call_tone": "bell", "call_repeat_seconds": null}),
        )
        .await;
    let mine = agent.get("/api/v1/agent/notifications").await;
    assert_eq!(mine["new_call_tone"], "bell");
    assert_eq!(mine["call_repeat_seconds"], json!(null));
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
    let welcome = desk.next().await;
    assert_eq!(
        welcome["tones"],
        json!({"new_chat": tone["url"], "new_message": "/api/v1/tones/pop", "repeat_seconds": 3,
               "new_call": "/api/v1/tones/bell", "call_repeat_seconds": null})
    );

    // A transfer back to a queue: the agent loses the chat, the consumer waits again, and the
    // chat keeps its arrival time (it is routed before anything that came later).
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent.user_id),
            json!({"presence": "available"}),
        )
        .await;
    let refunds = queue_path(&server, "Billing > Refunds").await;
    let (mut consumer, _) = Consumer::new(&server, None).await;
    consumer
        .socket
        .send(json!({"type": "start", "client_id": "s1", "queue_id": refunds}))
        .await;
    let chat = consumer.expect("chat_started").await["chat"]["chat_id"]
        .as_str()
        .unwrap()
        .to_owned();
    desk.until(|e| e["type"] == "chat_assigned").await;
    let tech = queue_path(&server, "Technical support").await;
    desk.send(json!({"type": "transfer", "chat_id": chat, "queue_id": queue_path(&server, "Billing").await})).await;
    assert_eq!(
        desk.until(|e| e["type"] == "error").await.0["code"],
        "invalid_field",
        "menus take no chats"
    );
    desk.send(json!({"type": "transfer", "chat_id": chat, "queue_id": tech}))
        .await;
    assert_eq!(
        desk.until(|e| e["type"] == "chat_removed").await.0["chat_id"],
        chat.as_str()
    );
    let queued = consumer.expect("chat_queued").await;
    assert_eq!(queued["issue"], "Technical support");
    let (_, contact) = server
        .apps(Method::GET, &format!("/apps/api/v1/contacts/{chat}"), None)
        .await;
    assert_eq!(
        (contact["status"].as_str(), contact["queue_id"].as_str()),
        (Some("queued"), Some(tech.as_str()))
    );
    // agent2 serves Technical support: they get it.
    let agent2 = server.login("agent2").await;
    let mut desk2 =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent2.cookie_pair())).await;
    desk2.next().await;
    agent2
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent2.user_id),
            json!({"presence": "available"}),
        )
        .await;
    let assigned = desk2.until(|e| e["type"] == "chat_assigned").await.0;
    assert_eq!(
        (
            assigned["chat"]["issue"].as_str(),
            &assigned["chat"]["accepted"]
        ),
        (Some("Technical support"), &json!(false))
    );
    desk2.send(json!({"type": "accept", "chat_id": chat})).await;
    assert_eq!(
        consumer.expect("agent_joined").await["agent_name"],
        "Bea Agent"
    );
}

/// Wrap-up: the admin sets the center's dispositions; the agent records a disposition and a
/// note on the chat they took, during it and after; others may read it but not write it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_wraps_up_a_chat_with_a_disposition_and_a_note() {
    for backend in crate::backends() {
        let server = Server::start(backend).await;
        let admin = server.login("admin").await;
        let agent = server.login("agent1").await;
        let other = server.login("agent2").await;
        for bad in [
            json!({"dispositions": ["Resolved", "resolved"]}),
            json!({"dispositions": [""]}),
            json!({"dispositions": "Resolved"}),
        ] {
            let (status, body) = admin
                .call(Method::PUT, "/api/v1/dispositions", Some(bad.clone()))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let (status, _) = agent
            .call(
                Method::PUT,
                "/api/v1/dispositions",
                Some(json!({"dispositions": ["Mine"]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        admin
            .expect(
                StatusCode::OK,
                Method::PUT,
                "/api/v1/dispositions",
                json!({"dispositions": ["Resolved", " Call back "]}),
            )
            .await;
        assert_eq!(
            agent.get("/api/v1/dispositions").await["dispositions"],
            json!(["Resolved", "Call back"])
        );

        crate::voice::available(&agent).await;
        let mut desk =
            EventStream::connect(&server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
        desk.until(|e| e["type"] == "welcome").await;
        let refunds = queue_path(&server, "Billing > Refunds").await;
        let (mut consumer, _) = Consumer::new(&server, None).await;
        consumer
            .socket
            .send(json!({"type": "start", "client_id": "s1", "queue_id": refunds}))
            .await;
        let started = consumer.expect("chat_started").await;
        let chat_id = started["chat"]["chat_id"].as_str().unwrap().to_owned();
        desk.until(|e| e["type"] == "chat_assigned").await;
        let path = format!("/api/v1/contacts/{chat_id}/wrap-up");
        let (status, _) = agent.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing recorded yet");

        for bad in [
            json!({"note": "no disposition"}),
            json!({"disposition": "Escalated"}),
            json!({"disposition": "Resolved", "note": "n".repeat(4001)}),
            json!({"disposition": "Resolved", "mood": "good"}),
        ] {
            let (status, body) = agent.call(Method::PUT, &path, Some(bad.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let during = agent
            .expect(
                StatusCode::OK,
                Method::PUT,
                &path,
                json!({"disposition": "call back", "note": "wants a refund"}),
            )
            .await;
        assert_eq!(during["disposition"], "Call back");
        let (status, body) = other
            .call(Method::PUT, &path, Some(json!({"disposition": "Resolved"})))
            .await;
        assert!(
            matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{status}: {body}"
        );

        // After the chat has ended the agent can still say how it went.
        agent
            .expect(
                StatusCode::OK,
                Method::POST,
                &format!("/api/v1/contacts/{chat_id}/end"),
                json!({}),
            )
            .await;
        agent
            .expect(
                StatusCode::OK,
                Method::PUT,
                &path,
                json!({"disposition": "Resolved", "note": "refund sent"}),
            )
            .await;
        let read = admin.get(&path).await;
        assert_eq!(
            (read["disposition"].as_str(), read["note"].as_str()),
            (Some("Resolved"), Some("refund sent")),
            "{read}"
        );
        assert_eq!(read["agent_id"], agent.user_id.as_str());
    }
}
