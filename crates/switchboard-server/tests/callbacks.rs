//! Scheduled callbacks over the API on both databases, with the server's wall clock on a
//! Sunday (the demo center opens Monday 08:00 New York time): the slots a voice queue offers,
//! booking by an admin, an Apps API key and a widget visitor, the checks, listing and
//! cancelling; a closed web queue offering a scheduled call in its `queue_closed` frame; the
//! scheduler making a due callback a voice contact in its queue; and a restart with callbacks
//! under way that loses none and queues none twice.

use crate::chat::{queue_path, Consumer};
use crate::{backends, Backend, Server, Session};
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard::config::WallClock;

/// Sunday 2026-01-04 10:00 in New York: the demo center is closed all day.
fn sunday() -> WallClock {
    WallClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 4, 15, 0, 0).unwrap())
}

/// Monday 2026-01-05 08:00 in New York (EST, UTC-5): the first open slot.
fn monday_opening() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 13, 0, 0).unwrap()
}

async fn start(backend: Backend) -> Server {
    Server::start_configured(backend, |config| {
        config.wall_clock = sunday();
        config.voice.rtp_ports = (62000, 62999);
    })
    .await
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

fn at(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn code(
    session: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let (status, answer) = session.call(method, path, body).await;
    (
        status,
        answer["code"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_booked_checked_listed_queued_and_cancelled() {
    for backend in backends() {
        let server = start(backend).await;
        let admin = server.login("admin").await;
        let sales = voice_queue(&admin, "Sales").await;
        let refunds = queue_path(&server, "Billing > Refunds").await;
        let offered: Value =
            reqwest::get(server.url(&format!("/api/v1/widget/queues/{sales}/slots")))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(offered["time_zone"], "America/New_York", "{backend:?}");
        let slots: Vec<DateTime<Utc>> = offered["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(at)
            .collect();
        assert_eq!(slots[0], monday_opening(), "{backend:?}: {offered}");
        assert_eq!(
            slots[1],
            monday_opening() + Duration::minutes(30),
            "{backend:?}"
        );

        let book = |slot: DateTime<Utc>, number: &str, queue: &str| {
            json!({"queue_id": queue, "number": number, "slot": slot, "priority": 3,
                   "max_attempts": 2, "retry_delay_seconds": 120})
        };
        let bad = [
            (
                book(slots[0], "555-0100", &sales),
                StatusCode::BAD_REQUEST,
                "invalid_number",
            ),
            (
                book(
                    monday_opening() - Duration::hours(1),
                    "+15551230001",
                    &sales,
                ),
                StatusCode::BAD_REQUEST,
                "slot_not_open",
            ),
            (
                book(slots[0] + Duration::minutes(10), "+15551230001", &sales),
                StatusCode::BAD_REQUEST,
                "slot_not_open",
            ),
            (
                book(slots[0], "+15551230001", &refunds),
                StatusCode::BAD_REQUEST,
                "invalid_callback",
            ),
            (
                book(
                    slots[0],
                    "+15551230001",
                    "0190a0f0-0000-7000-8000-000000000000",
                ),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                json!({"queue_id": sales, "number": "+15551230001", "slot": slots[0], "max_attempts": 11}),
                StatusCode::BAD_REQUEST,
                "invalid_field",
            ),
            (
                json!({"queue_id": sales, "number": "+15551230001", "slot": slots[0], "retry_delay_seconds": 5}),
                StatusCode::BAD_REQUEST,
                "invalid_field",
            ),
        ];
        for (body, status, expected) in bad {
            let got = code(
                &admin,
                Method::POST,
                "/api/v1/callbacks",
                Some(body.clone()),
            )
            .await;
            assert_eq!(got, (status, expected.to_owned()), "{backend:?}: {body}");
        }
        assert!(
            admin
                .get("/api/v1/callbacks")
                .await
                .as_array()
                .unwrap()
                .is_empty(),
            "{backend:?}: nothing refused was kept"
        );
        // An agent may not book; an integration may.
        let agent = server.login("agent1").await;
        assert_eq!(
            code(
                &agent,
                Method::POST,
                "/api/v1/callbacks",
                Some(book(slots[0], "+15551230001", &sales))
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        let first = admin
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/callbacks",
                book(slots[1], "+15551230001", &sales),
            )
            .await;
        assert_eq!(first["status"], "scheduled");
        assert_eq!(first["origin"], "scheduled");
        assert_eq!(first["max_attempts"], 2);
        let (status, second) = server
            .apps(
                Method::POST,
                "/api/v1/callbacks",
                Some(book(slots[0], "+15551230002", &sales)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{backend:?}: {second}");
        let (status, _) = server
            .apps(Method::GET, "/api/v1/callbacks?status=scheduled", None)
            .await;
        assert_eq!(status, StatusCode::OK);

        // Listed by due time, with their (no) attempts.
        let listed = admin.get("/api/v1/callbacks?status=scheduled").await;
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                second["id"].as_str().unwrap(),
                first["id"].as_str().unwrap()
            ],
            "{backend:?}"
        );
        assert_eq!(listed[0]["attempts"], json!([]));
        assert_eq!(
            code(&admin, Method::GET, "/api/v1/callbacks?status=later", None).await,
            (StatusCode::BAD_REQUEST, "invalid_field".to_owned())
        );

        // Not yet due on Sunday; at the first slot only the first is queued, as a voice
        // contact of Sales with its priority.
        let app = &server.app;
        let store = app.services.store.as_ref();
        let sunday_now = sunday().now();
        assert_eq!(
            app.callbacks
                .run_due(store, &app.services.contacts, sunday_now)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            app.callbacks
                .run_due(store, &app.services.contacts, slots[0])
                .await
                .unwrap(),
            1,
            "{backend:?}"
        );
        assert_eq!(
            app.callbacks
                .run_due(store, &app.services.contacts, slots[0])
                .await
                .unwrap(),
            0,
            "{backend:?}: once"
        );
        let queued = admin.get("/api/v1/callbacks?status=queued").await;
        assert_eq!(queued.as_array().unwrap().len(), 1, "{backend:?}");
        assert_eq!(queued[0]["id"], second["id"]);
        let contact = store
            .get_callback(
                switchboard_core::CallbackId::parse(second["id"].as_str().unwrap()).unwrap(),
            )
            .await
            .unwrap()
            .contact
            .expect("a queued callback names its contact");
        let open = app
            .services
            .contacts
            .open_contact(contact)
            .await
            .expect("its contact waits");
        assert_eq!(open.channel, switchboard_core::Channel::Voice);
        assert_eq!(open.queue.map(|q| q.to_string()), Some(sales.clone()));
        assert_eq!(open.priority, 3);
        assert_eq!(open.customer.as_deref(), Some("+15551230002"));

        // Cancelling: a queued one leaves its queue; an ended one cannot be cancelled again.
        let path = format!("/api/v1/callbacks/{}", second["id"].as_str().unwrap());
        let (status, _) = admin.call(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{backend:?}");
        assert!(
            app.services.contacts.open_contact(contact).await.is_none(),
            "{backend:?}"
        );
        assert_eq!(
            code(&admin, Method::DELETE, &path, None).await,
            (StatusCode::CONFLICT, "callback_state".to_owned())
        );
        assert_eq!(
            code(
                &admin,
                Method::DELETE,
                "/api/v1/callbacks/0190a0f0-0000-7000-8000-000000000000",
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        let cancelled = admin.get("/api/v1/callbacks?status=cancelled").await;
        assert_eq!(cancelled.as_array().unwrap().len(), 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_web_queue_offers_a_scheduled_call_the_visitor_books() {
    for backend in backends() {
        let server = start(backend).await;
        let admin = server.login("admin").await;
        let sales = voice_queue(&admin, "Sales").await;
        let refunds = queue_path(&server, "Billing > Refunds").await;
        let bad = [
            (
                "web",
                json!([{"kind": "scheduled_call", "queue_id": refunds}]),
            ),
            ("web", json!([{"kind": "scheduled_call"}])),
            ("web", json!([{"kind": "email"}, {"kind": "email"}])),
            ("web", json!([{"kind": "pigeon"}])),
            ("voice", json!([{"kind": "email"}])),
        ];
        for (channel, offers) in bad {
            let got = code(
                &admin,
                Method::PUT,
                &format!("/api/v1/after-hours/rules/center/{channel}"),
                Some(json!({"enabled": true, "action": "message", "offers": offers})),
            )
            .await;
            assert_eq!(
                got,
                (StatusCode::BAD_REQUEST, "invalid_after_hours".to_owned()),
                "{backend:?}: {offers}"
            );
        }
        let offers = json!([{"kind": "scheduled_call", "queue_id": sales}, {"kind": "email"}]);
        let rule = admin
            .expect(
                StatusCode::OK,
                Method::PUT,
                "/api/v1/after-hours/rules/center/web",
                json!({"enabled": true, "action": "message", "offers": offers,
                       "messages": [{"text": "We are closed."}]}),
            )
            .await;
        assert_eq!(rule["offers"], offers);
        assert_eq!(
            admin.get("/api/v1/after-hours").await["rules"][0]["offers"],
            offers,
            "{backend:?}"
        );

        let (mut consumer, _) = Consumer::new(&server, None).await;
        consumer
            .socket
            .send(json!({"type": "start", "client_id": "s1", "queue_id": refunds}))
            .await;
        let closed = consumer.expect("queue_closed").await;
        assert_eq!(closed["message"], "We are closed.");
        let call = &closed["offers"][0];
        assert_eq!(call["kind"], "scheduled_call", "{closed}");
        assert_eq!(call["queue_id"], sales.as_str());
        assert_eq!(call["time_zone"], "America/New_York");
        assert_eq!(at(&call["slots"][0]), monday_opening(), "{backend:?}");
        assert_eq!(closed["offers"][1], json!({"kind": "email"}));

        // The visitor books the second slot with their id and token; a stranger cannot.
        let body = json!({"queue_id": sales, "slot": call["slots"][1], "number": "+15551230009"});
        let stranger = reqwest::Client::new()
            .post(server.url("/api/v1/widget/callbacks"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(stranger.status(), StatusCode::UNAUTHORIZED);
        let booked = reqwest::Client::new()
            .post(server.url("/api/v1/widget/callbacks"))
            .header("x-visitor-id", &consumer.visitor_id)
            .header("x-visitor-token", &consumer.visitor_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(booked.status(), StatusCode::CREATED);
        let confirmation: Value = booked.json().await.unwrap();
        assert_eq!(
            at(&confirmation["slot"]),
            monday_opening() + Duration::minutes(30)
        );
        assert_eq!(confirmation["number"], "+15551230009");
        let listed = admin.get("/api/v1/callbacks").await;
        assert_eq!(listed[0]["id"], confirmation["callback_id"], "{backend:?}");
        assert_eq!(listed[0]["queue_id"], sales.as_str());
    }
}

/// A restart in the middle: one callback queued (its contact lost with the server), one
/// dialling (an attempt on the row whose end nobody saw), one still to come. After the
/// restart none is lost, the queued one is due again at once and queued once, and the dialled
/// attempt is ended as failed and retried by its policy, not dialled again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_and_duplicates_no_callback() {
    for backend in backends() {
        let server = start(backend).await;
        let admin = server.login("admin").await;
        let sales = voice_queue(&admin, "Sales").await;
        let agent = server.login("agent1").await;
        let mut ids = Vec::new();
        for (slot, number) in [
            (0, "+15551230001"),
            (30, "+15551230002"),
            (60, "+15551230003"),
        ] {
            let booked = admin
                .expect(
                    StatusCode::CREATED,
                    Method::POST,
                    "/api/v1/callbacks",
                    json!({"queue_id": sales, "number": number, "slot": monday_opening() + Duration::minutes(slot),
                           "max_attempts": 2, "retry_delay_seconds": 600}),
                )
                .await;
            ids.push(switchboard_core::CallbackId::parse(booked["id"].as_str().unwrap()).unwrap());
        }
        let app = &server.app;
        let store = app.services.store.clone();
        let half_past = monday_opening() + Duration::minutes(30);
        assert_eq!(
            app.callbacks
                .run_due(store.as_ref(), &app.services.contacts, half_past)
                .await
                .unwrap(),
            2
        );
        let first = store.get_callback(ids[0]).await.unwrap();
        let two_contact = store.get_callback(ids[1]).await.unwrap().contact.unwrap();
        let agent_id = switchboard_core::UserId::parse(&agent.user_id).unwrap();
        let dialled = app
            .callbacks
            .dialing(store.as_ref(), first.contact.unwrap(), agent_id, half_past)
            .await
            .unwrap()
            .expect("a queued callback's contact reached an agent");
        assert_eq!(dialled.attempts.len(), 1);
        // The same pick again (a replayed change) starts no second attempt.
        assert!(app
            .callbacks
            .dialing(store.as_ref(), first.contact.unwrap(), agent_id, half_past)
            .await
            .unwrap()
            .is_none());
        drop(store);
        let (mut config, cleanup) = server.stop().await;
        config.wall_clock = sunday();
        config.voice.rtp_ports = (62000, 62999);
        let server = Server::start_with(config, cleanup).await;
        let app = &server.app;
        let store = app.services.store.clone();
        // The scheduler's start puts them back on their way: the queued one is due at once
        // and queued again (a new contact: the old one went with the server), the dialled one
        // waits for its retry.
        use switchboard_core::callback::{AttemptOutcome, CallbackStatus};
        let before = two_contact;
        let mut recovered = None;
        for _ in 0..100 {
            let one = store.get_callback(ids[0]).await.unwrap();
            let two = store.get_callback(ids[1]).await.unwrap();
            if one.status == CallbackStatus::Scheduled && two.status == CallbackStatus::Queued {
                recovered = Some((one, two));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (one, two) = recovered.expect("the restart recovers the callbacks under way");
        assert_eq!(
            one.attempts.len(),
            1,
            "{backend:?}: the attempt stays on the record"
        );
        assert_eq!(
            one.attempts[0].outcome,
            Some(AttemptOutcome::Failed),
            "{backend:?}"
        );
        assert!(
            one.due_at > sunday().now() + Duration::minutes(9),
            "{backend:?}: retried after its delay"
        );
        assert!(two.attempts.is_empty(), "{backend:?}");
        assert_ne!(two.contact, Some(before), "{backend:?}");
        assert!(
            app.services
                .contacts
                .open_contact(two.contact.unwrap())
                .await
                .is_some(),
            "{backend:?}: it waits in its queue"
        );
        assert_eq!(
            store.list_callbacks(None, 100).await.unwrap().len(),
            3,
            "{backend:?}: none lost"
        );
        // At 09:00 the retry and the third are queued, each once.
        let nine = monday_opening() + Duration::minutes(60);
        let contacts = &app.services.contacts;
        assert_eq!(
            app.callbacks
                .run_due(store.as_ref(), contacts, nine)
                .await
                .unwrap(),
            2,
            "{backend:?}"
        );
        assert_eq!(
            app.callbacks
                .run_due(store.as_ref(), contacts, nine)
                .await
                .unwrap(),
            0,
            "{backend:?}"
        );
        let queued: Vec<_> = store
            .list_callbacks(Some(CallbackStatus::Queued), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(queued, vec![ids[1], ids[0], ids[2]], "{backend:?}");
    }
}

/// A booked callback fires at its slot: routing gives it to agent1, whose phone (a sipp UAS)
/// answers first; then the consumer (a sipp UAS behind the outbound trunk) is called, they
/// talk, and the agent hangs up. The attempt is on the callback, answered, and the call's
/// record names its contact. A second booking whose number is busy is retried as configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booked_callback_rings_the_agent_then_the_consumer_and_a_busy_one_is_retried() {
    use crate::voice::{agent_phone, available, ended_call, free_port, scenario, Sipp};
    use switchboard_core::callback::{AttemptOutcome, CallbackStatus};
    let carrier_port = free_port();
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.wall_clock = sunday();
        config.voice.rtp_ports = (62000, 62999);
        config.demo_carrier = std::net::SocketAddr::from(([127, 0, 0, 1], carrier_port));
    })
    .await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let sales = voice_queue(&admin, "Sales").await;
    let agent1 = server.login("agent1").await;
    let book = |number: &str, slot: DateTime<Utc>| {
        json!({"queue_id": sales, "number": number, "slot": slot,
               "max_attempts": 2, "retry_delay_seconds": 60})
    };
    let answered = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/callbacks",
            book("+15557654321", monday_opening()),
        )
        .await;
    let id = switchboard_core::CallbackId::parse(answered["id"].as_str().unwrap()).unwrap();
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent_hangs_up").await;
    let consumer = Sipp::start(
        "consumer",
        &[
            "-sf",
            &scenario("consumer"),
            "-p",
            &carrier_port.to_string(),
        ],
    );
    let app = &server.app;
    let store = app.services.store.clone();
    // The clock reaches the slot.
    assert_eq!(
        app.callbacks
            .run_due(store.as_ref(), &app.services.contacts, monday_opening())
            .await
            .unwrap(),
        1
    );
    phone.succeeds().await;
    consumer.succeeds().await;
    let call = ended_call(&admin).await;
    assert_eq!(call["agent_id"], agent1.user_id.as_str(), "{call}");
    assert_eq!(call["queue_id"], sales.as_str(), "{call}");
    assert_eq!(call["disposition"], "answered", "{call}");
    assert!(
        call["rtp"]["from_caller"].as_u64().unwrap() >= 50,
        "the consumer's speech: {call}"
    );
    let mut done = None;
    for _ in 0..100 {
        let callback = store.get_callback(id).await.unwrap();
        if callback.status == CallbackStatus::Connected {
            done = Some(callback);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let done = done.expect("the answered callback is connected");
    assert_eq!(done.attempts.len(), 1);
    assert_eq!(done.attempts[0].outcome, Some(AttemptOutcome::Answered));
    assert_eq!(
        done.attempts[0].agent.map(|a| a.to_string()),
        Some(agent1.user_id.clone())
    );
    assert_eq!(
        call["contact_id"].as_str(),
        done.contact.map(|c| c.to_string()).as_deref()
    );

    // Busy: the attempt is recorded and the callback is due again after its delay.
    let busy = admin
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/api/v1/callbacks",
            book("+15557654322", monday_opening() + Duration::minutes(30)),
        )
        .await;
    let busy_id = switchboard_core::CallbackId::parse(busy["id"].as_str().unwrap()).unwrap();
    available(&agent1).await;
    let phone = agent_phone(sip, "agent1", "agent").await;
    let line = Sipp::start(
        "consumer_busy",
        &[
            "-sf",
            &scenario("consumer_busy"),
            "-p",
            &carrier_port.to_string(),
        ],
    );
    let half_past = monday_opening() + Duration::minutes(30);
    assert_eq!(
        app.callbacks
            .run_due(store.as_ref(), &app.services.contacts, half_past)
            .await
            .unwrap(),
        1
    );
    line.succeeds().await;
    phone.succeeds().await;
    let mut retried = None;
    for _ in 0..100 {
        let callback = store.get_callback(busy_id).await.unwrap();
        if callback.status == CallbackStatus::Scheduled && !callback.attempts.is_empty() {
            retried = Some(callback);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let retried = retried.expect("the busy callback is scheduled again");
    assert_eq!(retried.attempts[0].outcome, Some(AttemptOutcome::NoAnswer));
    let wall = sunday().now();
    assert!(
        retried.due_at >= wall + Duration::seconds(59),
        "after its delay"
    );
    assert!(
        retried.due_at <= wall + Duration::seconds(70),
        "after its delay"
    );
}

/// In hours, a caller waiting in Sales presses `*`: they hear the confirmation and are hung
/// up, and a callback to their number is stored keeping their place. A second caller joins
/// later and waits. When agent1 comes online the callback goes first: their phone answers,
/// the first caller's number (a sipp UAS behind the outbound trunk) is called; only then is
/// the later caller put through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_presses_star_and_is_called_back_ahead_of_later_callers() {
    use crate::voice::{agent_phone, available, caller, free_port, scenario, Sipp, DTMF_1};
    use switchboard_core::callback::{CallbackOrigin, CallbackStatus};
    let carrier_port = free_port();
    // Monday 10:00 in New York: open.
    let monday = WallClock::starting_at(Utc.with_ymd_and_hms(2026, 1, 5, 15, 0, 0).unwrap());
    let server = Server::start_configured(Backend::Sqlite, |config| {
        config.wall_clock = monday;
        config.voice.rtp_ports = (62000, 62999);
        config.demo_carrier = std::net::SocketAddr::from(([127, 0, 0, 1], carrier_port));
    })
    .await;
    let sip = server.sip().await;
    let admin = server.login("admin").await;
    let sales = voice_queue(&admin, "Sales").await;
    assert_eq!(
        admin
            .get(&format!("/api/v1/callbacks/queues/{sales}"))
            .await,
        json!({"in_queue": true})
    );
    let agent1 = server.login("agent1").await;
    caller(sip, "caller_star", DTMF_1, 0).succeeds().await;
    let store = server.app.services.store.clone();
    let mut asked = None;
    for _ in 0..100 {
        let list = store.list_callbacks(None, 10).await.unwrap();
        if let Some(callback) = list
            .into_iter()
            .find(|c| c.status == CallbackStatus::Queued)
        {
            asked = Some(callback);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let asked = asked.expect("the callback is stored and waits in Sales");
    assert_eq!(asked.number.as_str(), "+15557654321");
    assert_eq!(asked.queue.to_string(), sales);
    assert!(matches!(asked.origin, CallbackOrigin::InQueue { .. }));
    let first = crate::voice::ended_call(&admin).await;
    assert_eq!(first["disposition"], "unanswered", "{first}");
    assert_eq!(first["ended_by"], "caller", "{first}");

    // A later caller waits.
    let later = caller(sip, "caller_waits", DTMF_1, 0);
    let mut waiting = false;
    for _ in 0..100 {
        let contacts = admin.get("/api/v1/contacts").await;
        if contacts.as_array().unwrap().len() >= 2 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(waiting, "the later caller waits beside the callback");
    let phone = agent_phone(sip, "agent1", "agent_hangs_up").await;
    let consumer = Sipp::start(
        "consumer",
        &[
            "-sf",
            &scenario("consumer"),
            "-p",
            &carrier_port.to_string(),
        ],
    );
    available(&agent1).await;
    consumer.succeeds().await;
    phone.succeeds().await;
    let mut connected = false;
    for _ in 0..100 {
        if store.get_callback(asked.id).await.unwrap().status == CallbackStatus::Connected {
            connected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(connected, "the callback was answered first");
    // The later caller reached agent1 (if at all yet) only after the callback did.
    let served = store.get_callback(asked.id).await.unwrap();
    let callback_contact = store.get_contact(served.contact.unwrap()).await.unwrap();
    let callback_assigned = callback_contact
        .assigned_at
        .expect("the callback reached agent1");
    let contacts = admin.get("/api/v1/contacts").await;
    let open: Vec<&Value> = contacts
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ended_at"].is_null() && c["id"] != callback_contact.id.to_string().as_str())
        .collect();
    assert_eq!(open.len(), 1, "the later caller: {contacts}");
    if let Some(assigned) = open[0]["assigned_at"].as_str() {
        let assigned: DateTime<Utc> = assigned.parse().unwrap();
        assert!(
            assigned > callback_assigned,
            "served after the callback: {contacts}"
        );
    }
    let joined: DateTime<Utc> = open[0]["created_at"].as_str().unwrap().parse().unwrap();
    assert!(
        callback_contact.created_at < joined,
        "the callback kept the earlier place"
    );
    drop(later);
}
