//! The SMS channel end to end against a local Twilio (`support::twilio`): signed webhooks in
//! (a forged or missing signature is 403 and stores nothing), a conversation routed to an agent
//! who answers over the agent chat protocol, the reply sent through the Messages API and its
//! status callback; Twilio's refusals retried or given up; the reply-digit menu and the
//! log-only connector's outbox; the after-hours text (AHD-5); and a restart with SMS jobs
//! queued, on both databases.

use crate::events::EventStream;
use crate::twilio::{self, post_webhook, Answer, FakeTwilio};
use crate::{backends, Backend, Server, Session};
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_core::sms::SmsPurpose;
use switchboard_core::ContactId;

/// Connects the center to the fake Twilio, with the server's own address as the public URL.
async fn connect_twilio(server: &Server, admin: &Session, fake: &FakeTwilio) {
    let settings = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/sms/settings",
            json!({
                "connector": "twilio",
                "account_sid": twilio::ACCOUNT_SID,
                "auth_token": twilio::AUTH_TOKEN,
                "from_number": twilio::OUR_NUMBER,
                "api_base": fake.url,
                "public_url": server.base,
            }),
        )
        .await;
    assert_eq!(settings["auth_token_set"], true);
    assert!(settings.get("auth_token").is_none(), "{settings}");
}

/// Waits (bounded) until `done` holds, polling the store.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{what} never happened");
}

async fn available(agent: &Session) {
    agent
        .expect(
            StatusCode::OK,
            Method::PUT,
            &format!("/api/v1/agents/{}/presence", agent.user_id),
            json!({"presence": "available"}),
        )
        .await;
}

async fn inbound(server: &Server, from: &str, body: &str, sid: &str) -> (StatusCode, String) {
    post_webhook(
        &server.url("/sms/v1/twilio/inbound"),
        &server.url("/sms/v1/twilio/inbound"),
        &twilio::inbound(from, body, sid),
        None,
    )
    .await
}

const TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_conversation_both_ways_with_an_agent_on_the_chat_protocol() {
    for backend in backends() {
        conversation(backend).await;
    }
}

async fn conversation(backend: Backend) {
    let server = Server::start(backend).await;
    let store = server.app.services.store.clone();
    let fake = FakeTwilio::start().await;
    let admin = server.login("admin").await;
    connect_twilio(&server, &admin, &fake).await;
    // Bea serves the demo's one SMS queue, "Text us".
    let agent = server.login("agent2").await;
    available(&agent).await;
    let mut desk =
        EventStream::connect(&server, "/api/v1/agent/ws", Some(agent.cookie_pair())).await;
    assert_eq!(desk.next().await["type"], "welcome");

    // Forged, missing, or signed for another URL: 403, and nothing is stored.
    let url = server.url("/sms/v1/twilio/inbound");
    let params = twilio::inbound(
        "+15557654321",
        "Hello?",
        "SM00000000000000000000000000000001",
    );
    let forged = twilio::sign("not-the-token", &url, &params);
    for signature in [Some(forged.as_str()), Some("")] {
        let (status, body) = post_webhook(&url, &url, &params, signature).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["code"],
            "invalid_signature"
        );
    }
    let (status, _) = post_webhook(&url, "https://elsewhere.example/sms", &params, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut altered = params.clone();
    altered.retain(|(name, _)| *name != "Body");
    altered.push(("Body", "Send me the refund"));
    let signed_for_original = twilio::sign(twilio::AUTH_TOKEN, &url, &params);
    let (status, _) = post_webhook(&url, &url, &altered, Some(&signed_for_original)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a body changed after signing"
    );
    assert_eq!(store.count_inbound_sms().await.unwrap(), 0);
    assert_eq!(store.sms_sender("+15557654321").await.unwrap(), None);

    // Signed as Twilio signs: stored, then answered with empty TwiML.
    let (status, body) = post_webhook(&url, &url, &params, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, TWIML));
    let stored = store
        .inbound_sms("SM00000000000000000000000000000001")
        .await
        .unwrap()
        .expect("stored before the answer");
    let chat = stored.contact.expect("a conversation started");
    let assigned = desk.until(|e| e["type"] == "chat_assigned").await.0;
    assert_eq!(assigned["chat"]["chat_id"], chat.to_string());
    assert_eq!(assigned["chat"]["issue"], "Text us");
    assert_eq!(assigned["chat"]["customer"]["name"], "SMS +15557654321");
    let first = desk
        .until(|e| e["type"] == "message" && e["message"]["from"] == "consumer")
        .await
        .0;
    assert_eq!(first["message"]["text"], "Hello?");

    // Twilio retries a webhook it got no answer to: the same message, shown once.
    let (status, _) = post_webhook(&url, &url, &params, None).await;
    assert_eq!(status, StatusCode::OK);
    let messages = store.messages(chat, 0, 100).await.unwrap();
    assert_eq!(
        messages.iter().filter(|m| m.text == "Hello?").count(),
        1,
        "{messages:?}"
    );

    // The agent accepts and answers over the chat protocol; it leaves through Twilio.
    desk.send(json!({"type": "accept", "chat_id": chat.to_string()}))
        .await;
    desk.until(|e| e["type"] == "accepted").await;
    desk.send(json!({"type": "message", "chat_id": chat.to_string(), "client_id": "r1", "text": "Your order ships today"}))
        .await;
    desk.until(|e| e["type"] == "ack").await;
    // A file cannot go by SMS: refused before anything is stored.
    desk.send(json!({"type": "message", "chat_id": chat.to_string(), "client_id": "f1", "text": "", "attachment_id": uuid::Uuid::new_v4().to_string()}))
        .await;
    let refused = desk.until(|e| e["type"] == "error").await.0;
    assert_eq!(refused["code"], "invalid_field", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("text only"),
        "{refused}"
    );
    // A resend of the same message sends nothing twice.
    desk.send(json!({"type": "message", "chat_id": chat.to_string(), "client_id": "r1", "text": "Your order ships today"}))
        .await;
    desk.until(|e| e["type"] == "ack").await;
    let sent = eventually("the reply reaching Twilio", async || {
        fake.sent().into_iter().next()
    })
    .await;
    assert_eq!(
        (sent.to.as_str(), sent.body.as_str()),
        ("+15557654321", "Your order ships today")
    );
    assert_eq!(
        sent.status_callback.as_deref(),
        Some(server.url("/sms/v1/twilio/status").as_str())
    );
    let listed = eventually("the reply marked sent", async || {
        let list = admin.get("/api/v1/sms/messages").await;
        (list[0]["status"] == "sent").then_some(list)
    })
    .await;
    assert_eq!(listed[0]["provider_sid"], sent.sid.as_str());
    assert_eq!(listed[0]["chat_id"], chat.to_string());
    assert_eq!(listed[0]["purpose"], "reply");

    // Status callbacks, signed; a late `sent` does not undo `delivered`.
    let status_url = server.url("/sms/v1/twilio/status");
    for state in ["delivered", "sent"] {
        let params = [
            ("MessageSid", sent.sid.as_str()),
            ("MessageStatus", state),
            ("AccountSid", twilio::ACCOUNT_SID),
        ];
        let (status, body) = post_webhook(&status_url, &status_url, &params, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let forged = [
        ("MessageSid", sent.sid.as_str()),
        ("MessageStatus", "failed"),
    ];
    let (status, _) = post_webhook(&status_url, &status_url, &forged, Some("AAAA")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        admin.get("/api/v1/sms/messages").await[0]["status"],
        "delivered"
    );

    // Later messages from the number join its open conversation.
    let (status, _) = inbound(
        &server,
        "+15557654321",
        "Thanks!",
        "SM00000000000000000000000000000002",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let next = desk
        .until(|e| e["type"] == "message" && e["message"]["text"] == "Thanks!")
        .await
        .0;
    assert_eq!(next["chat_id"], chat.to_string());
    assert_eq!(fake.sent().len(), 1, "one reply, sent once");

    // The agent ends it: the transcript goes to the CRM ticket as a chat's does.
    desk.send(json!({"type": "end", "chat_id": chat.to_string()}))
        .await;
    desk.until(|e| e["type"] == "chat_ended").await;
    let ticket_id = assigned["chat"]["ticket_id"].as_str().unwrap();
    let ticket = eventually("the ticket solved", async || {
        let ticket = admin.get(&format!("/api/v1/tickets/{ticket_id}")).await;
        (ticket["status"] == "solved").then_some(ticket)
    })
    .await;
    let transcript = ticket["transcript"].as_str().unwrap();
    assert!(
        transcript.contains("Hello?")
            && transcript.contains("Bea Agent: Your order ships today")
            && transcript.contains("Thanks!"),
        "{transcript}"
    );
    assert_eq!(ticket["name"], "SMS +15557654321");
    // A new message after the end starts a new conversation.
    inbound(
        &server,
        "+15557654321",
        "One more thing",
        "SM00000000000000000000000000000003",
    )
    .await;
    let again = desk.until(|e| e["type"] == "chat_assigned").await.0;
    assert_ne!(again["chat"]["chat_id"], chat.to_string());

    // A malformed webhook, signed: 400, and it is not stored.
    let bad = [("From", "+15557654321"), ("Body", "no sid")];
    let (status, _) = post_webhook(&url, &url, &bad, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(store.count_inbound_sms().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_refusals_are_waited_for_retried_or_given_up() {
    let server = Server::start(Backend::Sqlite).await;
    let store = server.app.services.store.clone();
    let fake = FakeTwilio::start().await;
    let admin = server.login("admin").await;
    connect_twilio(&server, &admin, &fake).await;
    let jobs = &server.app.services.jobs;
    let now = Utc::now();

    // 429 with Retry-After: 120 s: nothing is sent before then, and it goes after.
    fake.script([Answer::TooManyRequests(120)]);
    let id = switchboard::sms::message_id("test:busy");
    switchboard::sms::queue_sms(
        jobs,
        id,
        "+15551230001",
        "one",
        SmsPurpose::AgentNotice,
        None,
        now,
    )
    .await
    .unwrap();
    eventually("the first attempt", async || {
        (fake.attempts() == 1).then_some(())
    })
    .await;
    let job = eventually("the retry scheduled", async || {
        store
            .list_jobs(100)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.id == id && j.attempts == 1)
    })
    .await;
    assert!(job.run_at >= now + Duration::seconds(119), "{job:?}");
    assert!(
        job.last_error.as_deref().unwrap().contains("20429"),
        "{job:?}"
    );
    server.app.jobs.run_due(now + Duration::seconds(60)).await;
    assert_eq!(fake.attempts(), 1, "not before Retry-After");
    server.app.jobs.run_due(now + Duration::seconds(125)).await;
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(
        store.outbound_sms(id).await.unwrap().status.as_str(),
        "sent"
    );

    // A 503 is retried by the policy; a 400 (21610: the number opted out) gives up for good.
    fake.script([Answer::Unavailable, Answer::Refused(21610)]);
    let id = switchboard::sms::message_id("test:refused");
    switchboard::sms::queue_sms(
        jobs,
        id,
        "+15551230002",
        "two",
        SmsPurpose::AgentNotice,
        None,
        now,
    )
    .await
    .unwrap();
    // Two requests so far (the 429 and the send after it); the third is the 503.
    eventually("the 503", async || (fake.attempts() == 3).then_some(())).await;
    for minutes in [10, 20, 30] {
        server
            .app
            .jobs
            .run_due(now + Duration::minutes(minutes))
            .await;
    }
    assert_eq!(fake.attempts(), 4, "a refusal is not retried");
    let message = store.outbound_sms(id).await.unwrap();
    assert_eq!(message.status.as_str(), "failed");
    assert!(
        message.error.as_deref().unwrap().contains("21610"),
        "{message:?}"
    );
    assert_eq!(fake.sent().len(), 1);

    // Our own mistake is refused by Twilio's checks (a number that is not E.164): given up.
    let id = switchboard::sms::message_id("test:bad-number");
    switchboard::sms::queue_sms(
        jobs,
        id,
        "5551230003",
        "three",
        SmsPurpose::AgentNotice,
        None,
        now,
    )
    .await
    .unwrap();
    let message = eventually("the refusal", async || {
        store
            .outbound_sms(id)
            .await
            .ok()
            .filter(|m| m.status.as_str() == "failed")
    })
    .await;
    assert!(message.error.unwrap().contains("21211"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_menu_by_reply_digit_and_the_log_only_connector() {
    // The default connector: messages are files in the outbox.
    let server = Server::start(Backend::Sqlite).await;
    let store = server.app.services.store.clone();
    let admin = server.login("admin").await;
    let settings = admin.get("/api/v1/sms/settings").await;
    assert_eq!(settings["connector"], "log");
    // A public URL and a token to check signatures with; messages still go to the outbox.
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/sms/settings",
            json!({"connector": "log", "auth_token": twilio::AUTH_TOKEN, "public_url": server.base}),
        )
        .await;
    // Refusals: twilio without its fields, a bad URL, an unknown connector.
    for (body, field) in [
        (json!({"connector": "twilio"}), "account_sid"),
        (
            json!({"connector": "log", "public_url": "ftp://x"}),
            "public_url",
        ),
        (json!({"connector": "carrier-pigeon"}), "connector"),
    ] {
        let (status, answer) = admin
            .call(Method::PUT, "/api/v1/sms/settings", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], "invalid_field");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    // A second SMS leaf: now a new sender is asked to choose.
    let orders = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/queues",
            json!({"channel": "sms", "name": "Orders", "kind": "leaf", "position": 2}),
        )
        .await;
    let (status, _) = inbound(
        &server,
        "+15559990000",
        "hi",
        "SM00000000000000000000000000000010",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sender = store.sms_sender("+15559990000").await.unwrap().unwrap();
    assert!(sender.menu_sent_at.is_some());
    assert!(store
        .open_chats_of_visitor(sender.visitor)
        .await
        .unwrap()
        .is_empty());
    let outbox = server.data_dir.join("outbox");
    let menu = eventually("the menu in the outbox", async || {
        let entries = std::fs::read_dir(&outbox).ok()?;
        entries
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "sms"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
    })
    .await;
    assert!(menu.contains("To: +15559990000"), "{menu}");
    assert!(
        menu.contains("Reply with a number: 1 Text us, 2 Orders"),
        "{menu}"
    );
    // A reply that picks nothing gets the menu again; "2" starts the conversation in Orders.
    inbound(
        &server,
        "+15559990000",
        "what?",
        "SM00000000000000000000000000000011",
    )
    .await;
    assert!(store
        .open_chats_of_visitor(sender.visitor)
        .await
        .unwrap()
        .is_empty());
    inbound(
        &server,
        "+15559990000",
        " 2 ",
        "SM00000000000000000000000000000012",
    )
    .await;
    let chats = store.open_chats_of_visitor(sender.visitor).await.unwrap();
    assert_eq!(chats.len(), 1);
    let contact = store.get_contact(chats[0]).await.unwrap();
    assert_eq!(
        contact.queue.map(|q| q.to_string()).as_deref(),
        orders["id"].as_str()
    );
    assert_eq!(contact.channel.as_str(), "sms");
    assert_eq!(
        store
            .sms_sender("+15559990000")
            .await
            .unwrap()
            .unwrap()
            .menu_sent_at,
        None
    );
    let menus = eventually("both menus written", async || {
        let list = store.list_outbound_sms(10).await.unwrap();
        (list.len() == 2 && list.iter().all(|m| m.status.as_str() == "sent")).then_some(list)
    })
    .await;
    assert!(menus.iter().all(|m| m.purpose == SmsPurpose::Menu));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_the_sender_gets_the_rules_text_and_nothing_waits() {
    let sunday = switchboard::config::WallClock::starting_at(
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 4, 15, 0, 0).unwrap(),
    );
    let server =
        Server::start_configured(Backend::Sqlite, |config| config.wall_clock = sunday).await;
    let store = server.app.services.store.clone();
    let fake = FakeTwilio::start().await;
    let admin = server.login("admin").await;
    connect_twilio(&server, &admin, &fake).await;
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/after-hours/rules/center/sms",
            json!({"enabled": true, "action": "message", "messages": [{"text": "We are closed; we open Monday at 8."}]}),
        )
        .await;
    let (status, body) = inbound(
        &server,
        "+15553334444",
        "anyone there?",
        "SM00000000000000000000000000000020",
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, TWIML));
    let sent = eventually("the after-hours text", async || {
        fake.sent().into_iter().next()
    })
    .await;
    assert_eq!(
        (sent.to.as_str(), sent.body.as_str()),
        ("+15553334444", "We are closed; we open Monday at 8.")
    );
    let sender = store.sms_sender("+15553334444").await.unwrap().unwrap();
    assert!(store
        .open_chats_of_visitor(sender.visitor)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .inbound_sms("SM00000000000000000000000000000020")
            .await
            .unwrap()
            .map(|m| m.contact),
        Some(None::<ContactId>),
        "kept, in no conversation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_sms_jobs_queued_loses_and_duplicates_nothing() {
    for backend in backends() {
        restart(backend).await;
    }
}

async fn restart(backend: Backend) {
    let server = Server::start(backend).await;
    let fake = FakeTwilio::start().await;
    let admin = server.login("admin").await;
    connect_twilio(&server, &admin, &fake).await;
    // Twilio is down: every message is tried once and waits for its retry.
    fake.script((0..5).map(|_| Answer::Unavailable));
    let now = Utc::now();
    for n in 0..5 {
        switchboard::sms::queue_sms(
            &server.app.services.jobs,
            switchboard::sms::message_id(&format!("restart:{n}")),
            "+15551110000",
            &format!("message {n}"),
            SmsPurpose::AgentNotice,
            None,
            now,
        )
        .await
        .unwrap();
    }
    eventually("five failed attempts", async || {
        (fake.attempts() == 5).then_some(())
    })
    .await;
    let (config, cleanup) = server.stop().await;

    let server = Server::start_with(config, cleanup).await;
    // Stored again by whatever caused them (a resend): still one job each.
    for n in 0..5 {
        let stored = switchboard::sms::queue_sms(
            &server.app.services.jobs,
            switchboard::sms::message_id(&format!("restart:{n}")),
            "+15551110000",
            &format!("message {n}"),
            SmsPurpose::AgentNotice,
            None,
            now,
        )
        .await
        .unwrap();
        assert!(!stored, "{backend:?}: message {n} stored twice");
    }
    for minutes in [10, 20, 60] {
        server
            .app
            .jobs
            .run_due(now + Duration::minutes(minutes))
            .await;
    }
    let mut bodies: Vec<String> = fake.sent().into_iter().map(|s| s.body).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        (0..5).map(|n| format!("message {n}")).collect::<Vec<_>>(),
        "{backend:?}"
    );
    let list = server
        .app
        .services
        .store
        .list_outbound_sms(100)
        .await
        .unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|m| m.status.as_str() == "sent"), "{list:?}");
}

/// NTF-4: with the setting on, a sipp caller's call that rings agent1's phone also texts the
/// number on agent1's profile, once, through the connector; agents without a number get none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_call_texts_the_ringing_agent() {
    use crate::voice::{agent_phone, caller, ended_call, DTMF_1};
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.voice.rtp_ports = (63000, 63999);
    })
    .await;
    let sip = server.sip().await;
    let fake = FakeTwilio::start().await;
    let admin = server.login("admin").await;
    connect_twilio(&server, &admin, &fake).await;
    let settings = admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            "/api/v1/sms/settings",
            json!({
                "connector": "twilio",
                "account_sid": twilio::ACCOUNT_SID,
                "from_number": twilio::OUR_NUMBER,
                "api_base": fake.url,
                "public_url": server.base,
                "notify_agents": true,
            }),
        )
        .await;
    assert_eq!(settings["auth_token_set"], true, "the token is kept");
    let agent1 = server.login("agent1").await;
    let path = format!("/api/v1/users/{}/sms-number", agent1.user_id);
    let (status, answer) = admin
        .call(Method::PUT, &path, Some(json!({"phone": "call me"})))
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_field"))
    );
    admin
        .expect(
            StatusCode::OK,
            Method::PUT,
            &path,
            json!({"phone": "+15556667777"}),
        )
        .await;
    assert_eq!(admin.get(&path).await["phone"], "+15556667777");
    let (status, _) = agent1.call(Method::GET, &path, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "agents do not read profiles' numbers"
    );

    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    caller(sip, "caller", DTMF_1, 2000).succeeds().await;
    phone.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["disposition"], "answered", "{call}");
    let sent = eventually("the agent's text", async || fake.sent().into_iter().next()).await;
    assert_eq!(
        (sent.to.as_str(), sent.body.as_str()),
        ("+15556667777", "Incoming call from 15551234567 (Sales)")
    );
    server
        .app
        .jobs
        .run_due(Utc::now() + Duration::hours(1))
        .await;
    assert_eq!(fake.sent().len(), 1, "one text for one offer");
    let list = server
        .app
        .services
        .store
        .list_outbound_sms(10)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].purpose, SmsPurpose::AgentNotice);
}
